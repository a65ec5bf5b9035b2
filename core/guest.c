// SPDX-License-Identifier: GPL-2.0-or-later
/* The guest's address from libvirt and the neighbour table. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/virterror.h>

#include "core/config.h"
#include "core/dl.h"
#include "core/domain.h"
#include "core/guest.h"
#include "shared/macro.h"
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

int guest_addr_lookup(virConnectPtr conn, const char *vm, struct nf_addr *out, char *src,
		      size_t srclen)
{
	virDomainPtr dom = sym_virDomainLookupByName(conn, vm);
	int r = 0;

	if (!dom || sym_virDomainIsActive(dom) != 1)
		r = -ESRCH;
	else if (!guest_addr_find(dom, out, src, srclen))
		r = -ENOENT;
	if (dom)
		sym_virDomainFree(dom);
	return r;
}
