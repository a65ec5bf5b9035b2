/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The forward up and down with its one log line; shared by the verb, the hook and the daemon. */
#ifndef VFIO_AGENT_FORWARD_H
#define VFIO_AGENT_FORWARD_H

#include <stdbool.h>
#include <stddef.h>

#include "core/forward.h"
#include "netfilter/nft.h"

struct config;

/*
 * The forward of c (its guest address known) up in one transaction, or
 * every forward of ours down; each logs its one line. An exit code. With
 * judge, the path is evaluated after up: each BLOCKED finding logged as an
 * error (and exit 1), each WARN as a warning.
 */
int forward_up(const struct config *c, const char *root, bool judge);
int forward_down(void);

/* Log one line for a failed netfilter call; returns EXIT_FAILED. */
int fwd_report_error(const char *what, int r, const struct nf_err *e);

#endif
