// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The flow's path through other programs' nftables chains, and the sockets
 * it would take connections from. A chain is judged by what nft shows of
 * it: its policy and its final rule, and whether a rule accepts DNATed
 * flows, there or in a chain it jumps to (a jump, a goto, a verdict map's
 * jump, as NixOS's `ct state vmap { new : jump forward-allow }`); what a
 * rule's matches select is not evaluated (a drop that only concerns other
 * traffic is still a drop at the end of the chain). A reverse-path accept
 * (`fib saddr ... oif exists accept`) covers the flow too: a LAN client's
 * address routes back the way it came.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/xt_conntrack.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libmnl/libmnl.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>

#include "netfilter/monitor.h"
#include "netfilter/nft_priv.h"
#include "netfilter/path.h"
#include "netfilter/rtnl.h"

const char *nf_hook_name(uint8_t nfproto, int hook)
{
	static const char *const inet[] = { "prerouting", "input",	 "forward",
					    "output",	  "postrouting", "ingress" };

	if (nfproto == NFPROTO_NETDEV)
		return hook == NF_NETDEV_INGRESS ? "ingress" : "egress";
	return hook >= 0 && (size_t)hook < ARRAY_SIZE(inet) ? inet[hook] : "?";
}

/* ---- one rule ---- */

/* the chains one chain can send a packet on to, and the verdict maps that can */
#define JUMPS_MAX 16
#define JUMP_DEPTH 4

struct jumps {
	char chain[JUMPS_MAX][NFT_NAME_MAXLEN];
	size_t n;
	char map[JUMPS_MAX][NFT_NAME_MAXLEN];
	size_t n_maps;
	bool cut; /* more than it keeps: those it could not keep are not followed */
};

static void jump_add(char (*list)[NFT_NAME_MAXLEN], size_t *n, bool *cut, const char *name)
{
	if (!name || !name[0])
		return;
	for (size_t i = 0; i < *n; i++)
		if (!strcmp(list[i], name))
			return;
	if (*n == JUMPS_MAX) {
		*cut = true;
		return;
	}
	snprintf(list[(*n)++], NFT_NAME_MAXLEN, "%s", name);
}

struct rule_look {
	bool accept, drop, dnat, conditional, xt, rpf;
	struct jumps *j;
};

static int expr_cb(struct nftnl_expr *e, void *data)
{
	struct rule_look *l = data;
	const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
	uint32_t len;

	if (!strcmp(name, "immediate") && nftnl_expr_is_set(e, NFTNL_EXPR_IMM_VERDICT)) {
		int v = (int)nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_VERDICT);

		l->accept |= v == NF_ACCEPT;
		l->drop |= v == NF_DROP;
		if ((v == NFT_JUMP || v == NFT_GOTO) && l->j)
			jump_add(l->j->chain, &l->j->n, &l->j->cut,
				 nftnl_expr_get_str(e, NFTNL_EXPR_IMM_CHAIN));
	} else if (!strcmp(name, "lookup") && nftnl_expr_is_set(e, NFTNL_EXPR_LOOKUP_DREG) &&
		   nftnl_expr_get_u32(e, NFTNL_EXPR_LOOKUP_DREG) == NFT_REG_VERDICT) {
		/* a verdict map: its elements say where the packet goes */
		if (l->j)
			jump_add(l->j->map, &l->j->n_maps, &l->j->cut,
				 nftnl_expr_get_str(e, NFTNL_EXPR_LOOKUP_SET));
		l->conditional = true;
	} else if (!strcmp(name, "fib")) {
		/* a reverse-path check: the source's route back, by its output interface */
		uint32_t f = nftnl_expr_get_u32(e, NFTNL_EXPR_FIB_FLAGS),
			 res = nftnl_expr_get_u32(e, NFTNL_EXPR_FIB_RESULT);

		l->rpf |= (f & NFTA_FIB_F_SADDR) &&
			  (res == NFT_FIB_RESULT_OIF || res == NFT_FIB_RESULT_OIFNAME);
		l->conditional = true;
	} else if (!strcmp(name, "reject")) {
		l->drop = true;
	} else if (!strcmp(name, "bitwise")) {
		/* ct status & dnat: the mask is the status word, host-endian */
		const uint32_t *mask = nftnl_expr_get(e, NFTNL_EXPR_BITWISE_MASK, &len);

		l->dnat |= mask && len == 4 && (*mask & IPS_DST_NAT);
		l->conditional = true;
	} else if (!strcmp(name, "target")) {
		l->xt = true;
		l->conditional = true;
	} else if (!strcmp(name, "match")) {
		l->xt = true;
		const struct xt_conntrack_mtinfo2 *ct = nftnl_expr_get(e, NFTNL_EXPR_MT_INFO, &len);
		uint32_t rev = nftnl_expr_get_u32(e, NFTNL_EXPR_MT_REV);

		/* revisions 2 and 3 share their start; what iptables-nft writes today */
		if (!strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_MT_NAME), "conntrack") && ct &&
		    (rev == 2 || rev == 3) && len >= sizeof(*ct))
			l->dnat |= (ct->match_flags & XT_CONNTRACK_STATE) &&
				   (ct->state_mask & XT_CONNTRACK_STATE_DNAT) &&
				   !(ct->invert_flags & XT_CONNTRACK_STATE);
		if (strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_MT_NAME), "comment"))
			l->conditional = true;
	} else if (strcmp(name, "counter") && strcmp(name, "log") && strcmp(name, "notrack")) {
		l->conditional = true;
	}
	return 0;
}

