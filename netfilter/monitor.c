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
 * kernel sends alone after every transaction; the elements of another
 * table's set; and, once the daemon says which tables it follows, the rules
 * of every other table. Only an skb that holds one message is judged (the
 * kernel coalesces a transaction's notifications; one with more in it
 * always goes up), by its first attribute, the table's name
 * (NFTA_SET_ELEM_LIST_TABLE, NFTA_RULE_TABLE: nf_tables_fill_*_info()
 * writes it first), compared whole: its length, then every word of the name
 * with its NUL and the padding the kernel zeroes. Netlink is host-endian
 * and BPF loads are big-endian: a value is compared as the bytes it is.
 */
#define FILTER_MAX 4096 /* BPF_MAXINSNS */
#define UP 0xffffffff
#define DROP 0

struct prog {
	struct sock_filter f[FILTER_MAX];
	unsigned int n;
	bool full;
};

static void emit(struct prog *p, uint16_t code, uint32_t k, uint8_t jt, uint8_t jf)
{
	if (p->n < FILTER_MAX)
		p->f[p->n++] = (struct sock_filter){ code, jt, jf, k };
	else
		p->full = true;
}

/* what a big-endian load of these bytes gives */
static uint32_t be16_of(uint16_t v)
{
	return ntohs(v);
}

static uint32_t be32_of(const char *bytes)
{
	uint32_t w;

	memcpy(&w, bytes, sizeof(w));
	return ntohl(w);
}

/*
 * Compare the attribute at off with name: its length, then every word of
 * the name with its NUL and padding. A match goes on after the block; a
 * miss lands on the block's last instruction, a jump the caller aims with
 * aim(). Returns that jump's index.
 */
static unsigned int emit_match(struct prog *p, uint32_t off, const char *name)
{
	size_t len = strnlen(name, NFT_NAME_MAXLEN - 1), words = (len + 1 + 3) / 4;
	unsigned int miss = p->n + 3 + 2 * (unsigned int)words;
	char pad[NFT_NAME_MAXLEN + 4] = "";

	memcpy(pad, name, len);
	emit(p, BPF_LD | BPF_H | BPF_ABS, off, 0, 0);
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, be16_of((uint16_t)(NLA_HDRLEN + len + 1)), 0,
	     (uint8_t)(miss - p->n - 1));
	for (size_t i = 0; i < words; i++) {
		emit(p, BPF_LD | BPF_W | BPF_ABS, off + NLA_HDRLEN + 4 * (uint32_t)i, 0, 0);
		emit(p, BPF_JMP | BPF_JEQ | BPF_K, be32_of(pad + 4 * i), 0,
		     (uint8_t)(miss - p->n - 1));
	}
	emit(p, BPF_JMP | BPF_JA, 1, 0, 0); /* matched: over the miss */
	emit(p, BPF_JMP | BPF_JA, 0, 0, 0); /* missed: aimed by the caller */
	return miss;
}

/* the miss of the block whose jump is at i goes to the next instruction emitted */
static void aim(struct prog *p, unsigned int i)
{
	if (i < FILTER_MAX)
		p->f[i].k = p->n - i - 1;
}

/* rules NULL: every table's rules go up; else ours and those named only */
static void build(struct prog *p, const struct nl_follow *rules, size_t n)
{
	const bool le = htons(1) != 1;
	/* offset of the i-th least significant byte of the u32 at off (host order) */
#define B(off, i) ((off) + (le ? (i) : 3 - (i)))
	const uint32_t type = le ? 4 : 5;	 /* the message type's low byte */
	const uint32_t first = NLMSG_HDRLEN + 4; /* after the nfgenmsg */
	unsigned int judged, m;

	/* which messages are judged at all */
	emit(p, BPF_LD | BPF_B | BPF_ABS, type, 0, 0);
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, NFT_MSG_NEWGEN, 0, 1);
	emit(p, BPF_RET | BPF_K, DROP, 0, 0);
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, NFT_MSG_NEWSETELEM, 4, 0);
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, NFT_MSG_DELSETELEM, 3, 0);
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, NFT_MSG_NEWRULE, rules ? 2 : 0, 0);
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, NFT_MSG_DELRULE, rules ? 1 : 0, 0);
	emit(p, BPF_RET | BPF_K, UP, 0, 0);
	/* X = nlmsg_len; one message only, else up it goes */
	emit(p, BPF_LD | BPF_B | BPF_ABS, B(0, 3), 0, 0);
	emit(p, BPF_ALU | BPF_LSH | BPF_K, 24, 0, 0);
	emit(p, BPF_MISC | BPF_TAX, 0, 0, 0);
	for (int i = 2; i >= 0; i--) {
		emit(p, BPF_LD | BPF_B | BPF_ABS, B(0, i), 0, 0);
		if (i)
			emit(p, BPF_ALU | BPF_LSH | BPF_K, 8 * (uint32_t)i, 0, 0);
		emit(p, BPF_ALU | BPF_OR | BPF_X, 0, 0, 0);
		emit(p, BPF_MISC | BPF_TAX, 0, 0, 0);
	}
