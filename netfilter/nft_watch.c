// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The daemon's filter on the nftables monitor: which events concern the
 * forward. An unrelated table can change thousands of times a second (a
 * set of blocked addresses, a counter's reset); none of it may cost a read
 * of the ruleset. The one thing an event cannot say by itself is whether a
 * rule's chain is a base chain on the path, so the base chains are kept
 * here, learned from one dump and then from the chain events.
 */
#include <errno.h>
#include <stdio.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <stdlib.h>
#include <string.h>

#include <libmnl/libmnl.h>

#include "netfilter/monitor.h"
#include "netfilter/nft_priv.h"
#include "netfilter/path.h"

struct base {
	uint8_t nfproto;
	char table[64];
	char chain[64];
};

struct nf_watch {
	struct base *base; /* base chains on the path, in any table but ours */
	size_t n, cap;
	struct base *reached; /* the chains those jump or go to, as the judge follows them */
	size_t n_reached, cap_reached;
	bool changed; /* since the monitor's filter last heard of them */
};

bool nf_hook_on_path(uint8_t nfproto, int hook)
{
	switch (nfproto) {
	case NFPROTO_INET:
		if (hook == NF_INET_INGRESS)
			return true;
		/* fall through */
	case NFPROTO_IPV4:
	case NFPROTO_IPV6:
		return hook == NF_INET_PRE_ROUTING || hook == NF_INET_FORWARD ||
		       hook == NF_INET_POST_ROUTING;
	case NFPROTO_NETDEV:
		return hook == NF_NETDEV_INGRESS;
	default:
		return false;
	}
}

static ssize_t base_find(const struct nf_watch *w, uint8_t nfproto, const char *table,
			 const char *chain)
{
	for (size_t i = 0; i < w->n; i++)
		if (w->base[i].nfproto == nfproto && !strcmp(w->base[i].table, table) &&
		    !strcmp(w->base[i].chain, chain))
			return (ssize_t)i;
	return -1;
}

static int base_add(struct nf_watch *w, uint8_t nfproto, const char *table, const char *chain)
{
	struct base *b;

	if (base_find(w, nfproto, table, chain) >= 0)
		return 0;
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 16;

		b = realloc(w->base, cap * sizeof(*b));
		if (!b)
			return -ENOMEM;
		w->base = b;
		w->cap = cap;
	}
	b = &w->base[w->n++];
	w->changed = true;
	b->nfproto = nfproto;
	snprintf(b->table, sizeof(b->table), "%s", table);
	snprintf(b->chain, sizeof(b->chain), "%s", chain);
	return 0;
}

static void base_del(struct nf_watch *w, uint8_t nfproto, const char *table, const char *chain)
{
	for (size_t i = w->n; i-- > 0;)
		if (w->base[i].nfproto == nfproto && !strcmp(w->base[i].table, table) &&
		    (!chain || !strcmp(w->base[i].chain, chain))) {
			w->base[i] = w->base[--w->n];
			w->changed = true;
		}
}

static bool ours(uint8_t nfproto, const char *table)
{
	return nfproto == NFPROTO_INET && !strcmp(table, NF_TABLE_NAME);
}

static int chain_cb(const struct nf_base_chain *bc, void *data)
{
	struct nf_watch *w = data;

	if (ours(bc->nfproto, bc->table) || !nf_hook_on_path(bc->nfproto, bc->hook))
		return 0;
	return base_add(w, bc->nfproto, bc->table, bc->name);
}

int nf_watch_resync(struct nf_watch *w, struct nf_sock *s, struct nf_err *err)
{
	int r = -EINTR;

	/* every family's chains in one dump; an interrupted one is read again */
	w->changed = true;
	for (int i = 0; i < NF_DUMP_TRIES && r == -EINTR; i++) {
		w->n = 0;
		r = nf_base_chains(s, chain_cb, w, err);
	}
	return r;
}

int nf_watch_new(struct nf_sock *s, struct nf_watch **out, struct nf_err *err)
{
	struct nf_watch *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return -ENOMEM;
	w->changed = true;
	r = s ? nf_watch_resync(w, s, err) : 0;
	if (r < 0) {
		nf_watch_free(w);
		return r;
	}
	*out = w;
	return 0;
}

int nf_watch_follow(struct nf_watch *w, struct nl_monitor *m)
{
	struct nl_follow *f;
	size_t n = w->n + nf_n_foreign_chains;
	bool cut = false;
	int r;

	if (!w->changed)
		return 0;
	n += w->n_reached;
	f = calloc(n + 1, sizeof(*f));
	if (!f) {
		nl_monitor_follow(m, NULL, 0); /* what it cannot name, it lets through */
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		if (i < w->n) {
			f[i] = (struct nl_follow){ w->base[i].table, w->base[i].chain };
			/* a name as long as an event keeps may have been cut */
			cut |= strlen(w->base[i].table) >= sizeof(w->base->table) - 1 ||
			       strlen(w->base[i].chain) >= sizeof(w->base->chain) - 1;
		} else if (i < w->n + w->n_reached) {
			const struct base *b = &w->reached[i - w->n];

			f[i] = (struct nl_follow){ b->table, b->chain };
			cut |= strlen(b->table) >= sizeof(b->table) - 1 ||
			       strlen(b->chain) >= sizeof(b->chain) - 1;
		} else {
			f[i] = (struct nl_follow){
				nf_foreign_chains[i - w->n - w->n_reached].table,
				nf_foreign_chains[i - w->n - w->n_reached].chain
			};
		}
	}
	r = nl_monitor_follow(m, cut ? NULL : f, n);
	free(f);
	if (r == 0)
		w->changed = false;
	return r;
}

