// SPDX-License-Identifier: GPL-2.0-or-later
/* Backend choice, grouping per process, attribution. */
#include <errno.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/holders.h"

const char *scan_backend_name(enum scan_backend b)
{
	return b == SCAN_BPF ? "bpf" : b == SCAN_PROC ? "proc" : "auto";
}

int holders_scan(const char *root, const struct scan_targets *t, enum scan_backend want,
		 struct holder_scan *hs, char *err, size_t errlen)
{
	char why[256];
	size_t i, j;
	int r;

	memset(hs, 0, sizeof(*hs));
	if (want == SCAN_READY)
		want = !root[0] && scan_bpf_loaded() ? SCAN_AUTO : SCAN_PROC;
	if (want == SCAN_AUTO && root[0]) {
		snprintf(hs->fallback, sizeof(hs->fallback),
			 "--root %s: BPF sees the running system, not the tree", root);
		want = SCAN_PROC;
	}
	if (want != SCAN_PROC) {
		r = scan_bpf(t, &hs->recs, why, sizeof(why));
		if (!r) {
			hs->backend = SCAN_BPF;
			goto group;
		}
		hold_vec_free(&hs->recs);
		if (want == SCAN_BPF) {
			snprintf(err, errlen, "BPF backend: %s", why);
			return r;
		}
		snprintf(hs->fallback, sizeof(hs->fallback), "BPF unavailable (%s)", why);
	}
	r = scan_proc(root, t, &hs->recs, err, errlen);
	if (r)
		return r;
	hs->backend = SCAN_PROC;
group:
	/* records are sorted by pid: one holder per run of equal pids */
	for (i = 0; i < hs->recs.n; i = j) {
		struct holder *h;

		for (j = i; j < hs->recs.n && hs->recs.v[j].pid == hs->recs.v[i].pid; j++)
			;
		h = realloc(hs->holders, (hs->n_holders + 1) * sizeof(*h));
		if (!h) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		hs->holders = h;
		h = &hs->holders[hs->n_holders++];
		memset(h, 0, sizeof(*h));
		h->recs = &hs->recs.v[i];
		h->n_recs = j - i;
		if (proc_info_get(root, h->recs[0].pid, &h->pi) < 0) {
			/* exited since the scan: keep what the record knows */
			h->pi.pid = h->recs[0].pid;
			memcpy(h->pi.comm, h->recs[0].comm, sizeof(h->pi.comm));
			h->pi.uid = (uid_t)-1;
		}
		holder_action(&h->pi, h->action, sizeof(h->action));
	}
	return 0;
}

void holders_preload(const char *root)
{
	/* under --root the scans use /proc, as holders_scan() decides for SCAN_AUTO */
	if (!root[0])
		scan_bpf_preload();
}

void holders_cleanup(void)
{
	scan_bpf_release();
}

void holder_scan_free(struct holder_scan *hs)
{
	hold_vec_free(&hs->recs);
	free(hs->holders);
	memset(hs, 0, sizeof(*hs));
}

void hold_rec_path(const char *root, const struct hold_rec *r, char *buf, size_t len)
{
	char path[4096];
	ssize_t n;

	if (r->fd >= 0)
		snprintf(path, sizeof(path), "%s/proc/%u/fd/%d", root, r->pid, r->fd);
	else
		snprintf(path, sizeof(path), "%s/proc/%u/map_files/%llx-%llx", root, r->pid,
			 (unsigned long long)r->start, (unsigned long long)r->end);
	n = readlink(path, buf, len - 1);
	buf[n > 0 ? n : 0] = '\0';
}

/* one open file? BPF gives the file itself; /proc needs kcmp(2) */
static bool same_file(const struct hold_rec *a, const struct hold_rec *b)
{
	if (a->cookie && b->cookie)
		return a->cookie == b->cookie;
	if (a->fd >= 0 && b->fd >= 0)
		return syscall(SYS_kcmp, a->pid, b->pid, KCMP_FILE, a->fd, b->fd) == 0;
	/* a mapping against anything: the same inode is the closest /proc can say */
	return a->rdev == b->rdev && a->ino == b->ino;
}

/* distinct open files among the records that pass keep() */
static size_t count_distinct(const struct holder_scan *hs,
			     bool (*keep)(const struct hold_rec *r, const void *arg),
			     const void *arg)
{
	size_t n = 0;

	for (size_t i = 0; i < hs->recs.n; i++) {
		const struct hold_rec *r = &hs->recs.v[i];
		bool seen = false;

		if (!keep(r, arg))
			continue;
		for (size_t j = 0; j < i && !seen; j++)
			seen = keep(&hs->recs.v[j], arg) && same_file(r, &hs->recs.v[j]);
		n += !seen;
	}
	return n;
}

struct mod_why {
	const char *module;
	uint32_t why;
};

static bool by_module(const struct hold_rec *r, const void *arg)
{
	const struct mod_why *m = arg;

	return (r->why & m->why) && !strcmp(r->module, m->module);
}

static bool by_node(const struct hold_rec *r, const void *arg)
{
	return r->rdev == *(const uint32_t *)arg;
}

size_t holders_count_files(const struct holder_scan *hs, const char *module, uint32_t why)
{
	struct mod_why m = { module, why };

	return count_distinct(hs, by_module, &m);
}

size_t holders_count_node_files(const struct holder_scan *hs, uint32_t kdev)
{
	return count_distinct(hs, by_node, &kdev);
}
