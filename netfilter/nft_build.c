// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Builds the objects of table "inet vfio_agent" from a resolved spec. Pure:
 * no socket, so the unit tier round-trips every object through netlink.
 *
 * The per-packet cost does not grow with the number of forwards: each family
 * has a fixed set of rules, and the forwards live in maps keyed on
 * "l4proto . dport" (and "daddr . l4proto . dport" for the translated flow).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/netfilter.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/x_tables.h>
#include <linux/netfilter/xt_comment.h>
#include <linux/netfilter/xt_conntrack.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include "netfilter/nft_priv.h"

/* nftables' datatype numbers, as nft stores them in NFTA_SET_KEY_TYPE. */
enum {
	TYPE_IPADDR = 7,
	TYPE_IP6ADDR = 8,
	TYPE_INET_PROTOCOL = 12,
	TYPE_INET_SERVICE = 13,
};
#define CONCAT2(a, b) (((a) << 6) | (b))
#define CONCAT3(a, b, c) ((((a) << 6 | (b)) << 6) | (c))

const struct nf_foreign_chain nf_foreign_chains[] = {
	/* libvirt <= 10.3 through iptables-nft: -A FORWARD -j LIBVIRT_FWI, REJECT */
	{ NFPROTO_IPV4, "filter", "LIBVIRT_FWI", true },
	{ NFPROTO_IPV6, "filter", "LIBVIRT_FWI", true },
	/* libvirt >= 10.4, nftables backend */
	{ NFPROTO_IPV4, "libvirt_network", "guest_input", false },
	{ NFPROTO_IPV6, "libvirt_network", "guest_input", false },
};
const size_t nf_n_foreign_chains = ARRAY_SIZE(nf_foreign_chains);
_Static_assert(ARRAY_SIZE(nf_foreign_chains) == NF_N_FOREIGN_CHAINS,
	       "NF_N_FOREIGN_CHAINS sizes the arrays that mirror nf_foreign_chains[]");

const char *const nf_set_name[NF_NSETS][NF_NFAM] = {
	[NF_SET_ALLOW] = { "allow4", "allow6" },
	[NF_SET_DNAT] = { "dnat4", "dnat6" },
	[NF_SET_GUESTS] = { "guests4", "guests6" },
};

static unsigned int addr_len(int fam)
{
	return fam == NF_V4 ? 4 : 16;
}

static uint8_t nfproto(int fam)
{
	return fam == NF_V4 ? NFPROTO_IPV4 : NFPROTO_IPV6;
}

/*
 * A rule under construction. Helpers do nothing once one has failed, so a
 * rule reads as a flat list of expressions and is checked once at the end.
 */
struct rb {
	struct nftnl_rule *r;
	int err;
};

static struct nftnl_expr *rb_expr(struct rb *b, const char *name)
{
	struct nftnl_expr *e;

	if (b->err)
		return NULL;
	e = nftnl_expr_alloc(name);
	if (!e) {
		b->err = -ENOMEM;
		return NULL;
	}
	nftnl_rule_add_expr(b->r, e);
	return e;
}

static void meta(struct rb *b, uint32_t key, uint32_t dreg)
{
	struct nftnl_expr *e = rb_expr(b, "meta");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
}

static void cmp(struct rb *b, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e = rb_expr(b, "cmp");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
}

static void payload(struct rb *b, uint32_t base, uint32_t off, uint32_t len, uint32_t dreg)
{
	struct nftnl_expr *e = rb_expr(b, "payload");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
}

static void lookup(struct rb *b, const char *set, uint32_t sreg, uint32_t dreg, bool inv)
{
	struct nftnl_expr *e = rb_expr(b, "lookup");

	if (!e)
		return;
	nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, sreg);
	if (dreg)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, dreg);
	/* the kernel always dumps the flags: set them so round trips compare equal */
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, inv ? NFT_LOOKUP_F_INV : 0);
}

static void counter(struct rb *b)
{
	rb_expr(b, "counter");
}

static void verdict(struct rb *b, int v)
{
	struct nftnl_expr *e = rb_expr(b, "immediate");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, v);
}

