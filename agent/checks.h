/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The host checks of diagnose, and the kernel-side holders it can see. */
#ifndef VFIO_AGENT_CHECKS_H
#define VFIO_AGENT_CHECKS_H

#include <stdbool.h>
#include <stddef.h>

struct agent_ctx;
struct config;
struct target_set;

struct finding {
	char name[64];
	bool ok;
	bool blocking; /* a failure stops the handoff */
	char detail[320];
};

struct findings {
	struct finding *v;
	size_t n;
};

void findings_free(struct findings *f);

/* vtconsoles on a framebuffer, boot framebuffers, i2c clients, fbcon */
int kernel_holders_find(const char *root, const struct target_set *ts, struct findings *out);

/* IOMMU, IOMMU groups against pcis, vfio-pci, drivers, ip_forward, the forward */
int checks_run(const struct agent_ctx *ctx, const struct config *c, const struct target_set *ts,
	       struct findings *out);

#endif
