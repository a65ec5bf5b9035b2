/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The host checks of diagnose, and the kernel-side holders it can see. */
#ifndef VFIO_AGENT_CHECKS_H
#define VFIO_AGENT_CHECKS_H

#include <stdbool.h>
#include <stddef.h>

#include "bpf/hold_rec.h"

struct config;
struct kmod_ctx;
struct target_set;

/* ok; warn: works, but something is likely to bite; fail: this will not work */
enum finding_level { LEVEL_OK, LEVEL_WARN, LEVEL_FAIL };

struct finding {
	char name[64];
	bool ok;		  /* level == LEVEL_OK */
	bool blocking;		  /* a failure stops the handoff (or the guest's start) */
	enum finding_level level; /* a blocking one that is not ok is a fail */
	char detail[320];
	char hint[200]; /* what to do next; "" when the detail says it */
};

struct findings {
	struct finding *v;
	size_t n;
};

void findings_free(struct findings *f);

/* "ok", "warn", "fail" */
const char *finding_level_name(enum finding_level l);

/* one finding appended; hint may be NULL. 0 or -ENOMEM */
__attribute__((format(printf, 6, 7))) int findings_add(struct findings *f, const char *name,
						       enum finding_level level, bool blocking,
						       const char *hint, const char *fmt, ...);

/*
 * What the kernel's own framebuffer users hold on a module. A DRM driver's
 * fbdev emulation pins the fbdev helper (drm_kms_helper), once for the
 * emulation's DRM client and once more for fbcon drawing on it; neither
 * pins the driver itself, which unloads with fbcon still bound.
 */
struct fb_refs {
	char module[HOLD_MOD_LEN]; /* "" when no DRM framebuffer exists */
	char target_fb[16];	   /* "fb0": a DRM framebuffer of the targets */
	char target_fb_name[32];   /* "bochsdrmfb" */
	size_t emulations;	   /* DRM framebuffers, every device's */
	size_t fbcon;		   /* fbcon bound and drawing on one of them */
	char fbcon_vt[16];	   /* "vtcon1" */
};

void kernel_fb_refs(const char *root, const struct target_set *ts, struct fb_refs *out);

/* vtconsoles on a framebuffer, boot framebuffers, i2c clients, fbcon */
int kernel_holders_find(const char *root, const struct target_set *ts, struct findings *out);

/* IOMMU, IOMMU groups against pcis, vfio-pci, drivers, ip_forward, the forward */
/*
 * The devices of bdf's IOMMU group that stay with the host although vfio
 * needs them unused: not in ts, not a bridge, bound to a driver other than
 * vfio-pci or pci-stub. Space-separated in others ("" when none); -ENOENT
 * when there is no IOMMU group.
 */
int iommu_group_others(const char *root, const struct target_set *ts, const char *bdf, char *others,
		       size_t len);

/* vfio-pci loaded, or installed where k (libkmod) looks */
bool vfio_pci_available(const char *root, struct kmod_ctx *k);

int checks_run(const char *root, const struct config *c, const struct target_set *ts,
	       struct findings *out);

#endif
