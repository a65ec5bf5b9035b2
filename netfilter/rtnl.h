/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the forward needs from rtnetlink: an interface and its addresses. */
#ifndef VFIO_NETFILTER_RTNL_H
#define VFIO_NETFILTER_RTNL_H

#include <stddef.h>
#include <stdint.h>

#include <libmnl/libmnl.h>

#include "netfilter/nft.h"

/* The interface's index, or -ENODEV. */
int rtnl_link_index(const char *ifname);

/*
 * The interface's global addresses with their prefix lengths, of family
 * AF_INET, AF_INET6 or AF_UNSPEC for both; ifindex 0: every interface's.
 * Returns how many there are (up to max are stored) or -errno.
 */
int rtnl_link_addrs(int ifindex, int family, struct nf_prefix *out, size_t max);

/*
 * The neighbour table's addresses for a MAC (a guest's, learned from its
 * ARP or NDP traffic), of family AF_INET, AF_INET6 or AF_UNSPEC; resolved
 * entries only, no link-local. How many there are, or -errno.
 */
int rtnl_neigh_by_mac(const uint8_t mac[6], int family, struct nf_addr *out, size_t max);

/* A BPF program on an interface's receive path, by id; where: "xdp (driver)", "tc ingress". */
struct rtnl_bpf {
	uint32_t id;
	char where[24];
};

/*
 * The XDP programs on ifindex (IFLA_XDP) and the tc BPF filters on its
 * clsact ingress (a filter dump). How many there are (up to max stored), or
 * -errno.
 */
int rtnl_bpf_progs(int ifindex, struct rtnl_bpf *out, size_t max);

/* One dump request, HDR (HLEN bytes) after the netlink header, on protocol PROTO. */
int nl_dump(int proto, uint16_t type, const void *hdr, size_t hlen, mnl_cb_t cb, void *data);

#endif