/* ct status & dnat != 0 */
static void ct_dnat(struct rb *b)
{
	uint32_t mask = IPS_DST_NAT, zero = 0;
	struct nftnl_expr *e = rb_expr(b, "ct");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_STATUS);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
	}
	e = rb_expr(b, "bitwise");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, sizeof(mask));
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, sizeof(mask));
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &zero, sizeof(zero));
	}
	cmp(b, NFT_CMP_NEQ, &zero, sizeof(zero));
}

/* An xtables match as iptables-nft writes it; libnftnl takes (and frees) the info. */
static void xt_match(struct rb *b, const char *name, uint32_t rev, const void *info, size_t len)
{
	struct nftnl_expr *e = rb_expr(b, "match");
	void *copy;

	if (!e)
		return;
	/* padded to XT_ALIGN as iptables sends it and the kernel dumps it */
	copy = calloc(1, XT_ALIGN(len));
	if (!copy) {
		b->err = -ENOMEM;
		return;
	}
	memcpy(copy, info, len);
	nftnl_expr_set_str(e, NFTNL_EXPR_MT_NAME, name);
	nftnl_expr_set_u32(e, NFTNL_EXPR_MT_REV, rev);
	nftnl_expr_set(e, NFTNL_EXPR_MT_INFO, copy, XT_ALIGN(len));
}

static void match_nfproto(struct rb *b, int fam)
{
	uint8_t p = nfproto(fam);

	meta(b, NFT_META_NFPROTO, NFT_REG_1);
	cmp(b, NFT_CMP_EQ, &p, 1);
}

/* iifname or oifname (key) as nft writes it: the whole IFNAMSIZ buffer, zero padded. */
static void match_ifname(struct rb *b, uint32_t key, const char *ifname)
{
	char name[IFNAMSIZ] = { 0 };

	memcpy(name, ifname, strnlen(ifname, IFNAMSIZ - 1));
	meta(b, key, NFT_REG_1);
	cmp(b, NFT_CMP_EQ, name, IFNAMSIZ);
}

static uint32_t daddr_off(int fam)
{
	return fam == NF_V4 ? 16 : 24;
}

static uint32_t saddr_off(int fam)
{
	return fam == NF_V4 ? 12 : 8;
}

static void match_daddr(struct rb *b, int fam, const struct nf_addr *a)
{
	payload(b, NFT_PAYLOAD_NETWORK_HEADER, daddr_off(fam), addr_len(fam), NFT_REG_1);
	cmp(b, NFT_CMP_EQ, a->bytes, addr_len(fam));
}

/*
 * The n-th 32-bit register, named as the kernel dumps it: a 128-bit register
 * where it starts one, so that what we send and what we read back compare.
 */
static uint32_t reg32(uint32_t n)
{
	return n % 4 ? NFT_REG32_00 + n : NFT_REG_1 + n / 4;
}

/* "meta l4proto . th dport" into the 32-bit registers from the first-th on. */
static void load_proto_port(struct rb *b, uint32_t first)
{
	meta(b, NFT_META_L4PROTO, reg32(first));
	payload(b, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, reg32(first + 1));
}

/* "daddr . l4proto . dport" for the translated flow */
static void load_flow(struct rb *b, int fam)
{
	payload(b, NFT_PAYLOAD_NETWORK_HEADER, daddr_off(fam), addr_len(fam), NFT_REG_1);
	load_proto_port(b, addr_len(fam) / 4);
}

static void dnat_map(struct rb *b, int fam)
{
	struct nftnl_expr *e;

	load_proto_port(b, 0);
	lookup(b, nf_set_name[NF_SET_DNAT][fam], NFT_REG_1, NFT_REG_1, false);
	e = rb_expr(b, "nat");
	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, nfproto(fam));
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MAX, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, reg32(addr_len(fam) / 4));
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MAX, reg32(addr_len(fam) / 4));
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FLAGS,
			   NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED);
}

static int rule_new(struct nf_objs *o, const char *table, uint16_t family, const char *chain,
		    struct rb *b)
{
	b->err = 0;
	b->r = nftnl_rule_alloc();
	if (!b->r)
		return -ENOMEM;
	nftnl_rule_set_str(b->r, NFTNL_RULE_TABLE, table);
	nftnl_rule_set_str(b->r, NFTNL_RULE_CHAIN, chain);
	nftnl_rule_set_u32(b->r, NFTNL_RULE_FAMILY, family);
	return 0;
}

