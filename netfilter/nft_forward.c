// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * up, down and status: read what the kernel holds, compare it with what the
 * spec asks for, and write the difference as one batch.
 */
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include "netfilter/nft_priv.h"
#include "netfilter/path.h"

#define ELEMS_PER_MSG 64

/* ---- the objects of a batch ------------------------------------------ */

static void b_table(struct nf_batch *b, const struct nftnl_table *t, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh;

	nlh = nf_batch_msg(b, type, NFPROTO_INET, flags, "table inet " NF_TABLE_NAME);
	if (nlh)
		nftnl_table_nlmsg_build_payload(nlh, t);
	nf_batch_put(b, nlh);
}

/* libnftnl declares nftnl_set_elem_clone() but does not export it */
static struct nftnl_set_elem *elem_copy(struct nftnl_set_elem *e)
{
	static const uint16_t attrs[] = { NFTNL_SET_ELEM_KEY, NFTNL_SET_ELEM_KEY_END,
					  NFTNL_SET_ELEM_DATA, NFTNL_SET_ELEM_FLAGS };
	struct nftnl_set_elem *c = nftnl_set_elem_alloc();
	const void *p;
	uint32_t len;

	for (size_t i = 0; c && i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		if (!nftnl_set_elem_is_set(e, attrs[i]))
			continue;
		p = nftnl_set_elem_get(e, attrs[i], &len);
		if (p && nftnl_set_elem_set(c, attrs[i], p, len) < 0) {
			nftnl_set_elem_free(c);
			c = NULL;
		}
	}
	return c;
}

static void b_set(struct nf_batch *b, struct nftnl_set *s)
{
	char what[96];
	struct nlmsghdr *nlh;
	struct nftnl_set_elems_iter *it;
	struct nftnl_set_elem *e;
	struct nftnl_set *chunk = NULL;
	size_t n = 0;

	snprintf(what, sizeof(what), "set %s", nftnl_set_get_str(s, NFTNL_SET_NAME));
	nlh = nf_batch_msg(b, NFT_MSG_NEWSET, NFPROTO_INET, NLM_F_CREATE | NLM_F_EXCL, what);
	if (nlh)
		nftnl_set_nlmsg_build_payload(nlh, s);
	nf_batch_put(b, nlh);

	snprintf(what, sizeof(what), "elements of set %s", nftnl_set_get_str(s, NFTNL_SET_NAME));
	it = nftnl_set_elems_iter_create(s);
	if (!it) {
		b->err = -ENOMEM;
		return;
	}
	/* elements in messages of bounded size, each its own ack */
	for (e = nftnl_set_elems_iter_next(it);; e = nftnl_set_elems_iter_next(it)) {
		if (chunk && (!e || n == ELEMS_PER_MSG)) {
			nlh = nf_batch_msg(b, NFT_MSG_NEWSETELEM, NFPROTO_INET,
					   NLM_F_CREATE | NLM_F_EXCL, what);
			if (nlh)
				nftnl_set_elems_nlmsg_build_payload(nlh, chunk);
			nf_batch_put(b, nlh);
			nftnl_set_free(chunk);
			chunk = NULL;
			n = 0;
		}
		if (!e)
			break;
		if (!chunk) {
			chunk = nftnl_set_alloc();
			if (!chunk) {
				b->err = -ENOMEM;
				break;
			}
			nftnl_set_set_str(chunk, NFTNL_SET_TABLE, NF_TABLE_NAME);
			nftnl_set_set_str(chunk, NFTNL_SET_NAME,
					  nftnl_set_get_str(s, NFTNL_SET_NAME));
			nftnl_set_set_u32(chunk, NFTNL_SET_FAMILY, NFPROTO_INET);
		}
		struct nftnl_set_elem *c = elem_copy(e);
		if (!c) {
			b->err = -ENOMEM;
			break;
		}
		nftnl_set_elem_add(chunk, c);
		n++;
	}
	if (chunk)
		nftnl_set_free(chunk);
	nftnl_set_elems_iter_destroy(it);
}

static void b_chain(struct nf_batch *b, const struct nftnl_chain *c)
{
	char what[96];
	struct nlmsghdr *nlh;

	snprintf(what, sizeof(what), "chain %s", nftnl_chain_get_str(c, NFTNL_CHAIN_NAME));
	nlh = nf_batch_msg(b, NFT_MSG_NEWCHAIN, NFPROTO_INET, NLM_F_CREATE | NLM_F_EXCL, what);
	if (nlh)
		nftnl_chain_nlmsg_build_payload(nlh, c);
	nf_batch_put(b, nlh);
}

