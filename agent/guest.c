// SPDX-License-Identifier: GPL-2.0-or-later
/* The guest's address from libvirt and the neighbour table. */
#include <stdlib.h>
#include <string.h>

#include <libvirt/virterror.h>

#include "agent/config.h"
#include "agent/dl.h"
#include "agent/domain.h"
#include "agent/guest.h"
#include "agent/log.h"
#include "agent/macro.h"
#include "netfilter/rtnl.h"

static bool from_libvirt(virDomainPtr dom, unsigned int source, struct nf_addr *out)
{
	virDomainInterfacePtr *ifs = NULL;
	int n = sym_virDomainInterfaceAddresses(dom, &ifs, source, 0);
	bool found = false;

	for (int i = 0; i < n; i++) {
		for (unsigned int j = 0; j < ifs[i]->naddrs && !found; j++)
			if (ifs[i]->addrs[j].type == VIR_IP_ADDR_TYPE_IPV4 &&
			    parse_addr(ifs[i]->addrs[j].addr, out))
				found = true;
		sym_virDomainInterfaceFree(ifs[i]);
	}
	free(ifs);
	return found;
}

bool guest_addr_find(virDomainPtr dom, struct nf_addr *out, char *src, size_t srclen)
{
	static const struct {
		unsigned int source;
		const char *name;
	} sources[] = {
		{ VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, "DHCP lease" },
		{ VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP, "libvirt's ARP table" },
	};
	struct domain parsed = { 0 };
	char err[256], *xml;
	bool found = false;

	for (size_t s = 0; s < ARRAY_SIZE(sources) && !found; s++)
		if ((found = from_libvirt(dom, sources[s].source, out)))
			snprintf(src, srclen, "%s", sources[s].name);
	if (found)
		return true;
	xml = sym_virDomainGetXMLDesc(dom, 0);
	if (!xml || domain_parse(xml, strlen(xml), &parsed, err, sizeof(err)) < 0) {
		free(xml);
		return false;
	}
	/*
	 * The guest agent answers only when it runs: asked only when libvirt
	 * says its channel is connected, so an absent agent never blocks the
	 * daemon's loop for libvirt's agent timeout.
	 */
	if (parsed.agent_connected &&
	    (found = from_libvirt(dom, VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT, out)))
		snprintf(src, srclen, "guest agent");
	for (size_t i = 0; i < parsed.n_ifaces && !found; i++)
		if (rtnl_neigh_by_mac(parsed.ifaces[i].mac, AF_INET, out, 1) > 0) {
			found = true;
			snprintf(src, srclen, "neighbour table");
		}
	domain_free(&parsed);
	free(xml);
	return found;
}

static void quiet(void *opaque, virErrorPtr err)
{
	if (err && err->message)
		log_debug("libvirt: %s", err->message);
}

int guest_addr_fill(struct config *c)
{
	const char *uri = getenv("LIBVIRT_DEFAULT_URI") ? NULL : "qemu:///system";
	virConnectPtr conn;
	virDomainPtr dom = NULL;
	struct nf_addr ip;
	char src[64], a[64], err[320];
	int ret = EXIT_FAILED;

	if (dl_libvirt(err, sizeof(err)) < 0) {
		log_error("guest.ip = auto: %s", err);
		return EXIT_FAILED;
	}
	sym_virSetErrorFunc(NULL, quiet);
	conn = sym_virConnectOpenReadOnly(uri);
	if (!conn) {
		virErrorPtr e = sym_virGetLastError();

		log_error("guest.ip = auto: cannot ask libvirt for %s's address: %s", c->vm,
			  e && e->message ? e->message : "no connection");
		return EXIT_FAILED;
	}
	dom = sym_virDomainLookupByName(conn, c->vm);
	if (!dom || sym_virDomainIsActive(dom) != 1)
		log_error("guest.ip = auto: domain %s is not running, so it has no address", c->vm);
	else if (!guest_addr_find(dom, &ip, src, sizeof(src)))
		log_error("guest.ip = auto: %s's address is not known yet (no DHCP lease, no ARP or "
			  "neighbour entry for its MAC)", c->vm);
	else {
		log_debug("guest %s is %s (%s)", c->vm, nf_addr_str(&ip, a, sizeof(a)), src);
		c->vnc.guest[ip.family == AF_INET ? NF_V4 : NF_V6] = ip;
		c->vnc.guest_auto = false;
		ret = EXIT_OK;
	}
	if (dom)
		sym_virDomainFree(dom);
	sym_virConnectClose(conn);
	return ret;
}
