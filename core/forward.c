// SPDX-License-Identifier: GPL-2.0-or-later
/* The forward's spec: the config and the interface's addresses, resolved for netfilter/. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/forward.h"
#include "netfilter/rtnl.h"

#define MAX_IF_ADDRS 64

void fwd_spec_free(struct fwd_spec *fs)
{
	if (!fs)
		return;
	free(fs->ports);
	free(fs->allow);
	memset(fs, 0, sizeof(*fs));
}

static void prefix_network(struct nf_prefix *p)
{
	unsigned int max = p->addr.family == AF_INET ? 32 : 128;

	for (unsigned int bit = p->plen; bit < max; bit++)
		p->addr.bytes[bit / 8] &= ~(0x80 >> (bit % 8));
}

int fwd_spec_resolve(const struct config *c, struct fwd_spec *fs, char *err, size_t errlen)
{
	const struct cfg_vnc *v = &c->vnc;
	struct nf_prefix addrs[MAX_IF_ADDRS];
	struct nf_forward_spec *s = &fs->spec;
	char a[INET6_ADDRSTRLEN];
	int ifindex, n;

	memset(fs, 0, sizeof(*fs));
	s->vm = c->vm;
	snprintf(s->ifname, sizeof(s->ifname), "%s", v->interface);
	s->masquerade = v->masquerade;
	s->exempt = v->exempt;

	ifindex = rtnl_link_index(v->interface);
	if (ifindex == -ENODEV) {
		snprintf(
			err, errlen,
			"interface %s does not exist; check [vnc] interface in %s (ip link lists them)",
			v->interface, c->path);
		return -ENODEV;
	}
	if (ifindex < 0) {
		snprintf(err, errlen, "cannot read the interfaces: %s", strerror(-ifindex));
		return ifindex;
	}
	n = rtnl_link_addrs(ifindex, AF_UNSPEC, addrs, MAX_IF_ADDRS);
	if (n < 0) {
		snprintf(err, errlen, "cannot read the addresses of %s: %s", v->interface,
			 strerror(-n));
		return n;
	}
	if (n > MAX_IF_ADDRS)
		n = MAX_IF_ADDRS;

	if (v->guest_auto) {
		snprintf(err, errlen, "guest.ip = auto: the guest's address is not known");
		return -EINVAL;
	}

	fs->allow = calloc(v->n_allow + NF_NFAM + 1, sizeof(*fs->allow));
	fs->ports = calloc(c->n_fwd + 1, sizeof(*fs->ports));
	if (!fs->allow || !fs->ports) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	size_t n_allow = 0;
	for (int fam = 0; fam < NF_NFAM; fam++) {
		struct nf_family *f = &s->fam[fam];
		int af = fam == NF_V4 ? AF_INET : AF_INET6;
		const struct nf_prefix *own = NULL;

		if (!v->guest[fam].family)
			continue;
		if (v->host_auto) {
			/* the interface's first address of this family */
			for (int i = 0; i < n && !own; i++)
				if (addrs[i].addr.family == af)
					own = &addrs[i];
			if (!own)
				continue;
			f->host = own->addr;
		} else if (v->host[fam].family) {
			f->host = v->host[fam];
			for (int i = 0; i < n && !own; i++)
				if (!memcmp(&addrs[i].addr, &f->host, sizeof(f->host)))
					own = &addrs[i];
		} else {
			continue;
		}
		f->guest = v->guest[fam];
		f->enabled = true;
		f->allow = &fs->allow[n_allow];
		for (size_t i = 0; i < v->n_allow; i++)
			if (v->allow[i].addr.family == af)
				fs->allow[n_allow + f->n_allow++] = v->allow[i];
		if (!f->n_allow) {
			/* default: the interface's subnet */
			if (!own) {
				snprintf(
					err, errlen,
					"host.ip %s is not an address of %s, so its subnet is unknown; "
					"set [vnc] allow in %s",
					nf_addr_str(&f->host, a, sizeof(a)), v->interface, c->path);
				return -EINVAL;
			}
			fs->allow[n_allow + f->n_allow] = *own;
			prefix_network(&fs->allow[n_allow + f->n_allow]);
			f->n_allow++;
		}
		n_allow += f->n_allow;
	}
	if (!s->fam[NF_V4].enabled && !s->fam[NF_V6].enabled) {
		if (v->host_auto)
			snprintf(err, errlen,
				 "%s has no address of the guest's family; set [vnc] host.ip in %s",
				 v->interface, c->path);
		else
			snprintf(err, errlen,
				 "[vnc] host.ip and guest.ip share no address family in %s",
				 c->path);
		return -EINVAL;
	}

	fs->ports[0] = (struct nf_port){ IPPROTO_TCP, v->host_port, v->guest_port };
	for (size_t i = 0; i < c->n_fwd; i++)
		fs->ports[i + 1] = (struct nf_port){ c->fwd[i].proto, c->fwd[i].host_port,
						     c->fwd[i].guest_port };
	s->ports = fs->ports;
	s->n_ports = c->n_fwd + 1;
	return 0;
}