static int rule_done(struct nf_objs *o, struct rb *b, bool exempt)
{
	struct nftnl_rule ***arr = exempt ? &o->exempt : &o->rules;
	size_t *n = exempt ? &o->n_exempt : &o->n_rules;
	struct nftnl_rule **grown;

	if (b->err) {
		nftnl_rule_free(b->r);
		return b->err;
	}
	grown = realloc(*arr, (*n + 1) * sizeof(**arr));
	if (!grown) {
		nftnl_rule_free(b->r);
		return -ENOMEM;
	}
	*arr = grown;
	grown[(*n)++] = b->r;
	return 0;
}

/*
 * The rule each base chain holds per family, after "meta nfproto"; the
 * forwards themselves live in the sets.
 */
static void rule_drop(struct rb *b, const struct nf_forward_spec *spec, int fam)
{
	/* a client on the interface, outside allow */
	match_ifname(b, NFT_META_IIFNAME, spec->ifname);
	match_daddr(b, fam, &spec->fam[fam].host);
	load_proto_port(b, 0);
	lookup(b, NF_SET_PORTS, NFT_REG_1, 0, false);
	payload(b, NFT_PAYLOAD_NETWORK_HEADER, saddr_off(fam), addr_len(fam), NFT_REG_1);
	lookup(b, nf_set_name[NF_SET_ALLOW][fam], NFT_REG_1, 0, true);
	counter(b);
	verdict(b, NF_DROP);
}

static void rule_dnat_lan(struct rb *b, const struct nf_forward_spec *spec, int fam)
{
	/* from the chosen interface to host.ip */
	match_ifname(b, NFT_META_IIFNAME, spec->ifname);
	match_daddr(b, fam, &spec->fam[fam].host);
	dnat_map(b, fam);
}

static void rule_dnat_local(struct rb *b, const struct nf_forward_spec *spec, int fam)
{
	/* the host itself; loopback addresses never match host.ip */
	match_daddr(b, fam, &spec->fam[fam].host);
	dnat_map(b, fam);
}

static void rule_accept(struct rb *b, const struct nf_forward_spec *spec, int fam)
{
	/* count and accept the translated flow */
	ct_dnat(b);
	load_flow(b, fam);
	lookup(b, nf_set_name[NF_SET_GUESTS][fam], NFT_REG_1, 0, false);
	counter(b);
	verdict(b, NF_ACCEPT);
}

static void rule_masq(struct rb *b, const struct nf_forward_spec *spec, int fam)
{
	uint32_t local = RTN_LOCAL;
	struct nftnl_expr *e;

	/* masquerade where the return path needs it */
	ct_dnat(b);
	load_flow(b, fam);
	lookup(b, nf_set_name[NF_SET_GUESTS][fam], NFT_REG_1, 0, false);
	if (!spec->masquerade) {
		e = rb_expr(b, "fib");
		if (e) {
			nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_SADDR);
			nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
			nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_DREG, NFT_REG_1);
		}
		cmp(b, NFT_CMP_EQ, &local, sizeof(local));
	}
	rb_expr(b, "masq");
}

/* The base chains of our table, in the order they are made and their rules added. */
static const struct base_chain {
	const char *name;
	const char *type;
	uint32_t hook;
	int32_t prio;
	void (*rule)(struct rb *b, const struct nf_forward_spec *spec, int fam);
} base_chains[] = {
	/* drop before dstnat (-100), so a refused client is never translated */
	{ NF_CHAIN_DROP, "filter", NF_INET_PRE_ROUTING, -150, rule_drop },
	{ "nat_pre", "nat", NF_INET_PRE_ROUTING, -100, rule_dnat_lan },
	{ "nat_out", "nat", NF_INET_LOCAL_OUT, -100, rule_dnat_local },
	{ "forward", "filter", NF_INET_FORWARD, 0, rule_accept },
	{ "nat_post", "nat", NF_INET_POST_ROUTING, 100, rule_masq },
};
_Static_assert(ARRAY_SIZE(base_chains) == NF_N_BASE_CHAINS,
	       "NF_N_BASE_CHAINS sizes nf_objs.chains[]");

