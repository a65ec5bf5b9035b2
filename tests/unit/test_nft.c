// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Every object of the forward, built into a netlink message and parsed back
 * with libnftnl, compared, with no socket; and the rules a user relies on
 * compared with the kernel's own dump of them.
 */
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <netinet/in.h>
#include <stdlib.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include "netfilter/nft.h"
#include "netfilter/nft_priv.h"
#include "tap.h"

static char buf[1 << 16], buf2[1 << 16];

static struct nf_addr addr(const char *s)
{
	struct nf_addr a = { 0 };

	a.family = strchr(s, ':') ? AF_INET6 : AF_INET;
	inet_pton(a.family, s, a.bytes);
	return a;
}

static struct nf_prefix pfx(const char *s, int plen)
{
	return (struct nf_prefix){ addr(s), (uint8_t)plen };
}

static const struct nf_port ports[] = {
	{ IPPROTO_TCP, 5900, 5901 },
	{ IPPROTO_UDP, 47998, 47998 },
};

static struct nf_prefix allow4[3], allow6[1];

static struct nf_forward_spec spec(void)
{
	struct nf_forward_spec s = { .vm = "win11", .ifname = "lan0", .ports = ports, .n_ports = 2 };

	allow4[0] = pfx("198.51.100.0", 25);
	allow4[1] = pfx("198.51.100.128", 26);
	allow4[2] = pfx("198.51.100.64", 26); /* inside the first: merged away */
	allow6[0] = pfx("::", 0);
	s.fam[NF_V4] = (struct nf_family){ true, addr("198.51.100.1"), addr("192.0.2.50"), allow4,
					   3 };
	s.fam[NF_V6] = (struct nf_family){ true, addr("2001:db8:1::1"), addr("2001:db8:2::50"),
					   allow6, 1 };
	return s;
}

static char *text_of(int kind, const void *obj)
{
	static char t[3][8192];
	static int i;
	char *out = t[i++ % 3];
	int r = kind == NF_OBJ_SET     ? nf_set_text(obj, out, 8192)
		: kind == NF_OBJ_CHAIN ? nf_chain_text(obj, out, 8192)
				       : nf_rule_text(obj, out, 8192);
	return r < 0 ? NULL : out;
}

/*
 * libnftnl 1.2 numbers the nested elements 1, 2, 3... when it builds a
 * NEWSETELEM, but its parser wants every one typed NFTA_LIST_ELEM, as the
 * kernel (which ignores the type) dumps them. Retype them, as a dump has them.
 */
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

