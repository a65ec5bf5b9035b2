// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What the kernel holds: our table with its sets, chains and rules, and the
 * rules we tagged in the foreign chains (libvirt's) that exist. The text
 * that "up" and "status" compare is made from this by nft_text.c.
 */
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include "netfilter/monitor.h"
#include "netfilter/nft_priv.h"

static int ignore_cb(const struct nlmsghdr *nlh, void *data)
{
	return 0;
}

void nf_actual_free(struct nf_actual *a)
{
	for (size_t i = 0; i < a->n_chains; i++)
		nftnl_chain_free(a->chains[i]);
	for (size_t i = 0; i < a->n_sets; i++)
		nftnl_set_free(a->sets[i]);
	for (size_t i = 0; i < a->n_rules; i++)
		nftnl_rule_free(a->rules[i]);
	free(a->rules);
	for (size_t c = 0; c < nf_n_foreign_chains + a->n_autos; c++) {
		struct nf_foreign_state *f = c < nf_n_foreign_chains
						     ? &a->foreign[c]
						     : &a->autos[c - nf_n_foreign_chains].st;

		for (size_t i = 0; i < f->n_ours; i++)
			nftnl_rule_free(f->ours[i]);
		free(f->ours);
	}
	free(a->autos);
	memset(a, 0, sizeof(*a));
}

bool nf_tag_ours(const char *tag)
{
	return tag && !strncmp(tag, NF_TAG " ", strlen(NF_TAG) + 1);
}

int nf_drop_chain_cmp(const void *a, const void *b)
{
	const struct nf_drop_chain *x = a, *y = b;
	int r;

	if (x->nfproto != y->nfproto)
		return x->nfproto < y->nfproto ? -1 : 1;
	r = strcmp(x->table, y->table);
	return r ? r : strcmp(x->chain, y->chain);
}

static int table_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nf_actual *a = data;
	struct nftnl_table *t = nftnl_table_alloc();

	if (!t)
		return -ENOMEM;
	if (nftnl_table_nlmsg_parse(nlh, t) < 0) {
		nftnl_table_free(t);
		return -EBADMSG;
	}
	a->table = true;
	nf_table_comment(t, a->comment);
	nftnl_table_free(t);
	return 0;
}

static int chain_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nf_actual *a = data;
	struct nftnl_chain *c;

	if (a->n_chains == sizeof(a->chains) / sizeof(a->chains[0]))
		return 0; /* we make five: the text compare already differs */
	c = nftnl_chain_alloc();
	if (!c)
		return -ENOMEM;
	/* what the text and the compare read must be there: the kernel always sends it */
	if (nftnl_chain_nlmsg_parse(nlh, c) < 0 || !nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE) ||
	    !nftnl_chain_get_str(c, NFTNL_CHAIN_NAME)) {
		nftnl_chain_free(c);
		return -EBADMSG;
	}
	/* chain dumps are not filtered by table in the kernel */
	if (strcmp(nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE), NF_TABLE_NAME)) {
		nftnl_chain_free(c);
		return 0;
	}
	a->chains[a->n_chains++] = c;
	return 0;
}

static int set_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nf_actual *a = data;
	struct nftnl_set *s;

	if (a->n_sets == sizeof(a->sets) / sizeof(a->sets[0]))
		return 0;
	s = nftnl_set_alloc();
	if (!s)
		return -ENOMEM;
	if (nftnl_set_nlmsg_parse(nlh, s) < 0 || !nftnl_set_get_str(s, NFTNL_SET_NAME)) {
		nftnl_set_free(s);
		return -EBADMSG;
	}
	a->sets[a->n_sets++] = s;
	return 0;
}

static int elems_cb(const struct nlmsghdr *nlh, void *data)
{
	return nftnl_set_elems_nlmsg_parse(nlh, data) < 0 ? -EBADMSG : 0;
}

struct rules {
	struct nftnl_rule ***arr;
	size_t *n;
	bool only_ours;
	size_t seen; /* rules seen, ours or not */
	bool at_head;
};

static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct rules *rs = data;
	struct nftnl_rule *r = nftnl_rule_alloc(), **grown;
	const char *tag;

	if (!r)
		return -ENOMEM;
	if (nftnl_rule_nlmsg_parse(nlh, r) < 0 || !nftnl_rule_get_str(r, NFTNL_RULE_TABLE) ||
	    !nftnl_rule_get_str(r, NFTNL_RULE_CHAIN)) {
		nftnl_rule_free(r);
		return -EBADMSG;
	}
	rs->seen++;
	if (rs->only_ours) {
		tag = nf_exempt_tag(r);
		if (!nf_tag_ours(tag)) {
			nftnl_rule_free(r);
			return 0;
		}
		if (rs->seen != *rs->n + 1)
			rs->at_head = false;
	}
	grown = realloc(*rs->arr, (*rs->n + 1) * sizeof(**rs->arr));
	if (!grown) {
		nftnl_rule_free(r);
		return -ENOMEM;
	}
	*rs->arr = grown;
	grown[(*rs->n)++] = r;
	return 0;
}