static int add_rule_ours(struct nf_objs *o, const struct base_chain *bc,
			 const struct nf_forward_spec *spec, int fam)
{
	struct rb b;
	int r;

	r = rule_new(o, NF_TABLE_NAME, NFPROTO_INET, bc->name, &b);
	if (r < 0)
		return r;
	match_nfproto(&b, fam);
	bc->rule(&b, spec, fam);
	return rule_done(o, &b, false);
}

static int nf_exempt_comment(const struct nf_forward_spec *spec, int fam, const struct nf_port *p,
			     bool reply, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	return snprintf(buf, len, NF_TAG " %s: %s %s%s%s:%u%s", spec->vm, nf_proto_name(p->proto),
			fam == NF_V6 ? "[" : "", nf_addr_str(&spec->fam[fam].guest, a, sizeof(a)),
			fam == NF_V6 ? "]" : "", p->guest_port, reply ? " reply" : "");
}

/*
 * What an exemption matches of the flow where its chain sits. The guest's
 * side (address, port) after DNAT, the host's before it (or, for a reply,
 * after it is translated back); conntrack's DNAT status once there is one.
 */
struct ex_match {
	uint32_t ifkey; /* NFT_META_IIFNAME or NFT_META_OIFNAME: the interface; 0: none */
	bool reply;	/* the guest's answer: its address and port are the source */
	bool host;	/* host.ip and host.port, not the guest's */
	bool ct;	/* ct status dnat */
};

/* libvirt's chains take new flows into the guest: the forward hook's original direction */
static const struct ex_match ex_libvirt = { NFT_META_IIFNAME, false, false, true };

/*
 * An exemption's expressions. In an iptables-nft chain, those iptables-nft
 * itself writes for
 *   -i IF -p tcp -d GUEST --dport N -m conntrack --ctstate DNAT
 *   -m comment --comment TAG -j ACCEPT
 * (or -o, -s, --sport), so that iptables-nft -L still lists the chain and
 * its owner (libvirt 9, ufw) can still rewrite it; elsewhere the native
 * equivalent.
 */
static int add_exempt(struct nf_objs *o, const struct nf_foreign_chain *fc,
		      const struct nf_forward_spec *spec, int fam, const struct nf_port *p,
		      const struct ex_match *m)
{
	const struct nf_family *f = &spec->fam[fam];
	char comment[XT_MAX_COMMENT_LEN] = { 0 };
	uint16_t port = htons(m->host ? p->host_port : p->guest_port);
	uint16_t ethertype = htons(fam == NF_V4 ? ETH_P_IP : ETH_P_IPV6);
	const struct nf_addr *addr = m->host ? &f->host : &f->guest;
	struct rb b;
	int r;

	r = rule_new(o, fc->table, fc->family, fc->chain, &b);
	if (r < 0)
		return r;
	nf_exempt_comment(spec, fam, p, m->reply, comment, sizeof(comment));
	if (!fc->iptables) {
		struct nftnl_udata_buf *ud = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);

		if (!ud || !nftnl_udata_put_strz(ud, NFTNL_UDATA_RULE_COMMENT, comment)) {
			nftnl_udata_buf_free(ud);
			b.err = -ENOMEM;
		} else {
			nftnl_rule_set_data(b.r, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(ud),
					    nftnl_udata_buf_len(ud));
			nftnl_udata_buf_free(ud);
		}
	}
	/* the family, where the chain's does not say it */
	if (fc->family == NFPROTO_INET) {
		match_nfproto(&b, fam);
	} else if (fc->family == NFPROTO_NETDEV) {
		meta(&b, NFT_META_PROTOCOL, NFT_REG_1);
		cmp(&b, NFT_CMP_EQ, &ethertype, sizeof(ethertype));
	}
	if (m->ifkey && fc->iptables) {
		/* iptables compares the name and its NUL only */
		meta(&b, m->ifkey, NFT_REG_1);
		cmp(&b, NFT_CMP_EQ, spec->ifname, strlen(spec->ifname) + 1);
	} else if (m->ifkey) {
		match_ifname(&b, m->ifkey, spec->ifname);
	}
	meta(&b, NFT_META_L4PROTO, NFT_REG_1);
	cmp(&b, NFT_CMP_EQ, &p->proto, 1);
	payload(&b, NFT_PAYLOAD_NETWORK_HEADER, m->reply ? saddr_off(fam) : daddr_off(fam),
		addr_len(fam), NFT_REG_1);
	cmp(&b, NFT_CMP_EQ, addr->bytes, addr_len(fam));
	payload(&b, NFT_PAYLOAD_TRANSPORT_HEADER, m->reply ? 0 : 2, 2, NFT_REG_1);
	cmp(&b, NFT_CMP_EQ, &port, 2);
	if (m->ct && fc->iptables) {
		struct xt_conntrack_mtinfo3 ct = {
			.match_flags = XT_CONNTRACK_STATE,
			.state_mask = XT_CONNTRACK_STATE_DNAT,
		};

		xt_match(&b, "conntrack", 3, &ct, sizeof(ct));
	} else if (m->ct) {
		ct_dnat(&b);
	}
	if (fc->iptables) {
		struct xt_comment_info ci;

		memset(&ci, 0, sizeof(ci));
		memcpy(ci.comment, comment, sizeof(ci.comment));
		xt_match(&b, "comment", 0, &ci, sizeof(ci));
	}
	counter(&b);
	verdict(&b, NF_ACCEPT);
	return rule_done(o, &b, true);
}

