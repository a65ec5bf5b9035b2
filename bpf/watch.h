/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The live stream of opens, closes and exits; see watch.bpf.c. */
#ifndef VFIO_AGENT_BPF_WATCH_H
#define VFIO_AGENT_BPF_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include "bpf/scan.h"

struct watch;

/* load, fill the targets, attach; -errno and err when it cannot */
int watch_open(const struct scan_targets *t, struct watch **out, char *err, size_t errlen);
/* a holder found by a scan: report its exit too */
int watch_add_holder(struct watch *w, uint32_t pid);
/* wait up to timeout_ms; fn gets each event; the count, or -errno (-EINTR on a signal) */
int watch_poll(struct watch *w, int timeout_ms, int (*fn)(const struct hold_rec *r, void *arg),
	       void *arg);
void watch_close(struct watch *w);

#endif
