/* SPDX-License-Identifier: GPL-2.0-or-later */
/* From the config to a resolved forward spec; shared by the verbs, the hook and the daemon. */
#ifndef VFIO_CORE_FORWARD_H
#define VFIO_CORE_FORWARD_H

#include <stddef.h>

#include "netfilter/nft.h"

struct config;

struct fwd_spec {
	struct nf_forward_spec spec;
	struct nf_port *ports;
	struct nf_prefix *allow;
};

/*
 * Resolve the interface's addresses and the defaults. 0, or -ENODEV (no
 * such interface), -EINVAL (the config cannot give a forward here) or
 * another -errno, with err's one line.
 */
int fwd_spec_resolve(const struct config *c, struct fwd_spec *fs, char *err, size_t errlen);
void fwd_spec_free(struct fwd_spec *fs);

#endif
