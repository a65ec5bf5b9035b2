// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Canonical text of nftables objects: what the kernel holds, less what the
 * kernel itself changes (handles, counters, use counts). Two objects with the
 * same text are the same rule; this is how "up" knows it has nothing to do
 * and how the unit tier compares round trips. One text for a whole state,
 * built (nf_objs) or read back (nf_actual), is what "up" and "status" compare.
 *
 * Pure, as the builder is: no socket, so the unit tier reaches all of it.
 */
#include <errno.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/xt_comment.h>
#include <stdarg.h>
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
#include "shared/strbuf.h"

/*
 * The value of the first userdata attribute of type, and its length; NULL
 * when there is none. Userdata is nft's type-length-value bytes, walked here
 * within its length: libnftnl 1.2.4's nftnl_udata_parse() trusts each
 * attribute's length byte and reads past the end of a short one.
 */
static const char *udata_find(const void *ud, uint32_t len, uint8_t type, uint8_t *vlen)
{
	const uint8_t *p = ud, *end = p + len;

	while (p && end - p >= 2 && end - p - 2 >= p[1]) {
		if (p[0] == type) {
			*vlen = p[1];
			return (const char *)p + 2;
		}
		p += 2 + p[1];
	}
	return NULL;
}

struct tag_ctx {
	const char *tag;
};

static int expr_tag_cb(struct nftnl_expr *e, void *data)
{
	struct tag_ctx *t = data;
	uint32_t len;

	const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME), *mt;

	/* a match without its name attribute reads back as NULL */
	if (!name || strcmp(name, "match") || !(mt = nftnl_expr_get_str(e, NFTNL_EXPR_MT_NAME)) ||
	    strcmp(mt, "comment"))
		return 0;
	const struct xt_comment_info *ci = nftnl_expr_get(e, NFTNL_EXPR_MT_INFO, &len);
	if (ci && len >= sizeof(*ci) && memchr(ci->comment, 0, sizeof(ci->comment)))
		t->tag = ci->comment;
	return 0;
}

/* The rule's comment, from rule userdata or an xt comment match; NULL if none. */
const char *nf_exempt_tag(const void *rule)
{
	struct nftnl_rule *r = (struct nftnl_rule *)rule;
	struct tag_ctx t = { NULL };
	uint32_t len;
	uint8_t vlen;
	const void *ud;

	if (nftnl_rule_is_set(r, NFTNL_RULE_USERDATA) &&
	    (ud = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &len))) {
		const char *c = udata_find(ud, len, NFTNL_UDATA_RULE_COMMENT, &vlen);

		/* nft writes the comment with its NUL; one without it is no comment */
		if (c && vlen && memchr(c, 0, vlen))
			t.tag = c;
	}
	if (!t.tag)
		nftnl_expr_foreach(r, expr_tag_cb, &t);
	return t.tag;
}

struct expr_ctx {
	struct strbuf *o;
};

static int expr_text_cb(struct nftnl_expr *e, void *data)
{
	struct strbuf *o = ((struct expr_ctx *)data)->o;
	const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
	char tmp[512];
	uint32_t len;

	sb_printf(o, " [%s", name);
	if (!strcmp(name, "counter")) {
		/* counts change under traffic: not part of what the rule is */
	} else if (!strcmp(name, "match")) {
		const void *info = nftnl_expr_get(e, NFTNL_EXPR_MT_INFO, &len);

		sb_printf(o, " %s rev %u ", nftnl_expr_get_str(e, NFTNL_EXPR_MT_NAME),
			  nftnl_expr_get_u32(e, NFTNL_EXPR_MT_REV));
		if (info)
			sb_hex(o, info, len);
	} else {
		if (nftnl_expr_snprintf(tmp, sizeof(tmp), e, NFTNL_OUTPUT_DEFAULT, 0) < 0)
			o->err = -EINVAL;
		sb_printf(o, " %s", tmp);
	}
	sb_printf(o, "]");
	return 0;
}

int nf_rule_text(const void *rule, char *buf, size_t len)
{
	struct nftnl_rule *r = (struct nftnl_rule *)rule;
	struct strbuf o = strbuf_on(buf, len);
	struct expr_ctx c = { &o };
	const char *tag = nf_exempt_tag(r);

	sb_printf(&o, "rule %u %s %s", nftnl_rule_get_u32(r, NFTNL_RULE_FAMILY),
		  nftnl_rule_get_str(r, NFTNL_RULE_TABLE), nftnl_rule_get_str(r, NFTNL_RULE_CHAIN));
	if (tag)
		sb_printf(&o, " \"%s\"", tag);
	nftnl_expr_foreach(r, expr_text_cb, &c);
	return o.err;
}

