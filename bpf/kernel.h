/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The few kernel types the programs read, declared with CO-RE access
 * relocations instead of a generated vmlinux.h: the build needs no running
 * kernel's BTF (package builders run in sandboxes), and this file is the
 * whole list of kernel fields we depend on. libbpf matches them by name
 * against the running kernel's BTF at load time.
 */
#ifndef VFIO_AGENT_BPF_KERNEL_H
#define VFIO_AGENT_BPF_KERNEL_H

#include <linux/types.h>
#include <linux/bpf.h>

typedef __u32 dev_t;
typedef _Bool bool;
#define true 1
#define false 0

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct module {
	char name[56];
};

struct file_operations {
	struct module *owner;
};

struct super_block {
	unsigned long s_magic;
};

struct inode {
	unsigned short i_mode;
	struct super_block *i_sb;
	unsigned long i_ino;
	dev_t i_rdev;
};

struct file {
	struct inode *f_inode;
	const struct file_operations *f_op;
	void *private_data;
};

struct dma_buf {
	const char *exp_name;
	struct module *owner;
};

struct vm_area_struct {
	unsigned long vm_start;
	unsigned long vm_end;
	struct file *vm_file;
};

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
};

struct files_struct {
	struct fdtable *fdt;
};

typedef struct {
	int counter;
} atomic_t;

struct signal_struct {
	atomic_t live;
};

struct task_struct {
	int pid;
	int tgid;
	char comm[16];
	struct files_struct *files;
	struct signal_struct *signal;
};

struct seq_file;

struct bpf_iter_meta {
	struct seq_file *seq;
	__u64 session_id;
	__u64 seq_num;
};

struct bpf_iter__task_file {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
	__u32 fd;
	struct file *file;
};

struct bpf_iter__task_vma {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
	struct vm_area_struct *vma;
};

#if defined(__TARGET_ARCH_x86)
struct pt_regs {
	unsigned long di;
	unsigned long orig_ax;
};
#elif defined(__TARGET_ARCH_arm64)
struct pt_regs {
	__u64 orig_x0;
	int syscallno;
};
#endif

#pragma clang attribute pop

#endif