static int dump_rules(struct nf_sock *s, uint16_t family, const char *table, const char *chain,
		      struct rules *rs, struct nf_err *err)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nlmsghdr *nlh;
	int ret;

	if (!r)
		return -ENOMEM;
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, table);
	if (chain)
		nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	nlh = nf_req_hdr(s, buf, NFT_MSG_GETRULE, family, NLM_F_DUMP);
	nftnl_rule_nlmsg_build_payload(nlh, r);
	nftnl_rule_free(r);
	ret = nf_request(s, nlh, rule_cb, rs, err);
	return ret == -ENOENT ? 0 : ret;
}

/* Does TABLE CHAIN exist in FAMILY? 1, 0, or -errno. */
static int chain_exists(struct nf_sock *s, uint16_t family, const char *table, const char *chain,
			struct nf_err *err)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nlmsghdr *nlh;
	int ret;

	if (!c)
		return -ENOMEM;
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, table);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, chain);
	nlh = nf_req_hdr(s, buf, NFT_MSG_GETCHAIN, family, 0);
	nftnl_chain_nlmsg_build_payload(nlh, c);
	nftnl_chain_free(c);
	ret = nf_request(s, nlh, ignore_cb, NULL, err);
	if (ret == -ENOENT)
		return 0;
	return ret < 0 ? ret : 1;
}

/*
 * A request about our table names only the table: NFTA_TABLE_NAME,
 * NFTA_CHAIN_TABLE or NFTA_SET_TABLE, the attribute libnftnl would write
 * for an object with nothing but its table set.
 */
static int table_request(struct nf_sock *s, uint16_t type, uint16_t flags, uint16_t attr,
			 nf_obj_cb cb, void *data, struct nf_err *err)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = nf_req_hdr(s, buf, type, NFPROTO_INET, flags);

	mnl_attr_put_strz(nlh, attr, NF_TABLE_NAME);
	return nf_request(s, nlh, cb, data, err);
}

/* the base chains on the flow's path but ours: where exempt = auto puts exemptions */
struct autos_ctx {
	struct nf_drop_chain *c;
	size_t n, cap;
};

static int autos_cb(const struct nf_base_chain *bc, void *data)
{
	struct autos_ctx *x = data;
	struct nf_drop_chain *grown;

	if (!nf_hook_on_path(bc->nfproto, bc->hook) ||
	    (bc->nfproto == NFPROTO_INET && !strcmp(bc->table, NF_TABLE_NAME)))
		return 0;
	if (x->n == x->cap) {
		x->cap = x->cap ? 2 * x->cap : 16;
		grown = realloc(x->c, x->cap * sizeof(*x->c));
		if (!grown)
			return -ENOMEM;
		x->c = grown;
	}
	memset(&x->c[x->n], 0, sizeof(x->c[x->n]));
	x->c[x->n].nfproto = bc->nfproto;
	snprintf(x->c[x->n].table, sizeof(x->c[x->n].table), "%s", bc->table);
	snprintf(x->c[x->n].chain, sizeof(x->c[x->n].chain), "%s", bc->name);
	x->c[x->n].hook = bc->hook;
	x->c[x->n].prio = bc->prio;
	x->n++;
	return 0;
}

/* Our rules in other base chains on the path, kept for the chains that have some. */
static int autos_read(struct nf_sock *s, struct nf_actual *a, struct nf_err *err)
{
	struct autos_ctx x = { 0 };
	int r;

	r = nf_base_chains(s, autos_cb, &x, err);
	if (r == 0 && x.n && !(a->autos = calloc(x.n, sizeof(*a->autos))))
		r = -ENOMEM;
	for (size_t c = 0; r == 0 && c < x.n; c++) {
		struct nf_auto_state *as = &a->autos[a->n_autos];
		struct rules rs = { &as->st.ours, &as->st.n_ours, true, 0, true };

		as->chain = x.c[c];
		as->st.exists = true;
		r = dump_rules(s, x.c[c].nfproto, x.c[c].table, x.c[c].chain, &rs, err);
		as->st.at_head = rs.at_head;
		if (as->st.n_ours)
			a->n_autos++;
	}
	free(x.c);
	if (r == 0 && a->n_autos > 1) /* autos is NULL while there are none */
		qsort(a->autos, a->n_autos, sizeof(*a->autos), nf_drop_chain_cmp);
	return r;
}

