// SPDX-License-Identifier: GPL-2.0-or-later
/* rtnetlink and nftables event sockets. */
#include <errno.h>
#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>

#include "netfilter/monitor.h"

struct nl_monitor {
	struct mnl_socket *nl;
	enum nl_mon_kind kind;
	char *buf;
};

/* a queue that holds a flush of a large ruleset without overflowing */
#define MON_RCVBUF (4 << 20)

int nl_monitor_open(enum nl_mon_kind kind, struct nl_monitor **out)
{
	int proto = kind == NL_MON_RTNL ? NETLINK_ROUTE : NETLINK_NETFILTER;
	struct nl_monitor *m = calloc(1, sizeof(*m));
	int size = MON_RCVBUF, r;
	unsigned int groups[] = { RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR,
				  RTNLGRP_NEIGH };

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

	/* every table below is sized for the largest of IFLA/IFA/NDA */
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
	} else {
		return MNL_CB_OK;
	}
	ev.removed = t == RTM_DELLINK || t == RTM_DELADDR || t == RTM_DELNEIGH;
	p->cb(&ev, p->data);
	p->n++;
	return MNL_CB_OK;
}

static int nft_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *a;
	struct parse *p = data;
	struct nl_event ev = { 0 };
	uint16_t msg = NFNL_MSG_TYPE(nlh->nlmsg_type);

	/* NEWGEN closes every batch, ours too: the changes themselves are the news */
	if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_NFTABLES || msg == NFT_MSG_NEWGEN)
		return MNL_CB_OK;
	ev.type = NL_EV_NFT;
	ev.nft_msg = msg;
	ev.portid = nlh->nlmsg_pid;
	/* tables, chains, rules, sets and elements all name their table first */
	mnl_attr_for_each(
		a, nlh, sizeof(struct nfgenmsg)) if (mnl_attr_get_type(a) == 1 &&
						     mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
	{
		strncpy(ev.table, mnl_attr_get_str(a), sizeof(ev.table) - 1);
		break;
	}
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