static void b_rule(struct nf_batch *b, struct nftnl_rule *r, uint16_t type, uint16_t flags)
{
	char what[96];
	struct nlmsghdr *nlh;
	uint32_t fam = nftnl_rule_get_u32(r, NFTNL_RULE_FAMILY);

	snprintf(what, sizeof(what), "%s rule in %s %s %s",
		 type == NFT_MSG_DELRULE ? "removing the" : "a", nf_family_name(fam),
		 nftnl_rule_get_str(r, NFTNL_RULE_TABLE), nftnl_rule_get_str(r, NFTNL_RULE_CHAIN));
	nlh = nf_batch_msg(b, type, fam, flags, what);
	if (nlh)
		nftnl_rule_nlmsg_build_payload(nlh, r);
	nf_batch_put(b, nlh);
}

/*
 * exempt = auto: the base chains on the path that would drop the flow were
 * none of our rules there, sorted; none for the other values. How many, or
 * -errno.
 */
static int autos_wanted(struct nf_sock *s, const struct nf_forward_spec *spec,
			struct nf_drop_chain *autos, struct nf_err *err)
{
	int n;

	if (spec->exempt != NF_EXEMPT_AUTO)
		return 0;
	n = nf_path_drop_chains(s, spec, true, autos, NF_MAX_AUTO, err);
	if (n < 0)
		return n;
	if (n > NF_MAX_AUTO)
		n = NF_MAX_AUTO;
	qsort(autos, n, sizeof(*autos), nf_drop_chain_cmp);
	return n;
}

/*
 * Build what spec asks for, with exemptions in the foreign chains that exist
 * and in autos, and tell whether its text is the kernel's: up has nothing to
 * do, status is in sync.
 */
static int build_compare(const struct nf_actual *a, const struct nf_forward_spec *spec,
			 const struct nf_drop_chain *autos, size_t n_autos, struct nf_objs **o,
			 bool *same)
{
	struct nf_text want = { 0 }, have = { 0 };
	bool present[NF_N_FOREIGN_CHAINS];
	int r;

	for (size_t c = 0; c < nf_n_foreign_chains; c++)
		present[c] = a->foreign[c].exists;
	r = nf_objs_build(spec, present, autos, n_autos, o);
	if (r == 0 && (r = nf_objs_text(*o, autos, n_autos, &want)) == 0 &&
	    (r = nf_actual_text(a, &have)) == 0)
		*same = !strcmp(want.buf, have.buf);
	free(want.buf);
	free(have.buf);
	return r;
}

/* Remove every rule we tagged in a foreign chain; how many. */
static size_t b_unexempt(struct nf_batch *b, const struct nf_actual *a)
{
	size_t n = 0;

	for (size_t c = 0; c < nf_n_foreign_chains + a->n_autos; c++) {
		const struct nf_foreign_state *f = c < nf_n_foreign_chains
							   ? &a->foreign[c]
							   : &a->autos[c - nf_n_foreign_chains].st;

		for (size_t i = 0; b && i < f->n_ours; i++)
			b_rule(b, f->ours[i], NFT_MSG_DELRULE, 0);
		n += f->n_ours;
	}
	return n;
}

/*
 * Is our table the kernel's, exemptions aside? Then only they are done
 * again, and the table keeps its rules' handles and counters (libvirt,
 * re-applying its chains, puts its rules ahead of the exemption; that is no
 * reason to reset the forward's counters).
 */
static bool table_same(const struct nf_actual *a, const struct nf_objs *o)
{
	struct nf_actual ta = *a;
	struct nf_objs to = *o;
	struct nf_text want = { 0 }, have = { 0 };
	bool same;

	for (size_t c = 0; c < nf_n_foreign_chains; c++) {
		ta.foreign[c].n_ours = 0;
		ta.foreign[c].at_head = true;
	}
	ta.n_autos = 0;
	to.n_exempt = 0;
	same = a->table && nf_objs_text(&to, NULL, 0, &want) == 0 &&
	       nf_actual_text(&ta, &have) == 0 && !strcmp(want.buf, have.buf);
	free(want.buf);
	free(have.buf);
	return same;
}