/* build -> nlmsg -> parse, for one object of each kind */
static void roundtrip(struct nf_objs *o)
{
	char name[128];

	{
		const struct nftnl_table *t = nf_objs_get(o, NF_OBJ_TABLE, 0);
		struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWTABLE, NFPROTO_INET, 0,
							     1);
		struct nftnl_table *back = nftnl_table_alloc();
		uint32_t l1, l2;

		nftnl_table_nlmsg_build_payload(nlh, t);
		CHECK("roundtrip table parses", nftnl_table_nlmsg_parse(nlh, back) == 0);
		const void *u1 = nftnl_table_get_data(t, NFTNL_TABLE_USERDATA, &l1);
		const void *u2 = nftnl_table_get_data(back, NFTNL_TABLE_USERDATA, &l2);
		CHECK("roundtrip table name, family and comment",
		      !strcmp(nftnl_table_get_str(back, NFTNL_TABLE_NAME), NF_TABLE_NAME) &&
			      nftnl_table_get_u32(back, NFTNL_TABLE_FAMILY) == NFPROTO_INET && u1 &&
			      u2 && l1 == l2 && !memcmp(u1, u2, l1));
		nftnl_table_free(back);
	}
	for (size_t i = 0; i < nf_objs_count(o, NF_OBJ_SET); i++) {
		struct nftnl_set *s = (struct nftnl_set *)nf_objs_get(o, NF_OBJ_SET, i);
		struct nftnl_set *back = nftnl_set_alloc();
		struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWSET, NFPROTO_INET, 0,
							     1);
		struct nlmsghdr *nle = nftnl_nlmsg_build_hdr(buf2, NFT_MSG_NEWSETELEM, NFPROTO_INET,
							     0, 2);

		nftnl_set_nlmsg_build_payload(nlh, s);
		nftnl_set_elems_nlmsg_build_payload(nle, s);
		list_elem_types(nle);
		snprintf(name, sizeof(name), "roundtrip set %s",
			 nftnl_set_get_str(s, NFTNL_SET_NAME));
		CHECK(name, nftnl_set_nlmsg_parse(nlh, back) == 0 &&
				    nftnl_set_elems_nlmsg_parse(nle, back) == 0 &&
				    !strcmp(text_of(NF_OBJ_SET, s), text_of(NF_OBJ_SET, back)));
		nftnl_set_free(back);
	}
	for (size_t i = 0; i < nf_objs_count(o, NF_OBJ_CHAIN); i++) {
		const struct nftnl_chain *c = nf_objs_get(o, NF_OBJ_CHAIN, i);
		struct nftnl_chain *back = nftnl_chain_alloc();
		struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWCHAIN, NFPROTO_INET, 0,
							     1);

		nftnl_chain_nlmsg_build_payload(nlh, c);
		snprintf(name, sizeof(name), "roundtrip chain %s",
			 nftnl_chain_get_str(c, NFTNL_CHAIN_NAME));
		CHECK(name, nftnl_chain_nlmsg_parse(nlh, back) == 0 &&
				    !strcmp(text_of(NF_OBJ_CHAIN, c), text_of(NF_OBJ_CHAIN, back)));
		nftnl_chain_free(back);
	}
	for (int kind = NF_OBJ_RULE; kind <= NF_OBJ_EXEMPT; kind++) {
		for (size_t i = 0; i < nf_objs_count(o, kind); i++) {
			struct nftnl_rule *r = (struct nftnl_rule *)nf_objs_get(o, kind, i);
			struct nftnl_rule *back = nftnl_rule_alloc();
			uint32_t fam = nftnl_rule_get_u32(r, NFTNL_RULE_FAMILY);
			struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWRULE, fam, 0,
								     1);

			nftnl_rule_nlmsg_build_payload(nlh, r);
			snprintf(name, sizeof(name), "roundtrip %s %zu in %s %s",
				 kind == NF_OBJ_RULE ? "rule" : "exemption", i,
				 nftnl_rule_get_str(r, NFTNL_RULE_TABLE),
				 nftnl_rule_get_str(r, NFTNL_RULE_CHAIN));
			CHECK(name, nftnl_rule_nlmsg_parse(nlh, back) == 0 &&
					    !strcmp(text_of(kind, r), text_of(kind, back)));
			nftnl_rule_free(back);
		}
	}
}

static const void *find(struct nf_objs *o, int kind, const char *table, const char *chain, int nth)
{
	for (size_t i = 0; i < nf_objs_count(o, kind); i++) {
		struct nftnl_rule *r = (struct nftnl_rule *)nf_objs_get(o, kind, i);

		if (!strcmp(nftnl_rule_get_str(r, NFTNL_RULE_TABLE), table) &&
		    !strcmp(nftnl_rule_get_str(r, NFTNL_RULE_CHAIN), chain) && nth-- == 0)
			return r;
	}
	return NULL;
}

static const void *find_set(struct nf_objs *o, const char *name)
{
	for (size_t i = 0; i < nf_objs_count(o, NF_OBJ_SET); i++) {
		struct nftnl_set *s = (struct nftnl_set *)nf_objs_get(o, NF_OBJ_SET, i);

		if (!strcmp(nftnl_set_get_str(s, NFTNL_SET_NAME), name))
			return s;
	}
	return NULL;
}

