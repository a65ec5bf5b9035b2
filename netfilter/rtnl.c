// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>

#include "netfilter/rtnl.h"

struct link_ctx {
	const char *name;
	int index;
};

static int link_attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_type_valid(a, IFLA_MAX) < 0)
		return MNL_CB_OK;
	if (mnl_attr_get_type(a) == IFLA_IFNAME && mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0)
		return MNL_CB_ERROR;
	tb[mnl_attr_get_type(a)] = a;
	return MNL_CB_OK;
}

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[IFLA_MAX + 1] = { 0 };
	struct link_ctx *c = data;

	/* validated before every get: the header first */
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifi))
		return MNL_CB_OK;
	if (mnl_attr_parse(nlh, sizeof(*ifi), link_attr_cb, tb) < 0)
		return MNL_CB_ERROR;
	if (tb[IFLA_IFNAME] && !strcmp(mnl_attr_get_str(tb[IFLA_IFNAME]), c->name))
		c->index = ifi->ifi_index;
	return MNL_CB_OK;
}

struct addr_ctx {
	int ifindex;
	int family;
	struct nf_prefix *out;
	size_t max, n;
};

static int addr_attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_type_valid(a, IFA_MAX) < 0)
		return MNL_CB_OK;
	tb[mnl_attr_get_type(a)] = a;
	return MNL_CB_OK;
}

static int addr_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[IFA_MAX + 1] = { 0 };
	struct addr_ctx *c = data;
	const struct nlattr *a;
	size_t len;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifa))
		return MNL_CB_OK;
	len = ifa->ifa_family == AF_INET ? 4 : 16;
	if ((int)ifa->ifa_index != c->ifindex || ifa->ifa_scope != RT_SCOPE_UNIVERSE)
		return MNL_CB_OK;
	if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6)
		return MNL_CB_OK;
	if (c->family != AF_UNSPEC && ifa->ifa_family != c->family)
		return MNL_CB_OK;
	if (mnl_attr_parse(nlh, sizeof(*ifa), addr_attr_cb, tb) < 0)
		return MNL_CB_ERROR;
	/* IFA_LOCAL is ours on point-to-point links; IFA_ADDRESS the peer there */
	a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (!a || mnl_attr_get_payload_len(a) != len)
		return MNL_CB_OK;
	if (c->n < c->max) {
		struct nf_prefix *p = &c->out[c->n];

		memset(p, 0, sizeof(*p));
		p->addr.family = ifa->ifa_family;
		memcpy(p->addr.bytes, mnl_attr_get_payload(a), len);
		p->plen = ifa->ifa_prefixlen;
	}
	c->n++;
	return MNL_CB_OK;
}

static int dump(uint16_t type, uint8_t family, mnl_cb_t cb, void *data)
{
	char buf[32768];
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	struct rtgenmsg *g;
	uint32_t seq = (uint32_t)time(NULL), portid;
	int r;

	nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->rtgen_family = family;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		r = -errno;
		goto out;
	}
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));

		if (n < 0) {
			r = -errno;
			break;
		}
		r = mnl_cb_run(buf, n, seq, portid, cb, data);
		if (r <= MNL_CB_STOP) {
			r = r < 0 ? -errno : 0;
			break;
		}
	}
out:
	mnl_socket_close(nl);
	return r;
}

int rtnl_link_index(const char *ifname)
{
	struct link_ctx c = { ifname, 0 };
	int r = dump(RTM_GETLINK, AF_UNSPEC, link_cb, &c);

	if (r < 0)
		return r;
	return c.index > 0 ? c.index : -ENODEV;
}

int rtnl_link_addrs(int ifindex, int family, struct nf_prefix *out, size_t max)
{
	struct addr_ctx c = { ifindex, family, out, max, 0 };
	int r = dump(RTM_GETADDR, (uint8_t)family, addr_cb, &c);

	return r < 0 ? r : (int)c.n;
}

struct neigh_ctx {
	const uint8_t *mac;
	int family;
	struct nf_addr *out;
	size_t max, n;
};

static int neigh_attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_type_valid(a, NDA_MAX) < 0)
		return MNL_CB_OK;
	tb[mnl_attr_get_type(a)] = a;
	return MNL_CB_OK;
}

static int neigh_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct ndmsg *nd = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[NDA_MAX + 1] = { 0 };
	struct neigh_ctx *c = data;
	size_t len;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*nd))
		return MNL_CB_OK;
	len = nd->ndm_family == AF_INET ? 4 : 16;
	if (nd->ndm_family != AF_INET && nd->ndm_family != AF_INET6)
		return MNL_CB_OK;
	if (c->family != AF_UNSPEC && nd->ndm_family != c->family)
		return MNL_CB_OK;
	/* an entry that never resolved, or stopped resolving, says nothing */
	if (nd->ndm_state & (NUD_INCOMPLETE | NUD_FAILED | NUD_NOARP | NUD_NONE))
		return MNL_CB_OK;
	if (mnl_attr_parse(nlh, sizeof(*nd), neigh_attr_cb, tb) < 0)
		return MNL_CB_ERROR;
	if (!tb[NDA_DST] || !tb[NDA_LLADDR] || mnl_attr_get_payload_len(tb[NDA_DST]) != len ||
	    mnl_attr_get_payload_len(tb[NDA_LLADDR]) != 6 ||
	    memcmp(mnl_attr_get_payload(tb[NDA_LLADDR]), c->mac, 6))
		return MNL_CB_OK;
	if (nd->ndm_family == AF_INET6 &&
	    ((const uint8_t *)mnl_attr_get_payload(tb[NDA_DST]))[0] == 0xfe)
		return MNL_CB_OK; /* link-local: not forwardable */
	if (c->n < c->max) {
		memset(&c->out[c->n], 0, sizeof(c->out[c->n]));
		c->out[c->n].family = nd->ndm_family;
		memcpy(c->out[c->n].bytes, mnl_attr_get_payload(tb[NDA_DST]), len);
	}
	c->n++;
	return MNL_CB_OK;
}

int rtnl_neigh_by_mac(const uint8_t mac[6], int family, struct nf_addr *out, size_t max)
{
	struct neigh_ctx c = { mac, family, out, max, 0 };
	int r = dump(RTM_GETNEIGH, (uint8_t)family, neigh_cb, &c);

	return r < 0 ? r : (int)c.n;
}
