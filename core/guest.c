// SPDX-License-Identifier: GPL-2.0-or-later
/* The guest's address from libvirt and the neighbour table. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <time.h>

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/virterror.h>

#include "core/config.h"
#include "core/dl.h"
#include "core/domain.h"
#include "core/guest.h"
#include "shared/macro.h"
#include "netfilter/rtnl.h"

#define LEASE_DIR "/var/lib/libvirt/dnsmasq"

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

/* a lease of libvirt's dnsmasq (its <bridge>.status, a JSON array) for mac */
static bool lease_find(const char *file, const uint8_t mac[6], struct nf_addr *out)
{
	json_object *arr = json_object_from_file(file);
	time_t now = time(NULL);
	bool found = false;

	if (!arr || !json_object_is_type(arr, json_type_array)) {
		json_object_put(arr);
		return false;
	}
	for (size_t i = 0; i < json_object_array_length(arr) && !found; i++) {
		json_object *e = json_object_array_get_idx(arr, i), *m, *ip, *exp;
		uint8_t lm[6];

		if (!json_object_object_get_ex(e, "mac-address", &m) ||
		    !json_object_object_get_ex(e, "ip-address", &ip) ||
		    !json_object_is_type(m, json_type_string) ||
		    !json_object_is_type(ip, json_type_string) ||
		    parse_mac(json_object_get_string(m), lm) || memcmp(lm, mac, 6))
			continue;
		if (json_object_object_get_ex(e, "expiry-time", &exp) &&
		    json_object_get_int64(exp) < now)
			continue;
		found = parse_addr(json_object_get_string(ip), out);
	}
	json_object_put(arr);
	return found;
}

static bool leases_find(const char *root, const struct dom_iface *f, struct nf_addr *out,
			char *file, size_t len)
{
	char dir[2048];
	struct dirent *de;
	bool found = false;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s" LEASE_DIR, root);
	if (f->bridge[0]) {
		snprintf(file, len, "%s/%s.status", dir, f->bridge);
		return lease_find(file, f->mac, out);
	}
	if (!(d = opendir(dir)))
		return false;
	while (!found && (de = readdir(d))) {
		size_t l = strlen(de->d_name);

		if (l < 8 || strcmp(de->d_name + l - 7, ".status"))
			continue;
		snprintf(file, len, "%s/%s", dir, de->d_name);
		found = lease_find(file, f->mac, out);
	}
	closedir(d);
	return found;
}

int guest_addr_from_host(const char *root, const struct domain *dom, struct nf_addr *out, char *src,
			 size_t srclen)
{
	for (size_t i = 0; i < dom->n_ifaces; i++) {
		if (rtnl_neigh_by_mac(dom->ifaces[i].mac, AF_INET, out, 1) > 0) {
			snprintf(src, srclen, "neighbour table");
			return 0;
		}
		if (leases_find(root, &dom->ifaces[i], out, src, srclen))
			return 0;
	}
	return -ENOENT;
}
