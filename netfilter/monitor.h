/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Netlink event sockets for the daemon: rtnetlink (links, addresses,
 * neighbours) and the nftables monitor. Non-blocking; a read drains what is
 * queued and hands each event to a callback. Nothing here logs.
 */
#ifndef VFIO_NETFILTER_MONITOR_H
#define VFIO_NETFILTER_MONITOR_H

#include <stdbool.h>
#include <stdint.h>

#include "netfilter/nft.h"

enum nl_mon_kind { NL_MON_RTNL, NL_MON_NFT };

enum nl_event_type {
	NL_EV_LINK,  /* an interface appeared, changed or went away */
	NL_EV_ADDR,  /* an address was added or removed */
	NL_EV_NEIGH, /* a neighbour entry changed */
	NL_EV_NFT,   /* the nftables ruleset changed */
};

struct nl_event {
	enum nl_event_type type;
	bool removed;	     /* RTM_DEL*, NFT_MSG_DEL* */
	int ifindex;	     /* link, address, neighbour */
	char ifname[16];     /* link */
	bool up;	     /* link: IFF_UP */
	struct nf_addr addr; /* address, neighbour */
	uint8_t mac[6];	     /* neighbour, when it has one */
	bool has_mac;
	uint32_t portid;  /* nft: the netlink port that made the change (0: the kernel) */
	uint16_t nft_msg; /* nft: NFT_MSG_* */
	char table[64];	  /* nft: the table the change is in ("" when not said) */
};

struct nl_monitor;

int nl_monitor_open(enum nl_mon_kind kind, struct nl_monitor **out);
void nl_monitor_close(struct nl_monitor *m);
int nl_monitor_fd(const struct nl_monitor *m);

/*
 * Read every queued message, calling cb for each event. Returns how many
 * events there were, -ENOBUFS when the kernel dropped some (the caller
 * must resync), or -errno.
 */
typedef void (*nl_event_cb)(const struct nl_event *ev, void *data);
int nl_monitor_read(struct nl_monitor *m, nl_event_cb cb, void *data);

#endif