/* Texts of the kernel's dump of these rules (nft --debug=netlink agrees). */
static void goldens(struct nf_objs *o)
{
	const void *r;

	r = find(o, NF_OBJ_RULE, NF_TABLE_NAME, "filter_pre", 0);
	CHECK_STR(
		"golden: refused clients on lan0 to host.ip are dropped",
		r ? text_of(NF_OBJ_RULE, r) : NULL,
		"rule 1 vfio_agent filter_pre [meta load nfproto => reg 1 ] [cmp eq reg 1 0x00000002 ] "
		"[meta load iifname => reg 1 ] [cmp eq reg 1 0x306e616c 0x00000000 0x00000000 0x00000000 ] "
		"[payload load 4b @ network header + 16 => reg 1 ] [cmp eq reg 1 0x016433c6 ] "
		"[meta load l4proto => reg 1 ] [payload load 2b @ transport header + 2 => reg 9 ] "
		"[lookup reg 1 set ports 0x0 ] [payload load 4b @ network header + 12 => reg 1 ] "
		"[lookup reg 1 set allow4 0x1 ] [counter] [immediate reg 0 drop ]");
	r = find(o, NF_OBJ_RULE, NF_TABLE_NAME, "nat_pre", 1);
	CHECK_STR(
		"golden: IPv6 dnat takes the port from reg 2, as the kernel dumps it",
		r ? text_of(NF_OBJ_RULE, r) : NULL,
		"rule 1 vfio_agent nat_pre [meta load nfproto => reg 1 ] [cmp eq reg 1 0x0000000a ] "
		"[meta load iifname => reg 1 ] [cmp eq reg 1 0x306e616c 0x00000000 0x00000000 0x00000000 ] "
		"[payload load 16b @ network header + 24 => reg 1 ] "
		"[cmp eq reg 1 0xb80d0120 0x00000100 0x00000000 0x01000000 ] "
		"[meta load l4proto => reg 1 ] [payload load 2b @ transport header + 2 => reg 9 ] "
		"[lookup reg 1 set dnat6 dreg 1 0x0 ] "
		"[nat dnat ip6 addr_min reg 1 addr_max reg 1 proto_min reg 2 proto_max reg 2 flags 0x3 ]");
	r = find(o, NF_OBJ_RULE, NF_TABLE_NAME, "nat_out", 0);
	CHECK("golden: output dnat matches host.ip only (loopback never translated)",
	      r && !strstr(text_of(NF_OBJ_RULE, r), "iifname") &&
		      strstr(text_of(NF_OBJ_RULE, r), "[cmp eq reg 1 0x016433c6 ]"));
	r = find(o, NF_OBJ_RULE, NF_TABLE_NAME, "nat_post", 0);
	CHECK("golden: masquerade only host-originated flows (fib saddr type local)",
	      r && strstr(text_of(NF_OBJ_RULE, r),
			  "[fib saddr type => reg 1 ] [cmp eq reg 1 0x00000002 ] [masq ]"));

	r = find(o, NF_OBJ_EXEMPT, "filter", "LIBVIRT_FWI", 0);
	CHECK_STR("exemption: tagged with the VM and the translated flow",
		  r ? nf_exempt_tag(r) : NULL, "vfio-agent win11: tcp 192.0.2.50:5901");
	CHECK("exemption: iptables-nft dialect (xt conntrack rev 3, comment rev 0)",
	      r && strstr(text_of(NF_OBJ_EXEMPT, r), "[match conntrack rev 3 ") &&
		      strstr(text_of(NF_OBJ_EXEMPT, r), "[match comment rev 0 ") &&
		      strstr(text_of(NF_OBJ_EXEMPT, r), "[cmp eq reg 1 0x306e616c 0x00000000 ]"));
	r = find(o, NF_OBJ_EXEMPT, "filter", "LIBVIRT_FWI", 1);
	CHECK_STR("exemption: one per forward", r ? nf_exempt_tag(r) : NULL,
		  "vfio-agent win11: udp 192.0.2.50:47998");
	r = find(o, NF_OBJ_EXEMPT, "libvirt_network", "guest_input", 2);
	CHECK("exemption: native nftables in libvirt_network, IPv6 too",
	      r &&
		      strstr(text_of(NF_OBJ_EXEMPT, r),
			     "\"vfio-agent win11: tcp [2001:db8:2::50]:5901\"") &&
		      strstr(text_of(NF_OBJ_EXEMPT, r), "[ct load status => reg 1 ]") &&
		      !strstr(text_of(NF_OBJ_EXEMPT, r), "[match"));

	const void *s = find_set(o, "allow4");
	CHECK_STR(
		"allow: overlapping CIDRs merge into one interval",
		s ? text_of(NF_OBJ_SET, s) : NULL,
		"set 1 vfio_agent allow4 flags 0x4 key 7/4\n  elem 00000000 flags 1\n  elem c6336400\n"
		"  elem c63364c0 flags 1");
	s = find_set(o, "allow6");
	CHECK("allow: ::/0 is one open interval",
	      s && !strcmp(strchr(text_of(NF_OBJ_SET, s), '\n'),
			   "\n  elem 00000000000000000000000000000000"));
	s = find_set(o, "dnat4");
	CHECK("dnat4: proto . port -> guest . port, both forwards",
	      s && strstr(text_of(NF_OBJ_SET, s), "elem 06000000170c0000 : c0000232170d0000\n") &&
		      strstr(text_of(NF_OBJ_SET, s), "elem 11000000bb7e0000 : c0000232bb7e0000"));
	s = find_set(o, "guests6");
	CHECK("guests6: per-element counters", s && strstr(text_of(NF_OBJ_SET, s), " [counter]"));
}

