// SPDX-License-Identifier: GPL-2.0-or-later
/* What the verbs share beyond the config parser: the --vm check, a bad option's line. */
#include <errno.h>
#include <stdarg.h>
#include <syslog.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "core/config.h"
#include "core/dl.h"
#include "core/modules.h"
#include "core/targets.h"
#include "agent/log.h"
#include "shared/macro.h"

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
			 i == 0	      ? ""
			 : i == n - 1 ? " or "
				      : ", ",
			 subs[i]);
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

int agent_load_config(const struct agent_ctx *ctx, bool must_exist, struct config **out)
{
	char err[512];
	int r;

	*out = NULL;
	r = config_load(ctx->config_path, out, err, sizeof(err));
	if (r == 0)
		return EXIT_OK;
	if (r == -ENOENT && !must_exist && !ctx->config_given)
		return EXIT_OK;
	if (err[0])
		log_error("%s", err);
	else if (r == -ENOENT)
		log_error(
			"cannot read %s: %s; write one from vfio-agent.conf.example or pass --config",
			ctx->config_path, strerror(-r));
	else
		log_error("cannot read %s: %s", ctx->config_path, strerror(-r));
	return EXIT_USAGE;
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

static void libvirt_quiet(void *opaque, virErrorPtr err)
{
	/* the verbs say what matters themselves; libvirt's own words go to debug */
	if (err && err->message)
		log_debug("libvirt: %s", err->message);
}

const char *agent_libvirt_uri(void)
{
	return getenv("LIBVIRT_DEFAULT_URI") ? NULL : "qemu:///system";
}

int agent_libvirt_setup(char *err, size_t errlen)
{
	int r;

	if ((r = dl_libvirt(err, errlen)) < 0)
		return r;
	sym_virSetErrorFunc(NULL, libvirt_quiet);
	return 0;
}

int agent_libvirt_open(bool readonly, virConnectPtr *conn, char *err, size_t errlen)
{
	virErrorPtr e;
	int r;

	if ((r = agent_libvirt_setup(err, errlen)) < 0)
		return r;
	*conn = readonly ? sym_virConnectOpenReadOnly(agent_libvirt_uri())
			 : sym_virConnectOpen(agent_libvirt_uri());
	if (*conn)
		return 0;
	e = sym_virGetLastError();
	snprintf(err, errlen, "%s", e && e->message ? e->message : "no connection");
	return -ECONNREFUSED;
}

int agent_target_opt(struct target_req *req, const char *verb, int opt, const char *arg)
{
	switch (opt) {
	case 'p':
		if (parse_pci(arg, req->pcis[req->n_pcis]) < 0) {
			log_error("%s: --pci '%s' is not a PCI address "
				  "(0000:03:00.0 or pci_0000_03_00_0)",
				  verb, arg);
			return -EINVAL;
		}
		req->n_pcis++;
		return 1;
	case 'd':
		req->drivers[req->n_drivers++] = arg;
		return 1;
	case 'D':
		req->devices[req->n_devices++] = arg;
		return 1;
	}
	return 0;
}

int agent_targets_setup(const struct agent_ctx *ctx, const char *verb, const char *vm, int argc,
			char **argv, const struct target_req *req, struct config **c,
			struct target_set *ts)
{
	int r;

	if (argc > 0) {
		log_error("%s: unexpected argument '%s'", verb, argv[0]);
		return EXIT_USAGE;
	}
	if ((r = agent_load_config_vm(ctx, verb, vm, vm != NULL, c)) != EXIT_OK)
		return r;
	return agent_targets_resolve(ctx, *c, req, ts);
}

int agent_targets_resolve(const struct agent_ctx *ctx, const struct config *c,
			  const struct target_req *req, struct target_set *ts)
{
	char err[640];
	int r = targets_resolve(ctx->root, c, req, agent_kmod_new(ctx), ts, err, sizeof(err));

	if (r < 0)
		log_error("%s", err);
	return r == -EINVAL ? EXIT_USAGE : r < 0 ? EXIT_FAILED : EXIT_OK;
}

static void kmod_log(void *data, int priority, const char *msg)
{
	if (priority <= LOG_ERR)
		log_warn("libkmod: %s", msg);
	else
		log_debug("libkmod: %s", msg);
}

struct kmod_ctx *agent_kmod_new(const struct agent_ctx *ctx)
{
	struct kmod_ctx *k;
	char err[320];
	int r;

	if ((r = modules_open(ctx->root, &k, kmod_log, NULL, err, sizeof(err))) < 0) {
		log_warn("%s", err);
		errno = -r;
		return NULL;
	}
	return k;
}