/*
 * exempt = auto: what a LAN client's flow looks like at a chain's hook and
 * priority, both ways (the reply too: a chain that drops by policy drops
 * it). How many of m are used.
 */
static size_t auto_matches(const struct nf_drop_chain *d, struct ex_match m[2])
{
	bool ct, nat;

	if (d->nfproto == NFPROTO_NETDEV || d->hook == NF_INET_INGRESS) {
		/* before conntrack and DNAT, on the interface; the reply leaves by another */
		m[0] = (struct ex_match){ 0, false, true, false };
		return 1;
	}
	switch (d->hook) {
	case NF_INET_PRE_ROUTING:
		ct = d->prio > NF_IP_PRI_CONNTRACK;
		nat = d->prio > NF_IP_PRI_NAT_DST;
		m[0] = (struct ex_match){ NFT_META_IIFNAME, false, !nat, nat };
		/* the reply comes in from the guest's side, not yet translated back */
		m[1] = (struct ex_match){ 0, true, false, ct };
		return 2;
	case NF_INET_POST_ROUTING:
		/* no input interface here; the reply's source is the host's after SNAT's hook */
		m[0] = (struct ex_match){ 0, false, false, true };
		m[1] = (struct ex_match){ NFT_META_OIFNAME, true, d->prio > NF_IP_PRI_NAT_SRC,
					  true };
		return 2;
	default: /* forward */
		m[0] = ex_libvirt;
		m[1] = (struct ex_match){ NFT_META_OIFNAME, true, false, true };
		return 2;
	}
}

/* which of the spec's families a chain of nfproto sees */
static bool chain_sees(uint8_t nfproto, int fam)
{
	return nfproto == NFPROTO_IPV4	 ? fam == NF_V4
	       : nfproto == NFPROTO_IPV6 ? fam == NF_V6
					 : true;
}

static int add_autos(struct nf_objs *o, const struct nf_forward_spec *spec,
		     const struct nf_drop_chain *autos, size_t n_autos)
{
	for (size_t c = 0; c < n_autos; c++) {
		const struct nf_drop_chain *d = &autos[c];
		struct nf_foreign_chain fc = { d->nfproto, d->table, d->chain, d->iptables };
		struct ex_match m[2];
		size_t n_m = auto_matches(d, m);
		int r;

		for (int fam = 0; fam < NF_NFAM; fam++) {
			if (!spec->fam[fam].enabled || !chain_sees(d->nfproto, fam))
				continue;
			for (size_t i = 0; i < spec->n_ports; i++)
				for (size_t k = 0; k < n_m; k++)
					if ((r = add_exempt(o, &fc, spec, fam, &spec->ports[i],
							    &m[k])) < 0)
						return r;
		}
	}
	return 0;
}

static int add_chain(struct nf_objs *o, const struct base_chain *bc)
{
	struct nftnl_chain *c = nftnl_chain_alloc();

	if (!c)
		return -ENOMEM;
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, NF_TABLE_NAME);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, bc->name);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, bc->type);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, bc->hook);
	nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, bc->prio);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	o->chains[o->n_chains++] = c;
	return 0;
}

