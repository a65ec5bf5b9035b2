// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * diagnose's setup checks: the host's and the hook's (core/setup.c) when a
 * config is there, and with --vm the domain as libvirt has it, read over
 * its API (never in the hook, where calling libvirt back would deadlock).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/log.h"
#include "core/checks.h"
#include "core/config.h"
#include "core/dl.h"
#include "core/domain.h"
#include "core/setup.h"

/* the domain list and the config's domain's XML: a finding when libvirt cannot say */
static int vm_checks(const struct agent_ctx *ctx, const struct config *c,
		     const struct target_set *ts, struct findings *out)
{
	virConnectPtr conn = NULL;
	virDomainPtr *doms = NULL, dom = NULL;
	const char **names = NULL;
	struct domain d = { 0 };
	char err[512], *xml = NULL;
	int n, r;

	if (agent_libvirt_open(true, &conn, err, sizeof(err)) < 0)
		return findings_add(out, "libvirt", LEVEL_FAIL, true,
				    "start libvirtd (or virtqemud), or set LIBVIRT_DEFAULT_URI",
				    "cannot connect to %s: %s",
				    agent_libvirt_uri() ? agent_libvirt_uri()
							: getenv("LIBVIRT_DEFAULT_URI"),
				    err);
	if ((n = sym_virConnectListAllDomains(conn, &doms, 0)) < 0) {
		r = findings_add(out, "libvirt", LEVEL_FAIL, true, NULL, "cannot list the domains");
		goto out;
	}
	if (!(names = calloc((size_t)n + 1, sizeof(*names)))) {
		r = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < n; i++) {
		names[i] = sym_virDomainGetName(doms[i]);
		if (names[i] && !strcmp(names[i], c->vm))
			dom = doms[i];
	}
	if ((r = setup_vm_name_check(c, names, (size_t)n, out)) || !dom)
		goto out;
	/* the defined XML: what the next start uses, not what a running guest got */
	if (!(xml = sym_virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE))) {
		r = findings_add(out, "domain XML", LEVEL_FAIL, true, NULL,
				 "libvirt gives no XML for %s", c->vm);
		goto out;
	}
	if ((r = domain_parse(xml, strlen(xml), &d, err, sizeof(err))) < 0) {
		r = r == -ENOMEM
			    ? r
			    : findings_add(out, "domain XML", LEVEL_FAIL, true, NULL, "%s", err);
		goto out;
	}
	r = setup_domain_checks(ctx->root, c, ts, &d, out);
out:
	domain_free(&d);
	free(xml);
	free(names);
	for (int i = 0; doms && i < n; i++)
		sym_virDomainFree(doms[i]);
	free(doms);
	if (conn)
		sym_virConnectClose(conn);
	return r;
}

int agent_setup_checks(const struct agent_ctx *ctx, const struct config *c, const char *vm,
		       const struct target_set *ts, struct findings *out)
{
	int r;

	if (!c)
		return 0; /* the holder scan of a device, a driver: no setup to check */
	if ((r = setup_host_checks(ctx->root, c, ts, out)) ||
	    (r = setup_hook_checks(ctx->root, out)))
		return r;
	return vm ? vm_checks(ctx, c, ts, out) : 0;
}
