// SPDX-License-Identifier: GPL-2.0-or-later
/* What both backends share: the target sets, the record vector, the match. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bpf/scan.h"
#include "shared/array.h"

void hold_vec_free(struct hold_vec *h)
{
	free(h->v);
	h->v = NULL;
	h->n = h->cap = 0;
}

int hold_vec_push(struct hold_vec *h, const struct hold_rec *r)
{
	if (ARRAY_RESERVE(h->v, h->cap, h->n) < 0)
		return -ENOMEM;
	h->v[h->n++] = *r;
	return 0;
}

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

static int rec_cmp(const void *pa, const void *pb)
{
	const struct hold_rec *a = pa, *b = pb;
	int c;

	if ((c = cmp_u64(a->pid, b->pid)) || (c = cmp_u64(a->kind, b->kind)) ||
	    (c = cmp_u64((uint32_t)a->fd, (uint32_t)b->fd)) || (c = cmp_u64(a->start, b->start)))
		return c;
	return cmp_u64(a->rdev, b->rdev);
}

void hold_vec_normalize(struct hold_vec *h)
{
	size_t i, n = 0;

	if (!h->n)
		return;
	qsort(h->v, h->n, sizeof(*h->v), rec_cmp);
	for (i = 0; i < h->n; i++)
		if (!n || rec_cmp(&h->v[n - 1], &h->v[i]))
			h->v[n++] = h->v[i];
	h->n = n;
}

int scan_targets_add_dev(struct scan_targets *t, uint32_t kdev)
{
	for (size_t i = 0; i < t->n_devs; i++)
		if (t->devs[i] == kdev)
			return 0;
	if (t->n_devs >= HOLD_MAX_DEVS)
		return -E2BIG;
	if (ARRAY_GROW(t->devs, t->n_devs) || ARRAY_GROW(t->dev_mods, t->n_devs))
		return -ENOMEM;
	memset(t->dev_mods[t->n_devs], 0, HOLD_MOD_LEN);
	t->devs[t->n_devs++] = kdev;
	return 0;
}

static void mod_name_norm(char out[HOLD_MOD_LEN], const char *name);

int scan_targets_set_dev_mod(struct scan_targets *t, uint32_t kdev, const char *module)
{
	if (strlen(module) >= HOLD_MOD_LEN)
		return -EINVAL;
	for (size_t i = 0; i < t->n_devs; i++)
		if (t->devs[i] == kdev) {
			mod_name_norm(t->dev_mods[i], module);
			return 0;
		}
	return -ENOENT;
}

int scan_targets_add_major(struct scan_targets *t, uint32_t major)
{
	for (size_t i = 0; i < t->n_majors; i++)
		if (t->majors[i] == major)
			return 0;
	if (t->n_majors >= HOLD_MAX_MAJORS)
		return -E2BIG;
	if (ARRAY_GROW(t->majors, t->n_majors))
		return -ENOMEM;
	t->majors[t->n_majors++] = major;
	return 0;
}

static int mod_index(const struct scan_targets *t, const char *name)
{
	for (size_t i = 0; i < t->n_mods; i++)
		if (!strcmp(t->mods[i], name))
			return (int)i;
	return -1;
}

/* module names compare with '-' and '_' alike, as the kernel's do */
static void mod_name_norm(char out[HOLD_MOD_LEN], const char *name)
{
	size_t i;

	for (i = 0; i + 1 < HOLD_MOD_LEN && name[i]; i++)
		out[i] = name[i] == '-' ? '_' : name[i];
	memset(out + i, 0, HOLD_MOD_LEN - i);
}

int scan_targets_add_mod(struct scan_targets *t, const char *name)
{
	char norm[HOLD_MOD_LEN];

	if (!name[0] || strlen(name) >= HOLD_MOD_LEN)
		return -EINVAL;
	mod_name_norm(norm, name);
	if (mod_index(t, norm) >= 0)
		return 0;
	if (t->n_mods >= HOLD_MAX_MODS)
		return -E2BIG;
	if (ARRAY_GROW(t->mods, t->n_mods))
		return -ENOMEM;
	memcpy(t->mods[t->n_mods++], norm, HOLD_MOD_LEN);
	return 0;
}

int scan_targets_add_drm_driver(struct scan_targets *t, const char *driver, const char *module)
{
	if (strlen(driver) >= HOLD_MOD_LEN || strlen(module) >= HOLD_MOD_LEN)
		return -EINVAL;
	for (size_t i = 0; i < t->n_drm_drivers; i++)
		if (!strcmp(t->drm_drivers[i][0], driver))
			return 0;
	if (ARRAY_GROW(t->drm_drivers, t->n_drm_drivers))
		return -ENOMEM;
	memset(t->drm_drivers[t->n_drm_drivers], 0, sizeof(t->drm_drivers[0]));
	strcpy(t->drm_drivers[t->n_drm_drivers][0], driver);
	mod_name_norm(t->drm_drivers[t->n_drm_drivers][1], module);
	t->n_drm_drivers++;
	return 0;
}

