/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The VNC forward in nftables: one table, "inet vfio_agent", written in one
 * batch, plus tagged exemption rules at the head of libvirt's own
 * forward-input chain when one exists and, with exempt = auto, of other
 * programs' base chains that would drop the flow. Functions return 0 or
 * -errno and never log; the kernel's extended-ack text lands in struct nf_err.
 */
#ifndef VFIO_NETFILTER_NFT_H
#define VFIO_NETFILTER_NFT_H

#include <linux/netfilter/nf_tables.h>
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NF_TABLE_NAME "vfio_agent"
#define NF_TAG "vfio-agent"

enum { NF_V4, NF_V6, NF_NFAM };

struct nf_addr {
	uint8_t family; /* AF_INET or AF_INET6 */
	uint8_t bytes[16];
};

struct nf_prefix {
	struct nf_addr addr;
	uint8_t plen;
};

struct nf_port {
	uint8_t proto; /* IPPROTO_TCP or IPPROTO_UDP */
	uint16_t host_port;
	uint16_t guest_port;
};

struct nf_family {
	bool enabled;
	struct nf_addr host;
	struct nf_addr guest;
	const struct nf_prefix *allow;
	size_t n_allow;
};

/* exempt = ...: which chains of other programs get our tagged accept */
enum nf_exempt {
	NF_EXEMPT_LIBVIRT, /* libvirt's (nf_foreign_chains[]) */
	NF_EXEMPT_AUTO,	   /* libvirt's, and any base chain on the path that would drop the flow */
	NF_EXEMPT_NONE,	   /* none at all */
	NF_EXEMPT__N,
};

/* Everything the table is built from, already resolved (no "auto" left). */
struct nf_forward_spec {
	const char *vm;
	char ifname[IFNAMSIZ];
	bool masquerade; /* masquerade LAN clients too, not only host-originated flows */
	enum nf_exempt exempt;
	struct nf_family fam[NF_NFAM];
	const struct nf_port *ports;
	size_t n_ports;
};

/* A chain of another program (libvirt) that rejects new flows into the guest. */
struct nf_foreign_chain {
	uint16_t family; /* NFPROTO_IPV4 / NFPROTO_IPV6 */
	const char *table;
	const char *chain;
	bool iptables; /* written by iptables-nft: speak its dialect */
};

/* how many there are: the arrays that mirror the table take their size from this */
#define NF_N_FOREIGN_CHAINS 4
extern const struct nf_foreign_chain nf_foreign_chains[];
extern const size_t nf_n_foreign_chains;

/*
 * A base chain of another table on the flow's path (netfilter/path.h finds
 * them): one that drops the flow, and with exempt = auto one that gets our
 * exemption, whose expressions depend on where it sits.
 */
struct nf_drop_chain {
	uint8_t nfproto;
	char table[NFT_NAME_MAXLEN];
	char chain[NFT_NAME_MAXLEN];
	int hook;
	int32_t prio;
	bool policy;   /* its policy drops; else its last rule drops unconditionally */
	bool iptables; /* iptables-nft's: speak its dialect */
};
/* the most base chains exempt = auto puts an exemption in */
#define NF_MAX_AUTO 32

struct nf_err {
	int error;	 /* -errno of the first failure */
	char object[96]; /* which object the kernel refused, if known */
	char msg[256];	 /* the kernel's extended-ack text, if any */
};

/* Built objects, before they go to the kernel (tests inspect them). */
struct nf_objs;

/* foreign_present: which of nf_foreign_chains[] exist; autos: exempt = auto's chains */
int nf_objs_build(const struct nf_forward_spec *spec, const bool *foreign_present,
		  const struct nf_drop_chain *autos, size_t n_autos, struct nf_objs **out);
void nf_objs_free(struct nf_objs *o);

/* Iterate built objects as libnftnl objects (tests: round trips, goldens). */
size_t nf_objs_count(const struct nf_objs *o, int kind);
const void *nf_objs_get(const struct nf_objs *o, int kind, size_t i);
enum { NF_OBJ_TABLE, NF_OBJ_SET, NF_OBJ_CHAIN, NF_OBJ_RULE, NF_OBJ_EXEMPT, NF_OBJ_NKIND };

/* Canonical text of a rule, set, chain or table: no handles, no counters. */
int nf_rule_text(const void *rule, char *buf, size_t len);
int nf_set_text(const void *set, char *buf, size_t len);
int nf_chain_text(const void *chain, char *buf, size_t len);
const char *nf_exempt_tag(const void *rule);

struct nf_sock;

int nf_sock_open(struct nf_sock **out);
void nf_sock_close(struct nf_sock *s);
/* the socket's netlink port: the nftables monitor reports our changes with it */
uint32_t nf_sock_portid(const struct nf_sock *s);

enum nf_up_result { NF_UP_CHANGED, NF_UP_UNCHANGED };

/* Make the kernel's state equal to spec in one transaction; no-op if it is. */
int nf_forward_up(struct nf_sock *s, const struct nf_forward_spec *spec, struct nf_err *err);
/* Remove our table and every exemption we tagged, wherever; -ENOENT-free: 0 if none. */
int nf_forward_down(struct nf_sock *s, bool *removed, struct nf_err *err);

struct nf_fwd_status {
	struct nf_port port;
	struct nf_addr guest;
	bool present;
	uint64_t packets, bytes;
};

/* A chain we keep an exemption in, or that holds one of ours. */
struct nf_exempt_status {
	uint8_t nfproto;
	char table[NFT_NAME_MAXLEN];
	char chain[NFT_NAME_MAXLEN];
	bool libvirt; /* one of nf_foreign_chains[]; else a base chain of exempt = auto */
	bool wanted;  /* the spec asks for an exemption there */
	bool chain_exists;
	size_t n_rules; /* our tagged rules in it */
	bool at_head;	/* they are its first rules: nothing of the chain's own comes first */
	uint64_t packets, bytes;
};

struct nf_status {
	bool table;   /* our table exists */
	bool matches; /* the kernel's state equals the spec */
	uint64_t dropped_packets, dropped_bytes;
	struct nf_fwd_status *fwd; /* one per spec port and family, in spec order */
	size_t n_fwd;
	struct nf_exempt_status *exempt; /* libvirt's chains first, then the others */
	size_t n_exempt;
};

int nf_forward_status(struct nf_sock *s, const struct nf_forward_spec *spec, struct nf_status *st,
		      struct nf_err *err);
void nf_status_free(struct nf_status *st);

/* Text forms used by reports. */
const char *nf_addr_str(const struct nf_addr *a, char *buf, size_t len);
const char *nf_proto_name(uint8_t proto);
/*
 * A netfilter family as nft names it: NFPROTO_IPV4 "ip", NFPROTO_IPV6 "ip6",
 * NFPROTO_INET "inet", NFPROTO_ARP "arp", NFPROTO_BRIDGE "bridge",
 * NFPROTO_NETDEV "netdev"; any other value "unknown".
 */
const char *nf_family_name(uint32_t nfproto);

#endif
