/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What "the GPU" is: PCI devices, the device nodes they expose, the driver
 * modules and the modules that depend on them. Every path under --root.
 */
#ifndef VFIO_AGENT_TARGETS_H
#define VFIO_AGENT_TARGETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bpf/scan.h"

struct config;
struct kmod_ctx;

struct target_pci {
	char bdf[16];
	char driver[64];	   /* "" when unbound */
	char module[HOLD_MOD_LEN]; /* "" when built in or unbound */
	uint32_t class;
};

struct target_node {
	uint32_t kdev;
	bool whole_major;
	char path[128]; /* /dev/dri/card0; "" when only the number is known */
	char what[48];	/* "card0", "kfd", "nvidia (major 195)", "--device" */
	char pci[16];	/* the PCI device that brought it, "0000:03:00.0"; "" for --device */
};

struct target_req {
	char (*pcis)[16];
	size_t n_pcis;
	const char **drivers;
	size_t n_drivers;
	const char **devices;
	size_t n_devices;
};

struct target_set {
	struct scan_targets scan;
	struct target_pci *pcis;
	size_t n_pcis;
	struct target_node *nodes;
	size_t n_nodes;
	char (*roots)[HOLD_MOD_LEN]; /* driver modules asked for, before dependents */
	size_t n_roots;
	bool pcis_from_config;
	struct kmod_ctx *kmod; /* libkmod, for whoever asks about these modules next */
};

/*
 * Resolve the request (empty: the config's pcis, else every display-class
 * PCI device) under root. k (may be NULL) is taken over by the set, and
 * freed on failure. 0; -EINVAL for a request that names nothing real (a
 * usage error); another -errno. err holds the one line.
 */
int targets_resolve(const char *root, const struct config *c, const struct target_req *req,
		    struct kmod_ctx *k, struct target_set *ts, char *err, size_t errlen);
/*
 * What depends on each of the set's driver modules, as targets of its
 * scans: what targets_resolve() adds when it has libkmod, for a set
 * resolved without. k stays the caller's. 0 or -errno.
 */
int targets_add_dependents(struct target_set *ts, struct kmod_ctx *k);
void target_set_free(struct target_set *ts);

/* room for every option of argv; -ENOMEM */
int target_req_init(struct target_req *req, int argc);
void target_req_free(struct target_req *req);

/* the BDF of the PCI device whose node rdev is, or NULL (a --device, a --driver's major) */
const char *target_set_pci_of(const struct target_set *ts, uint32_t rdev);

/* is bdf one of the set's PCI devices? */
bool target_set_has_pci(const struct target_set *ts, const char *bdf);

/*
 * The boot framebuffers' platform drivers, which keep the GPU's memory
 * mapped until they let go (simpledrm's device registers as
 * simple-framebuffer): what diagnose reports and the handoff unbinds.
 */
#define BOOT_FB_DRIVERS 5
extern const char *const boot_fb_drivers[BOOT_FB_DRIVERS];

/* "MAJ:MIN" */
int parse_majmin(const char *s, uint32_t *kdev);

#endif
