// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * nftables dump replies (netfilter/nft_state.c) on any bytes, and the
 * canonical text (nft_text.c) of the state they make, as status and up
 * read it back. The input is records, each [kind][length, 2 bytes LE][reply]:
 * our table, its chains, its sets, the last set's elements, its rules, and
 * our tagged rules in a foreign chain. The file is included, as
 * wireguard-tools' fuzzers include theirs, to reach its static callbacks.
 *
 * libnftnl 1.2.4's parsers exit(1) ("nf_tables kernel ABI is broken") on an
 * attribute whose type is not the one the kernel sends (a table's, an
 * expression's): what the kernel sends is what libnftnl is built against,
 * and that exit says nothing about our code. So exit is interposed here:
 * called from inside a parse, it returns to the harness, which drops the
 * input as one the kernel could not have sent; anywhere else it is exit.
 * What libnftnl had allocated for it is lost on that way out, so this
 * target runs without leak checks (tests/fuzz/nft_state.options); the
 * state's own frees are checked by test_nft under LeakSanitizer.
 *
 * With the checks below (each names the libnftnl defect it keeps away), it
 * runs in make check like the others. It found two defects of ours, now
 * fixed and kept in test_nft's "hostile" cases: a chain named twice overran
 * the grouped rules, and a rule comment was read past a short userdata.
 */
#include "netfilter/nft_state.c"

#include <dlfcn.h>
#include <linux/netfilter/nf_tables_compat.h>
#include <linux/netfilter/nfnetlink.h>
#include <setjmp.h>

#include "fuzz.h"

/* the leaks of those ways out are libnftnl's: no report at the end either */
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
	return 1;
}

static jmp_buf abi_exit;
static bool in_parse;
static void *in_parse_buf;

void exit(int status)
{
	static void (*real_exit)(int) __attribute__((noreturn));

	if (in_parse) {
		in_parse = false;
		longjmp(abi_exit, 1);
	}
	if (!real_exit)
		*(void **)&real_exit = dlsym(RTLD_NEXT, "exit");
	real_exit(status);
}

/* fuzz_mnl_run(), but an exit from libnftnl ends only this reply */
static bool parse_run(mnl_cb_t cb, void *ctx, const uint8_t *data, size_t len)
{
	if (!fuzz_frames_ok(data, len) || !(in_parse_buf = malloc(len ? len : 1)))
		return false;
	memcpy(in_parse_buf, data, len);
	if (setjmp(abi_exit) == 0) {
		in_parse = true;
		mnl_cb_run(in_parse_buf, len, 0, 0, cb, ctx);
		in_parse = false;
	}
	free(in_parse_buf);
	in_parse_buf = NULL;
	return true;
}

/*
 * libnftnl 1.2.4 validates names as MNL_TYPE_STRING and then strdup()s them,
 * reading past an attribute without its NUL; the kernel's nla_put_string()
 * always writes it. The names each object carries, checked as the kernel
 * sends them.
 */
struct names {
	const uint16_t *types;
	size_t n;
	bool ok;
};

static int names_attr_cb(const struct nlattr *a, void *data)
{
	struct names *nm = data;

	for (size_t i = 0; i < nm->n; i++)
		if (mnl_attr_get_type(a) == nm->types[i] &&
		    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0)
			nm->ok = false;
	return MNL_CB_OK;
}

static int names_cb(const struct nlmsghdr *nlh, void *data)
{
	if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(struct nfgenmsg))
		mnl_attr_parse(nlh, sizeof(struct nfgenmsg), names_attr_cb, data);
	return MNL_CB_OK;
}

static bool names_kernel_shaped(const uint8_t *data, size_t len, const uint16_t *types, size_t n)
{
	struct names nm = { types, n, true };

	return fuzz_mnl_run(names_cb, &nm, data, len) && nm.ok;
}

/*
 * A base chain's hook: libnftnl 1.2.4 strdup()s its device (NFTA_HOOK_DEV,
 * checked only as MNL_TYPE_STRING) and each of its devices (NFTA_HOOK_DEVS,
 * not checked at all); the kernel writes both with nla_put_string().
 */
