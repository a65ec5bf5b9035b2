// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
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
	if ((c->ifindex && (int)ifa->ifa_index != c->ifindex) ||
	    ifa->ifa_scope != RT_SCOPE_UNIVERSE)
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

int nl_dump(int proto, uint16_t type, const void *hdr, size_t hlen, mnl_cb_t cb, void *data)
{
	char buf[32768];
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	uint32_t seq = (uint32_t)time(NULL), portid;
	int r;

	nl = mnl_socket_open2(proto, SOCK_CLOEXEC);
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
	memcpy(mnl_nlmsg_put_extra_header(nlh, hlen), hdr, hlen);
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

static int dump(uint16_t type, uint8_t family, mnl_cb_t cb, void *data)
{
	struct rtgenmsg g = { .rtgen_family = family };

	return nl_dump(NETLINK_ROUTE, type, &g, sizeof(g), cb, data);
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

/* ---- BPF programs on the interface: XDP, and tc's clsact ingress ---- */

struct bpf_ctx {
	int ifindex;
	struct rtnl_bpf *out;
	size_t max, n;
};

static void bpf_add(struct bpf_ctx *c, uint32_t id, const char *where)
{
	for (size_t i = 0; i < c->n && i < c->max; i++)
		if (c->out[i].id == id && !strcmp(c->out[i].where, where))
			return;
	if (c->n < c->max) {
		c->out[c->n].id = id;
		snprintf(c->out[c->n].where, sizeof(c->out[c->n].where), "%s", where);
	}
	c->n++;
}

static int xdp_attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_type_valid(a, IFLA_XDP_MAX) < 0)
		return MNL_CB_OK;
	if (mnl_attr_get_type(a) != IFLA_XDP_ATTACHED && mnl_attr_validate(a, MNL_TYPE_U32) < 0)
		return MNL_CB_OK;
	tb[mnl_attr_get_type(a)] = a;
	return MNL_CB_OK;
}

static int xdp_cb(const struct nlmsghdr *nlh, void *data)
{
	static const struct {
		int attr;
		const char *where;
	} modes[] = {
		{ IFLA_XDP_DRV_PROG_ID, "xdp (driver)" },
		{ IFLA_XDP_SKB_PROG_ID, "xdp (generic)" },
		{ IFLA_XDP_HW_PROG_ID, "xdp (offloaded)" },
	};
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[IFLA_MAX + 1] = { 0 }, *x[IFLA_XDP_MAX + 1] = { 0 };
	struct bpf_ctx *c = data;
	bool named = false;

	if (ifi->ifi_index != c->ifindex)
		return MNL_CB_OK;
	if (mnl_attr_parse(nlh, sizeof(*ifi), link_attr_cb, tb) < 0)
		return MNL_CB_ERROR;
	if (!tb[IFLA_XDP] || mnl_attr_parse_nested(tb[IFLA_XDP], xdp_attr_cb, x) < 0)
		return MNL_CB_OK;
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (x[modes[i].attr] && mnl_attr_get_u32(x[modes[i].attr])) {
			bpf_add(c, mnl_attr_get_u32(x[modes[i].attr]), modes[i].where);
			named = true;
		}
	/* one program in one mode: the kernel says only IFLA_XDP_PROG_ID */
	if (!named && x[IFLA_XDP_PROG_ID] && mnl_attr_get_u32(x[IFLA_XDP_PROG_ID]))
		bpf_add(c, mnl_attr_get_u32(x[IFLA_XDP_PROG_ID]), "xdp");
	return MNL_CB_OK;
}

static int tc_opt_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_type_valid(a, TCA_BPF_MAX) < 0)
		return MNL_CB_OK;
	tb[mnl_attr_get_type(a)] = a;
	return MNL_CB_OK;
}

static int tc_attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_type_valid(a, TCA_MAX) < 0)
		return MNL_CB_OK;
	tb[mnl_attr_get_type(a)] = a;
	return MNL_CB_OK;
}

static int tc_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct tcmsg *t = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[TCA_MAX + 1] = { 0 }, *o[TCA_BPF_MAX + 1] = { 0 };
	struct bpf_ctx *c = data;

	if (t->tcm_ifindex != c->ifindex || mnl_attr_parse(nlh, sizeof(*t), tc_attr_cb, tb) < 0)
		return MNL_CB_OK;
	if (!tb[TCA_KIND] || mnl_attr_validate(tb[TCA_KIND], MNL_TYPE_NUL_STRING) < 0 ||
	    strcmp(mnl_attr_get_str(tb[TCA_KIND]), "bpf") || !tb[TCA_OPTIONS] ||
	    mnl_attr_parse_nested(tb[TCA_OPTIONS], tc_opt_cb, o) < 0)
		return MNL_CB_OK;
	if (o[TCA_BPF_ID] && mnl_attr_validate(o[TCA_BPF_ID], MNL_TYPE_U32) == 0)
		bpf_add(c, mnl_attr_get_u32(o[TCA_BPF_ID]), "tc ingress");
	return MNL_CB_OK;
}

int rtnl_bpf_progs(int ifindex, struct rtnl_bpf *out, size_t max)
{
	struct bpf_ctx c = { ifindex, out, max, 0 };
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	struct tcmsg t = {
		.tcm_family = AF_UNSPEC,
		.tcm_ifindex = ifindex,
		.tcm_parent = TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS),
	};
	int r = nl_dump(NETLINK_ROUTE, RTM_GETLINK, &ifi, sizeof(ifi), xdp_cb, &c);

	if (r < 0)
		return r;
	/* no clsact qdisc on the interface: the kernel says EINVAL, and there is no filter */
	r = nl_dump(NETLINK_ROUTE, RTM_GETTFILTER, &t, sizeof(t), tc_cb, &c);
	if (r < 0 && r != -EINVAL && r != -ENOENT)
		return r;
	return (int)c.n;
}