struct chain_look {
	bool ignore_ours; /* as if our tagged rules were not there */
	struct jumps j;	  /* where its rules send packets on */
	size_t n_rules;
	bool covered;	 /* a rule accepts DNATed flows */
	bool last_drops; /* the last rule drops whatever reaches it */
	bool any_drop;	 /* a rule drops or rejects what it matches */
	bool xt;	 /* a rule has xtables matches or targets: iptables-nft wrote it */
};

static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct chain_look *c = data;
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct rule_look l = { .j = &c->j };
	bool ours;

	if (!r)
		return -ENOMEM;
	if (nftnl_rule_nlmsg_parse(nlh, r) < 0) {
		nftnl_rule_free(r);
		return -EBADMSG;
	}
	ours = nf_tag_ours(nf_exempt_tag(r));
	if (!(ours && c->ignore_ours)) {
		nftnl_expr_foreach(r, expr_cb, &l);
		c->covered |= l.accept && (l.dnat || l.rpf || ours);
		c->last_drops = l.drop && !l.conditional;
		c->any_drop |= l.drop;
		c->xt |= l.xt;
		c->n_rules++;
	}
	nftnl_rule_free(r);
	return 0;
}

/*
 * Is this iptables-nft's chain? One of its rules says so, or its name does:
 * a built-in chain of one of iptables' tables, as ufw's FORWARD, whose rules
 * may all be plain jumps.
 */
static bool iptables_chain(const struct nf_drop_chain *d, const struct chain_look *l)
{
	static const char *const tables[] = { "filter", "nat", "mangle", "raw", "security" };
	static const char *const chains[] = { "PREROUTING", "INPUT", "FORWARD", "OUTPUT",
					      "POSTROUTING" };
	bool t = false, c = false;

	if (d->nfproto != NFPROTO_IPV4 && d->nfproto != NFPROTO_IPV6)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(tables); i++)
		t |= !strcmp(d->table, tables[i]);
	for (size_t i = 0; i < ARRAY_SIZE(chains); i++)
		c |= !strcmp(d->chain, chains[i]);
	return l->xt || (t && c);
}

/* ---- the chains ---- */

struct chains_ctx {
	const struct nf_forward_spec *spec;
	/* base chains on the path, to look at once the dump is over */
	struct nf_drop_chain cand[64];
	size_t n_cand;
};

static bool family_used(const struct nf_forward_spec *spec, uint8_t nfproto)
{
	switch (nfproto) {
	case NFPROTO_IPV4:
		return spec->fam[NF_V4].enabled;
	case NFPROTO_IPV6:
		return spec->fam[NF_V6].enabled;
	default:
		return true;
	}
}