static void test_families(void)
{
	struct nf_forward_spec s = spec();
	bool present[8] = { false };
	struct nf_objs *o;

	s.fam[NF_V6].enabled = false;
	CHECK("build: IPv4 only", nf_objs_build(&s, present, NULL, 0, &o) == 0);
	CHECK("build: IPv4 only has five rules and no exemptions",
	      nf_objs_count(o, NF_OBJ_RULE) == 5 && nf_objs_count(o, NF_OBJ_EXEMPT) == 0);
	CHECK("build: no IPv6 sets", !find_set(o, "dnat6") && find_set(o, "dnat4"));
	nf_objs_free(o);
}

static void test_scale(void)
{
	struct nf_forward_spec s = spec();
	static struct nf_port many[1000];
	struct nf_objs *o;

	for (int i = 0; i < 1000; i++)
		many[i] = (struct nf_port){ IPPROTO_TCP, (uint16_t)(10000 + i),
					    (uint16_t)(20000 + i) };
	s.ports = many;
	s.n_ports = 1000;
	CHECK("scale: 1000 forwards build", nf_objs_build(&s, NULL, NULL, 0, &o) == 0);
	CHECK("scale: rule count does not grow with forwards", nf_objs_count(o, NF_OBJ_RULE) == 10);
	nf_objs_free(o);
}

/* what fuzz_nft_state found: replies no kernel sends, read within their bounds */
static void test_hostile(void)
{
	static const uint8_t cut[] = { NFTNL_UDATA_RULE_COMMENT, 200, 'v', 'f' };
	static const uint8_t no_nul[] = { NFTNL_UDATA_RULE_COMMENT, 3, 'v', 'f', 'i' };
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nf_actual a = { .table = true };
	struct nf_text t = { 0 };

	nftnl_rule_set_data(r, NFTNL_RULE_USERDATA, cut, sizeof(cut));
	CHECK("hostile: a comment longer than its userdata is no comment", !nf_exempt_tag(r));
	nftnl_rule_set_data(r, NFTNL_RULE_USERDATA, no_nul, sizeof(no_nul));
	CHECK("hostile: a comment without its NUL is no comment", !nf_exempt_tag(r));
	nftnl_rule_free(r);

	/* two chains of one name, each with the table's rules: grouped once */
	for (int i = 0; i < 2; i++) {
		a.chains[a.n_chains] = nftnl_chain_alloc();
		nftnl_chain_set_str(a.chains[a.n_chains], NFTNL_CHAIN_TABLE, NF_TABLE_NAME);
		nftnl_chain_set_str(a.chains[a.n_chains++], NFTNL_CHAIN_NAME, "twice");
	}
	a.rules = calloc(2, sizeof(*a.rules));
	for (int i = 0; i < 2; i++) {
		a.rules[a.n_rules] = nftnl_rule_alloc();
		nftnl_rule_set_str(a.rules[a.n_rules], NFTNL_RULE_TABLE, NF_TABLE_NAME);
		nftnl_rule_set_str(a.rules[a.n_rules++], NFTNL_RULE_CHAIN, "twice");
	}
	CHECK("hostile: a chain named twice makes a text, its rules within bounds",
	      nf_actual_text(&a, &t) == 0 && t.buf);
	free(t.buf);
	nf_actual_free(&a);
}

int main(void)
{
	struct nf_forward_spec s = spec();
	bool present[8] = { true, true, true, true };
	struct nf_objs *o;

	CHECK("build: v4+v6 with all libvirt chains present",
	      nf_objs_build(&s, present, NULL, 0, &o) == 0);
	CHECK("build: 5 chains, 10 rules, 4 chains x 2 forwards of exemptions",
	      nf_objs_count(o, NF_OBJ_CHAIN) == 5 && nf_objs_count(o, NF_OBJ_RULE) == 10 &&
		      nf_objs_count(o, NF_OBJ_EXEMPT) == 8);
	roundtrip(o);
	goldens(o);
	nf_objs_free(o);
	test_families();
	test_hostile();
	test_scale();
	TAP_EXIT();
}
