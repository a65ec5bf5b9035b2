/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The GPU handoff: stop units, unbind consoles and boot framebuffers, wait
 * out (or end) the holders, unload the driver modules, bind vfio-pci; each
 * step journaled first, undone in reverse by rollback and release.
 */
#ifndef VFIO_AGENT_HANDOFF_H
#define VFIO_AGENT_HANDOFF_H

#include <stdbool.h>
#include <stddef.h>

struct agent_ctx;
struct config;
struct domain;

enum handoff_mode {
	HANDOFF_RUN,       /* change the host */
	HANDOFF_PLAN,      /* print the plan as text on stdout; change nothing */
	HANDOFF_PLAN_JSON, /* the same plan as one JSON object */
};

/*
 * Prepare c->vm: the config's pcis, else the domain's PCI hostdevs. On
 * failure everything done is rolled back and err holds "STEP: cause" (or
 * is empty when the one line was logged already). An exit code.
 */
int handoff_prepare(const struct agent_ctx *ctx, const struct config *c, const struct domain *dom,
		    enum handoff_mode mode, char *err, size_t errlen);

/* Undo vm's journal in reverse; no journal is success. An exit code. */
int handoff_release(const struct agent_ctx *ctx, const char *vm, enum handoff_mode mode,
		    char *err, size_t errlen);

/*
 * /run/vfio-agent/lock, held until the process exits or closes fd. wait:
 * up to a minute for another holder; else -EWOULDBLOCK at once. 0 or
 * -errno, with err's line.
 */
int handoff_lock(const char *root, bool wait, int *fd, char *err, size_t errlen);

#endif