struct elems {
	char **line;
	size_t n, cap;
	int err;
};

static int elem_text_cb(struct nftnl_set_elem *e, void *data)
{
	struct elems *el = data;
	char buf[256];
	struct strbuf o = strbuf_on(buf, sizeof(buf));
	uint32_t len;
	const void *p;

	p = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
	if (p)
		sb_hex(&o, p, len);
	if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_DATA)) {
		p = nftnl_set_elem_get(e, NFTNL_SET_ELEM_DATA, &len);
		sb_printf(&o, " : ");
		if (p)
			sb_hex(&o, p, len);
	}
	if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_FLAGS))
		sb_printf(&o, " flags %u", nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_FLAGS));
	if (o.err || el->err) {
		el->err = o.err ? o.err : el->err;
		return 0;
	}
	if (el->n == el->cap) {
		size_t cap = el->cap ? el->cap * 2 : 16;
		char **l = realloc(el->line, cap * sizeof(*l));

		if (!l) {
			el->err = -ENOMEM;
			return 0;
		}
		el->line = l;
		el->cap = cap;
	}
	if (!(el->line[el->n] = strdup(buf)))
		el->err = -ENOMEM;
	else
		el->n++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int set_expr_cb(struct nftnl_expr *e, void *data)
{
	sb_printf(data, " [%s]", nftnl_expr_get_str(e, NFTNL_EXPR_NAME));
	return 0;
}

/* Elements sorted: the kernel dumps them in its own order. */
int nf_set_text(const void *set, char *buf, size_t len)
{
	struct nftnl_set *s = (struct nftnl_set *)set;
	struct strbuf o = strbuf_on(buf, len);

	sb_printf(&o, "set %u %s %s flags 0x%x key %u/%u", nftnl_set_get_u32(s, NFTNL_SET_FAMILY),
		  nftnl_set_get_str(s, NFTNL_SET_TABLE), nftnl_set_get_str(s, NFTNL_SET_NAME),
		  nftnl_set_get_u32(s, NFTNL_SET_FLAGS), nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE),
		  nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN));
	if (nftnl_set_is_set(s, NFTNL_SET_DATA_TYPE))
		sb_printf(&o, " data %u/%u", nftnl_set_get_u32(s, NFTNL_SET_DATA_TYPE),
			  nftnl_set_get_u32(s, NFTNL_SET_DATA_LEN));
	struct elems el = { 0 };

	nftnl_set_expr_foreach(s, set_expr_cb, &o);
	nftnl_set_elem_foreach(s, elem_text_cb, &el);
	if (el.n)
		qsort(el.line, el.n, sizeof(*el.line), cmp_str);
	for (size_t i = 0; i < el.n; i++) {
		sb_printf(&o, "\n  elem %s", el.line[i]);
		free(el.line[i]);
	}
	free(el.line);
	return o.err ? o.err : el.err;
}

int nf_chain_text(const void *chain, char *buf, size_t len)
{
	const struct nftnl_chain *c = chain;
	struct strbuf o = strbuf_on(buf, len);

	sb_printf(&o, "chain %u %s %s", nftnl_chain_get_u32(c, NFTNL_CHAIN_FAMILY),
		  nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE),
		  nftnl_chain_get_str(c, NFTNL_CHAIN_NAME));
	if (nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM))
		sb_printf(&o, " %s hook %u prio %d policy %u",
			  nftnl_chain_get_str(c, NFTNL_CHAIN_TYPE),
			  nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM),
			  nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO),
			  nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY));
	return o.err;
}

/* ---- a whole state --------------------------------------------------- */

void nf_table_comment(const struct nftnl_table *t, char *comment)
{
	uint32_t len;
	uint8_t vlen;
	const void *ud;
	const char *c;

	comment[0] = 0;
	if (!nftnl_table_is_set(t, NFTNL_TABLE_USERDATA) ||
	    !(ud = nftnl_table_get_data(t, NFTNL_TABLE_USERDATA, &len)))
		return;
	/* userdata is bytes: a comment without its NUL is read to its length only */
	if ((c = udata_find(ud, len, NFTNL_UDATA_TABLE_COMMENT, &vlen)))
		snprintf(comment, NF_COMMENT_LEN, "%.*s", (int)vlen, c);
}

