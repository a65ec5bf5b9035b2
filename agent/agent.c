// SPDX-License-Identifier: GPL-2.0-or-later
/* What the verbs share beyond the config parser: the --vm check, a bad option's line. */
#include <string.h>

#include "agent/agent.h"
#include "agent/config.h"
#include "agent/log.h"
#include "agent/macro.h"

int agent_bad_option(const char *verb, const char *arg)
{
	log_error("%s: unknown option or missing value in '%s' (see vfio-agent %s --help)", verb,
		  arg, verb);
	return EXIT_USAGE;
}

const char *agent_subcommand(const char *verb, int argc, char **argv, int optind_,
			     const char *const subs[])
{
	char list[128] = "";
	size_t n = 0;
	const char *sub;

	while (subs[n])
		n++;
	for (size_t i = 0; i < n; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
			 i == 0 ? "" : i == n - 1 ? " or " : ", ", subs[i]);
	if (optind_ >= argc) {
		log_error("%s: missing %s (see vfio-agent %s --help)", verb, list, verb);
		return NULL;
	}
	sub = argv[optind_];
	for (size_t i = 0; i < n; i++) {
		if (strcmp(sub, subs[i]))
			continue;
		if (optind_ + 1 < argc) {
			log_error("%s %s: unexpected argument '%s'", verb, sub, argv[optind_ + 1]);
			return NULL;
		}
		return sub;
	}
	log_error("%s: unknown subcommand '%s'; expected %s", verb, sub, list);
	return NULL;
}

int agent_load_config_vm(const struct agent_ctx *ctx, const char *verb, const char *vm,
			 bool must_exist, struct config **out)
{
	int r = agent_load_config(ctx, must_exist, out);

	if (r != EXIT_OK || !*out || !vm || !strcmp(vm, (*out)->vm))
		return r;
	log_error("%s: VM '%s' is not configured in %s (it configures '%s')", verb, vm,
		  (*out)->path, (*out)->vm);
	config_free(*out);
	*out = NULL;
	return EXIT_USAGE;
}
