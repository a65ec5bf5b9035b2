/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The path a LAN client's packet takes through this host to the guest, and
 * what stands in its way: what makes the forward unable to work (BLOCKED)
 * and what vfio-agent cannot evaluate (WARN: a BPF program before
 * nftables). Findings as data; the verbs print them.
 */
#ifndef VFIO_CORE_FWDPATH_H
#define VFIO_CORE_FWDPATH_H

#include <stdbool.h>
#include <stddef.h>

#include "netfilter/nft.h"

enum fwd_level { FWD_WARN, FWD_BLOCKED };

struct fwd_finding {
	enum fwd_level level;
	char what[24]; /* ip_forward, guest-ip, host-ip, listener, chain, xdp, tc */
	char text[320];
};

#define FWD_MAX_FINDINGS 24

struct fwd_path {
	struct fwd_finding f[FWD_MAX_FINDINGS];
	size_t n;
	bool blocked;
};

/*
 * Evaluate the path of spec's flows: forwarding sysctls (under root), the
 * guest's and the host's addresses, listeners on host.ip's ports, other
 * tables' chains that drop the flow, BPF programs on the interface. 0, or
 * -errno with err's one line (the path could not be read).
 */
int fwd_path_eval(const char *root, struct nf_sock *s, const struct nf_forward_spec *spec,
		  struct fwd_path *p, char *err, size_t errlen);

/* The first BLOCKED finding's text, or NULL. */
const char *fwd_path_blocked(const struct fwd_path *p);

#endif