int scan_targets_add_node(struct scan_targets *t, uint64_t st_dev, uint64_t st_ino)
{
	for (size_t i = 0; i < t->n_nodes; i++)
		if (t->nodes[i].st_dev == st_dev && t->nodes[i].st_ino == st_ino)
			return 0;
	if (ARRAY_GROW(t->nodes, t->n_nodes))
		return -ENOMEM;
	t->nodes[t->n_nodes++] = (struct scan_node){ st_dev, st_ino };
	return 0;
}

bool scan_targets_empty(const struct scan_targets *t)
{
	return !t->n_devs && !t->n_majors && !t->n_mods;
}

void scan_targets_free(struct scan_targets *t)
{
	free(t->pids);
	free(t->devs);
	free(t->dev_mods);
	free(t->majors);
	free(t->mods);
	free(t->drm_drivers);
	free(t->nodes);
	memset(t, 0, sizeof(*t));
}

static const char *dev_mod(const struct scan_targets *t, uint32_t kdev)
{
	for (size_t i = 0; i < t->n_devs; i++)
		if (t->devs[i] == kdev)
			return t->dev_mods[i];
	return "";
}

static bool dev_is_target(const struct scan_targets *t, uint32_t kdev)
{
	for (size_t i = 0; i < t->n_devs; i++)
		if (t->devs[i] == kdev)
			return true;
	for (size_t i = 0; i < t->n_majors; i++)
		if (t->majors[i] == KDEV_MAJOR(kdev))
			return true;
	return false;
}

bool hold_match(const struct scan_targets *t, struct hold_rec *r, bool is_chr,
		const char *drm_driver, bool is_dmabuf)
{
	char norm[HOLD_MOD_LEN];

	r->why = 0;
	if (is_chr && dev_is_target(t, r->rdev))
		r->why |= WHY_DEV;
	if (r->module[0] && !is_dmabuf) {
		/* f_op->owner, as the BPF side read it */
		mod_name_norm(norm, r->module);
		if (mod_index(t, norm) >= 0)
			r->why |= WHY_OWNER;
	}
	if (drm_driver && drm_driver[0]) {
		for (size_t i = 0; i < t->n_drm_drivers; i++)
			if (!strcmp(t->drm_drivers[i][0], drm_driver)) {
				r->why |= WHY_OWNER;
				memcpy(r->module, t->drm_drivers[i][1], HOLD_MOD_LEN);
			}
	}
	if ((r->why & WHY_DEV) && !r->module[0] && dev_mod(t, r->rdev)[0]) {
		/*
		 * The file does not name a module (/proc cannot read f_op->owner;
		 * fbmem's own files have none) but its node is a target device's:
		 * opening it pins that device's driver (DRM's fbdev emulation
		 * takes the driver on every open of /dev/fbN).
		 */
		memcpy(r->module, dev_mod(t, r->rdev), HOLD_MOD_LEN);
		if (mod_index(t, r->module) >= 0)
			r->why |= WHY_OWNER;
	}
	if (is_dmabuf) {
		if (r->module[0]) {
			/* dma_buf->owner */
			mod_name_norm(norm, r->module);
			if (mod_index(t, norm) >= 0)
				r->why |= WHY_EXPORTER;
		}
		mod_name_norm(norm, r->exporter);
		if (!(r->why & WHY_EXPORTER) && r->exporter[0] && mod_index(t, norm) >= 0) {
			r->why |= WHY_EXPORTER;
			memcpy(r->module, norm, HOLD_MOD_LEN);
		} else if (!(r->why & WHY_EXPORTER) && !strcmp(r->exporter, "drm") &&
			   t->prime_mod[0]) {
			/* a PRIME export: exp_name is DRM core's; only one driver could have made it */
			r->why |= WHY_EXPORTER;
			memcpy(r->module, t->prime_mod, HOLD_MOD_LEN);
		}
		/* the exporting driver, not the helper that named the buffer */
		if (r->why & WHY_EXPORTER)
			memcpy(r->exporter, r->module, HOLD_MOD_LEN);
	}
	if (r->why & WHY_EXPORTER)
		r->kind = HOLD_DMABUF;
	return r->why != 0;
}

const char *hold_kind_name(uint32_t kind)
{
	switch (kind) {
	case HOLD_FD:
		return "fd";
	case HOLD_MMAP:
		return "mmap";
	case HOLD_DMABUF:
		return "dmabuf";
	}
	return "?";
}
