// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vfio-agent check: read the config as every other verb would, change
 * nothing. The NixOS module runs it on the file it renders, so that a value
 * the agent would refuse fails the build, not the guest's start.
 */
#include <getopt.h>
#include <stdio.h>

#include "agent/agent.h"
#include "core/config.h"
#include "agent/log.h"

static const char check_usage[] =
	"Usage: vfio-agent [--config FILE] check\n"
	"\n"
	"Read the config and exit 0 when every key is valid, or 2 with the one line\n"
	"that names the file, line, key and what was expected. Nothing on the host is\n"
	"read or changed; -v prints the file's path when it is valid.\n";

int check_main(struct agent_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct config *c = NULL;
	int opt, ret;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'h':
			fputs(check_usage, stdout);
			return EXIT_OK;
		default:
			return agent_bad_option("check", argv[optind - 1]);
		}
	}
	if (optind < argc) {
		log_error("check: unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}

	ret = agent_load_config(ctx, true, &c);
	if (ret != EXIT_OK)
		return ret;
	log_debug("%s: valid (vm %s)", c->path, c->vm);
	config_free(c);
	return EXIT_OK;
}
