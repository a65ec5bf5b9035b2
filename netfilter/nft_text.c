// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Canonical text of nftables objects: what the kernel holds, less what the
 * kernel itself changes (handles, counters, use counts). Two objects with the
 * same text are the same rule; this is how "up" knows it has nothing to do
 * and how the unit tier compares round trips.
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
#include <libnftnl/udata.h>

#include "netfilter/nft_priv.h"

struct out {
	char *buf;
	size_t len, off;
	int err;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->err)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->off, o->len - o->off, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->len - o->off)
		o->err = -ENOSPC;
	else
		o->off += n;
}

static void put_hex(struct out *o, const void *data, uint32_t len)
{
	const uint8_t *p = data;

	for (uint32_t i = 0; i < len; i++)
		put(o, "%02x", p[i]);
}

static int udata_comment_cb(const struct nftnl_udata *attr, void *data)
{
	if (nftnl_udata_type(attr) == NFTNL_UDATA_RULE_COMMENT)
		*(const char **)data = nftnl_udata_get(attr);
	return 0;
}

struct tag_ctx {
	const char *tag;
};

static int expr_tag_cb(struct nftnl_expr *e, void *data)
{
	struct tag_ctx *t = data;
	uint32_t len;

	if (strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), "match") ||
	    strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_MT_NAME), "comment"))
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
	const void *ud;

	if (nftnl_rule_is_set(r, NFTNL_RULE_USERDATA)) {
		ud = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &len);
		if (ud)
			nftnl_udata_parse(ud, len, udata_comment_cb, &t.tag);
	}
	if (!t.tag)
		nftnl_expr_foreach(r, expr_tag_cb, &t);
	return t.tag;
}

struct expr_ctx {
	struct out *o;
};

static int expr_text_cb(struct nftnl_expr *e, void *data)
{
	struct out *o = ((struct expr_ctx *)data)->o;
	const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
	char tmp[512];
	uint32_t len;

	put(o, " [%s", name);
	if (!strcmp(name, "counter")) {
		/* counts change under traffic: not part of what the rule is */
	} else if (!strcmp(name, "match")) {
		const void *info = nftnl_expr_get(e, NFTNL_EXPR_MT_INFO, &len);

		put(o, " %s rev %u ", nftnl_expr_get_str(e, NFTNL_EXPR_MT_NAME),
		    nftnl_expr_get_u32(e, NFTNL_EXPR_MT_REV));
		if (info)
			put_hex(o, info, len);
	} else {
		if (nftnl_expr_snprintf(tmp, sizeof(tmp), e, NFTNL_OUTPUT_DEFAULT, 0) < 0)
			o->err = -EINVAL;
		put(o, " %s", tmp);
	}
	put(o, "]");
	return 0;
}

int nf_rule_text(const void *rule, char *buf, size_t len)
{
	struct nftnl_rule *r = (struct nftnl_rule *)rule;
	struct out o = { buf, len, 0, 0 };
	struct expr_ctx c = { &o };
	const char *tag = nf_exempt_tag(r);

	put(&o, "rule %u %s %s", nftnl_rule_get_u32(r, NFTNL_RULE_FAMILY),
	    nftnl_rule_get_str(r, NFTNL_RULE_TABLE), nftnl_rule_get_str(r, NFTNL_RULE_CHAIN));
	if (tag)
		put(&o, " \"%s\"", tag);
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
	struct out o = { buf, sizeof(buf), 0, 0 };
	uint32_t len;
	const void *p;

	p = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
	if (p)
		put_hex(&o, p, len);
	if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_DATA)) {
		p = nftnl_set_elem_get(e, NFTNL_SET_ELEM_DATA, &len);
		put(&o, " : ");
		if (p)
			put_hex(&o, p, len);
	}
	if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_FLAGS))
		put(&o, " flags %u", nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_FLAGS));
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
	put(data, " [%s]", nftnl_expr_get_str(e, NFTNL_EXPR_NAME));
	return 0;
}

/* Elements sorted: the kernel dumps them in its own order. */
int nf_set_text(const void *set, char *buf, size_t len)
{
	struct nftnl_set *s = (struct nftnl_set *)set;
	struct out o = { buf, len, 0, 0 };

	put(&o, "set %u %s %s flags 0x%x key %u/%u", nftnl_set_get_u32(s, NFTNL_SET_FAMILY),
	    nftnl_set_get_str(s, NFTNL_SET_TABLE), nftnl_set_get_str(s, NFTNL_SET_NAME),
	    nftnl_set_get_u32(s, NFTNL_SET_FLAGS), nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE),
	    nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN));
	if (nftnl_set_is_set(s, NFTNL_SET_DATA_TYPE))
		put(&o, " data %u/%u", nftnl_set_get_u32(s, NFTNL_SET_DATA_TYPE),
		    nftnl_set_get_u32(s, NFTNL_SET_DATA_LEN));
	struct elems el = { 0 };

	nftnl_set_expr_foreach(s, set_expr_cb, &o);
	nftnl_set_elem_foreach(s, elem_text_cb, &el);
	if (el.n)
		qsort(el.line, el.n, sizeof(*el.line), cmp_str);
	for (size_t i = 0; i < el.n; i++) {
		put(&o, "\n  elem %s", el.line[i]);
		free(el.line[i]);
	}
	free(el.line);
	return o.err ? o.err : el.err;
}

int nf_chain_text(const void *chain, char *buf, size_t len)
{
	const struct nftnl_chain *c = chain;
	struct out o = { buf, len, 0, 0 };

	put(&o, "chain %u %s %s", nftnl_chain_get_u32(c, NFTNL_CHAIN_FAMILY),
	    nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE), nftnl_chain_get_str(c, NFTNL_CHAIN_NAME));
	if (nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM))
		put(&o, " %s hook %u prio %d policy %u", nftnl_chain_get_str(c, NFTNL_CHAIN_TYPE),
		    nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM),
		    nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO),
		    nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY));
	return o.err;
}
