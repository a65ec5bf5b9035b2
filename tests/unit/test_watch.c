// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The daemon's filter on nftables events: which concern the forward, and
 * what the watch learns from chain events. No socket: the watch starts
 * knowing no base chain.
 */
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <stdio.h>

#include "netfilter/monitor.h"
#include "tap.h"

static struct nl_event ev(uint16_t msg, uint8_t nfproto, const char *table, const char *chain,
			  int hook)
{
	struct nl_event e = { .type = NL_EV_NFT, .nft_msg = msg, .nfproto = nfproto, .hook = hook };

	snprintf(e.table, sizeof(e.table), "%s", table);
	snprintf(e.chain, sizeof(e.chain), "%s", chain);
	return e;
}

static bool concerns(struct nf_watch *w, uint16_t msg, uint8_t nfproto, const char *table,
		     const char *chain, int hook)
{
	struct nl_event e = ev(msg, nfproto, table, chain, hook);

	return nf_watch_concerns(w, &e);
}

int main(void)
{
	struct nf_watch *w = NULL;

	CHECK("a watch without a socket", nf_watch_new(NULL, &w, NULL) == 0 && w);

	/* ours, and what names no table */
	CHECK("a rule in inet vfio_agent",
	      concerns(w, NFT_MSG_DELRULE, NFPROTO_INET, "vfio_agent", "nat_pre", -1));
	CHECK("an element of our set",
	      concerns(w, NFT_MSG_DELSETELEM, NFPROTO_INET, "vfio_agent", "", -1));
	CHECK("our table deleted",
	      concerns(w, NFT_MSG_DELTABLE, NFPROTO_INET, "vfio_agent", "", -1));
	CHECK("an event that names no table",
	      concerns(w, NFT_MSG_DELTABLE, NFPROTO_UNSPEC, "", "", -1));
	CHECK("ip vfio_agent is not ours",
	      !concerns(w, NFT_MSG_NEWRULE, NFPROTO_IPV4, "vfio_agent", "keep", -1));

	/* other tables: sets, elements, regular chains, hooks off the path */
	CHECK("another table's elements",
	      !concerns(w, NFT_MSG_NEWSETELEM, NFPROTO_INET, "churn", "", -1));
	CHECK("another table's set", !concerns(w, NFT_MSG_NEWSET, NFPROTO_INET, "churn", "", -1));
	CHECK("another table made", !concerns(w, NFT_MSG_NEWTABLE, NFPROTO_INET, "churn", "", -1));
	CHECK("a chain on input",
	      !concerns(w, NFT_MSG_NEWCHAIN, NFPROTO_INET, "churn", "input", NF_INET_LOCAL_IN));
	CHECK("a rule in that input chain",
	      !concerns(w, NFT_MSG_NEWRULE, NFPROTO_INET, "churn", "input", -1));
	CHECK("a regular chain",
	      !concerns(w, NFT_MSG_NEWCHAIN, NFPROTO_IPV4, "filter", "ufw-x", -1));
	CHECK("a rule in a regular chain",
	      !concerns(w, NFT_MSG_NEWRULE, NFPROTO_IPV4, "filter", "ufw-x", -1));

	/* base chains on the path, learned from their events */
	CHECK("a forward base chain made",
	      concerns(w, NFT_MSG_NEWCHAIN, NFPROTO_IPV4, "filter", "FORWARD", NF_INET_FORWARD));
	CHECK("a rule in it", concerns(w, NFT_MSG_NEWRULE, NFPROTO_IPV4, "filter", "FORWARD", -1));
	CHECK("the same name in ip6 is another chain",
	      !concerns(w, NFT_MSG_NEWRULE, NFPROTO_IPV6, "filter", "FORWARD", -1));
	CHECK("inet ingress",
	      concerns(w, NFT_MSG_NEWCHAIN, NFPROTO_INET, "fw", "in", NF_INET_INGRESS));
	CHECK("netdev ingress",
	      concerns(w, NFT_MSG_NEWCHAIN, NFPROTO_NETDEV, "nd", "in", NF_NETDEV_INGRESS));
	CHECK("a rule in netdev ingress",
	      concerns(w, NFT_MSG_NEWRULE, NFPROTO_NETDEV, "nd", "in", -1));
	CHECK("prerouting, postrouting",
	      concerns(w, NFT_MSG_NEWCHAIN, NFPROTO_IPV6, "x", "pre", NF_INET_PRE_ROUTING) &&
		      concerns(w, NFT_MSG_NEWCHAIN, NFPROTO_IPV6, "x", "post",
			       NF_INET_POST_ROUTING));
	CHECK("the table of a known base chain deleted",
	      concerns(w, NFT_MSG_DELTABLE, NFPROTO_IPV6, "x", "", -1));
	CHECK("its chains are forgotten with it",
	      !concerns(w, NFT_MSG_NEWRULE, NFPROTO_IPV6, "x", "pre", -1));
	CHECK("a known base chain deleted",
	      concerns(w, NFT_MSG_DELCHAIN, NFPROTO_IPV4, "filter", "FORWARD", -1));
	CHECK("then forgotten",
	      !concerns(w, NFT_MSG_NEWRULE, NFPROTO_IPV4, "filter", "FORWARD", -1));

	/* the chains carrying the exemption, base chains or not */
	CHECK("libvirt's guest_input",
	      concerns(w, NFT_MSG_NEWRULE, NFPROTO_IPV4, "libvirt_network", "guest_input", -1));
	CHECK("libvirt's table made",
	      concerns(w, NFT_MSG_NEWTABLE, NFPROTO_IPV4, "libvirt_network", "", -1));
	CHECK("LIBVIRT_FWI",
	      concerns(w, NFT_MSG_DELRULE, NFPROTO_IPV6, "filter", "LIBVIRT_FWI", -1));
	CHECK("libvirt's other chains",
	      !concerns(w, NFT_MSG_NEWRULE, NFPROTO_IPV4, "libvirt_network", "guest_output", -1));

	struct nl_event link = { .type = NL_EV_LINK };
	CHECK("not an nftables event", !nf_watch_concerns(w, &link));
	nf_watch_free(w);
	nf_watch_free(NULL);
	TAP_EXIT();
}
