// SPDX-License-Identifier: GPL-2.0-or-later
/* rtnetlink and nftables event sockets. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/netconf.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>

#include "netfilter/monitor.h"
#include "shared/macro.h"

struct nl_monitor {
	struct mnl_socket *nl;
	enum nl_mon_kind kind;
	char *buf;
};

/* a queue that holds a flush of a large ruleset without overflowing */
#define MON_RCVBUF (4 << 20)

/*
 * A classic BPF filter on the nftables monitor, as udev puts one on its
 * uevent socket: what can never concern the forward is dropped in the
 * kernel, before it wakes the daemon. That is NFT_MSG_NEWGEN, which the
 * kernel sends alone after every transaction, and the elements of another
 * table's set: an skb that holds one NEWSETELEM or DELSETELEM message only
 * (the kernel coalesces a transaction's notifications; one with more in it
 * always goes up) whose first attribute, NFTA_SET_ELEM_LIST_TABLE, as
 * nf_tables_fill_setelem_info() writes it first, is not our table's name.
 * Netlink is host-endian and BPF loads are big-endian: bytes one by one.
 */
static int nft_filter(struct mnl_socket *nl)
{
	const bool le = htons(1) != 1;
	/* offset of the i-th least significant byte of the u32 at off (host order) */
#define B(off, i) ((off) + (le ? (i) : 3 - (i)))
	/* the table's name as four big-endian words: "vfio", "_age", "nt\0" and padding */
	char name[12] = NF_TABLE_NAME;
	uint32_t w[3];
	struct sock_filter f[] = {
		/* 0: A = the message type (its low byte; the subsystem is NFTABLES) */
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, le ? 4 : 5),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NFT_MSG_NEWGEN, 25, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NFT_MSG_NEWSETELEM, 1, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NFT_MSG_DELSETELEM, 0, 22),
		/* 4: X = nlmsg_len */
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, B(0, 3)),
		BPF_STMT(BPF_ALU | BPF_LSH | BPF_K, 24), BPF_STMT(BPF_MISC | BPF_TAX, 0),
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, B(0, 2)),
		BPF_STMT(BPF_ALU | BPF_LSH | BPF_K, 16), BPF_STMT(BPF_ALU | BPF_OR | BPF_X, 0),
		BPF_STMT(BPF_MISC | BPF_TAX, 0), BPF_STMT(BPF_LD | BPF_B | BPF_ABS, B(0, 1)),
		BPF_STMT(BPF_ALU | BPF_LSH | BPF_K, 8), BPF_STMT(BPF_ALU | BPF_OR | BPF_X, 0),
		BPF_STMT(BPF_MISC | BPF_TAX, 0), BPF_STMT(BPF_LD | BPF_B | BPF_ABS, B(0, 0)),
		BPF_STMT(BPF_ALU | BPF_OR | BPF_X, 0), BPF_STMT(BPF_MISC | BPF_TAX, 0),
		/* 18: one message only, else up it goes */
		BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0), BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_X, 0, 0, 6),
		/* 20: its table's name, after the nfgenmsg and the attribute's header */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 24),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 5), /* 21: w[0] */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 28),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3), /* 23: w[1] */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 32),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1), /* 25: w[2] */
		BPF_STMT(BPF_RET | BPF_K, 0xffffffff),	      /* 26: up */
		BPF_STMT(BPF_RET | BPF_K, 0),		      /* 27: dropped */
	};
#undef B
	struct sock_fprog prog = { ARRAY_SIZE(f), f };

	_Static_assert(sizeof(NF_TABLE_NAME) <= 12, "the filter compares three words");
	memcpy(w, name, sizeof(w));
	f[21].k = ntohl(w[0]);
	f[23].k = ntohl(w[1]);
	/* "nt\0" and the attribute's padding, which the kernel zeroes */
	f[25].k = ntohl(w[2]);
	return setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_ATTACH_FILTER, &prog,
			  sizeof(prog)) < 0
		       ? -errno
		       : 0;
}