int nf_forward_up(struct nf_sock *s, const struct nf_forward_spec *spec, struct nf_err *err)
{
	struct nf_drop_chain autos[NF_MAX_AUTO];
	struct nf_objs *o = NULL;
	struct nf_actual a;
	struct nf_batch b;
	bool same;
	int r, n_autos;

	r = nf_actual_read(s, &a, err);
	if (r < 0)
		return r;
	n_autos = r = autos_wanted(s, spec, autos, err);
	if (r < 0)
		goto out;
	r = build_compare(&a, spec, autos, n_autos, &o, &same);
	if (r < 0)
		goto out;
	if (same) {
		r = NF_UP_UNCHANGED;
		goto out;
	}

	if ((r = nf_batch_init(&b, s)) < 0)
		goto out;
	/* else replace the whole table: delete and add in one transaction */
	if (!table_same(&a, o)) {
		if (a.table)
			b_table(&b, o->table, NFT_MSG_DELTABLE, 0);
		b_table(&b, o->table, NFT_MSG_NEWTABLE, NLM_F_CREATE);
		for (size_t i = 0; i < o->n_sets; i++)
			b_set(&b, o->sets[i]);
		for (size_t i = 0; i < o->n_chains; i++)
			b_chain(&b, o->chains[i]);
		for (size_t i = 0; i < o->n_rules; i++)
			b_rule(&b, o->rules[i], NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
	}
	b_unexempt(&b, &a);
	/* each insert goes to the head: insert in reverse to keep their order */
	for (size_t i = o->n_exempt; i-- > 0;)
		b_rule(&b, o->exempt[i], NFT_MSG_NEWRULE, NLM_F_CREATE);
	r = nf_batch_send(s, &b, err);
	nf_batch_free(&b);
	if (r == 0)
		r = NF_UP_CHANGED;
out:
	nf_objs_free(o);
	nf_actual_free(&a);
	return r;
}

int nf_forward_down(struct nf_sock *s, bool *removed, struct nf_err *err)
{
	struct nftnl_table *t = NULL;
	struct nf_actual a;
	struct nf_batch b;
	size_t n = 0;
	int r;

	*removed = false;
	r = nf_actual_read(s, &a, err);
	if (r < 0)
		return r;
	n = b_unexempt(NULL, &a);
	if (!a.table && !n)
		goto out;
	if ((r = nf_batch_init(&b, s)) < 0)
		goto out;
	if (a.table) {
		t = nftnl_table_alloc();
		if (!t) {
			nf_batch_free(&b);
			r = -ENOMEM;
			goto out;
		}
		nftnl_table_set_str(t, NFTNL_TABLE_NAME, NF_TABLE_NAME);
		nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
		b_table(&b, t, NFT_MSG_DELTABLE, 0);
	}
	b_unexempt(&b, &a);
	r = nf_batch_send(s, &b, err);
	nf_batch_free(&b);
	if (t)
		nftnl_table_free(t);
	*removed = r == 0;
out:
	nf_actual_free(&a);
	return r;
}

/* ---- status ---------------------------------------------------------- */

struct counter_ctx {
	uint64_t packets, bytes;
};

static int counter_cb(struct nftnl_expr *e, void *data)
{
	struct counter_ctx *c = data;

	if (!strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), "counter")) {
		c->packets += nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
		c->bytes += nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_BYTES);
	}
	return 0;
}

static void add_counters(struct nftnl_rule *r, uint64_t *packets, uint64_t *bytes)
{
	struct counter_ctx c = { 0 };

	nftnl_expr_foreach(r, counter_cb, &c);
	*packets += c.packets;
	*bytes += c.bytes;
}

struct elem_find {
	const uint8_t *key;
	uint32_t klen;
	bool found;
	struct counter_ctx c;
};

static int elem_find_cb(struct nftnl_set_elem *e, void *data)
{
	struct elem_find *f = data;
	uint32_t len;
	const void *k = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);

	if (f->found || !k || len != f->klen || memcmp(k, f->key, len))
		return 0;
	f->found = true;
	nftnl_set_elem_expr_foreach(e, counter_cb, &f->c);
	return 0;
}

static struct nftnl_set *find_set(const struct nf_actual *a, const char *name)
{
	for (size_t i = 0; i < a->n_sets; i++)
		if (!strcmp(nftnl_set_get_str(a->sets[i], NFTNL_SET_NAME), name))
			return a->sets[i];
	return NULL;
}

