// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * nftables dump replies (netfilter/nft_state.c) on any bytes, and the
 * canonical text (nft_text.c) of the state they make, as status and up
 * read it back. The input is records, each [kind][length, 2 bytes LE][reply]:
 * our table, its chains, its sets, the last set's elements, its rules, and
 * our tagged rules in a foreign chain. The file is included, as
 * wireguard-tools' fuzzers include theirs, to reach its static callbacks.
 *
 * Not in make fuzz's default list: past the checks below, libnftnl 1.2.4's
 * parsers still exit(1) from assertions on attributes the kernel never
 * sends (a table's, an expression's), within seconds, which says nothing
 * about our code. Run it by hand: make fuzz FUZZ_RUN=fuzz_nft_state.
 */
#include "netfilter/nft_state.c"

#include <linux/netfilter/nfnetlink.h>

#include "fuzz.h"

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

#define NAMES_OK(data, len, ...)                                          \
	names_kernel_shaped(data, len, (const uint16_t[]){ __VA_ARGS__ }, \
			    sizeof((const uint16_t[]){ __VA_ARGS__ }) / sizeof(uint16_t))

/*
 * libnftnl 1.2.4's nftnl_expr_parse() reads an expression's name without
 * checking it is there (NULL + 4 into strcmp); the kernel names every
 * expression it dumps. Rules without that are not what it sends.
 */
static int expr_name_cb(const struct nlattr *a, void *data)
{
	if (mnl_attr_get_type(a) == NFTA_EXPR_NAME &&
	    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
		*(bool *)data = true;
	return MNL_CB_OK;
}

static int rule_kernel_shaped(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *a, *e;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct nfgenmsg))
		return MNL_CB_OK;
	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
	{
		if (mnl_attr_get_type(a) != NFTA_RULE_EXPRESSIONS)
			continue;
		mnl_attr_for_each_nested(e, a)
		{
			bool named = false;

			if (mnl_attr_parse_nested(e, expr_name_cb, &named) < 0 || !named)
				*(bool *)data = false;
		}
	}
	return MNL_CB_OK;
}

static bool rules_kernel_shaped(const uint8_t *data, size_t len)
{
	bool ok = true;

	return NAMES_OK(data, len, NFTA_RULE_TABLE, NFTA_RULE_CHAIN) &&
	       fuzz_mnl_run(rule_kernel_shaped, &ok, data, len) && ok;
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
				fuzz_mnl_run(table_cb, &a, data, l);
			break;
		case R_CHAIN:
			if (NAMES_OK(data, l, NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME, NFTA_CHAIN_TYPE))
				fuzz_mnl_run(chain_cb, &a, data, l);
			break;
		case R_SET:
			if (NAMES_OK(data, l, NFTA_SET_TABLE, NFTA_SET_NAME))
				fuzz_mnl_run(set_cb, &a, data, l);
			break;
		case R_ELEMS:
			if (a.n_sets &&
			    NAMES_OK(data, l, NFTA_SET_ELEM_LIST_TABLE, NFTA_SET_ELEM_LIST_SET))
				fuzz_mnl_run(elems_cb, a.sets[a.n_sets - 1], data, l);
			break;
		case R_RULES:
			if (rules_kernel_shaped(data, l))
				fuzz_mnl_run(rule_cb, &ours, data, l);
			break;
		case R_FOREIGN: {
			struct nf_foreign_state *f = &a.foreign[kind / R__N % nf_n_foreign_chains];
			struct rules rs = { &f->ours, &f->n_ours, true, 0, true };

			f->exists = true;
			if (rules_kernel_shaped(data, l))
				fuzz_mnl_run(rule_cb, &rs, data, l);
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