static void text_add(struct nf_text *t, int (*fn)(const void *, char *, size_t), const void *obj)
{
	size_t need = 1 << 14;

	if (t->err)
		return;
	for (;;) {
		if (t->cap - t->len < need) {
			char *b = realloc(t->buf, t->cap + need * 2);

			if (!b) {
				t->err = -ENOMEM;
				return;
			}
			t->buf = b;
			t->cap += need * 2;
		}
		int r = fn(obj, t->buf + t->len, t->cap - t->len - 1);
		if (r == -ENOSPC) {
			need = (t->cap - t->len) * 2;
			continue;
		}
		if (r < 0) {
			t->err = r;
			return;
		}
		t->len += strlen(t->buf + t->len);
		t->buf[t->len++] = '\n';
		t->buf[t->len] = 0;
		return;
	}
}

static int table_text(const void *comment, char *buf, size_t len)
{
	int n = snprintf(buf, len, "table inet %s \"%s\"", NF_TABLE_NAME, (const char *)comment);

	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

static int foreign_text(const void *fc, char *buf, size_t len)
{
	const struct nf_foreign_chain *f = fc;
	int n = snprintf(buf, len, "exempt %u %s %s", f->family, f->table, f->chain);

	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

static int by_name_set(const void *a, const void *b)
{
	return strcmp(nftnl_set_get_str(*(struct nftnl_set *const *)a, NFTNL_SET_NAME),
		      nftnl_set_get_str(*(struct nftnl_set *const *)b, NFTNL_SET_NAME));
}

static int by_name_chain(const void *a, const void *b)
{
	return strcmp(nftnl_chain_get_str(*(struct nftnl_chain *const *)a, NFTNL_CHAIN_NAME),
		      nftnl_chain_get_str(*(struct nftnl_chain *const *)b, NFTNL_CHAIN_NAME));
}

/* The chains that hold exemptions: libvirt's, then exempt = auto's; whether ours head each. */
struct ex_chains {
	struct nf_foreign_chain *fc;
	bool *ok; /* NULL: what is built, at the head by construction */
	size_t n;
	struct nftnl_rule **rules;
	size_t n_rules;
};

/* libvirt's chains, then room for n_autos more added with ex_chains_add */
static int ex_chains_init(struct ex_chains *x, size_t n_autos, bool with_ok)
{
	memset(x, 0, sizeof(*x));
	x->fc = calloc(nf_n_foreign_chains + n_autos, sizeof(*x->fc));
	x->ok = with_ok ? calloc(nf_n_foreign_chains + n_autos, sizeof(*x->ok)) : NULL;
	if (!x->fc || (with_ok && !x->ok))
		return -ENOMEM;
	for (size_t c = 0; c < nf_n_foreign_chains; c++)
		x->fc[x->n++] = nf_foreign_chains[c];
	return 0;
}

static void ex_chains_add(struct ex_chains *x, const struct nf_drop_chain *d)
{
	x->fc[x->n++] = (struct nf_foreign_chain){ d->nfproto, d->table, d->chain, d->iptables };
}

static void ex_chains_free(struct ex_chains *x)
{
	free(x->fc);
	free(x->ok);
	free(x->rules);
}

/*
 * One text for a whole state. Sets and chains sort by name; rules keep their
 * order within a chain; exemptions count only if they head their chain.
 */
static int state_text(struct nf_text *t, bool table, const char *comment, struct nftnl_set **sets,
		      size_t n_sets, struct nftnl_chain **chains, size_t n_chains,
		      struct nftnl_rule **rules, size_t n_rules, const struct ex_chains *ex)
{
	struct nftnl_rule **exempt = ex->rules;
	size_t n_exempt = ex->n_rules;

	struct nftnl_set **ss = NULL;
	struct nftnl_chain **cs = NULL;
	struct nftnl_rule **rs = NULL;

	if (table) {
		ss = malloc((n_sets + 1) * sizeof(*ss));
		cs = malloc((n_chains + 1) * sizeof(*cs));
		rs = malloc((n_rules + 1) * sizeof(*rs));
		if (!ss || !cs || !rs) {
			t->err = -ENOMEM;
			goto out;
		}
		memcpy(ss, sets, n_sets * sizeof(*ss));
		memcpy(cs, chains, n_chains * sizeof(*cs));
		/* rules arrive chain by chain already; group them without reordering */
		size_t k = 0;
		qsort(cs, n_chains, sizeof(*cs), by_name_chain);
		for (size_t c = 0; c < n_chains; c++)
			/* a name given twice groups its rules once: k stays within n_rules */
			for (size_t i = 0; (!c || by_name_chain(&cs[c - 1], &cs[c])) && i < n_rules;
			     i++)
				if (!strcmp(nftnl_rule_get_str(rules[i], NFTNL_RULE_CHAIN),
					    nftnl_chain_get_str(cs[c], NFTNL_CHAIN_NAME)))
					rs[k++] = rules[i];
		for (size_t i = 0; i < n_rules; i++) {
			bool known = false;

			for (size_t c = 0; c < n_chains; c++)
				known |= !strcmp(nftnl_rule_get_str(rules[i], NFTNL_RULE_CHAIN),
						 nftnl_chain_get_str(cs[c], NFTNL_CHAIN_NAME));
			if (!known)
				rs[k++] = rules[i];
		}
		qsort(ss, n_sets, sizeof(*ss), by_name_set);
		text_add(t, table_text, comment);
		for (size_t i = 0; i < n_sets; i++)
			text_add(t, nf_set_text, ss[i]);
		for (size_t i = 0; i < n_chains; i++)
			text_add(t, nf_chain_text, cs[i]);
		for (size_t i = 0; i < k; i++)
			text_add(t, nf_rule_text, rs[i]);
	}
	for (size_t c = 0; c < ex->n; c++) {
		const struct nf_foreign_chain *fc = &ex->fc[c];

		text_add(t, foreign_text, fc);
		if (ex->ok && !ex->ok[c]) {
			text_add(t, table_text, "not at head");
			continue;
		}
		for (size_t i = 0; i < n_exempt; i++)
			if (nftnl_rule_get_u32(exempt[i], NFTNL_RULE_FAMILY) == fc->family &&
			    !strcmp(nftnl_rule_get_str(exempt[i], NFTNL_RULE_TABLE), fc->table) &&
			    !strcmp(nftnl_rule_get_str(exempt[i], NFTNL_RULE_CHAIN), fc->chain))
				text_add(t, nf_rule_text, exempt[i]);
	}
out:
	free(ss);
	free(cs);
	free(rs);
	return t->err;
}

int nf_actual_text(const struct nf_actual *a, struct nf_text *t)
{
	struct ex_chains x;
	size_t n = 0;
	int r;

	for (size_t c = 0; c < nf_n_foreign_chains; c++)
		n += a->foreign[c].n_ours;
	for (size_t c = 0; c < a->n_autos; c++)
		n += a->autos[c].st.n_ours;
	r = ex_chains_init(&x, a->n_autos, true);
	if (r == 0 && !(x.rules = malloc((n + 1) * sizeof(*x.rules))))
		r = -ENOMEM;
	if (r < 0)
		goto out;
	for (size_t c = 0; c < a->n_autos; c++)
		ex_chains_add(&x, &a->autos[c].chain);
	for (size_t c = 0; c < x.n; c++) {
		const struct nf_foreign_state *f = c < nf_n_foreign_chains
							   ? &a->foreign[c]
							   : &a->autos[c - nf_n_foreign_chains].st;

		x.ok[c] = f->at_head;
		for (size_t i = 0; i < f->n_ours; i++)
			x.rules[x.n_rules++] = f->ours[i];
	}
	r = state_text(t, a->table, a->comment, (struct nftnl_set **)a->sets, a->n_sets,
		       (struct nftnl_chain **)a->chains, a->n_chains, a->rules, a->n_rules, &x);
out:
	ex_chains_free(&x);
	return r;
}

int nf_objs_text(const struct nf_objs *o, const struct nf_drop_chain *autos, size_t n_autos,
		 struct nf_text *t)
{
	char comment[NF_COMMENT_LEN];
	struct ex_chains x;
	int r;

	nf_table_comment(o->table, comment);
	r = ex_chains_init(&x, n_autos, false);
	if (r == 0) {
		for (size_t c = 0; c < n_autos; c++)
			ex_chains_add(&x, &autos[c]);
		x.rules = o->exempt;
		x.n_rules = o->n_exempt;
		r = state_text(t, true, comment, (struct nftnl_set **)o->sets, o->n_sets,
			       (struct nftnl_chain **)o->chains, o->n_chains, o->rules, o->n_rules,
			       &x);
		x.rules = NULL;
	}
	ex_chains_free(&x);
	return r;
}
