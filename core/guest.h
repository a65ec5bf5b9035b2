/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * guest.ip = auto outside the hook: the running domain's address, asked of
 * libvirt (never from inside the hook, which must not call libvirt).
 */
#ifndef VFIO_AGENT_GUEST_H
#define VFIO_AGENT_GUEST_H

#include <stdbool.h>
#include <stddef.h>

#include <libvirt/libvirt.h>

#include "netfilter/nft.h"

/*
 * libvirt's DHCP lease, then libvirt's ARP view, then the guest agent (when
 * its channel is connected), then the host's neighbour table by the
 * domain's MACs. true with src naming the source when found.
 */
bool guest_addr_find(virDomainPtr dom, struct nf_addr *out, char *src, size_t srclen);

/*
 * For the forward verb: fill c's guest address from the running domain.
 * An exit code, with the one error line logged.
 */
/*
 * The address of running domain vm, and where it came from: 0, -ESRCH when
 * the domain is not running, -ENOENT when its address is not known yet.
 */
int guest_addr_lookup(virConnectPtr conn, const char *vm, struct nf_addr *out, char *src,
		      size_t srclen);

struct domain;

/*
 * The hook's way, which may not ask libvirt: the host's neighbour table
 * first (it is current), then libvirt's dnsmasq leases under root. 0 with
 * src naming where it came from (the lease file), or -ENOENT.
 */
int guest_addr_from_host(const char *root, const struct domain *dom, struct nf_addr *out, char *src,
			 size_t srclen);

#endif