static int set_new(struct nf_objs *o, struct nftnl_set **out, const char *name, uint32_t flags,
		   uint32_t key_type, uint32_t key_len)
{
	struct nftnl_set *s;

	/* a set added here that nf_set_name[] does not count */
	if (o->n_sets == ARRAY_SIZE(o->sets))
		return -E2BIG;
	s = nftnl_set_alloc();
	if (!s)
		return -ENOMEM;
	nftnl_set_set_str(s, NFTNL_SET_TABLE, NF_TABLE_NAME);
	nftnl_set_set_str(s, NFTNL_SET_NAME, name);
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, flags);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, key_type);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, key_len);
	nftnl_set_set_u32(s, NFTNL_SET_ID, o->n_sets + 1);
	o->sets[o->n_sets++] = s;
	*out = s;
	return 0;
}

static int elem_add(struct nftnl_set *s, const void *key, uint32_t klen, const void *data,
		    uint32_t dlen, uint32_t flags)
{
	struct nftnl_set_elem *e = nftnl_set_elem_alloc();

	if (!e)
		return -ENOMEM;
	nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, klen);
	if (data)
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, data, dlen);
	if (flags)
		nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_FLAGS, flags);
	nftnl_set_elem_add(s, e);
	return 0;
}

/* "proto . port" padded to two registers, as concatenations are stored */
static void key_proto_port(uint8_t *k, uint8_t proto, uint16_t port)
{
	uint16_t p = htons(port);

	memset(k, 0, 8);
	k[0] = proto;
	memcpy(k + 4, &p, 2);
}

uint32_t nf_guest_key(uint8_t *k, int fam, const struct nf_addr *guest, uint8_t proto,
		      uint16_t port)
{
	memset(k, 0, NF_GUEST_KEY_MAX);
	memcpy(k, guest->bytes, addr_len(fam));
	key_proto_port(k + addr_len(fam), proto, port);
	return addr_len(fam) + 8;
}

static int cmp_range(const void *a, const void *b, void *len)
{
	return memcmp(a, b, *(unsigned int *)len);
}

/* Add one to a big-endian number; false if it wrapped (the range runs to the end). */
static bool be_inc(uint8_t *x, unsigned int len)
{
	for (int i = len - 1; i >= 0; i--)
		if (++x[i])
			return true;
	return false;
}

/*
 * Interval set elements from CIDRs, merged, as nft writes them: an interval
 * end at 0, then start/end pairs (an end that wraps is left open).
 */
static int add_allow(struct nftnl_set *s, int fam, const struct nf_prefix *pfx, size_t n)
{
	unsigned int len = addr_len(fam);
	uint8_t(*r)[2][16];
	size_t m = 0;
	int ret = 0;

	r = calloc(n ? n : 1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		uint8_t *lo = r[m][0], *hi = r[m][1];
		bool open;

		for (unsigned int bit = 0; bit < len * 8; bit++) {
			uint8_t mask = 0x80 >> (bit % 8);
			uint8_t v = pfx[i].addr.bytes[bit / 8] & mask;

			if (bit < pfx[i].plen) {
				lo[bit / 8] |= v;
				hi[bit / 8] |= v;
			} else {
				hi[bit / 8] |= mask;
			}
		}
		/* hi becomes the exclusive end; all-ones wraps to zero */
		open = !be_inc(hi, len);
		if (open)
			memset(hi, 0xff, len);
		m++;
	}
	qsort_r(r, m, sizeof(*r), cmp_range, &len);
	/* merge overlapping or touching ranges; [1] is exclusive (or 0xff.. if open) */
	size_t k = 0;
	for (size_t i = 0; i < m; i++) {
		if (k && memcmp(r[i][0], r[k - 1][1], len) <= 0) {
			if (memcmp(r[i][1], r[k - 1][1], len) > 0)
				memcpy(r[k - 1][1], r[i][1], len);
			continue;
		}
		memmove(r[k++], r[i], sizeof(*r));
	}
	static const uint8_t zero[16], ones[16] = { [0 ... 15] = 0xff };
	if (k && memcmp(r[0][0], zero, len))
		ret = elem_add(s, zero, len, NULL, 0, NFT_SET_ELEM_INTERVAL_END);
	for (size_t i = 0; i < k && !ret; i++) {
		ret = elem_add(s, r[i][0], len, NULL, 0, 0);
		if (!ret && memcmp(r[i][1], ones, len))
			ret = elem_add(s, r[i][1], len, NULL, 0, NFT_SET_ELEM_INTERVAL_END);
	}
	free(r);
	return ret;
}