static int chain_cb(const struct nf_base_chain *bc, void *data)
{
	struct chains_ctx *x = data;
	struct nf_drop_chain *d;

	if (!nf_hook_on_path(bc->nfproto, bc->hook) || !family_used(x->spec, bc->nfproto) ||
	    (bc->nfproto == NFPROTO_INET && !strcmp(bc->table, NF_TABLE_NAME)) ||
	    (bc->nfproto == NFPROTO_NETDEV && (!bc->dev || strcmp(bc->dev, x->spec->ifname))) ||
	    x->n_cand == ARRAY_SIZE(x->cand))
		return 0;
	d = &x->cand[x->n_cand++];
	memset(d, 0, sizeof(*d));
	d->nfproto = bc->nfproto;
	snprintf(d->table, sizeof(d->table), "%s", bc->table);
	snprintf(d->chain, sizeof(d->chain), "%s", bc->name);
	d->hook = bc->hook;
	d->prio = bc->prio;
	d->policy = bc->policy_drop;
	return 0;
}

/* a verdict map's elements: the chains they jump or go to */
static int elems_cb(const struct nlmsghdr *nlh, void *data)
{
	struct jumps *j = data;
	struct nftnl_set *set = nftnl_set_alloc();
	struct nftnl_set_elems_iter *it;
	struct nftnl_set_elem *e;

	if (!set)
		return -ENOMEM;
	if (nftnl_set_elems_nlmsg_parse(nlh, set) < 0) {
		nftnl_set_free(set);
		return -EBADMSG;
	}
	if ((it = nftnl_set_elems_iter_create(set))) {
		while ((e = nftnl_set_elems_iter_next(it))) {
			int v = nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_VERDICT)
					? (int)nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_VERDICT)
					: 0;

			if (v == NFT_JUMP || v == NFT_GOTO)
				jump_add(j->chain, &j->n, &j->cut,
					 nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN));
		}
		nftnl_set_elems_iter_destroy(it);
	}
	nftnl_set_free(set);
	return 0;
}

static int map_jumps(struct nf_sock *s, const struct nf_drop_chain *d, const char *map,
		     struct jumps *j, struct nf_err *err)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nftnl_set *set = nftnl_set_alloc();
	struct nlmsghdr *nlh;
	size_t n = j->n;
	int ret = -EINTR;

	if (!set)
		return -ENOMEM;
	nftnl_set_set_str(set, NFTNL_SET_TABLE, d->table);
	nftnl_set_set_str(set, NFTNL_SET_NAME, map);
	for (int i = 0; i < NF_DUMP_TRIES && ret == -EINTR; i++) {
		j->n = n; /* an interrupted dump is read again from its start */
		nlh = nf_req_hdr(s, buf, NFT_MSG_GETSETELEM, d->nfproto, NLM_F_DUMP);
		nftnl_set_elems_nlmsg_build_payload(nlh, set);
		ret = nf_request(s, nlh, elems_cb, j, err);
	}
	nftnl_set_free(set);
	return ret == -ENOENT ? 0 : ret;
}

static int look_one(struct nf_sock *s, const struct nf_drop_chain *d, bool ignore_ours,
		    struct chain_look *l, struct nf_err *err)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nlmsghdr *nlh;
	int ret = -EINTR;

	if (!r)
		return -ENOMEM;
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, d->table);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, d->chain);
	for (int i = 0; i < NF_DUMP_TRIES && ret == -EINTR; i++) {
		memset(l, 0, sizeof(*l));
		l->ignore_ours = ignore_ours;
		nlh = nf_req_hdr(s, buf, NFT_MSG_GETRULE, d->nfproto, NLM_F_DUMP);
		nftnl_rule_nlmsg_build_payload(nlh, r);
		ret = nf_request(s, nlh, rule_cb, l, err);
	}
	nftnl_rule_free(r);
	if (ret == -ENOENT)
		return 0;
	for (size_t i = 0; ret >= 0 && i < l->j.n_maps; i++)
		ret = map_jumps(s, d, l->j.map[i], &l->j, err);
	return ret;
}

