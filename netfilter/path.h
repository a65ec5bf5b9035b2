/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the kernel puts in a forwarded flow's way, as data for core/fwdpath.c:
 * other tables' base chains that would drop it, and sockets listening on the
 * forward's own host address and port. Nothing here logs.
 */
#ifndef VFIO_NETFILTER_PATH_H
#define VFIO_NETFILTER_PATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netfilter/nft.h"

/*
 * Every base chain not ours on the hooks the flow passes (nf_hook_on_path;
 * netdev ingress only on spec's interface), of a family the spec uses, whose
 * policy or final rule drops and that has no accept covering `ct status
 * dnat` (or iptables' `--ctstate DNAT`, a reverse-path `fib` check, or,
 * unless ignore_ours, our tagged exemption), in it or in a chain it jumps
 * to. ignore_ours: as if none of our rules were there, which is
 * where exempt = auto wants them. How many (up to max stored), or -errno.
 */
int nf_path_drop_chains(struct nf_sock *s, const struct nf_forward_spec *spec, bool ignore_ours,
			struct nf_drop_chain *out, size_t max, struct nf_err *err);

/*
 * The chains that chain's rules send packets on to, and theirs in turn (a
 * jump, a goto, a verdict map's element), as the judge above follows them:
 * reach is called for each; its -errno stops the walk. 0, or -errno.
 */
typedef int (*nf_reach_cb)(uint8_t nfproto, const char *table, const char *chain, void *data);
int nf_path_reached(struct nf_sock *s, uint8_t nfproto, const char *table, const char *chain,
		    nf_reach_cb reach, void *data, struct nf_err *err);

/*
 * libvirt's chains (nf_foreign_chains[], of a family the spec uses) that
 * reject or drop and hold no accept of ours or for `ct status dnat`: they
 * reject new flows into libvirt's guests, the forward's among them. How
 * many (up to max stored), or -errno.
 */
int nf_path_libvirt_rejects(struct nf_sock *s, const struct nf_forward_spec *spec,
			    const struct nf_foreign_chain **out, size_t max, struct nf_err *err);

/* A socket bound to the forward's host address (or the wildcard) and one of its ports. */
struct nf_listener {
	struct nf_addr addr; /* as bound: all zero for the wildcard */
	uint8_t proto;
	uint16_t port;
	uint32_t inode;
};

/* The listeners the forward would take connections from (sock_diag). Count, or -errno. */
int nf_path_listeners(const struct nf_forward_spec *spec, struct nf_listener *out, size_t max);

/* The name of a hook as nft writes it, for FAMILY. */
const char *nf_hook_name(uint8_t nfproto, int hook);

#endif
