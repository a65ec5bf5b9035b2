// SPDX-License-Identifier: GPL-2.0-or-later
/* vfio-agent: a table of verbs and a loop. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "core/config.h"
#include "core/holders.h"
#include "agent/log.h"
#include "shared/macro.h"

#ifndef VERSION
#define VERSION "0.1"
#endif

static int version_main(struct agent_ctx *ctx, int argc, char **argv)
{
	printf("vfio-agent %s\n", VERSION);
	return EXIT_OK;
}

struct verb {
	const char *name;
	int (*fn)(struct agent_ctx *ctx, int argc, char **argv);
	const char *help;
};

static const struct verb verbs[] = {
	{ "forward", forward_main, "up|down|status [--vm NAME] [--json]   the VNC port forward" },
	{ "diagnose", diagnose_main,
	  "[--pci BDF|--driver MOD|--device NODE]... [--json]\n"
	  "                                               who holds the GPU; can it be handed off" },
	{ "watch", watch_main,
	  "[targets as diagnose] [--json] [--duration S]\n"
	  "                                               stream opens, closes and exits of holders" },
	{ "hook", hook_main,
	  "DOMAIN OP SUBOP [EXTRA]               libvirt's qemu hook (domain XML on stdin)" },
	{ "handoff", handoff_main,
	  "prepare|release [--vm NAME] [--dry-run [--json]]\n"
	  "                                               hand the GPU to vfio-pci, or take it back" },
	{ "daemon", daemon_main,
	  "[--foreground]                         keep the forward true while the VM runs" },
	{ "init", init_main,
	  "[--vm NAME]                            a commented starting config for this host" },
	{ "check", check_main,
	  "                                      read the config; exit 0, or 2 with its error" },
	{ "version", version_main, "                                      print the version" },
};

static void usage(FILE *out)
{
	fputs("Usage: vfio-agent [--config FILE] [--root DIR] [-v|-q] VERB [ARGS]\n\n"
	      "Hand a host's only GPU to a libvirt guest, and forward its VNC port.\n\nVerbs:\n",
	      out);
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		fprintf(out, "  %-9s %s\n", verbs[i].name, verbs[i].help);
	fputs("\nOptions:\n"
	      "  -c, --config FILE  config file (default " CONFIG_DEFAULT_PATH ")\n"
	      "  -r, --root DIR     treat DIR as / for /sys, /proc, /dev and /run\n"
	      "  -v, --verbose      more detail\n"
	      "  -q, --quiet        errors only\n"
	      "  -h, --help         this help; VERB --help for a verb's\n"
	      "\nExit status: 0 done, 1 the job could not be done, 2 usage or config error.\n",
	      out);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "root", required_argument, NULL, 'r' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct agent_ctx ctx = { .config_path = CONFIG_DEFAULT_PATH, .root = "", .verbosity = 1 };
	int opt;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+c:r:vqh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			ctx.config_path = optarg;
			ctx.config_given = true;
			break;
		case 'r':
			if (!optarg[0]) {
				log_error("--root needs a directory");
				return EXIT_USAGE;
			}
			ctx.root = optarg;
			break;
		case 'v':
			ctx.verbosity = 2;
			break;
		case 'q':
			ctx.verbosity = 0;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			return version_main(&ctx, 0, NULL);
		default:
			log_error("unknown option '%s' (see vfio-agent --help)", argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	log_setup(LOG_TO_STDERR, ctx.verbosity);
	if (optind >= argc) {
		log_error("missing verb (see vfio-agent --help)");
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		if (!strcmp(argv[optind], verbs[i].name)) {
			int ret = verbs[i].fn(&ctx, argc - optind, argv + optind);

			holders_cleanup();
			return ret;
		}
	log_error("unknown verb '%s' (see vfio-agent --help)", argv[optind]);
	return EXIT_USAGE;
}