int nl_monitor_open(enum nl_mon_kind kind, struct nl_monitor **out)
{
	int proto = kind == NL_MON_RTNL ? NETLINK_ROUTE : NETLINK_NETFILTER;
	struct nl_monitor *m = calloc(1, sizeof(*m));
	int size = MON_RCVBUF, r;
	/* netconf: the kernel says when forwarding is turned on or off */
	unsigned int groups[] = { RTNLGRP_LINK,	 RTNLGRP_IPV4_IFADDR,  RTNLGRP_IPV6_IFADDR,
				  RTNLGRP_NEIGH, RTNLGRP_IPV4_NETCONF, RTNLGRP_IPV6_NETCONF };

	if (!m)
		return -ENOMEM;
	m->kind = kind;
	m->buf = malloc(MNL_SOCKET_BUFFER_SIZE);
	m->nl = mnl_socket_open2(proto, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (!m->buf || !m->nl) {
		r = m->buf ? -errno : -ENOMEM;
		goto err;
	}
	if (mnl_socket_bind(m->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		goto err;
	}
	/* SO_RCVBUFFORCE needs CAP_NET_ADMIN, which the forward needs anyway */
	if (setsockopt(mnl_socket_get_fd(m->nl), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)))
		setsockopt(mnl_socket_get_fd(m->nl), SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (kind == NL_MON_NFT) {
		unsigned int g = NFNLGRP_NFTABLES;

		if (mnl_socket_setsockopt(m->nl, NETLINK_ADD_MEMBERSHIP, &g, sizeof(g)) < 0) {
			r = -errno;
			goto err;
		}
		/* a kernel without socket filters still works: the daemon filters again */
		nft_filter(m->nl);
	} else {
		for (size_t i = 0; i < sizeof(groups) / sizeof(*groups); i++)
			if (mnl_socket_setsockopt(m->nl, NETLINK_ADD_MEMBERSHIP, &groups[i],
						  sizeof(groups[i])) < 0) {
				r = -errno;
				goto err;
			}
	}
	*out = m;
	return 0;
err:
	nl_monitor_close(m);
	return r;
}

void nl_monitor_close(struct nl_monitor *m)
{
	if (!m)
		return;
	if (m->nl)
		mnl_socket_close(m->nl);
	free(m->buf);
	free(m);
}

int nl_monitor_fd(const struct nl_monitor *m)
{
	return mnl_socket_get_fd(m->nl);
}

struct parse {
	nl_event_cb cb;
	void *data;
	int n;
};

static int attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	uint16_t type = mnl_attr_get_type(a);

	/* every table below is sized for the largest of IFLA/IFA/NDA/NETCONFA */
	if (type <= IFLA_MAX)
		tb[type] = a;
	return MNL_CB_OK;
}

static void addr_from(struct nf_addr *out, uint8_t family, const struct nlattr *a)
{
	size_t len = family == AF_INET ? 4 : 16;

	memset(out, 0, sizeof(*out));
	if (!a || (family != AF_INET && family != AF_INET6) || mnl_attr_get_payload_len(a) != len)
		return;
	out->family = family;
	memcpy(out->bytes, mnl_attr_get_payload(a), len);
}

static int rtnl_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[IFLA_MAX + 1] = { 0 };
	struct parse *p = data;
	struct nl_event ev = { 0 };
	uint16_t t = nlh->nlmsg_type;

	if (t == RTM_NEWLINK || t == RTM_DELLINK) {
		const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);

		mnl_attr_parse(nlh, sizeof(*ifi), attr_cb, tb);
		ev.type = NL_EV_LINK;
		ev.ifindex = ifi->ifi_index;
		ev.up = ifi->ifi_flags & IFF_UP;
		if (tb[IFLA_IFNAME] && mnl_attr_validate(tb[IFLA_IFNAME], MNL_TYPE_NUL_STRING) == 0)
			strncpy(ev.ifname, mnl_attr_get_str(tb[IFLA_IFNAME]),
				sizeof(ev.ifname) - 1);
	} else if (t == RTM_NEWADDR || t == RTM_DELADDR) {
		const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);

		mnl_attr_parse(nlh, sizeof(*ifa), attr_cb, tb);
		ev.type = NL_EV_ADDR;
		ev.ifindex = (int)ifa->ifa_index;
		addr_from(&ev.addr, ifa->ifa_family,
			  tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS]);
	} else if (t == RTM_NEWNEIGH || t == RTM_DELNEIGH) {
		const struct ndmsg *nd = mnl_nlmsg_get_payload(nlh);

		mnl_attr_parse(nlh, sizeof(*nd), attr_cb, tb);
		ev.type = NL_EV_NEIGH;
		ev.ifindex = nd->ndm_ifindex;
		addr_from(&ev.addr, nd->ndm_family, tb[NDA_DST]);
		if (tb[NDA_LLADDR] && mnl_attr_get_payload_len(tb[NDA_LLADDR]) == 6) {
			memcpy(ev.mac, mnl_attr_get_payload(tb[NDA_LLADDR]), 6);
			ev.has_mac = true;
		}
		/* an entry that stopped resolving is as good as gone */
		if (nd->ndm_state & (NUD_INCOMPLETE | NUD_FAILED))
			t = RTM_DELNEIGH;
	} else if (t == RTM_NEWNETCONF || t == RTM_DELNETCONF) {
		const struct netconfmsg *ncm = mnl_nlmsg_get_payload(nlh);

		mnl_attr_parse(nlh, sizeof(*ncm), attr_cb, tb);
		ev.type = NL_EV_NETCONF;
		ev.family = ncm->ncm_family;
		ev.forwarding = -1;
		if (tb[NETCONFA_IFINDEX] &&
		    mnl_attr_validate(tb[NETCONFA_IFINDEX], MNL_TYPE_U32) == 0)
			ev.ifindex = (int)mnl_attr_get_u32(tb[NETCONFA_IFINDEX]);
		if (tb[NETCONFA_FORWARDING] &&
		    mnl_attr_validate(tb[NETCONFA_FORWARDING], MNL_TYPE_U32) == 0)
			ev.forwarding = mnl_attr_get_u32(tb[NETCONFA_FORWARDING]) != 0;
	} else {
		return MNL_CB_OK;
	}
	ev.removed = t == RTM_DELLINK || t == RTM_DELADDR || t == RTM_DELNEIGH ||
		     t == RTM_DELNETCONF;
	p->cb(&ev, p->data);
	p->n++;
	return MNL_CB_OK;
}

