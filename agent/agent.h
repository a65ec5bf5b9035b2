/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What every verb gets: the global options. One <verb>_main() per file. */
#ifndef VFIO_AGENT_AGENT_H
#define VFIO_AGENT_AGENT_H

#include <stdbool.h>
#include <stddef.h>

#include <libvirt/libvirt.h>

/* Exit codes of DESIGN.md */
enum {
	EXIT_OK = 0,
	EXIT_FAILED = 1, /* the job could not be done */
	EXIT_USAGE = 2,	 /* usage or config error */
};

struct config;
struct kmod_ctx;
struct target_req;
struct target_set;

struct agent_ctx {
	const char *config_path;
	bool config_given; /* --config on the command line */
	const char *root;  /* --root: prefix for /sys, /proc, /dev, /run */
	int verbosity;
};

/*
 * Load the config. With must_exist false, a missing default config is not
 * an error (*out stays NULL). Logs the one error line; returns an exit code.
 */
int agent_load_config(const struct agent_ctx *ctx, bool must_exist, struct config **out);

/* The same, and a --vm NAME (NULL: any) must be the config's VM. */
int agent_load_config_vm(const struct agent_ctx *ctx, const char *verb, const char *vm,
			 bool must_exist, struct config **out);

/*
 * After a verb's options: argv[optind_] must be one of subs (NULL-ended)
 * and the last argument. The subcommand, or NULL with its one line logged.
 */
const char *agent_subcommand(const char *verb, int argc, char **argv, int optind_,
			     const char *const subs[]);

/* the one line for an option a verb does not know; returns EXIT_USAGE */
int agent_bad_option(const char *verb, const char *arg);

/* libvirt opened (core/dl), its errors routed to debug */
int agent_libvirt_setup(char *err, size_t errlen);
/* LIBVIRT_DEFAULT_URI, else qemu:///system */
const char *agent_libvirt_uri(void);
/* the same, and a connection: 0 or -errno with err's line */
int agent_libvirt_open(bool readonly, virConnectPtr *conn, char *err, size_t errlen);

/* The target options of diagnose and watch: --pci, --driver, --device. */
/* clang-format off */
#define TARGET_OPTIONS                                                     \
	{ "pci", required_argument, NULL, 'p' },                           \
	{ "driver", required_argument, NULL, 'd' },                        \
	{ "device", required_argument, NULL, 'D' }
/* clang-format on */

/* 1: opt was a target option, taken; 0: not one; -EINVAL: bad value, logged */
int agent_target_opt(struct target_req *req, const char *verb, int opt, const char *arg);

/*
 * After a target verb's options: no stray arguments (argc/argv: what is
 * left), the config (a --vm must match it), the targets. An exit code.
 */
int agent_targets_setup(const struct agent_ctx *ctx, const char *verb, const char *vm, int argc,
			char **argv, const struct target_req *req, struct config **c,
			struct target_set *ts);
/* targets_resolve with its line logged; an exit code */
int agent_targets_resolve(const struct agent_ctx *ctx, const struct config *c,
			  const struct target_req *req, struct target_set *ts);

/* libkmod for this host, its messages into our log; NULL (logged) when it cannot be */
struct kmod_ctx *agent_kmod_new(const struct agent_ctx *ctx);

/*
 * diagnose's setup checks into out: the host and the hook when there is a
 * config, the domain over libvirt's API with --vm. 0 or -ENOMEM.
 */
struct findings;
int agent_setup_checks(const struct agent_ctx *ctx, const struct config *c, const char *vm,
		       const struct target_set *ts, struct findings *out);

int forward_main(struct agent_ctx *ctx, int argc, char **argv);
int diagnose_main(struct agent_ctx *ctx, int argc, char **argv);
int watch_main(struct agent_ctx *ctx, int argc, char **argv);
int hook_main(struct agent_ctx *ctx, int argc, char **argv);
int handoff_main(struct agent_ctx *ctx, int argc, char **argv);
int init_main(struct agent_ctx *ctx, int argc, char **argv);
int daemon_main(struct agent_ctx *ctx, int argc, char **argv);
int check_main(struct agent_ctx *ctx, int argc, char **argv);

#endif
