/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Internals shared by the builder and the netlink side of netfilter/. */
#ifndef VFIO_NETFILTER_NFT_PRIV_H
#define VFIO_NETFILTER_NFT_PRIV_H

#include "netfilter/nft.h"

struct nftnl_table;
struct nftnl_set;
struct nftnl_chain;
struct nftnl_rule;

struct nf_objs {
	struct nftnl_table *table;
	struct nftnl_set *sets[8];
	size_t n_sets;
	struct nftnl_chain *chains[8];
	size_t n_chains;
	struct nftnl_rule **rules; /* in chain order, appended */
	size_t n_rules;
	struct nftnl_rule **exempt; /* in the order they must end up at each chain's head */
	size_t n_exempt;
};

#endif
