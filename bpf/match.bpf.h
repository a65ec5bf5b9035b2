/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Does a struct file belong to the GPU? Shared by the iterators and the
 * watch programs. The targets are three maps the loader fills: device
 * numbers, whole majors (nvidia's 195, the dynamic ones of nvidia-uvm and
 * kfd) and module names (the driver and the modules that depend on it).
 */
#ifndef VFIO_AGENT_MATCH_BPF_H
#define VFIO_AGENT_MATCH_BPF_H

#include "bpf/kernel.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "bpf/hold_rec.h"

#define S_IFMT 00170000
#define S_IFCHR 0020000

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HOLD_MAX_DEVS);
	__type(key, __u32);
	__type(value, __u8);
} target_devs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HOLD_MAX_MAJORS);
	__type(key, __u32);
	__type(value, __u8);
} target_majors SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HOLD_MAX_MODS);
	__type(key, char[HOLD_MOD_LEN]);
	__type(value, __u8);
} target_mods SEC(".maps");

/*
 * How a field is read: the iterators get BTF-typed pointers from the
 * kernel and load fields directly (the JIT turns them into guarded loads,
 * far cheaper than a helper call for each of the ~80k files of a busy
 * host); the watch programs find the file through a probe read and so must
 * read through bpf_probe_read_kernel. The includer picks.
 */
#ifndef MATCH_READ
#define MATCH_READ(p, f) BPF_CORE_READ(p, f)
#endif

/* a module's name, zero-padded as the map keys are */
static __always_inline bool mod_is_target(struct module *mod, char name[HOLD_MOD_LEN])
{
	__builtin_memset(name, 0, HOLD_MOD_LEN);
	if (bpf_probe_read_kernel_str(name, HOLD_MOD_LEN, &mod->name) <= 0)
		return false;
	return bpf_map_lookup_elem(&target_mods, name) != NULL;
}

/*
 * Is the file the GPU's? Reads as little as it can for the common case (a
 * file of no interest); fills r (which the caller zeroed) only on a match.
 */
static __always_inline bool file_match(struct file *file, struct hold_rec *r)
{
	struct inode *inode = MATCH_READ(file, f_inode);
	const struct file_operations *fop = MATCH_READ(file, f_op);
	struct module *owner = fop ? MATCH_READ(fop, owner) : NULL;
	unsigned short mode = MATCH_READ(inode, i_mode);
	struct super_block *sb;
	char name[HOLD_MOD_LEN];
	__u32 why = 0, rdev = 0;

	if ((mode & S_IFMT) == S_IFCHR) {
		__u32 major;

		rdev = MATCH_READ(inode, i_rdev);
		major = rdev >> 20;
		if (bpf_map_lookup_elem(&target_devs, &rdev) ||
		    bpf_map_lookup_elem(&target_majors, &major))
			why |= WHY_DEV;
	}
	if (owner && mod_is_target(owner, name)) {
		why |= WHY_OWNER;
		__builtin_memcpy(r->module, name, HOLD_MOD_LEN);
	}
	sb = MATCH_READ(inode, i_sb);
	if (bpf_core_type_exists(struct dma_buf) && MATCH_READ(sb, s_magic) == DMA_BUF_MAGIC) {
		struct dma_buf *buf = BPF_CORE_READ(file, private_data);

		bpf_probe_read_kernel_str(r->exporter, sizeof(r->exporter),
					  BPF_CORE_READ(buf, exp_name));
		/* exp_name is the exporting module's KBUILD_MODNAME for most drivers */
		__builtin_memset(name, 0, HOLD_MOD_LEN);
		__builtin_memcpy(name, r->exporter, sizeof(r->exporter));
		if (bpf_map_lookup_elem(&target_mods, name) ||
		    mod_is_target(BPF_CORE_READ(buf, owner), name)) {
			why |= WHY_EXPORTER;
			if (!r->module[0])
				bpf_probe_read_kernel_str(r->module, HOLD_MOD_LEN, name);
		}
	}
	r->why = why;
	r->rdev = rdev;
	r->ino = MATCH_READ(inode, i_ino);
	return why != 0;
}

#endif
