// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The holder scan: two iterators over every process, one over open files
 * and one over mappings, writing a struct hold_rec for each file of the GPU.
 * The kernel's task iterators skip threads that share their leader's file
 * table or mm, so a multi-threaded holder comes out once.
 */
/* the iterators hand us trusted BTF pointers: plain loads */
#define MATCH_READ(p, f) ((p)->f)
#include "bpf/match.bpf.h"

char LICENSE[] SEC("license") = "GPL";

static __always_inline void fill_task(struct hold_rec *r, struct task_struct *task)
{
	r->pid = BPF_CORE_READ(task, tgid);
	r->tid = BPF_CORE_READ(task, pid);
	BPF_CORE_READ_STR_INTO(&r->comm, task, comm);
}

SEC("iter/task_file")
int scan_files(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct hold_rec r = {};

	if (!task || !file || !file_match(file, &r))
		return 0;
	fill_task(&r, task);
	r.fd = ctx->fd;
	r.kind = r.why & WHY_EXPORTER ? HOLD_DMABUF : HOLD_FD;
	r.cookie = (__u64)file;
	bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
	return 0;
}

SEC("iter/task_vma")
int scan_vmas(struct bpf_iter__task_vma *ctx)
{
	struct task_struct *task = ctx->task;
	struct vm_area_struct *vma = ctx->vma;
	struct hold_rec r = {};
	struct file *file;

	if (!task || !vma)
		return 0;
	file = vma->vm_file;
	if (!file || !file_match(file, &r))
		return 0;
	fill_task(&r, task);
	r.fd = -1;
	r.kind = r.why & WHY_EXPORTER ? HOLD_DMABUF : HOLD_MMAP;
	r.start = vma->vm_start;
	r.end = vma->vm_end;
	r.cookie = (__u64)file;
	bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
	return 0;
}
