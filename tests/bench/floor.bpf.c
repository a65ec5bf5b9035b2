// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The holder scan's floor: the same two task iterators as bpf/holders.bpf.c,
 * over the same files and mappings, that only count them. What is left of
 * diagnose above this is ours to cut; this much is the kernel's walk.
 */
#include "bpf/kernel.h"

#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

__u64 files, vmas;

SEC("iter/task_file")
int count_files(struct bpf_iter__task_file *ctx)
{
	if (ctx->file)
		__sync_fetch_and_add(&files, 1);
	return 0;
}

SEC("iter/task_vma")
int count_vmas(struct bpf_iter__task_vma *ctx)
{
	if (ctx->vma)
		__sync_fetch_and_add(&vmas, 1);
	return 0;
}
