// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The BPF backend: load both iterators once per process (one CO-RE pass
 * over the kernel's BTF, one verifier pass per program), then per scan:
 * fill the target maps afresh, run each iterator to the end.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/scan.h"
#include "shared/macro.h"
#include "shared/thread.h"
#include "holders.skel.h"

/*
 * The loaded iterators, kept for the process: loading them is most of a
 * scan's cost (the verifier's pass; 450 of 500 ms in a TCG guest) and a
 * handoff scans several times, its release every 200 ms. A scan makes its
 * own links and iterator fds (an iterator walks once) and refills the
 * maps, so nothing of one scan reaches the next. The verbs scan from one
 * thread; scan_bpf_preload() may load them on another beforehand, which the
 * first scan waits for; scan_bpf_release() gives them back.
 */
static struct holders_bpf *loaded;

static void link_destroyp(struct bpf_link **l)
{
	bpf_link__destroy(*l); /* accepts NULL */
}

int scan_targets_fill_maps(const struct scan_targets *t, struct bpf_map *devs,
			   struct bpf_map *majors, struct bpf_map *mods)
{
	const uint8_t one = 1;
	size_t i;

	for (i = 0; i < t->n_devs; i++)
		if (bpf_map__update_elem(devs, &t->devs[i], sizeof(t->devs[i]), &one, 1, 0))
			return -errno;
	for (i = 0; i < t->n_majors; i++)
		if (bpf_map__update_elem(majors, &t->majors[i], sizeof(t->majors[i]), &one, 1, 0))
			return -errno;
	for (i = 0; i < t->n_mods; i++)
		if (bpf_map__update_elem(mods, t->mods[i], HOLD_MOD_LEN, &one, 1, 0))
			return -errno;
	return 0;
}

static int run_iter(struct bpf_program *prog, const struct scan_targets *t, struct hold_vec *out,
		    char *err, size_t errlen)
{
	_cleanup_(link_destroyp) struct bpf_link *link = NULL;
	_cleanup_close_ int fd = -1;
	struct hold_rec buf[64];
	ssize_t n;
	int r;

	link = bpf_program__attach_iter(prog, NULL);
	if (!link) {
		r = -errno;
		snprintf(err, errlen, "attaching %s: %s", bpf_program__name(prog), strerror(-r));
		return r;
	}
	fd = bpf_iter_create(bpf_link__fd(link));
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "creating the %s iterator: %s", bpf_program__name(prog),
			 strerror(-r));
		return r;
	}
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			r = -errno;
			snprintf(err, errlen, "reading the %s iterator: %s",
				 bpf_program__name(prog), strerror(-r));
			return r;
		}
		for (size_t i = 0; i < (size_t)n / sizeof(buf[0]); i++) {
			struct hold_rec *rec = &buf[i];

			/* the kernel filtered; the final word is the shared predicate's */
			if (!hold_match(t, rec, rec->rdev != 0, NULL, rec->exporter[0] != 0))
				continue;
			if ((r = hold_vec_push(out, rec)))
				return r;
		}
	}
	return 0;
}

void scan_bpf_load_error(int r, const char *what, char *err, size_t errlen)
{
	/* libbpf also looks in /boot, so a missing sysfs file is only the likely cause */
	if (r != -EPERM && access("/sys/kernel/btf/vmlinux", R_OK))
		snprintf(err, errlen,
			 "loading %s: the kernel has no BTF "
			 "(/sys/kernel/btf/vmlinux), which CO-RE programs need",
			 what);
	else
		snprintf(err, errlen, "loading %s: %s%s", what, strerror(-r),
			 r == -EPERM ? " (needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN)" : "");
}

struct iter_job {
	struct bpf_program *prog;
	const struct scan_targets *t;
	struct hold_vec out;
	char err[256];
	int r;
};

static void *iter_thread(void *arg)
{
	struct iter_job *j = arg;

	j->r = run_iter(j->prog, j->t, &j->out, j->err, sizeof(j->err));
	return NULL;
}