/*
 * The chain d, and whether it or a chain it sends packets on to (up to
 * JUMP_DEPTH levels down) accepts DNATed flows: l->covered. reach, when
 * given, hears of every chain so reached.
 */
static int look_at_depth(struct nf_sock *s, const struct nf_drop_chain *d, bool ignore_ours,
			 struct chain_look *l, nf_reach_cb reach, void *data, int depth,
			 struct nf_err *err)
{
	struct nf_drop_chain sub = *d;
	struct chain_look *sl;
	int r;

	if ((r = look_one(s, d, ignore_ours, l, err)) < 0)
		return r;
	if (depth >= JUMP_DEPTH || !l->j.n)
		return 0;
	if (!(sl = malloc(sizeof(*sl))))
		return -ENOMEM;
	for (size_t i = 0; i < l->j.n && r >= 0; i++) {
		snprintf(sub.chain, sizeof(sub.chain), "%s", l->j.chain[i]);
		if (reach && (r = reach(d->nfproto, d->table, sub.chain, data)) < 0)
			break;
		r = look_at_depth(s, &sub, ignore_ours, sl, reach, data, depth + 1, err);
		l->covered |= r >= 0 && sl->covered;
	}
	free(sl);
	return r < 0 ? r : 0;
}

static int look_at(struct nf_sock *s, const struct nf_drop_chain *d, bool ignore_ours,
		   struct chain_look *l, struct nf_err *err)
{
	return look_at_depth(s, d, ignore_ours, l, NULL, NULL, 0, err);
}

int nf_path_reached(struct nf_sock *s, uint8_t nfproto, const char *table, const char *chain,
		    nf_reach_cb reach, void *data, struct nf_err *err)
{
	struct nf_drop_chain d = { .nfproto = nfproto };
	struct chain_look *l = malloc(sizeof(*l));
	int r;

	if (!l)
		return -ENOMEM;
	snprintf(d.table, sizeof(d.table), "%s", table);
	snprintf(d.chain, sizeof(d.chain), "%s", chain);
	r = look_at_depth(s, &d, false, l, reach, data, 0, err);
	free(l);
	return r;
}

int nf_path_drop_chains(struct nf_sock *s, const struct nf_forward_spec *spec, bool ignore_ours,
			struct nf_drop_chain *out, size_t max, struct nf_err *err)
{
	struct chains_ctx x;
	size_t n = 0;
	int r = -EINTR;

	for (int i = 0; i < NF_DUMP_TRIES && r == -EINTR; i++) {
		memset(&x, 0, sizeof(x));
		x.spec = spec;
		r = nf_base_chains(s, chain_cb, &x, err);
	}
	if (r < 0)
		return r;
	for (size_t i = 0; i < x.n_cand; i++) {
		struct chain_look l;

		if ((r = look_at(s, &x.cand[i], ignore_ours, &l, err)) < 0)
			return r;
		if (l.covered || !(x.cand[i].policy || (l.n_rules && l.last_drops)))
			continue;
		x.cand[i].iptables = iptables_chain(&x.cand[i], &l);
		if (n < max)
			out[n] = x.cand[i];
		n++;
	}
	return (int)n;
}

int nf_path_libvirt_rejects(struct nf_sock *s, const struct nf_forward_spec *spec,
			    const struct nf_foreign_chain **out, size_t max, struct nf_err *err)
{
	size_t n = 0;

	for (size_t c = 0; c < nf_n_foreign_chains; c++) {
		const struct nf_foreign_chain *fc = &nf_foreign_chains[c];
		struct nf_drop_chain d = { .nfproto = (uint8_t)fc->family };
		struct chain_look l;
		int r;

		if (!family_used(spec, d.nfproto))
			continue;
		snprintf(d.table, sizeof(d.table), "%s", fc->table);
		snprintf(d.chain, sizeof(d.chain), "%s", fc->chain);
		/* a chain that is not there reads as one without rules */
		if ((r = look_at(s, &d, false, &l, err)) < 0)
			return r;
		if (!l.any_drop || l.covered)
			continue;
		if (n < max)
			out[n] = fc;
		n++;
	}
	return (int)n;
}