static int actual_read(struct nf_sock *s, struct nf_actual *a, struct nf_err *err)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	int r;

	memset(a, 0, sizeof(*a));

	r = table_request(s, NFT_MSG_GETTABLE, 0, NFTA_TABLE_NAME, table_cb, a, err);
	if (r < 0 && r != -ENOENT)
		goto err;

	if (a->table) {
		if ((r = table_request(s, NFT_MSG_GETCHAIN, NLM_F_DUMP, NFTA_CHAIN_TABLE, chain_cb,
				       a, err)) < 0 ||
		    (r = table_request(s, NFT_MSG_GETSET, NLM_F_DUMP, NFTA_SET_TABLE, set_cb, a,
				       err)) < 0)
			goto err;
		for (size_t i = 0; i < a->n_sets; i++) {
			nlh = nf_req_hdr(s, buf, NFT_MSG_GETSETELEM, NFPROTO_INET, NLM_F_DUMP);
			nftnl_set_elems_nlmsg_build_payload(nlh, a->sets[i]);
			if ((r = nf_request(s, nlh, elems_cb, a->sets[i], err)) < 0)
				goto err;
		}

		struct rules rs = { &a->rules, &a->n_rules, false, 0, true };
		if ((r = dump_rules(s, NFPROTO_INET, NF_TABLE_NAME, NULL, &rs, err)) < 0)
			goto err;
	}

	for (size_t c = 0; c < nf_n_foreign_chains; c++) {
		const struct nf_foreign_chain *fc = &nf_foreign_chains[c];
		struct nf_foreign_state *f = &a->foreign[c];

		r = chain_exists(s, fc->family, fc->table, fc->chain, err);
		if (r < 0)
			goto err;
		f->exists = r;
		f->at_head = true;
		if (!f->exists)
			continue;
		struct rules rs = { &f->ours, &f->n_ours, true, 0, true };
		if ((r = dump_rules(s, fc->family, fc->table, fc->chain, &rs, err)) < 0)
			goto err;
		f->at_head = rs.at_head;
	}
	if ((r = autos_read(s, a, err)) < 0)
		goto err;
	return 0;
err:
	nf_actual_free(a);
	return r;
}

int nf_actual_read(struct nf_sock *s, struct nf_actual *a, struct nf_err *err)
{
	int r = -EINTR;

	/* a dump that another program's change interrupted is read again, quietly */
	for (int i = 0; i < NF_DUMP_TRIES && r == -EINTR; i++)
		r = actual_read(s, a, err);
	return r;
}

struct base_ctx {
	int (*cb)(const struct nf_base_chain *bc, void *data);
	void *data;
};

static int base_chain_cb(const struct nlmsghdr *nlh, void *data)
{
	struct base_ctx *x = data;
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nf_base_chain bc = { 0 };
	int r = 0;

	if (!c)
		return -ENOMEM;
	if (nftnl_chain_nlmsg_parse(nlh, c) < 0) {
		nftnl_chain_free(c);
		return -EBADMSG;
	}
	bc.table = nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE);
	bc.name = nftnl_chain_get_str(c, NFTNL_CHAIN_NAME);
	bc.nfproto = (uint8_t)nftnl_chain_get_u32(c, NFTNL_CHAIN_FAMILY);
	if (nftnl_chain_is_set(c, NFTNL_CHAIN_DEV))
		bc.dev = nftnl_chain_get_str(c, NFTNL_CHAIN_DEV);
	if (nftnl_chain_is_set(c, NFTNL_CHAIN_PRIO))
		bc.prio = nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO);
	bc.policy_drop = nftnl_chain_is_set(c, NFTNL_CHAIN_POLICY) &&
			 nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY) == NF_DROP;
	if (bc.table && bc.name && nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM)) {
		bc.hook = (int)nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM);
		r = x->cb(&bc, x->data);
	}
	nftnl_chain_free(c);
	return r;
}

int nf_base_chains(struct nf_sock *s, int (*cb)(const struct nf_base_chain *bc, void *data),
		   void *data, struct nf_err *err)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct base_ctx x = { cb, data };

	return nf_request(s, nf_req_hdr(s, buf, NFT_MSG_GETCHAIN, NFPROTO_UNSPEC, NLM_F_DUMP),
			  base_chain_cb, &x, err);
}