#undef B
	emit(p, BPF_LD | BPF_W | BPF_LEN, 0, 0, 0);
	emit(p, BPF_JMP | BPF_JEQ | BPF_X, 0, 1, 0);
	emit(p, BPF_RET | BPF_K, UP, 0, 0);
	/* its first attribute is the table's name, else up */
	emit(p, BPF_LD | BPF_H | BPF_ABS, first + 2, 0, 0);
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, be16_of(1), 1, 0);
	emit(p, BPF_RET | BPF_K, UP, 0, 0);
	/* elements: ours only */
	emit(p, BPF_LD | BPF_B | BPF_ABS, type, 0, 0);
	judged = p->n;
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, NFT_MSG_NEWRULE, 0, 0);
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, NFT_MSG_DELRULE, 0, 0);
	m = emit_match(p, first, NF_TABLE_NAME);
	emit(p, BPF_RET | BPF_K, UP, 0, 0);
	aim(p, m);
	emit(p, BPF_RET | BPF_K, DROP, 0, 0);
	if (!rules)
		return; /* rules never get this far */
	/* rules: ours, and the chains named (the chain is the second attribute) */
	p->f[judged].jt = (uint8_t)(p->n - judged - 1);
	p->f[judged + 1].jt = (uint8_t)(p->n - judged - 2);
	m = emit_match(p, first, NF_TABLE_NAME);
	emit(p, BPF_RET | BPF_K, UP, 0, 0);
	aim(p, m);
	for (size_t i = 0; i < n; i++) {
		size_t len = strnlen(rules[i].table, NFT_NAME_MAXLEN - 1);
		uint32_t chain = first + NLA_ALIGN(NLA_HDRLEN + (uint32_t)len + 1);
		bool seen = false, all = false;

		for (size_t j = 0; j < n; j++) {
			seen |= j < i && !strcmp(rules[j].table, rules[i].table);
			all |= !strcmp(rules[j].table, rules[i].table) && !rules[j].chain;
		}
		if (seen)
			continue; /* its table's block is made */
		m = emit_match(p, first, rules[i].table);
		if (all) {
			emit(p, BPF_RET | BPF_K, UP, 0, 0);
		} else {
			emit(p, BPF_LD | BPF_H | BPF_ABS, chain + 2, 0, 0);
			emit(p, BPF_JMP | BPF_JEQ | BPF_K, be16_of(NFTA_RULE_CHAIN), 1, 0);
			emit(p, BPF_RET | BPF_K, UP, 0, 0);
			for (size_t j = i; j < n; j++) {
				unsigned int c;

				if (strcmp(rules[j].table, rules[i].table))
					continue;
				c = emit_match(p, chain, rules[j].chain);
				emit(p, BPF_RET | BPF_K, UP, 0, 0);
				aim(p, c);
			}
			emit(p, BPF_RET | BPF_K, DROP, 0, 0);
		}
		aim(p, m);
	}
	emit(p, BPF_RET | BPF_K, DROP, 0, 0);
}

static int attach(struct mnl_socket *nl, const struct nl_follow *rules, size_t n)
{
	struct prog *p = calloc(1, sizeof(*p));
	struct sock_fprog prog;
	int r;

	if (!p)
		return -ENOMEM;
	build(p, rules, n);
	if (p->full) {
		/* too many names for one filter: every rule goes up, and the daemon judges */
		memset(p, 0, sizeof(*p));
		build(p, NULL, 0);
	}
	prog = (struct sock_fprog){ (unsigned short)p->n, p->f };
	r = setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog));
	r = r < 0 ? -errno : 0;
	free(p);
	return r;
}

int nl_monitor_follow(struct nl_monitor *m, const struct nl_follow *rules, size_t n)
{
	if (m->kind != NL_MON_NFT)
		return -EINVAL;
	return attach(m->nl, rules, n);
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
		attach(m->nl, NULL, 0);
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
