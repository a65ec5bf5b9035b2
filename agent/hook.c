// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libvirt's qemu hook: vfio-agent hook DOMAIN OP SUBOP [EXTRA], the domain
 * XML on stdin. libvirt's rules (docs/hooks.rst): never call back into
 * libvirt from here (it would deadlock), and stdout is an XML filter for
 * some operations, so nothing is ever written to it.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "agent/agent.h"
#include "core/config.h"
#include "core/domain.h"
#include "core/guest.h"
#include "agent/forward.h"
#include "agent/handoff.h"
#include "core/state.h"
#include "core/journal.h"
#include "core/setup.h"
#include "shared/escape.h"
#include "agent/log.h"
#include "shared/macro.h"
#include "netfilter/nft.h"
#include "netfilter/rtnl.h"

enum hook_job { JOB_NONE, JOB_PREPARE, JOB_FORWARD_UP, JOB_FORWARD_DOWN, JOB_RELEASE, JOB_REPAIR };

static const struct {
	const char *op, *subop;
	enum hook_job job;
} hook_ops[] = {
	{ "prepare", "begin", JOB_PREPARE },	{ "started", "begin", JOB_FORWARD_UP },
	{ "stopped", "end", JOB_FORWARD_DOWN }, { "release", "end", JOB_RELEASE },
	{ "reconnect", "begin", JOB_REPAIR },
};

/*
 * All of stdin, always: libvirt writes the whole document whether or not
 * we want it. Past twice DOMAIN_XML_MAX it is still read but not kept:
 * *len is then the whole length, which domain_parse refuses before it
 * reads the buffer.
 */
static char *drain_stdin(size_t *len)
{
	size_t cap = 65536, used = 0, total = 0;
	char *buf = malloc(cap), sink[65536];
	ssize_t n;

	if (!buf)
		return NULL;
	for (;;) {
		if (used == cap && cap <= DOMAIN_XML_MAX) {
			char *p = realloc(buf, cap * 2);

			if (!p) {
				free(buf);
				return NULL;
			}
			buf = p;
			cap *= 2;
		}
		if (used < cap)
			n = read(STDIN_FILENO, buf + used, cap - used);
		else
			n = read(STDIN_FILENO, sink, sizeof(sink));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (used < cap)
			used += n;
		total += n;
	}
	*len = total;
	return buf;
}

/*
 * release's domain, for its PCI hostdevs (the devices a journal may name
 * when pcis is empty): best effort, since nothing may stop the desktop
 * from coming back; NULL when the XML is missing or does not parse.
 */
static const struct domain *release_domain(const char *xml, size_t len, struct domain *dom,
					   bool *have)
{
	char err[256];

	if (!*have && xml && domain_parse(xml, len, dom, err, sizeof(err)) == 0)
		*have = true;
	return *have ? dom : NULL;
}

/* guest.ip = auto is filled in here, when the guest's address is known */
static int hook_forward_up(const struct agent_ctx *ctx, struct config *c, const struct domain *dom)
{
	if (c->vnc.guest_auto) {
		char src[4096], a[INET6_ADDRSTRLEN];
		struct nf_addr ip;

		if (!dom || guest_addr_from_host(ctx->root, dom, &ip, src, sizeof(src)) < 0) {
			/* the guest has not talked yet: the daemon follows its address */
			log_info(
				"forward %s: the guest's address is not known yet; the daemon sets up "
				"the forward once it is",
				c->vm);
			return EXIT_OK;
		}
		log_info("guest %s is %s (%s)", dom->name, nf_addr_str(&ip, a, sizeof(a)), src);
		c->vnc.guest[ip.family == AF_INET ? NF_V4 : NF_V6] = ip;
		c->vnc.guest_auto = false;
	}
	/* the hook does not judge the path: a VM must start even when the forward cannot work */
	return forward_up(c, ctx->root, false);
}

/* another domain: nothing to do, but a name that differs only in case is a mistake */
static void hook_not_ours(const struct config *c, const char *name, char **argv)
{
	char vm[256];

	if (!c) {
		log_debug("hook %s %s: no config: nothing to do", name, argv[2]);
		return;
	}
	escape_text(c->vm, vm, sizeof(vm));
	if (!strcasecmp(c->vm, argv[1]))
		log_warn("hook %s %s: nothing done: the config's vm is '%s', which differs from "
			 "the domain '%s' only in case (libvirt's names are case-sensitive)",
			 name, argv[2], vm, name);
	else
		log_debug("hook %s %s: not the config's vm (%s): nothing to do", name, argv[2], vm);
}

/* passthrough off: say so, and loudly when the domain has the GPU all the same */
static void hook_no_passthrough(const struct agent_ctx *ctx, const char *name,
				const struct domain *dom)
{
	if (domain_has_display(ctx->root, dom))
		log_warn("prepare %s: passthrough = false (the default): the GPU stays with the "
			 "host, although the domain has it as a hostdev; set passthrough = true",
			 name);
	else
		log_info("prepare %s: passthrough = false: nothing to hand over", name);
}

