// SPDX-License-Identifier: GPL-2.0-or-later
/* Loader of watch.bpf.c: tracepoints in, ring buffer out. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/watch.h"
#include "watch.skel.h"

struct watch {
	struct watch_bpf *skel;
	struct ring_buffer *rb;
	int (*fn)(const struct hold_rec *r, void *arg);
	void *arg;
};

static int on_event(void *ctx, void *data, size_t size)
{
	struct watch *w = ctx;

	if (size < sizeof(struct hold_rec))
		return 0;
	return w->fn ? w->fn(data, w->arg) : 0;
}

int watch_open(const struct scan_targets *t, struct watch **out, char *err, size_t errlen)
{
	struct watch *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return -ENOMEM;
	w->skel = watch_bpf__open();
	if (!w->skel) {
		r = -errno;
		snprintf(err, errlen, "opening the BPF object: %s", strerror(-r));
		goto fail;
	}
#ifdef SYS_open
	w->skel->rodata->nr_open = SYS_open;
#endif
	w->skel->rodata->nr_openat = SYS_openat;
#ifdef SYS_openat2
	w->skel->rodata->nr_openat2 = SYS_openat2;
#endif
	w->skel->rodata->nr_close = SYS_close;
	if ((r = watch_bpf__load(w->skel))) {
		scan_bpf_load_error(r, "the watch programs", err, errlen);
		goto fail;
	}
	if ((r = scan_targets_fill_maps(t, w->skel->maps.target_devs, w->skel->maps.target_majors,
					w->skel->maps.target_mods))) {
		snprintf(err, errlen, "filling the target maps: %s", strerror(-r));
		goto fail;
	}
	if ((r = watch_bpf__attach(w->skel))) {
		snprintf(err, errlen, "attaching to the syscall and process tracepoints: %s",
			 strerror(-r));
		goto fail;
	}
	w->rb = ring_buffer__new(bpf_map__fd(w->skel->maps.events), on_event, w, NULL);
	if (!w->rb) {
		r = -errno;
		snprintf(err, errlen, "opening the ring buffer: %s", strerror(-r));
		goto fail;
	}
	*out = w;
	return 0;
fail:
	watch_close(w);
	return r;
}

int watch_add_holder(struct watch *w, uint32_t pid)
{
	const uint8_t one = 1;

	if (bpf_map__update_elem(w->skel->maps.holders, &pid, sizeof(pid), &one, 1, BPF_ANY))
		return -errno;
	return 0;
}

int watch_poll(struct watch *w, int timeout_ms, int (*fn)(const struct hold_rec *r, void *arg),
	       void *arg)
{
	w->fn = fn;
	w->arg = arg;
	return ring_buffer__poll(w->rb, timeout_ms);
}

void watch_close(struct watch *w)
{
	if (!w)
		return;
	ring_buffer__free(w->rb);
	watch_bpf__destroy(w->skel);
	free(w);
}