/* a failed load is tried again by the next scan, as before the programs were kept */
static int load_now(char *err, size_t errlen)
{
	struct holders_bpf *skel;
	int r;

	skel = holders_bpf__open();
	if (!skel) {
		r = -errno;
		snprintf(err, errlen, "opening the BPF object: %s", strerror(-r));
		return r;
	}
	if ((r = holders_bpf__load(skel))) {
		holders_bpf__destroy(skel);
		scan_bpf_load_error(r, "the iterators", err, errlen);
		return r;
	}
	loaded = skel;
	return 0;
}

/* scan_bpf_preload()'s load, on a thread of its own while the caller goes on */
static struct {
	pthread_t thread;
	bool running;
	bool done; /* the thread's load has ended: set by it, read without a join */
	int r;
	char err[256];
} preload;

static void *preload_thread(void *arg)
{
	(void)arg;
	preload.r = load_now(preload.err, sizeof(preload.err));
	__atomic_store_n(&preload.done, true, __ATOMIC_RELEASE);
	return NULL;
}

void scan_bpf_preload(void)
{
	if (!loaded && !preload.running) {
		preload.done = false;
		preload.running = !thread_start(&preload.thread, preload_thread, NULL);
	}
}

bool scan_bpf_loaded(void)
{
	/* while the thread runs, loaded is its to write: only its flag is read */
	if (preload.running)
		return __atomic_load_n(&preload.done, __ATOMIC_ACQUIRE) && !preload.r;
	return loaded;
}

/* the preload's result once it is done, else a load of our own */
static int load(char *err, size_t errlen)
{
	if (preload.running) {
		pthread_join(preload.thread, NULL);
		preload.running = false;
		if (preload.r) {
			snprintf(err, errlen, "%s", preload.err);
			return preload.r;
		}
	}
	return loaded ? 0 : load_now(err, errlen);
}

/* the previous scan's targets out; the first key each time, as deletion reorders a hash */
static int map_clear(struct bpf_map *m)
{
	char key[HOLD_MOD_LEN];
	size_t len = bpf_map__key_size(m);

	if (len > sizeof(key))
		return -EINVAL;
	while (!bpf_map__get_next_key(m, NULL, key, len))
		if (bpf_map__delete_elem(m, key, len, 0))
			return -errno;
	return errno == ENOENT ? 0 : -errno;
}

static int fill_maps(struct holders_bpf *skel, const struct scan_targets *t)
{
	int r;

	if ((r = map_clear(skel->maps.target_devs)) || (r = map_clear(skel->maps.target_majors)) ||
	    (r = map_clear(skel->maps.target_mods)))
		return r;
	return scan_targets_fill_maps(t, skel->maps.target_devs, skel->maps.target_majors,
				      skel->maps.target_mods);
}

void scan_bpf_release(void)
{
	if (preload.running)
		pthread_join(preload.thread, NULL);
	preload.running = false;
	holders_bpf__destroy(loaded); /* accepts NULL */
	loaded = NULL;
}

int scan_bpf(const struct scan_targets *t, struct hold_vec *out, char *err, size_t errlen)
{
	struct iter_job vmas = { .t = t };
	struct holders_bpf *skel;
	pthread_t th;
	bool threaded;
	int r;

	if ((r = load(err, errlen)))
		return r;
	skel = loaded;
	if ((r = fill_maps(skel, t))) {
		snprintf(err, errlen, "filling the target maps: %s", strerror(-r));
		return r;
	}
	/* the two walks are independent: mappings on a second thread */
	vmas.prog = skel->progs.scan_vmas;
	threaded = !t->files_only && thread_start(&th, iter_thread, &vmas) == 0;
	r = run_iter(skel->progs.scan_files, t, out, err, errlen);
	if (threaded)
		pthread_join(th, NULL);
	else if (!t->files_only)
		iter_thread(&vmas);
	for (size_t i = 0; !r && !vmas.r && i < vmas.out.n; i++)
		r = hold_vec_push(out, &vmas.out.v[i]);
	if (!r && vmas.r) {
		snprintf(err, errlen, "%s", vmas.err);
		r = vmas.r;
	}
	hold_vec_free(&vmas.out);
	if (r)
		return r;
	hold_vec_normalize(out);
	return 0;
}