static int hook_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *a, *h, *d;
	bool *ok = data;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct nfgenmsg))
		return MNL_CB_OK;
	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
	{
		if (mnl_attr_get_type(a) != NFTA_CHAIN_HOOK ||
		    mnl_attr_get_payload_len(a) < NLA_HDRLEN)
			continue;
		mnl_attr_for_each_nested(h, a)
		{
			if (mnl_attr_get_type(h) == NFTA_HOOK_DEV &&
			    mnl_attr_validate(h, MNL_TYPE_NUL_STRING) < 0)
				*ok = false;
			if (mnl_attr_get_type(h) != NFTA_HOOK_DEVS ||
			    mnl_attr_get_payload_len(h) < NLA_HDRLEN)
				continue;
			mnl_attr_for_each_nested(d,
						 h) if (mnl_attr_validate(d, MNL_TYPE_NUL_STRING) <
							0) *ok = false;
		}
	}
	return MNL_CB_OK;
}

static bool hook_kernel_shaped(const uint8_t *data, size_t len)
{
	bool ok = true;

	return fuzz_mnl_run(hook_cb, &ok, data, len) && ok;
}

#define NAMES_OK(data, len, ...)                                          \
	names_kernel_shaped(data, len, (const uint16_t[]){ __VA_ARGS__ }, \
			    sizeof((const uint16_t[]){ __VA_ARGS__ }) / sizeof(uint16_t))

/*
 * libnftnl 1.2.4's nftnl_expr_parse() reads an expression's name without
 * checking it is there (NULL + 4 into strcmp); the kernel names every
 * expression it dumps: a rule's, a set's (NFTA_SET_EXPR, NFTA_SET_EXPRESSIONS)
 * and an element's (NFTA_SET_ELEM_EXPR, NFTA_SET_ELEM_EXPRESSIONS). Replies
 * with a nameless one are not what it sends.
 */