static int add_sets(struct nf_objs *o, const struct nf_forward_spec *spec)
{
	struct nftnl_set *ports, *s;
	struct nftnl_expr *cnt;
	uint8_t k[8], d[24], g[NF_GUEST_KEY_MAX];
	int r;

	r = set_new(o, &ports, NF_SET_PORTS, 0, CONCAT2(TYPE_INET_PROTOCOL, TYPE_INET_SERVICE), 8);
	if (r < 0)
		return r;
	for (size_t i = 0; i < spec->n_ports; i++) {
		key_proto_port(k, spec->ports[i].proto, spec->ports[i].host_port);
		if ((r = elem_add(ports, k, 8, NULL, 0, 0)) < 0)
			return r;
	}
	for (int fam = 0; fam < NF_NFAM; fam++) {
		const struct nf_family *f = &spec->fam[fam];
		unsigned int al = addr_len(fam);
		uint32_t atype = fam == NF_V4 ? TYPE_IPADDR : TYPE_IP6ADDR;

		if (!f->enabled)
			continue;
		r = set_new(o, &s, nf_set_name[NF_SET_ALLOW][fam], NFT_SET_INTERVAL, atype, al);
		if (r < 0 || (r = add_allow(s, fam, f->allow, f->n_allow)) < 0)
			return r;

		r = set_new(o, &s, nf_set_name[NF_SET_DNAT][fam], NFT_SET_MAP,
			    CONCAT2(TYPE_INET_PROTOCOL, TYPE_INET_SERVICE), 8);
		if (r < 0)
			return r;
		nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, CONCAT2(atype, TYPE_INET_SERVICE));
		nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, al + 4);
		for (size_t i = 0; i < spec->n_ports; i++) {
			uint16_t gp = htons(spec->ports[i].guest_port);

			key_proto_port(k, spec->ports[i].proto, spec->ports[i].host_port);
			memset(d, 0, sizeof(d));
			memcpy(d, f->guest.bytes, al);
			memcpy(d + al, &gp, 2);
			if ((r = elem_add(s, k, 8, d, al + 4, 0)) < 0)
				return r;
		}

		/* per-element counters: the packets and bytes of each forward */
		r = set_new(o, &s, nf_set_name[NF_SET_GUESTS][fam], 0,
			    CONCAT3(atype, TYPE_INET_PROTOCOL, TYPE_INET_SERVICE), al + 8);
		if (r < 0)
			return r;
		cnt = nftnl_expr_alloc("counter");
		if (!cnt)
			return -ENOMEM;
		nftnl_set_add_expr(s, cnt);
		for (size_t i = 0; i < spec->n_ports; i++) {
			uint32_t glen = nf_guest_key(g, fam, &f->guest, spec->ports[i].proto,
						     spec->ports[i].guest_port);
			/* two forwards to the same guest port share one element */
			bool dup = false;
			for (size_t j = 0; j < i; j++)
				dup |= spec->ports[j].proto == spec->ports[i].proto &&
				       spec->ports[j].guest_port == spec->ports[i].guest_port;
			if (!dup && (r = elem_add(s, g, glen, NULL, 0, 0)) < 0)
				return r;
		}
	}
	return 0;
}

