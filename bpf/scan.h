/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The holder scan: which processes hold files of the GPU. Two backends give
 * the same records: BPF iterators over every task's files and mappings, and
 * a walk of /proc. Nothing here logs; functions return 0 or -errno and put
 * a reason in err.
 */
#ifndef VFIO_AGENT_BPF_SCAN_H
#define VFIO_AGENT_BPF_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/types.h>

#include "bpf/hold_rec.h"

/* device numbers in the kernel's encoding, as struct inode holds them */
#define KDEV(maj, min) (((uint32_t)(maj) << 20) | (uint32_t)(min))
#define KDEV_MAJOR(d) ((d) >> 20)
#define KDEV_MINOR(d) ((d)&0xfffff)

/* the identity of a device node we know by path, for mappings seen in maps */
struct scan_node {
	uint64_t st_dev;
	uint64_t st_ino;
};

struct scan_targets {
	uint32_t *devs;			/* KDEV */
	char (*dev_mods)[HOLD_MOD_LEN]; /* per devs[i]: its device's driver module, or "" */
	size_t n_devs;
	uint32_t *majors; /* every minor of these */
	size_t n_majors;
	char (*mods)[HOLD_MOD_LEN]; /* module names */
	size_t n_mods;
	/* DRM driver name (fdinfo drm-driver) -> module, for the /proc backend */
	char (*drm_drivers)[2][HOLD_MOD_LEN];
	size_t n_drm_drivers;
	struct scan_node *nodes;
	size_t n_nodes;
	/*
	 * The module a DRM PRIME dma-buf (exp_name "drm", which does not say
	 * whose) must come from: set only when one DRM driver is loaded and it is
	 * a target. The /proc backend's answer; BPF reads dma_buf->owner.
	 */
	char prime_mod[HOLD_MOD_LEN];
	/* open files only, no mappings: what a display server holds its card by */
	bool files_only;
	/*
	 * When n_pids: the /proc backend reads these processes only, not all
	 * of /proc (a wait for a known unit's processes); BPF's iterators
	 * still see every process, and the caller picks among the holders
	 */
	uint32_t *pids;
	size_t n_pids;
};

/* SCAN_READY: SCAN_AUTO when the BPF programs are loaded already, else /proc at once */
enum scan_backend { SCAN_AUTO, SCAN_BPF, SCAN_PROC, SCAN_READY };

struct hold_vec {
	struct hold_rec *v;
	size_t n, cap;
};

void hold_vec_free(struct hold_vec *h);
int hold_vec_push(struct hold_vec *h, const struct hold_rec *r);
/* sort by pid, kind, fd, start and drop repeats (threads with their own table) */
void hold_vec_normalize(struct hold_vec *h);

/* targets: add, deduplicated */
int scan_targets_add_dev(struct scan_targets *t, uint32_t kdev);
/* the driver module behind a target device node; the files on it pin that */
int scan_targets_set_dev_mod(struct scan_targets *t, uint32_t kdev, const char *module);
int scan_targets_add_major(struct scan_targets *t, uint32_t major);
int scan_targets_add_mod(struct scan_targets *t, const char *name);
int scan_targets_add_drm_driver(struct scan_targets *t, const char *driver, const char *module);
int scan_targets_add_node(struct scan_targets *t, uint64_t st_dev, uint64_t st_ino);
bool scan_targets_empty(const struct scan_targets *t);
void scan_targets_free(struct scan_targets *t);

/*
 * The user-space half of the match, for the /proc backend and to re-check
 * BPF records: a char device number, a DRM driver name (fdinfo), a dma-buf
 * exporter. Sets r->why and r->module (the module the file pins: the
 * file's own owner, else its device node's driver), and for a dma-buf
 * r->exporter to the exporting module; true when the file is the GPU's.
 */
bool hold_match(const struct scan_targets *t, struct hold_rec *r, bool is_chr,
		const char *drm_driver, bool is_dmabuf);

struct bpf_map;
/* put the targets into the match maps of a loaded program */
int scan_targets_fill_maps(const struct scan_targets *t, struct bpf_map *devs,
			   struct bpf_map *majors, struct bpf_map *mods);

/* the one line for a program that did not load: missing BTF, missing capabilities */
void scan_bpf_load_error(int r, const char *what, char *err, size_t errlen);

/*
 * BPF iterators; -errno when they cannot load (no CAP_BPF, no BTF, no
 * iterators). Loaded on the first call and kept for the next ones until
 * scan_bpf_release(); not for two threads at once.
 */
int scan_bpf(const struct scan_targets *t, struct hold_vec *out, char *err, size_t errlen);
/* the load begun on a thread now, for the next scan_bpf(), which reports its failure */
void scan_bpf_preload(void);
/* the programs are loaded (a preload that has ended, or an earlier scan): a scan waits for nothing */
bool scan_bpf_loaded(void);
void scan_bpf_release(void);

/* /proc under root ("" for /) */
int scan_proc(const char *root, const struct scan_targets *t, struct hold_vec *out, char *err,
	      size_t errlen);

const char *hold_kind_name(uint32_t kind);

#endif
