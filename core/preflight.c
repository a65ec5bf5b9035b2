// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What would hurt the host, found before the handoff changes anything:
 * a device that is not the GPU or one of its functions, a device the host
 * is using (a mounted disk, a network interface with an address), an IOMMU
 * group that the guest cannot get whole, no vfio-pci.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/checks.h"
#include "core/config.h"
#include "core/modules.h"
#include "core/preflight.h"
#include "core/sysfs.h"
#include "core/targets.h"
#include "netfilter/nft.h"
#include "netfilter/rtnl.h"
#include "shared/macro.h"

#define WALK_DEPTH 8 /* nvme0n1 sits at depth 2, a NIC's net/ at 1, USB storage deeper */

static bool is_display(uint32_t class)
{
	return (class >> 16) == 0x03;
}

static bool allowed_non_gpu(const struct config *c, const char *bdf)
{
	for (size_t i = 0; c && i < c->n_allow_non_gpu; i++)
		if (!strcmp(c->allow_non_gpu[i], bdf))
			return true;
	return false;
}

static void iommu_group(const char *root, const char *bdf, char *grp, size_t len)
{
	char path[256];

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", bdf);
	if (read_link_base_at(root, path, grp, len) < 0)
		grp[0] = '\0';
}

/* "0000:03:00" of "0000:03:00.1": the functions of one slot are one card */
static bool same_slot(const char *a, const char *b)
{
	const char *da = strrchr(a, '.'), *db = strrchr(b, '.');

	return da && db && da - a == db - b && !strncmp(a, b, da - a);
}

/* is the non-display device p a function of a display device in the plan? */
static bool gpu_function(const char *root, const struct target_set *ts, const struct target_pci *p)
{
	char grp[32], g[32];

	iommu_group(root, p->bdf, grp, sizeof(grp));
	for (size_t i = 0; i < ts->n_pcis; i++) {
		const struct target_pci *q = &ts->pcis[i];

		if (q == p || !is_display(q->class))
			continue;
		if (same_slot(q->bdf, p->bdf))
			return true;
		iommu_group(root, q->bdf, g, sizeof(g));
		if (grp[0] && !strcmp(grp, g))
			return true;
	}
	return false;
}