static const char hook_usage[] =
	"Usage: vfio-agent hook DOMAIN OP SUBOP [EXTRA]   (the domain XML on stdin)\n"
	"\n"
	"libvirt's qemu hook, installed as /etc/libvirt/hooks/qemu.d/vfio-agent. For\n"
	"the config's VM: prepare begin hands the GPU over (passthrough = true),\n"
	"started begin sets up the forward, stopped end removes it, release end\n"
	"takes the GPU back, reconnect begin repairs the forward. Anything else:\n"
	"nothing, exit 0. Logs to syslog one line for each of these it acts on, and a\n"
	"warning when it does nothing for the config's VM (passthrough = false, the\n"
	"default, while the domain has the GPU; [vnc] not enabled) or for a domain\n"
	"whose name differs from vm only in case. Errors go to stderr too, which\n"
	"libvirt shows in the error of virsh start; with -v every line does. Never\n"
	"writes to stdout.\n";

int hook_main(struct agent_ctx *ctx, int argc, char **argv)
{
	_cleanup_free_ char *xml = NULL;
	struct config *c = NULL;
	struct domain dom = { 0 };
	enum hook_job job = JOB_NONE;
	bool have_dom = false;
	size_t len = 0;
	char err[768], name[256];
	int ret, lock = -1;

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(hook_usage, stdout);
		return EXIT_OK;
	}
	log_setup(LOG_TO_HOOK, ctx->verbosity);
	xml = drain_stdin(&len);
	if (argc < 4 || argc > 5) {
		log_error("hook: expected DOMAIN OP SUBOP [EXTRA], as libvirt calls it "
			  "(installed as /etc/libvirt/hooks/qemu.d/vfio-agent)");
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < ARRAY_SIZE(hook_ops); i++)
		if (!strcmp(argv[2], hook_ops[i].op) && !strcmp(argv[3], hook_ops[i].subop))
			job = hook_ops[i].job;
	if (job == JOB_NONE)
		return EXIT_OK;

	if ((ret = agent_load_config(ctx, false, &c)) != EXIT_OK)
		return ret;
	/*
	 * Not our guest: libvirt's other domains are none of our business --
	 * unless a journal of ours names it (the config changed while it ran).
	 */
	escape_text(argv[1], name, sizeof(name));
	if (!c || strcmp(c->vm, argv[1])) {
		char jpath[4096];

		if (job != JOB_RELEASE || journal_path(ctx->root, argv[1], jpath, sizeof(jpath)) ||
		    access(jpath, F_OK)) {
			hook_not_ours(c, name, argv);
			ret = EXIT_OK;
			goto out;
		}
		if (state_lock(ctx->root, true, &lock, err, sizeof(err)) < 0) {
			log_error("hook %s %s: %s", argv[1], argv[2], err);
			ret = EXIT_FAILED;
		} else if ((ret = agent_handoff_release(
				    ctx, argv[1], NULL, release_domain(xml, len, &dom, &have_dom),
				    HANDOFF_RUN, err, sizeof(err))) != EXIT_OK) {
			log_error("release %s: %s", argv[1], err);
		}
		goto out;
	}
	if (job == JOB_PREPARE || job == JOB_FORWARD_UP || job == JOB_REPAIR) {
		if (!xml) {
			log_error("hook %s %s: out of memory reading the domain XML", argv[1],
				  argv[2]);
			ret = EXIT_FAILED;
			goto out;
		}
		if (domain_parse(xml, len, &dom, err, sizeof(err)) < 0) {
			log_error("hook %s %s: %s", argv[1], argv[2], err);
			ret = EXIT_FAILED;
			goto out;
		}
		have_dom = true;
		if (strcmp(dom.name, argv[1])) {
			log_error("hook %s %s: the domain XML on stdin is for '%s'", argv[1],
				  argv[2], dom.name);
			ret = EXIT_FAILED;
			goto out;
		}
	}
	if (state_lock(ctx->root, true, &lock, err, sizeof(err)) < 0) {
		log_error("hook %s %s: %s", argv[1], argv[2], err);
		ret = EXIT_FAILED;
		goto out;
	}
	switch (job) {
	case JOB_PREPARE:
		if (!c->passthrough) {
			hook_no_passthrough(ctx, name, &dom);
			break;
		}
		log_info("prepare %s: handing the GPU over to vfio-pci (passthrough = true)", name);
		ret = agent_handoff_prepare(ctx, c, &dom, HANDOFF_RUN, err, sizeof(err));
		if (ret != EXIT_OK && err[0])
			log_error("prepare %s: %s", c->vm, err);
		break;
	case JOB_FORWARD_UP:
	case JOB_REPAIR:
		if (!c->vnc.enable) {
			log_warn("%s %s: [vnc] enable is not true: no VNC forward is set up",
				 argv[2], name);
			break;
		}
		log_info("%s %s: setting up the VNC forward", argv[2], name);
		ret = hook_forward_up(ctx, c, have_dom ? &dom : NULL);
		break;
	case JOB_FORWARD_DOWN:
		log_info("stopped %s: removing the VNC forward, if there is one", name);
		ret = forward_down();
		break;
	case JOB_RELEASE:
		log_info("release %s: giving back what its journal says was handed over", name);
		/* after a failed start too (EXTRA "failed"): the journal says what changed */
		ret = agent_handoff_release(ctx, c->vm, c,
					    release_domain(xml, len, &dom, &have_dom), HANDOFF_RUN,
					    err, sizeof(err));
		if (ret != EXIT_OK)
			log_error("release %s: %s", c->vm, err);
		break;
	case JOB_NONE:
		break;
	}
out:
	if (lock >= 0)
		close(lock);
	domain_free(&dom);
	config_free(c);
	return ret;
}