/* NFTA_CHAIN_HOOK's nest: the hook number */
static int hook_attr_cb(const struct nlattr *a, void *data)
{
	int *hook = data;

	if (mnl_attr_get_type(a) == NFTA_HOOK_HOOKNUM && mnl_attr_validate(a, MNL_TYPE_U32) == 0)
		*hook = (int)ntohl(mnl_attr_get_u32(a));
	return MNL_CB_OK;
}

struct nft_names {
	uint16_t msg;
	struct nl_event *ev;
};

static void name_copy(char *dst, size_t len, const struct nlattr *a)
{
	if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
		snprintf(dst, len, "%s", mnl_attr_get_str(a));
}

/*
 * Tables, chains, rules, sets and elements all name their table in
 * attribute 1; a chain's own name is NFTA_CHAIN_NAME, a rule's chain
 * NFTA_RULE_CHAIN.
 */
static int nft_attr_cb(const struct nlattr *a, void *data)
{
	struct nft_names *n = data;
	uint16_t type = mnl_attr_get_type(a);
	bool chain = n->msg == NFT_MSG_NEWCHAIN || n->msg == NFT_MSG_DELCHAIN;
	bool rule = n->msg == NFT_MSG_NEWRULE || n->msg == NFT_MSG_DELRULE;

	if (type == 1)
		name_copy(n->ev->table, sizeof(n->ev->table), a);
	else if ((chain && type == NFTA_CHAIN_NAME) || (rule && type == NFTA_RULE_CHAIN))
		name_copy(n->ev->chain, sizeof(n->ev->chain), a);
	else if (chain && type == NFTA_CHAIN_HOOK && mnl_attr_validate(a, MNL_TYPE_NESTED) == 0)
		mnl_attr_parse_nested(a, hook_attr_cb, &n->ev->hook);
	return MNL_CB_OK;
}

static int nft_cb(const struct nlmsghdr *nlh, void *data)
{
	struct parse *p = data;
	struct nl_event ev = { .hook = -1 };
	uint16_t msg = NFNL_MSG_TYPE(nlh->nlmsg_type);
	struct nft_names n = { msg, &ev };
	const struct nfgenmsg *g = mnl_nlmsg_get_payload(nlh);

	/* NEWGEN closes every batch, ours too: the changes themselves are the news */
	if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_NFTABLES || msg == NFT_MSG_NEWGEN ||
	    nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*g)))
		return MNL_CB_OK;
	ev.type = NL_EV_NFT;
	ev.nft_msg = msg;
	ev.portid = nlh->nlmsg_pid;
	ev.nfproto = g->nfgen_family;
	mnl_attr_parse(nlh, sizeof(*g), nft_attr_cb, &n);
	ev.removed = msg == NFT_MSG_DELTABLE || msg == NFT_MSG_DELCHAIN || msg == NFT_MSG_DELRULE ||
		     msg == NFT_MSG_DELSET || msg == NFT_MSG_DELSETELEM || msg == NFT_MSG_DELOBJ;
	p->cb(&ev, p->data);
	p->n++;
	return MNL_CB_OK;
}

int nl_monitor_read(struct nl_monitor *m, nl_event_cb cb, void *data)
{
	struct parse p = { cb, data, 0 };
	bool lost = false;

	for (;;) {
		ssize_t n = mnl_socket_recvfrom(m->nl, m->buf, MNL_SOCKET_BUFFER_SIZE);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == ENOBUFS) {
				lost = true; /* keep draining: what is queued is still news */
				continue;
			}
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (mnl_cb_run(m->buf, (size_t)n, 0, 0, m->kind == NL_MON_RTNL ? rtnl_cb : nft_cb,
			       &p) < 0 &&
		    errno != ESRCH)
			continue; /* one odd message does not stop the rest */
	}
	return lost ? -ENOBUFS : p.n;
}
