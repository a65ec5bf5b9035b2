/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Netlink event sockets for the daemon: rtnetlink (links, addresses,
 * neighbours, netconf) and the nftables monitor. Non-blocking; a read drains what is
 * queued and hands each event to a callback. Nothing here logs.
 */
#ifndef VFIO_NETFILTER_MONITOR_H
#define VFIO_NETFILTER_MONITOR_H

#include <stdbool.h>
#include <stdint.h>

#include "netfilter/nft.h"

enum nl_mon_kind { NL_MON_RTNL, NL_MON_NFT };

enum nl_event_type {
	NL_EV_LINK,    /* an interface appeared, changed or went away */
	NL_EV_ADDR,    /* an address was added or removed */
	NL_EV_NEIGH,   /* a neighbour entry changed */
	NL_EV_NFT,     /* the nftables ruleset changed */
	NL_EV_NETCONF, /* a device's or the whole family's IP settings (forwarding) changed */
};

struct nl_event {
	enum nl_event_type type;
	bool removed;	     /* RTM_DEL*, NFT_MSG_DEL* */
	int ifindex;	     /* link, address, neighbour; netconf: NETCONFA_IFINDEX_ALL too */
	char ifname[16];     /* link */
	bool up;	     /* link: IFF_UP */
	struct nf_addr addr; /* address, neighbour */
	uint8_t mac[6];	     /* neighbour, when it has one */
	bool has_mac;
	uint8_t family;	  /* netconf: AF_INET or AF_INET6 */
	int forwarding;	  /* netconf: NETCONFA_FORWARDING, -1 when the message does not say */
	uint32_t portid;  /* nft: the netlink port that made the change (0: the kernel) */
	uint16_t nft_msg; /* nft: NFT_MSG_* */
	uint8_t nfproto;  /* nft: the family of the table (NFPROTO_*) */
	char table[64];	  /* nft: the table the change is in ("" when not said) */
	char chain[64];	  /* nft: chains and rules: the chain ("" otherwise) */
	int hook;	  /* nft: a base chain's hook number; -1: not a base chain, or not said */
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

/*
 * The nftables monitor lets every table's rules through until this says
 * which chains to follow: then only the rules of our table and of these
 * chains come up (the kernel drops the rest before it wakes the reader). A
 * NULL chain follows its whole table; rules NULL follows everything again.
 * Families are not told apart: a name followed in one is followed in all.
 */
struct nl_follow {
	const char *table, *chain;
};
int nl_monitor_follow(struct nl_monitor *m, const struct nl_follow *rules, size_t n);

/*
 * Which nftables events concern the forward: our table; the foreign chains
 * that carry our exemption (nf_foreign_chains[]) and their tables; any
 * table's base chains on the hooks a forwarded flow passes (ingress,
 * prerouting, forward, postrouting; netdev ingress), and their rules; an
 * event that names no table. Sets, elements and objects of other tables, and
 * their regular chains, do not. Rules name their chain but not its hook, so
 * the watch keeps the base chains it knows: one dump at nf_watch_new and
 * after a lost event (nf_watch_resync), then the chain events themselves.
 */
struct nf_sock;
struct nf_err;
struct nf_watch;

/* s NULL: start knowing no base chain (tests) */
int nf_watch_new(struct nf_sock *s, struct nf_watch **out, struct nf_err *err);
int nf_watch_resync(struct nf_watch *w, struct nf_sock *s, struct nf_err *err);
void nf_watch_free(struct nf_watch *w);
/* Does ev concern the forward? Chain events also update what w knows. */
bool nf_watch_concerns(struct nf_watch *w, const struct nl_event *ev);
/*
 * Narrow m to the chains whose rules can concern the forward (the base
 * chains on the path, and the foreign chains), when they changed since the
 * last call. Call it after each read, before acting on what was
 * read: a rule the filter dropped before it heard of a new base chain was
 * made before that, and the next read-back sees it.
 */
int nf_watch_follow(struct nf_watch *w, struct nl_monitor *m);
/*
 * Learn again which chains the base chains jump or go to (directly or by a
 * verdict map, as the path's judge follows them): their rules concern the
 * forward too. Call it after a read that concerned it, before
 * nf_watch_follow. 0, or -errno (what it knew is kept).
 */
int nf_watch_reach(struct nf_watch *w, struct nf_sock *s, struct nf_err *err);
/* The hooks a forwarded flow passes, in nfproto's numbering. */
bool nf_hook_on_path(uint8_t nfproto, int hook);

#endif
