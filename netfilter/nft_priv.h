/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Internals shared by the files of netfilter/: the builder (nft_build.c), the
 * socket and its batches (nft_sock.c), the kernel's state (nft_state.c), its
 * canonical text (nft_text.c) and up/down/status (nft_forward.c).
 */
#ifndef VFIO_NETFILTER_NFT_PRIV_H
#define VFIO_NETFILTER_NFT_PRIV_H

#include "netfilter/nft.h"

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

struct nlmsghdr;
struct nftnl_table;
struct nftnl_set;
struct nftnl_chain;
struct nftnl_rule;

/* ---- the table's objects (nft_build.c) ---- */

/*
 * The sets of our table besides "ports": one of each per family. The builder
 * makes them and status reads the counters of guests' elements back, so both
 * take their names and guests' key from here.
 */
#define NF_SET_PORTS "ports"
enum nf_set { NF_SET_ALLOW, NF_SET_DNAT, NF_SET_GUESTS, NF_NSETS };
extern const char *const nf_set_name[NF_NSETS][NF_NFAM];
#define NF_MAX_SETS (1 + NF_NSETS * NF_NFAM)

/* guests' key, "daddr . l4proto . dport" as concatenations are stored; its length */
#define NF_GUEST_KEY_MAX (16 + 8)
uint32_t nf_guest_key(uint8_t *key, int fam, const struct nf_addr *guest, uint8_t proto,
		      uint16_t port);

/* the base chain that drops clients outside allow: status reports its counter */
#define NF_CHAIN_DROP "filter_pre"
/* the rows of base_chains[] in nft_build.c, which checks the count */
#define NF_N_BASE_CHAINS 5

struct nf_objs {
	struct nftnl_table *table;
	struct nftnl_set *sets[NF_MAX_SETS]; /* set_new() checks */
	size_t n_sets;
	struct nftnl_chain *chains[NF_N_BASE_CHAINS];
	size_t n_chains;
	struct nftnl_rule **rules; /* in chain order, appended */
	size_t n_rules;
	struct nftnl_rule **exempt; /* in the order they must end up at each chain's head */
	size_t n_exempt;
};

/* ---- requests (nft_sock.c) ---- */

typedef int (*nf_obj_cb)(const struct nlmsghdr *nlh, void *data);

/* A request header in buf, which holds MNL_SOCKET_BUFFER_SIZE bytes. */
struct nlmsghdr *nf_req_hdr(struct nf_sock *s, char *buf, uint16_t type, uint16_t family,
			    uint16_t flags);
/*
 * One request; every reply goes to cb. 0, or -errno (-ENOENT: no such
 * object; -EINTR: a dump the kernel flagged NLM_F_DUMP_INTR, read to its end:
 * reset what cb gathered and ask again, at most NF_DUMP_TRIES times).
 */
#define NF_DUMP_TRIES 8
int nf_request(struct nf_sock *s, struct nlmsghdr *nlh, nf_obj_cb cb, void *data,
	       struct nf_err *err);

/* ---- one transaction (nft_sock.c) ---- */

struct nf_batch {
	char *buf;
	size_t len, cap;
	uint32_t seq_first, seq;
	char (*what)[96]; /* object of each seq, for error messages */
	size_t n_what;
	int err; /* sticky: the first failure while building; nf_batch_send returns it */
};

int nf_batch_init(struct nf_batch *b, struct nf_sock *s);
/* The next message, its seq remembered as what; NULL once b->err is set. */
struct nlmsghdr *nf_batch_msg(struct nf_batch *b, uint16_t type, uint16_t family, uint16_t flags,
			      const char *what);
void nf_batch_put(struct nf_batch *b, struct nlmsghdr *nlh);
/* Send it all in one sendmsg; the first error names its object in err. */
int nf_batch_send(struct nf_sock *s, struct nf_batch *b, struct nf_err *err);
void nf_batch_free(struct nf_batch *b);

/* ---- the kernel's state (nft_state.c) ---- */

#define NF_COMMENT_LEN 128

struct nf_foreign_state {
	bool exists;
	struct nftnl_rule **ours; /* our tagged rules, in chain order */
	size_t n_ours;
	bool at_head; /* ours are the first rules of the chain */
};

/* Another base chain on the flow's path that holds rules of ours (exempt = auto's). */
struct nf_auto_state {
	struct nf_drop_chain chain;
	struct nf_foreign_state st;
};

struct nf_actual {
	bool table;
	char comment[NF_COMMENT_LEN];
	struct nftnl_chain *chains[16];
	size_t n_chains;
	struct nftnl_set *sets[16];
	size_t n_sets;
	struct nftnl_rule **rules;
	size_t n_rules;
	struct nf_foreign_state foreign[NF_N_FOREIGN_CHAINS];
	struct nf_auto_state *autos; /* sorted as nf_drop_chain_cmp sorts */
	size_t n_autos;
};

int nf_actual_read(struct nf_sock *s, struct nf_actual *a, struct nf_err *err);

/* A base chain of any table, as one dump of every family's chains shows it. */
struct nf_base_chain {
	uint8_t nfproto;
	const char *table, *name;
	const char *dev; /* netdev and inet ingress: the device; else NULL */
	int hook;
	int32_t prio;
	bool policy_drop;
};

/* Call cb for every base chain; cb's -errno stops the dump. 0, or -errno (-EINTR: see nf_request). */
int nf_base_chains(struct nf_sock *s, int (*cb)(const struct nf_base_chain *bc, void *data),
		   void *data, struct nf_err *err);
void nf_actual_free(struct nf_actual *a);
/* qsort's order for exempt = auto's chains: family, table, chain */
int nf_drop_chain_cmp(const void *a, const void *b);
/* Our exemption's tag, "vfio-agent VM: ...": is tag one of ours? */
bool nf_tag_ours(const char *tag);

/* ---- canonical text (nft_text.c) ---- */

/* A growing text; the first error sticks. */
struct nf_text {
	char *buf;
	size_t len, cap;
	int err;
};

/* autos: exempt = auto's chains the exemptions were built for, sorted */
int nf_objs_text(const struct nf_objs *o, const struct nf_drop_chain *autos, size_t n_autos,
		 struct nf_text *t);
int nf_actual_text(const struct nf_actual *a, struct nf_text *t);
/* The comment in a table's userdata into comment (NF_COMMENT_LEN bytes), "" if none. */
void nf_table_comment(const struct nftnl_table *t, char *comment);

#endif
