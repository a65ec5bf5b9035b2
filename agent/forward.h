/* SPDX-License-Identifier: GPL-2.0-or-later */
/* From the config to a resolved forward spec; shared by the verb, hook and daemon. */
#ifndef VFIO_AGENT_FORWARD_H
#define VFIO_AGENT_FORWARD_H

#include <stddef.h>

#include "netfilter/nft.h"

struct config;

struct fwd_spec {
	struct nf_forward_spec spec;
	struct nf_port *ports;
	struct nf_prefix *allow;
};

/* Resolve interface addresses and defaults; an exit code, and err's one line. */
int fwd_spec_resolve(const struct config *c, struct fwd_spec *fs, char *err, size_t errlen);
void fwd_spec_free(struct fwd_spec *fs);

/*
 * The forward of c (its guest address known) up in one transaction, or
 * every forward of ours down; each logs its one line. An exit code.
 */
int forward_up(const struct config *c);
int forward_down(void);

/* Log one line for a failed netfilter call; returns EXIT_FAILED. */
int fwd_report_error(const char *what, int r, const struct nf_err *e);

#endif