static int expr_name_cb(const struct nlattr *a, void *data)
{
	if (mnl_attr_get_type(a) == NFTA_EXPR_NAME &&
	    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
		*(bool *)data = true;
	return MNL_CB_OK;
}

/*
 * The names inside an expression's data, which libnftnl strdup()s the same
 * way: a lookup's or dynset's set, an objref's object and set, a match's or
 * target's name, a log's prefix, a flow offload's table, and the chain of a
 * verdict (immediate's data, or any NFTA_DATA_VERDICT below it).
 */
static const struct {
	const char *expr;
	uint16_t types[2];
} expr_strings[] = {
	{ "lookup", { NFTA_LOOKUP_SET } },
	{ "dynset", { NFTA_DYNSET_SET_NAME } },
	{ "objref", { NFTA_OBJREF_IMM_NAME, NFTA_OBJREF_SET_NAME } },
	{ "match", { NFTA_MATCH_NAME } },
	{ "target", { NFTA_TARGET_NAME } },
	{ "log", { NFTA_LOG_PREFIX } },
	{ "flow_offload", { NFTA_FLOW_TABLE_NAME } },
};

/* any nest that holds a verdict's chain: only a NUL-terminated one */
static bool verdicts_ok(const struct nlattr *a, int depth)
{
	const struct nlattr *c;

	if (depth > 3 || mnl_attr_get_payload_len(a) < NLA_HDRLEN)
		return true;
	mnl_attr_for_each_nested(c, a)
	{
		if (mnl_attr_get_type(c) == NFTA_VERDICT_CHAIN && depth > 0 &&
		    mnl_attr_validate(c, MNL_TYPE_NUL_STRING) < 0)
			return false;
		if (!verdicts_ok(c, depth + 1))
			return false;
	}
	return true;
}

static bool exprs_named(const struct nlattr *a, bool list, int depth);

/*
 * One expression, named and with its strings terminated; a dynset's own
 * expressions (NFTA_DYNSET_EXPR, NFTA_DYNSET_EXPRESSIONS) go through
 * nftnl_expr_parse() again, so they are held to the same.
 */
static bool expr_named(const struct nlattr *e, int depth)
{
	const struct nlattr *a, *name = NULL, *data = NULL;
	bool named = false;

	if (depth > 2 || mnl_attr_parse_nested(e, expr_name_cb, &named) < 0 || !named)
		return false;
	mnl_attr_for_each_nested(a, e)
	{
		if (mnl_attr_get_type(a) == NFTA_EXPR_NAME)
			name = a;
		else if (mnl_attr_get_type(a) == NFTA_EXPR_DATA)
			data = a;
	}
	if (!data)
		return true;
	for (size_t i = 0; i < sizeof(expr_strings) / sizeof(*expr_strings); i++) {
		if (strcmp(mnl_attr_get_str(name), expr_strings[i].expr))
			continue;
		mnl_attr_for_each_nested(a, data)
		{
			uint16_t t = mnl_attr_get_type(a);

			for (size_t j = 0; j < 2; j++)
				if (expr_strings[i].types[j] && t == expr_strings[i].types[j] &&
				    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0)
					return false;
			if (!strcmp(expr_strings[i].expr, "dynset") &&
			    (t == NFTA_DYNSET_EXPR || t == NFTA_DYNSET_EXPRESSIONS) &&
			    !exprs_named(a, t == NFTA_DYNSET_EXPRESSIONS, depth + 1))
				return false;
		}
	}
	return verdicts_ok(data, 0);
}

/* a list of expressions (list true) or one */
static bool exprs_named(const struct nlattr *a, bool list, int depth)
{
	const struct nlattr *e;

	if (!list)
		return expr_named(a, depth);
	mnl_attr_for_each_nested(e, a) if (!expr_named(e, depth)) return false;
	return true;
}

struct shape {
	uint16_t msg;
	bool ok;
};

/*
 * An element's key, key end and data: a value no longer than the kernel's
 * NFT_DATA_VALUE_MAXLEN (libnftnl 1.2.4 copies it into a buffer of that size
 * on its stack) or a verdict with a NUL-terminated chain.
 */
static bool data_ok(const struct nlattr *d)
{
	const struct nlattr *a;

	mnl_attr_for_each_nested(a, d) if (mnl_attr_get_type(a) == NFTA_DATA_VALUE &&
					   mnl_attr_get_payload_len(a) >
						   NFT_DATA_VALUE_MAXLEN) return false;
	return verdicts_ok(d, 0);
}

static bool elem_named(const struct nlattr *elem)
{
	const struct nlattr *a;

	mnl_attr_for_each_nested(a, elem)
	{
		uint16_t t = mnl_attr_get_type(a);

		/*
		 * libnftnl 1.2.4 checks an element's attribute types against
		 * NFTA_SET_MAX, not NFTA_SET_ELEM_MAX, and stores them in a table
		 * on its stack sized by the latter
		 */
		if (t > NFTA_SET_ELEM_MAX)
			return false;
		/* an element's object: strdup()ed as the names above */
		if (t == NFTA_SET_ELEM_OBJREF && mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0)
			return false;
		if ((t == NFTA_SET_ELEM_EXPR || t == NFTA_SET_ELEM_EXPRESSIONS) &&
		    !exprs_named(a, t == NFTA_SET_ELEM_EXPRESSIONS, 0))
			return false;
		if ((t == NFTA_SET_ELEM_KEY || t == NFTA_SET_ELEM_KEY_END ||
		     t == NFTA_SET_ELEM_DATA) &&
		    !data_ok(a))
			return false;
	}
	return true;
}

static int exprs_kernel_shaped(const struct nlmsghdr *nlh, void *data)
{
	struct shape *sh = data;
	const struct nlattr *a, *e;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct nfgenmsg))
		return MNL_CB_OK;
	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
	{
		uint16_t t = mnl_attr_get_type(a);

		if (sh->msg == NFT_MSG_NEWRULE && t == NFTA_RULE_EXPRESSIONS)
			sh->ok &= exprs_named(a, true, 0);
		else if (sh->msg == NFT_MSG_NEWSET &&
			 (t == NFTA_SET_EXPR || t == NFTA_SET_EXPRESSIONS))
			sh->ok &= exprs_named(a, t == NFTA_SET_EXPRESSIONS, 0);
		else if (sh->msg == NFT_MSG_NEWSETELEM && t == NFTA_SET_ELEM_LIST_ELEMENTS)
			mnl_attr_for_each_nested(e, a) sh->ok &= elem_named(e);
	}
	return MNL_CB_OK;
}