static void exempt_add(struct nf_status *st, uint8_t nfproto, const char *table, const char *chain,
		       bool libvirt, bool wanted, const struct nf_foreign_state *f)
{
	struct nf_exempt_status *es = &st->exempt[st->n_exempt++];

	es->nfproto = nfproto;
	snprintf(es->table, sizeof(es->table), "%s", table);
	snprintf(es->chain, sizeof(es->chain), "%s", chain);
	es->libvirt = libvirt;
	es->wanted = wanted;
	es->chain_exists = !f || f->exists;
	es->n_rules = f ? f->n_ours : 0;
	es->at_head = !f || f->at_head;
	for (size_t i = 0; f && i < f->n_ours; i++)
		add_counters(f->ours[i], &es->packets, &es->bytes);
}

int nf_forward_status(struct nf_sock *s, const struct nf_forward_spec *spec, struct nf_status *st,
		      struct nf_err *err)
{
	struct nf_drop_chain autos[NF_MAX_AUTO];
	struct nf_objs *o = NULL;
	struct nf_actual a;
	int r, n_autos = 0;

	memset(st, 0, sizeof(*st));
	r = nf_actual_read(s, &a, err);
	if (r < 0)
		return r;
	st->table = a.table;
	if (spec && ((r = n_autos = autos_wanted(s, spec, autos, err)) < 0 ||
		     (r = build_compare(&a, spec, autos, n_autos, &o, &st->matches)) < 0))
		goto out;
	for (size_t i = 0; i < a.n_rules; i++)
		if (!strcmp(nftnl_rule_get_str(a.rules[i], NFTNL_RULE_CHAIN), NF_CHAIN_DROP))
			add_counters(a.rules[i], &st->dropped_packets, &st->dropped_bytes);
	if (spec) {
		st->fwd = calloc(spec->n_ports * NF_NFAM + 1, sizeof(*st->fwd));
		if (!st->fwd) {
			r = -ENOMEM;
			goto out;
		}
		for (int fam = 0; fam < NF_NFAM; fam++) {
			const struct nf_family *f = &spec->fam[fam];
			struct nftnl_set *set = find_set(&a, nf_set_name[NF_SET_GUESTS][fam]);

			if (!f->enabled)
				continue;
			for (size_t i = 0; i < spec->n_ports; i++) {
				struct nf_fwd_status *fs = &st->fwd[st->n_fwd++];
				uint8_t key[NF_GUEST_KEY_MAX];
				struct elem_find ef = { key, 0, false, { 0 } };

				fs->port = spec->ports[i];
				fs->guest = f->guest;
				ef.klen = nf_guest_key(key, fam, &f->guest, spec->ports[i].proto,
						       spec->ports[i].guest_port);
				if (set)
					nftnl_set_elem_foreach(set, elem_find_cb, &ef);
				fs->present = ef.found;
				fs->packets = ef.c.packets;
				fs->bytes = ef.c.bytes;
			}
		}
	}
	st->exempt = calloc(nf_n_foreign_chains + n_autos + a.n_autos, sizeof(*st->exempt));
	if (!st->exempt) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t c = 0; c < nf_n_foreign_chains; c++) {
		const struct nf_foreign_chain *fc = &nf_foreign_chains[c];

		exempt_add(st, fc->family, fc->table, fc->chain, true,
			   a.foreign[c].exists && (!spec || spec->exempt != NF_EXEMPT_NONE),
			   &a.foreign[c]);
	}
	/* the chains auto wants and those holding ours, both sorted: merged */
	for (size_t i = 0, j = 0; i < (size_t)n_autos || j < a.n_autos;) {
		int cmp = i == (size_t)n_autos ? 1
			  : j == a.n_autos     ? -1
					       : nf_drop_chain_cmp(&autos[i], &a.autos[j].chain);
		const struct nf_drop_chain *d = cmp <= 0 ? &autos[i] : &a.autos[j].chain;

		exempt_add(st, d->nfproto, d->table, d->chain, false, cmp <= 0,
			   cmp >= 0 ? &a.autos[j].st : NULL);
		i += cmp <= 0;
		j += cmp >= 0;
	}
	r = 0;
out:
	nf_objs_free(o);
	nf_actual_free(&a);
	if (r < 0)
		nf_status_free(st);
	return r;
}

void nf_status_free(struct nf_status *st)
{
	if (!st)
		return;
	free(st->fwd);
	free(st->exempt);
	st->fwd = NULL;
	st->exempt = NULL;
}