/* is block device MAJ:MIN mounted, or a swap area, under root's /proc? */
static bool block_in_use(const char *root, const char *majmin, const char *name)
{
	char path[4096], line[4096], dev[64];
	bool used = false;
	FILE *f;

	snprintf(path, sizeof(path), "%s/proc/self/mountinfo", root);
	if ((f = fopen(path, "re"))) {
		while (!used && fgets(line, sizeof(line), f))
			/* id parent MAJ:MIN root mountpoint ... */
			used = sscanf(line, "%*s %*s %63s", dev) == 1 && !strcmp(dev, majmin);
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/proc/swaps", root);
	snprintf(dev, sizeof(dev), "/dev/%.50s ", name);
	if (!used && (f = fopen(path, "re"))) {
		while (!used && fgets(line, sizeof(line), f))
			used = !strncmp(line, dev, strlen(dev));
		fclose(f);
	}
	return used;
}

/* does anything (LVM, md, dm-crypt) hold block device dir? */
static bool block_held(const char *root, const char *dir)
{
	char path[4096];
	struct dirent *de;
	bool held = false;
	DIR *d;

	snprintf(path, sizeof(path), "%s%s/holders", root, dir);
	if (!(d = opendir(path)))
		return false;
	while (!held && (de = readdir(d)))
		held = de->d_name[0] != '.';
	closedir(d);
	return held;
}

/* a network interface of this netns with that name, up, with an address */
static bool netif_in_use(const char *name, char *what, size_t len)
{
	struct nf_prefix addrs[4];
	char a[64];
	int idx = rtnl_link_index(name), n;

	if (idx < 0)
		return false;
	if ((n = rtnl_link_addrs(idx, AF_UNSPEC, addrs, ARRAY_SIZE(addrs))) <= 0)
		return false;
	snprintf(what, len, "network interface %s has address %s", name,
		 nf_addr_str(&addrs[0].addr, a, sizeof(a)));
	return true;
}

/*
 * Anything below sysfs directory dir that the host is using: a block
 * device that is mounted, swapped on or held, a network interface with an
 * address. 1 with what filled, 0 when nothing is.
 */
static int host_uses(const char *root, const char *dir, int depth, char *what, size_t len)
{
	char full[4096], sub[4096 + 256], buf[64], cls[32];
	struct dirent *de;
	int r = 0;
	DIR *d;

	if (depth > WALK_DEPTH)
		return 0;
	snprintf(sub, sizeof(sub), "%s/subsystem", dir);
	if (read_link_base_at(root, sub, cls, sizeof(cls)) < 0)
		cls[0] = '\0';
	if (!strcmp(cls, "block")) {
		const char *name = strrchr(dir, '/') + 1;

		snprintf(sub, sizeof(sub), "%s/dev", dir);
		if (!read_line_at(root, sub, buf, sizeof(buf)) &&
		    (block_in_use(root, buf, name) || block_held(root, dir))) {
			snprintf(what, len, "block device %s is in use (mounted, swap or held)",
				 name);
			return 1;
		}
	} else if (!strcmp(cls, "net") && netif_in_use(strrchr(dir, '/') + 1, what, len)) {
		return 1;
	}
	snprintf(full, sizeof(full), "%s%s", root, dir);
	if (!(d = opendir(full)))
		return 0;
	while (!r && (de = readdir(d))) {
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		/* sysfs links (driver, subsystem, iommu_group, device) lead elsewhere */
		snprintf(sub, sizeof(sub), "%s/%s", full, de->d_name);
		if (lstat(sub, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		r = host_uses(root, sub, depth + 1, what, len);
	}
	closedir(d);
	return r;
}

int preflight_device(const char *root, const struct config *c, const struct target_set *ts,
		     const struct target_pci *p, char *why, size_t len)
{
	char dir[256], real[4096], what[256];
	const char *cfg = c && c->path ? c->path : "the config";

	if (allowed_non_gpu(c, p->bdf))
		return 0;
	/* the device's own directory, not the bus's link to it: its children are below */
	snprintf(dir, sizeof(dir), "%s/sys/bus/pci/devices/%s", root, p->bdf);
	if (realpath(dir, real) && !strncmp(real, root, strlen(root)) &&
	    host_uses(root, real + strlen(root), 0, what, sizeof(what)) > 0) {
		snprintf(why, len,
			 "%s carries what the host is using: %s; stop using it, or remove %s "
			 "from the devices to hand over",
			 p->bdf, what, p->bdf);
		return 1;
	}
	if (!is_display(p->class) && !gpu_function(root, ts, p)) {
		snprintf(why, len,
			 "%s is not a display device (class 0x%06x%s%s) nor a function of the GPU "
			 "being handed over; remove it, or name it in allow-non-gpu in %s "
			 "(dangerous: the host loses it)",
			 p->bdf, p->class, p->driver[0] ? ", driver " : "", p->driver, cfg);
		return 1;
	}
	return 0;
}

int handoff_preflight(const char *root, const struct config *c, const struct target_set *ts,
		      char *err, size_t errlen)
{
	char others[256];
	int r;

	for (size_t i = 0; i < ts->n_pcis; i++)
		if ((r = preflight_device(root, c, ts, &ts->pcis[i], err, errlen)) != 0)
			return r < 0 ? r : -EPERM;
	for (size_t i = 0; i < ts->n_pcis; i++) {
		if ((r = iommu_group_others(root, ts, ts->pcis[i].bdf, others, sizeof(others))) < 0)
			continue; /* no IOMMU: vfio-pci's bind says so */
		if (others[0]) {
			snprintf(err, errlen,
				 "%s: its IOMMU group also holds %s, which stay with the host; add "
				 "them to pcis, or the guest cannot start",
				 ts->pcis[i].bdf, others);
			return -EPERM;
		}
	}
	if (!vfio_pci_available(root, ts->kmod)) {
		snprintf(err, errlen,
			 "vfio-pci is not available: install the vfio-pci module, or "
			 "build the kernel with CONFIG_VFIO_PCI");
		return -EPERM;
	}
	return 0;
}