int nf_objs_build(const struct nf_forward_spec *spec, const bool *foreign_present,
		  const struct nf_drop_chain *autos, size_t n_autos, struct nf_objs **out)
{
	struct nftnl_udata_buf *ud;
	struct nf_objs *o;
	char comment[NFTNL_UDATA_COMMENT_MAXLEN];
	int r;

	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	r = -ENOMEM;
	o->table = nftnl_table_alloc();
	if (!o->table)
		goto err;
	nftnl_table_set_str(o->table, NFTNL_TABLE_NAME, NF_TABLE_NAME);
	nftnl_table_set_u32(o->table, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	nftnl_table_set_u32(o->table, NFTNL_TABLE_FLAGS, 0);
	snprintf(comment, sizeof(comment), NF_TAG " %s", spec->vm);
	ud = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
	if (!ud || !nftnl_udata_put_strz(ud, NFTNL_UDATA_TABLE_COMMENT, comment)) {
		nftnl_udata_buf_free(ud);
		goto err;
	}
	nftnl_table_set_data(o->table, NFTNL_TABLE_USERDATA, nftnl_udata_buf_data(ud),
			     nftnl_udata_buf_len(ud));
	nftnl_udata_buf_free(ud);

	if ((r = add_sets(o, spec)) < 0)
		goto err;

	for (size_t c = 0; c < ARRAY_SIZE(base_chains); c++)
		if ((r = add_chain(o, &base_chains[c])) < 0)
			goto err;
	for (int fam = 0; fam < NF_NFAM; fam++) {
		if (!spec->fam[fam].enabled)
			continue;
		for (size_t c = 0; c < ARRAY_SIZE(base_chains); c++)
			if ((r = add_rule_ours(o, &base_chains[c], spec, fam)) < 0)
				goto err;
	}

	for (size_t c = 0;
	     foreign_present && spec->exempt != NF_EXEMPT_NONE && c < nf_n_foreign_chains; c++) {
		const struct nf_foreign_chain *fc = &nf_foreign_chains[c];
		int fam = fc->family == NFPROTO_IPV4 ? NF_V4 : NF_V6;

		if (!foreign_present[c] || !spec->fam[fam].enabled)
			continue;
		for (size_t i = 0; i < spec->n_ports; i++)
			if ((r = add_exempt(o, fc, spec, fam, &spec->ports[i], &ex_libvirt)) < 0)
				goto err;
	}
	if (spec->exempt == NF_EXEMPT_AUTO && (r = add_autos(o, spec, autos, n_autos)) < 0)
		goto err;
	*out = o;
	return 0;
err:
	nf_objs_free(o);
	return r;
}

void nf_objs_free(struct nf_objs *o)
{
	if (!o)
		return;
	if (o->table)
		nftnl_table_free(o->table);
	for (size_t i = 0; i < o->n_sets; i++)
		nftnl_set_free(o->sets[i]);
	for (size_t i = 0; i < o->n_chains; i++)
		nftnl_chain_free(o->chains[i]);
	for (size_t i = 0; i < o->n_rules; i++)
		nftnl_rule_free(o->rules[i]);
	for (size_t i = 0; i < o->n_exempt; i++)
		nftnl_rule_free(o->exempt[i]);
	free(o->rules);
	free(o->exempt);
	free(o);
}

size_t nf_objs_count(const struct nf_objs *o, int kind)
{
	switch (kind) {
	case NF_OBJ_TABLE:
		return 1;
	case NF_OBJ_SET:
		return o->n_sets;
	case NF_OBJ_CHAIN:
		return o->n_chains;
	case NF_OBJ_RULE:
		return o->n_rules;
	case NF_OBJ_EXEMPT:
		return o->n_exempt;
	}
	return 0;
}

const void *nf_objs_get(const struct nf_objs *o, int kind, size_t i)
{
	if (i >= nf_objs_count(o, kind))
		return NULL;
	switch (kind) {
	case NF_OBJ_TABLE:
		return o->table;
	case NF_OBJ_SET:
		return o->sets[i];
	case NF_OBJ_CHAIN:
		return o->chains[i];
	case NF_OBJ_RULE:
		return o->rules[i];
	case NF_OBJ_EXEMPT:
		return o->exempt[i];
	}
	return NULL;
}

const char *nf_addr_str(const struct nf_addr *a, char *buf, size_t len)
{
	if (!inet_ntop(a->family, a->bytes, buf, len))
		snprintf(buf, len, "?");
	return buf;
}

const char *nf_proto_name(uint8_t proto)
{
	return proto == IPPROTO_UDP ? "udp" : "tcp";
}

const char *nf_family_name(uint32_t nfproto)
{
	switch (nfproto) {
	case NFPROTO_IPV4:
		return "ip";
	case NFPROTO_IPV6:
		return "ip6";
	case NFPROTO_INET:
		return "inet";
	case NFPROTO_ARP:
		return "arp";
	case NFPROTO_BRIDGE:
		return "bridge";
	case NFPROTO_NETDEV:
		return "netdev";
	}
	return "unknown";
}
