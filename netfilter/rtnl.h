/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the forward needs from rtnetlink: an interface and its addresses. */
#ifndef VFIO_NETFILTER_RTNL_H
#define VFIO_NETFILTER_RTNL_H

#include <stddef.h>
#include <stdint.h>

#include "netfilter/nft.h"

/* The interface's index, or -ENODEV. */
int rtnl_link_index(const char *ifname);

/*
 * The interface's global addresses with their prefix lengths, of family
 * AF_INET, AF_INET6 or AF_UNSPEC for both. Returns how many there are (up
 * to max are stored) or -errno.
 */
int rtnl_link_addrs(int ifindex, int family, struct nf_prefix *out, size_t max);

/*
 * The neighbour table's addresses for a MAC (a guest's, learned from its
 * ARP or NDP traffic), of family AF_INET, AF_INET6 or AF_UNSPEC; resolved
 * entries only, no link-local. How many there are, or -errno.
 */
int rtnl_neigh_by_mac(const uint8_t mac[6], int family, struct nf_addr *out, size_t max);

#endif
