/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What every verb gets: the global options. One <verb>_main() per file. */
#ifndef VFIO_AGENT_AGENT_H
#define VFIO_AGENT_AGENT_H

#include <stdbool.h>

struct config;

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

int forward_main(struct agent_ctx *ctx, int argc, char **argv);
int diagnose_main(struct agent_ctx *ctx, int argc, char **argv);
int watch_main(struct agent_ctx *ctx, int argc, char **argv);
int hook_main(struct agent_ctx *ctx, int argc, char **argv);
int handoff_main(struct agent_ctx *ctx, int argc, char **argv);
int daemon_main(struct agent_ctx *ctx, int argc, char **argv);

#endif