static int reach_cb(uint8_t nfproto, const char *table, const char *chain, void *data)
{
	struct nf_watch *w = data;
	struct base *b;

	for (size_t i = 0; i < w->n_reached; i++)
		if (w->reached[i].nfproto == nfproto && !strcmp(w->reached[i].table, table) &&
		    !strcmp(w->reached[i].chain, chain))
			return 0;
	if (w->n_reached == w->cap_reached) {
		size_t cap = w->cap_reached ? w->cap_reached * 2 : 16;

		if (!(b = realloc(w->reached, cap * sizeof(*b))))
			return -ENOMEM;
		w->reached = b;
		w->cap_reached = cap;
	}
	b = &w->reached[w->n_reached++];
	memset(b, 0, sizeof(*b)); /* compared whole by nf_watch_reach */
	b->nfproto = nfproto;
	snprintf(b->table, sizeof(b->table), "%s", table);
	snprintf(b->chain, sizeof(b->chain), "%s", chain);
	return 0;
}

int nf_watch_reach(struct nf_watch *w, struct nf_sock *s, struct nf_err *err)
{
	struct base *old = w->reached;
	size_t n_old = w->n_reached;
	int r = 0;

	w->reached = NULL;
	w->n_reached = w->cap_reached = 0;
	for (size_t i = 0; i < w->n && r >= 0; i++)
		r = nf_path_reached(s, w->base[i].nfproto, w->base[i].table, w->base[i].chain,
				    reach_cb, w, err);
	if (r < 0) {
		/* keep what it knew: a chain it cannot name is better followed */
		free(w->reached);
		w->reached = old;
		w->n_reached = w->cap_reached = n_old;
		return r;
	}
	w->changed |= n_old != w->n_reached ||
		      (n_old && memcmp(old, w->reached, n_old * sizeof(*old)));
	free(old);
	return 0;
}

static bool reached(const struct nf_watch *w, uint8_t nfproto, const char *table, const char *chain)
{
	for (size_t i = 0; i < w->n_reached; i++)
		if (w->reached[i].nfproto == nfproto && !strcmp(w->reached[i].table, table) &&
		    !strcmp(w->reached[i].chain, chain))
			return true;
	return false;
}

void nf_watch_free(struct nf_watch *w)
{
	if (!w)
		return;
	free(w->reached);
	free(w->base);
	free(w);
}

static bool foreign_table(uint8_t nfproto, const char *table, const char *chain)
{
	for (size_t i = 0; i < nf_n_foreign_chains; i++)
		if (nf_foreign_chains[i].family == nfproto &&
		    !strcmp(nf_foreign_chains[i].table, table) &&
		    (!chain || !strcmp(nf_foreign_chains[i].chain, chain)))
			return true;
	return false;
}

bool nf_watch_concerns(struct nf_watch *w, const struct nl_event *ev)
{
	uint16_t msg = ev->nft_msg;

	if (ev->type != NL_EV_NFT)
		return false;
	if (!ev->table[0] || ours(ev->nfproto, ev->table))
		return true;
	switch (msg) {
	case NFT_MSG_NEWTABLE:
	case NFT_MSG_DELTABLE: {
		bool had = false;

		for (size_t i = 0; i < w->n && !had; i++)
			had = w->base[i].nfproto == ev->nfproto &&
			      !strcmp(w->base[i].table, ev->table);
		if (msg == NFT_MSG_DELTABLE)
			base_del(w, ev->nfproto, ev->table, NULL);
		return had || foreign_table(ev->nfproto, ev->table, NULL);
	}
	case NFT_MSG_NEWCHAIN:
	case NFT_MSG_DELCHAIN: {
		bool known = base_find(w, ev->nfproto, ev->table, ev->chain) >= 0;
		bool on_path = nf_hook_on_path(ev->nfproto, ev->hook);

		if (msg == NFT_MSG_DELCHAIN)
			base_del(w, ev->nfproto, ev->table, ev->chain);
		else if (on_path && base_add(w, ev->nfproto, ev->table, ev->chain) < 0)
			return true; /* what it cannot remember, it does not ignore */
		return known || on_path || foreign_table(ev->nfproto, ev->table, ev->chain);
	}
	case NFT_MSG_NEWRULE:
	case NFT_MSG_DELRULE:
		return foreign_table(ev->nfproto, ev->table, ev->chain) ||
		       base_find(w, ev->nfproto, ev->table, ev->chain) >= 0 ||
		       reached(w, ev->nfproto, ev->table, ev->chain);
	default:
		/* sets, elements, objects, flowtables of other tables */
		return false;
	}
}