static bool exprs_ok(const uint8_t *data, size_t len, uint16_t msg)
{
	struct shape sh = { msg, true };

	return fuzz_mnl_run(exprs_kernel_shaped, &sh, data, len) && sh.ok;
}

static bool rules_kernel_shaped(const uint8_t *data, size_t len)
{
	return NAMES_OK(data, len, NFTA_RULE_TABLE, NFTA_RULE_CHAIN) &&
	       exprs_ok(data, len, NFT_MSG_NEWRULE);
}

enum { R_TABLE, R_CHAIN, R_SET, R_ELEMS, R_RULES, R_FOREIGN, R__N };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct nf_actual a = { 0 };
	struct nf_text t = { 0 };

	while (len >= 3) {
		uint8_t kind = data[0];
		size_t l = data[1] | (size_t)data[2] << 8;
		struct rules ours = { &a.rules, &a.n_rules, false, 0, true };

		data += 3, len -= 3;
		l = l < len ? l : len;
		switch (kind % R__N) {
		case R_TABLE:
			if (NAMES_OK(data, l, NFTA_TABLE_NAME))
				parse_run(table_cb, &a, data, l);
			break;
		case R_CHAIN:
			if (NAMES_OK(data, l, NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME, NFTA_CHAIN_TYPE) &&
			    hook_kernel_shaped(data, l))
				parse_run(chain_cb, &a, data, l);
			break;
		case R_SET:
			if (NAMES_OK(data, l, NFTA_SET_TABLE, NFTA_SET_NAME) &&
			    exprs_ok(data, l, NFT_MSG_NEWSET))
				parse_run(set_cb, &a, data, l);
			break;
		case R_ELEMS:
			if (a.n_sets &&
			    NAMES_OK(data, l, NFTA_SET_ELEM_LIST_TABLE, NFTA_SET_ELEM_LIST_SET) &&
			    exprs_ok(data, l, NFT_MSG_NEWSETELEM))
				parse_run(elems_cb, a.sets[a.n_sets - 1], data, l);
			break;
		case R_RULES:
			if (rules_kernel_shaped(data, l))
				parse_run(rule_cb, &ours, data, l);
			break;
		case R_FOREIGN: {
			struct nf_foreign_state *f = &a.foreign[kind / R__N % nf_n_foreign_chains];
			struct rules rs = { &f->ours, &f->n_ours, true, 0, true };

			f->exists = true;
			if (rules_kernel_shaped(data, l))
				parse_run(rule_cb, &rs, data, l);
			f->at_head = rs.at_head;
			break;
		}
		}
		data += l, len -= l;
	}
	nf_actual_text(&a, &t);
	free(t.buf);
	nf_actual_free(&a);
	return 0;
}

/* ---- seeds: the state `forward up` leaves, as the kernel would dump it ---- */

static uint8_t seed_buf[1 << 20];
static size_t seed_len;

static void record(uint8_t kind, struct nlmsghdr *nlh)
{
	if (seed_len + 3 + nlh->nlmsg_len > sizeof(seed_buf))
		abort();
	seed_buf[seed_len++] = kind;
	seed_buf[seed_len++] = nlh->nlmsg_len & 0xff;
	seed_buf[seed_len++] = nlh->nlmsg_len >> 8;
	memcpy(seed_buf + seed_len, nlh, nlh->nlmsg_len);
	seed_len += nlh->nlmsg_len;
}