/* ---- listeners (NETLINK_SOCK_DIAG) ---- */

struct listen_ctx {
	const struct nf_forward_spec *spec;
	uint8_t proto;
	struct nf_listener *out;
	size_t max, n;
};

static int diag_attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_type_valid(a, INET_DIAG_MAX) < 0)
		return MNL_CB_OK;
	tb[mnl_attr_get_type(a)] = a;
	return MNL_CB_OK;
}

static bool is_zero(const uint8_t *b, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (b[i])
			return false;
	return true;
}

static int diag_cb(const struct nlmsghdr *nlh, void *data)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	const struct inet_diag_msg *m = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[INET_DIAG_MAX + 1] = { 0 };
	struct listen_ctx *c = data;
	const struct nf_forward_spec *s = c->spec;
	const uint8_t *src = (const uint8_t *)m->id.idiag_src;
	uint16_t port = ntohs(m->id.idiag_sport);
	bool hit = false, v6only = false;

	if (mnl_attr_parse(nlh, sizeof(*m), diag_attr_cb, tb) < 0)
		return MNL_CB_OK;
	if (tb[INET_DIAG_SKV6ONLY] && mnl_attr_get_payload_len(tb[INET_DIAG_SKV6ONLY]) >= 1)
		v6only = *(const uint8_t *)mnl_attr_get_payload(tb[INET_DIAG_SKV6ONLY]);
	for (size_t i = 0; i < s->n_ports && !hit; i++) {
		if (s->ports[i].proto != c->proto || s->ports[i].host_port != port)
			continue;
		if (m->idiag_family == AF_INET && s->fam[NF_V4].enabled)
			hit = is_zero(src, 4) || !memcmp(src, s->fam[NF_V4].host.bytes, 4);
		else if (m->idiag_family == AF_INET6)
			hit = (s->fam[NF_V6].enabled &&
			       (is_zero(src, 16) || !memcmp(src, s->fam[NF_V6].host.bytes, 16))) ||
			      /* a dual-stack socket takes IPv4 too: on :: or ::ffff:HOST */
			      (s->fam[NF_V4].enabled && !v6only &&
			       (is_zero(src, 16) ||
				(!memcmp(src, mapped, 12) &&
				 !memcmp(src + 12, s->fam[NF_V4].host.bytes, 4))));
	}
	if (!hit)
		return MNL_CB_OK;
	if (c->n < c->max) {
		struct nf_listener *l = &c->out[c->n];

		memset(l, 0, sizeof(*l));
		l->addr.family = m->idiag_family;
		memcpy(l->addr.bytes, src, m->idiag_family == AF_INET ? 4 : 16);
		l->proto = c->proto;
		l->port = port;
		l->inode = m->idiag_inode;
	}
	c->n++;
	return MNL_CB_OK;
}

int nf_path_listeners(const struct nf_forward_spec *spec, struct nf_listener *out, size_t max)
{
	struct listen_ctx c = { spec, 0, out, max, 0 };
	static const uint8_t families[] = { AF_INET, AF_INET6 };
	static const uint8_t protos[] = { IPPROTO_TCP, IPPROTO_UDP };

	for (size_t f = 0; f < ARRAY_SIZE(families); f++)
		for (size_t p = 0; p < ARRAY_SIZE(protos); p++) {
			struct inet_diag_req_v2 req = {
				.sdiag_family = families[f],
				.sdiag_protocol = protos[p],
				/* TCP: listening; UDP: bound, unconnected (TCP_CLOSE) */
				.idiag_states = protos[p] == IPPROTO_TCP ? 1u << TCP_LISTEN
									 : 1u << TCP_CLOSE,
			};
			int r;

			c.proto = protos[p];
			r = nl_dump(NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY, &req, sizeof(req),
				    diag_cb, &c);
			/* a kernel without UDP or IPv6 diag says ENOENT: nothing there */
			if (r < 0 && r != -ENOENT)
				return r;
		}
	return (int)c.n;
}
