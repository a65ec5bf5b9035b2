/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The records the holder programs write (iterators: bpf_seq_write; watch:
 * the ring buffer) and the map layouts the loaders fill. Shared by the BPF
 * side and user space, so only fixed-size types.
 */
#ifndef VFIO_BPF_HOLD_REC_H
#define VFIO_BPF_HOLD_REC_H

#include <linux/types.h>

#define HOLD_COMM_LEN 16
#define HOLD_MOD_LEN 56 /* MODULE_NAME_LEN */
#define HOLD_MAX_DEVS 1024
#define HOLD_MAX_MAJORS 64
#define HOLD_MAX_MODS 64
#define DMA_BUF_MAGIC 0x444d4142 /* include/uapi/linux/magic.h */

enum hold_kind {
	HOLD_FD = 1,
	HOLD_MMAP = 2,
	HOLD_DMABUF = 3, /* a dma-buf exported by a target module, by fd or mapping */
};

/* why a file matched, as bits */
enum hold_why {
	WHY_DEV = 1,	  /* a char device node with a target number */
	WHY_OWNER = 2,	  /* f_op->owner is a target module */
	WHY_EXPORTER = 4, /* a dma-buf whose exporter is a target module */
};

enum watch_event {
	WATCH_OPEN = 1,
	WATCH_CLOSE = 2,
	WATCH_EXIT = 3,
};

/* One file a task holds: an fd (fd >= 0) or a mapping (fd == -1, start..end). */
struct hold_rec {
	__u32 pid; /* tgid */
	__u32 tid;
	__s32 fd;
	__u32 kind;
	__u32 why;
	__u32 rdev; /* kernel encoding: major << 20 | minor */
	__u64 ino;
	__u64 cookie; /* the struct file, only to count distinct files; never shown */
	__u64 start;
	__u64 end;
	__u32 event; /* watch only */
	__u32 pad;
	char comm[HOLD_COMM_LEN];
	char module[HOLD_MOD_LEN];   /* the owner or exporter that matched */
	char exporter[HOLD_MOD_LEN]; /* dma-buf: exp_name; once matched, the exporting module */
};

#endif
