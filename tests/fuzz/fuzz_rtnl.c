// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rtnetlink dump replies (netfilter/rtnl.c) on any bytes: links, addresses
 * and neighbours, through the callbacks a dump runs. The first byte picks
 * the parser, the rest is the reply. The file is included, as
 * wireguard-tools' fuzzers include theirs, to reach its static callbacks.
 */
#include "netfilter/rtnl.c"

#include "fuzz.h"

static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct nf_prefix pfx[4];
	struct nf_addr addrs[4];

	if (len < 1)
		return 0;
	switch (data[0] % 3) {
	case 0: {
		struct link_ctx c = { "lan0", -ENODEV };

		fuzz_mnl_run(link_cb, &c, data + 1, len - 1);
		break;
	}
	case 1: {
		struct addr_ctx c = { 2, data[0] & 0x80 ? AF_INET6 : AF_UNSPEC, pfx, 4, 0 };

		fuzz_mnl_run(addr_cb, &c, data + 1, len - 1);
		break;
	}
	case 2: {
		struct neigh_ctx c = { mac, AF_UNSPEC, addrs, 4, 0 };

		fuzz_mnl_run(neigh_cb, &c, data + 1, len - 1);
		break;
	}
	}
	return 0;
}

/* ---- seeds: one reply of each kind, as the kernel dumps them ---- */

static struct nlmsghdr *msg(char *at, uint16_t type, const void *hdr, size_t hlen)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(at);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_MULTI;
	memcpy(mnl_nlmsg_put_extra_header(nlh, hlen), hdr, hlen);
	return nlh;
}

static void seed(const char *name, uint8_t selector, char *start, char *end)
{
	char file[8192];
	struct nlmsghdr *done = mnl_nlmsg_put_header(end);

	done->nlmsg_type = NLMSG_DONE;
	done->nlmsg_flags = NLM_F_MULTI;
	end += done->nlmsg_len;
	file[0] = (char)selector;
	memcpy(file + 1, start, end - start);
	fuzz_seed(name, file, 1 + (end - start));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char buf[4096] __attribute__((aligned(4)));
	const uint8_t v4[4] = { 192, 0, 2, 1 }, v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
	struct nlmsghdr *nlh;
	char *p;

	if (!getenv("FUZZ_WRITE_SEEDS"))
		return 0;
	p = buf;
	nlh = msg(p, RTM_NEWLINK, &(struct ifinfomsg){ .ifi_index = 2, .ifi_flags = IFF_UP },
		  sizeof(struct ifinfomsg));
	mnl_attr_put_strz(nlh, IFLA_IFNAME, "lan0");
	mnl_attr_put_u32(nlh, IFLA_MTU, 1500);
	p += nlh->nlmsg_len;
	nlh = msg(p, RTM_NEWLINK, &(struct ifinfomsg){ .ifi_index = 1 }, sizeof(struct ifinfomsg));
	mnl_attr_put_strz(nlh, IFLA_IFNAME, "lo");
	p += nlh->nlmsg_len;
	seed("links", 0, buf, p);

	p = buf;
	nlh = msg(p, RTM_NEWADDR,
		  &(struct ifaddrmsg){ .ifa_family = AF_INET, .ifa_prefixlen = 24, .ifa_index = 2 },
		  sizeof(struct ifaddrmsg));
	mnl_attr_put(nlh, IFA_ADDRESS, 4, v4);
	mnl_attr_put(nlh, IFA_LOCAL, 4, v4);
	p += nlh->nlmsg_len;
	nlh = msg(
		p, RTM_NEWADDR,
		&(struct ifaddrmsg){ .ifa_family = AF_INET6, .ifa_prefixlen = 64, .ifa_index = 2 },
		sizeof(struct ifaddrmsg));
	mnl_attr_put(nlh, IFA_ADDRESS, 16, v6);
	p += nlh->nlmsg_len;
	seed("addrs", 1, buf, p);

	p = buf;
	nlh = msg(p, RTM_NEWNEIGH,
		  &(struct ndmsg){
			  .ndm_family = AF_INET, .ndm_ifindex = 3, .ndm_state = NUD_REACHABLE },
		  sizeof(struct ndmsg));
	mnl_attr_put(nlh, NDA_DST, 4, v4);
	mnl_attr_put(nlh, NDA_LLADDR, 6, mac);
	p += nlh->nlmsg_len;
	nlh = msg(
		p, RTM_NEWNEIGH,
		&(struct ndmsg){ .ndm_family = AF_INET6, .ndm_ifindex = 3, .ndm_state = NUD_STALE },
		sizeof(struct ndmsg));
	mnl_attr_put(nlh, NDA_DST, 16, v6);
	mnl_attr_put(nlh, NDA_LLADDR, 6, mac);
	p += nlh->nlmsg_len;
	seed("neighbours", 2, buf, p);
	exit(0);
}
