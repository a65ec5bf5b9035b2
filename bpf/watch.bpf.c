// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * watch: opens of the GPU's files and closes and exits of their holders,
 * as they happen, into a ring buffer. Only core tracepoints (raw syscall
 * entry/exit, process fork/exit) are used: nothing is attached inside the
 * GPU's modules, which would pin them, and nothing needs kprobes or fentry.
 * The file behind an fd is looked up in the task's own fd table.
 */
#include "bpf/match.bpf.h"
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

/* syscall numbers of this architecture, from the loader's <sys/syscall.h> */
const volatile long nr_open = -1;
const volatile long nr_openat = -1;
const volatile long nr_openat2 = -1;
const volatile long nr_close = -1;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* processes that hold, or held, a file of the GPU: their exit is news */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} holders SEC(".maps");

static __always_inline struct file *fd_file(struct task_struct *task, long fd)
{
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **arr, *file = NULL;

	if (fd < 0 || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	arr = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&file, sizeof(file), &arr[fd]);
	return file;
}

static __always_inline void emit(struct task_struct *task, __u32 event, long fd,
				 const struct hold_rec *m)
{
	struct hold_rec *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);

	if (!r)
		return;
	*r = *m;
	r->event = event;
	r->pid = BPF_CORE_READ(task, tgid);
	r->tid = BPF_CORE_READ(task, pid);
	r->fd = fd;
	r->kind = r->why & WHY_EXPORTER ? HOLD_DMABUF : HOLD_FD;
	BPF_CORE_READ_STR_INTO(&r->comm, task, comm);
	bpf_ringbuf_submit(r, 0);
}

static __always_inline long syscall_nr(struct pt_regs *regs)
{
#if defined(__TARGET_ARCH_x86)
	return BPF_CORE_READ(regs, orig_ax);
#elif defined(__TARGET_ARCH_arm64)
	return BPF_CORE_READ(regs, syscallno);
#else
	return -1;
#endif
}

static __always_inline long syscall_arg0(struct pt_regs *regs)
{
#if defined(__TARGET_ARCH_x86)
	return BPF_CORE_READ(regs, di);
#elif defined(__TARGET_ARCH_arm64)
	return BPF_CORE_READ(regs, orig_x0);
#else
	return -1;
#endif
}

SEC("tp_btf/sys_exit")
int BPF_PROG(watch_sys_exit, struct pt_regs *regs, long ret)
{
	struct task_struct *task;
	struct hold_rec m = {};
	struct file *file;
	long nr;
	__u8 one = 1;
	__u32 tgid;

	if (ret < 0)
		return 0;
	nr = syscall_nr(regs);
	if (nr != nr_openat && nr != nr_open && nr != nr_openat2)
		return 0;
	task = bpf_get_current_task_btf();
	file = fd_file(task, ret);
	if (!file || !file_match(file, &m))
		return 0;
	emit(task, WATCH_OPEN, ret, &m);
	tgid = BPF_CORE_READ(task, tgid);
	bpf_map_update_elem(&holders, &tgid, &one, BPF_ANY);
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(watch_sys_enter, struct pt_regs *regs, long id)
{
	struct task_struct *task;
	struct hold_rec m = {};
	struct file *file;
	long fd;

	if (id != nr_close)
		return 0;
	task = bpf_get_current_task_btf();
	fd = syscall_arg0(regs);
	file = fd_file(task, fd);
	if (!file || !file_match(file, &m))
		return 0;
	emit(task, WATCH_CLOSE, fd, &m);
	return 0;
}

/* a holder's child inherits its fds */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(watch_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid), ctgid = BPF_CORE_READ(child, tgid);
	__u8 one = 1;

	if (ptgid != ctgid && bpf_map_lookup_elem(&holders, &ptgid))
		bpf_map_update_elem(&holders, &ctgid, &one, BPF_ANY);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(watch_exit, struct task_struct *task)
{
	__u32 tgid = BPF_CORE_READ(task, tgid);
	struct hold_rec m = {};

	if (!bpf_map_lookup_elem(&holders, &tgid))
		return 0;
	/* the process ends with its last thread */
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	bpf_map_delete_elem(&holders, &tgid);
	emit(task, WATCH_EXIT, -1, &m);
	return 0;
}