/* libnftnl numbers nested elements 1, 2, ... when it builds; a dump types them all LIST_ELEM */
static void list_elem_types(struct nlmsghdr *nlh)
{
	struct nlattr *a, *e;

	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
	{
		if (mnl_attr_get_type(a) != NFTA_SET_ELEM_LIST_ELEMENTS)
			continue;
		mnl_attr_for_each_nested(e, a)
			e->nla_type = (e->nla_type & ~NLA_TYPE_MASK) | NFTA_LIST_ELEM;
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const struct nf_port ports[] = { { IPPROTO_TCP, 5900, 5901 },
						{ IPPROTO_UDP, 47998, 47998 } };
	static char buf[65536] __attribute__((aligned(4)));
	struct nf_prefix allow4 = { .addr = { AF_INET, { 198, 51, 100 } }, .plen = 24 };
	struct nf_prefix allow6 = { .addr = { AF_INET6, { 0x20, 0x01, 0x0d, 0xb8 } }, .plen = 32 };
	struct nf_forward_spec spec = {
		.vm = "win11", .ifname = "lan0", .ports = ports, .n_ports = 2
	};
	bool present[NF_N_FOREIGN_CHAINS];
	struct nlmsghdr *nlh;
	struct nf_objs *o = NULL;

	if (!getenv("FUZZ_WRITE_SEEDS"))
		return 0;
	spec.fam[NF_V4] = (struct nf_family){
		true, { AF_INET, { 198, 51, 100, 1 } }, { AF_INET, { 192, 0, 2, 50 } }, &allow4, 1
	};
	spec.fam[NF_V6] = (struct nf_family){ true,
					      { AF_INET6, { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 } },
					      { AF_INET6,
						{ 0x20, 0x01, 0x0d, 0xb8, 2, [15] = 0x50 } },
					      &allow6,
					      1 };
	memset(present, true, sizeof(present));
	if (nf_objs_build(&spec, present, NULL, 0, &o) < 0)
		abort();
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWTABLE, NFPROTO_INET, NLM_F_MULTI, 1);
	nftnl_table_nlmsg_build_payload(nlh, o->table);
	record(R_TABLE, nlh);
	fuzz_seed("table", seed_buf, seed_len);
	for (size_t i = 0; i < o->n_chains; i++) {
		nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWCHAIN, NFPROTO_INET, NLM_F_MULTI, 1);
		nftnl_chain_nlmsg_build_payload(nlh, o->chains[i]);
		record(R_CHAIN, nlh);
	}
	for (size_t i = 0; i < o->n_sets; i++) {
		nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWSET, NFPROTO_INET, NLM_F_MULTI, 1);
		nftnl_set_nlmsg_build_payload(nlh, o->sets[i]);
		record(R_SET, nlh);
		nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWSETELEM, NFPROTO_INET, NLM_F_MULTI, 1);
		nftnl_set_elems_nlmsg_build_payload(nlh, o->sets[i]);
		list_elem_types(nlh);
		record(R_ELEMS, nlh);
	}
	for (size_t i = 0; i < o->n_rules; i++) {
		nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWRULE, NFPROTO_INET, NLM_F_MULTI, 1);
		nftnl_rule_nlmsg_build_payload(nlh, o->rules[i]);
		record(R_RULES, nlh);
	}
	fuzz_seed("forward-up", seed_buf, seed_len);
	seed_len = 0;
	for (size_t i = 0; i < o->n_exempt; i++) {
		nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWRULE, NFPROTO_INET, NLM_F_MULTI, 1);
		nftnl_rule_nlmsg_build_payload(nlh, o->exempt[i]);
		record(R_FOREIGN + R__N * (uint8_t)(i % nf_n_foreign_chains), nlh);
	}
	fuzz_seed("exemptions", seed_buf, seed_len);
	nf_objs_free(o);
	exit(0);
}
