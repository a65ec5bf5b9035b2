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

struct agent_ctx;
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
 * PCI device). Logs one line and returns an exit code.
 */
int targets_resolve(const struct agent_ctx *ctx, const struct config *c,
		    const struct target_req *req, struct target_set *out);
void target_set_free(struct target_set *ts);

/* The target options of diagnose and watch: --pci, --driver, --device. */
#define TARGET_OPTIONS                                                     \
	{ "pci", required_argument, NULL, 'p' },                           \
	{ "driver", required_argument, NULL, 'd' },                        \
	{ "device", required_argument, NULL, 'D' }

/* room for every option of argv; -ENOMEM */
int target_req_init(struct target_req *req, int argc);
/* 1: opt was a target option, taken; 0: not one; -EINVAL: bad value, logged */
int target_req_opt(struct target_req *req, const char *verb, int opt, const char *arg);
void target_req_free(struct target_req *req);

/*
 * After a target verb's options: no stray arguments (argc/argv: what is
 * left), the config (a --vm must match it), the targets. An exit code.
 */
int targets_setup(const struct agent_ctx *ctx, const char *verb, const char *vm, int argc,
		  char **argv, const struct target_req *req, struct config **c,
		  struct target_set *ts);

/* "MAJ:MIN" */
int parse_majmin(const char *s, uint32_t *kdev);


#endif
