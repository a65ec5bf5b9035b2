// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Resolve the GPU: from PCI addresses, driver modules or device nodes to
 * the device numbers and module names the holder scan matches.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <libkmod.h>

#include "core/config.h"
#include "core/dl.h"
#include "shared/macro.h"
#include "core/modules.h"
#include "core/sysfs.h"
#include "core/targets.h"

#define NVIDIA_MAJOR 195

int parse_majmin(const char *s, uint32_t *kdev)
{
	unsigned long maj, min;
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return -EINVAL;
	maj = strtoul(s, &end, 10);
	if (*end != ':' || !isdigit((unsigned char)end[1]))
		return -EINVAL;
	min = strtoul(end + 1, &end, 10);
	if (*end || maj > 0xfff || min > 0xfffff)
		return -EINVAL;
	*kdev = KDEV(maj, min);
	return 0;
}

static int add_node(struct target_set *ts, uint32_t kdev, bool whole_major, const char *path,
		    const char *what)
{
	struct target_node *n;
	int r;

	r = whole_major ? scan_targets_add_major(&ts->scan, KDEV_MAJOR(kdev))
			: scan_targets_add_dev(&ts->scan, kdev);
	if (r)
		return r;
	for (size_t i = 0; i < ts->n_nodes; i++)
		if (ts->nodes[i].kdev == kdev && ts->nodes[i].whole_major == whole_major)
			return 0;
	n = realloc(ts->nodes, (ts->n_nodes + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	ts->nodes = n;
	n = &ts->nodes[ts->n_nodes++];
	memset(n, 0, sizeof(*n));
	n->kdev = kdev;
	n->whole_major = whole_major;
	snprintf(n->path, sizeof(n->path), "%s", path);
	snprintf(n->what, sizeof(n->what), "%s", what);
	return 0;
}

/* every minor of the char majors /proc/devices lists under a name (or prefix) */
static int add_majors_named(struct target_set *ts, const char *root, const char *prefix,
			    bool is_prefix)
{
	char path[4096], line[256];
	bool chr = false;
	FILE *f;
	int r = 0;

	snprintf(path, sizeof(path), "%s/proc/devices", root);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned int maj;
		char name[128], what[48];

		if (!strncmp(line, "Character", 9))
			chr = true;
		else if (!strncmp(line, "Block", 5))
			chr = false;
		if (!chr || sscanf(line, "%u %127s", &maj, name) != 2)
			continue;
		if (is_prefix ? strncmp(name, prefix, strlen(prefix)) : strcmp(name, prefix))
			continue;
		snprintf(what, sizeof(what), "%.30s (major %u)", name, maj);
		if ((r = add_node(ts, KDEV(maj, 0), true, "", what)))
			break;
	}
	fclose(f);
	return r;
}

/* Every char device below a sysfs device directory: drm, fb, i2c-dev, sound... */
static int walk_devs(struct target_set *ts, const char *root, const char *dir, int depth)
{
	char full[4096], sub[4096], buf[256];
	struct dirent *de;
	DIR *d;
	int r = 0;

	if (depth > 6)
		return 0;
	snprintf(sub, sizeof(sub), "%s/dev", dir);
	if (!read_line_at(root, sub, buf, sizeof(buf))) {
		char cls[64], name[128] = "", node[160] = "";
		uint32_t kdev;

		snprintf(sub, sizeof(sub), "%s/subsystem", dir);
		read_link_base_at(root, sub, cls, sizeof(cls));
		if (strcmp(cls, "block") && !parse_majmin(buf, &kdev)) {
			snprintf(sub, sizeof(sub), "%s/uevent", dir);
			snprintf(full, sizeof(full), "%s%s", root, sub);
			FILE *f = fopen(full, "re");
			if (f) {
				char line[256];

				while (fgets(line, sizeof(line), f))
					if (!strncmp(line, "DEVNAME=", 8)) {
						line[strcspn(line, "\n")] = '\0';
						snprintf(name, sizeof(name), "%.120s", line + 8);
					}
				fclose(f);
			}
			if (name[0])
				snprintf(node, sizeof(node), "/dev/%s", name);
			else
				snprintf(name, sizeof(name), "%s", basename(strcpy(sub, dir)));
			if ((r = add_node(ts, kdev, false, node, name)))
				return r;
		}
	}
	snprintf(full, sizeof(full), "%s%s", root, dir);
	d = opendir(full);
	if (!d)
		return 0;
	while ((de = readdir(d)) && !r) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue; /* sysfs links (driver, subsystem, device) are not followed */
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		r = walk_devs(ts, root, sub, depth + 1);
	}
	closedir(d);
	return r;
}

static int add_dep(const char *dep, void *arg)
{
	struct scan_targets *t = arg;
	size_t before = t->n_mods;
	int r = scan_targets_add_mod(t, dep);

	return r < 0 ? r : t->n_mods == before; /* 1: seen */
}

/* what depends on mod, loaded, as module targets; a module not loaded has none */
static int add_dependents_of(struct target_set *ts, struct kmod_ctx *k, const char *mod)
{
	int r = module_each_dependent(k, mod, add_dep, &ts->scan);

	return r == -ENOENT ? 0 : r;
}

static int add_root_module(struct target_set *ts, struct kmod_ctx *k, const char *mod)
{
	int r;

	for (size_t i = 0; i < ts->n_roots; i++)
		if (!strcmp(ts->roots[i], mod))
			return 0;
	void *p = realloc(ts->roots, (ts->n_roots + 1) * sizeof(*ts->roots));
	if (!p)
		return -ENOMEM;
	ts->roots = p;
	snprintf(ts->roots[ts->n_roots++], HOLD_MOD_LEN, "%s", mod);
	if ((r = scan_targets_add_mod(&ts->scan, mod)))
		return r;
	return k ? add_dependents_of(ts, k, mod) : 0;
}

int targets_add_dependents(struct target_set *ts, struct kmod_ctx *k)
{
	int r = 0;

	for (size_t i = 0; i < ts->n_roots && !r; i++)
		r = add_dependents_of(ts, k, ts->roots[i]);
	return r;
}

static int add_pci(struct target_set *ts, struct kmod_ctx *k, const char *root, const char *bdf)
{
	char dir[256], buf[64];
	struct target_pci *p;
	size_t first;
	int r;

	for (size_t i = 0; i < ts->n_pcis; i++)
		if (!strcmp(ts->pcis[i].bdf, bdf))
			return 0;
	snprintf(dir, sizeof(dir), "/sys/bus/pci/devices/%s/class", bdf);
	if ((r = read_line_at(root, dir, buf, sizeof(buf))))
		return r == -ENOENT ? -ENODEV : r;
	p = realloc(ts->pcis, (ts->n_pcis + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	ts->pcis = p;
	p = &ts->pcis[ts->n_pcis++];
	memset(p, 0, sizeof(*p));
	snprintf(p->bdf, sizeof(p->bdf), "%s", bdf);
	p->class = (uint32_t)strtoul(buf, NULL, 16);
	snprintf(dir, sizeof(dir), "/sys/bus/pci/devices/%s/driver", bdf);
	read_link_base_at(root, dir, p->driver, sizeof(p->driver));
	snprintf(dir, sizeof(dir), "/sys/bus/pci/devices/%s/driver/module", bdf);
	read_link_base_at(root, dir, p->module, sizeof(p->module));

	snprintf(dir, sizeof(dir), "/sys/bus/pci/devices/%s", bdf);
	first = ts->n_nodes;
	r = walk_devs(ts, root, dir, 0);
	for (size_t i = first; i < ts->n_nodes; i++)
		snprintf(ts->nodes[i].pci, sizeof(ts->nodes[i].pci), "%s", bdf);
	if (r)
		return r;
	if (!p->module[0])
		return 0;
	/* card0, renderD128, fb0 of this device: their files pin its driver */
	for (size_t i = first; i < ts->n_nodes; i++)
		if (!ts->nodes[i].whole_major &&
		    (r = scan_targets_set_dev_mod(&ts->scan, ts->nodes[i].kdev, p->module)))
			return r;
	if ((r = add_root_module(ts, k, p->module)))
		return r;
	/* the DRM driver's name in fdinfo is the PCI driver's ("bochs-drm" for bochs) */
	if ((r = scan_targets_add_drm_driver(&ts->scan, p->driver, p->module)))
		return r;
	if (!strcmp(p->module, "amdgpu")) {
		uint32_t kdev;

		/* kfd's major is dynamic: sysfs names it, else /proc/devices */
		if (!read_line_at(root, "/sys/class/kfd/kfd/dev", buf, sizeof(buf)) &&
		    !parse_majmin(buf, &kdev))
			r = add_node(ts, kdev, false, "/dev/kfd", "kfd");
		else
			r = add_majors_named(ts, root, "kfd", false);
		if (r)
			return r;
	} else if (!strcmp(p->module, "nvidia")) {
		if ((r = add_node(ts, KDEV(NVIDIA_MAJOR, 0), true, "/dev/nvidia*",
				  "nvidia (major 195)")))
			return r;
		/* nvidia-uvm, nvidia-caps, nvidia-nvlink: dynamic majors */
		if ((r = add_majors_named(ts, root, "nvidia-", true)))
			return r;
	}
	/* the driver's own nodes (kfd, nvidia*) came with this device, the first that brought them */
	for (size_t i = first; i < ts->n_nodes; i++)
		if (!ts->nodes[i].pci[0])
			snprintf(ts->nodes[i].pci, sizeof(ts->nodes[i].pci), "%s", bdf);
	return 0;
}

static int add_display_pcis(struct target_set *ts, struct kmod_ctx *k, const char *root)
{
	char path[4096], buf[64];
	struct dirent *de;
	DIR *d;
	int r = 0;

	snprintf(path, sizeof(path), "%s/sys/bus/pci/devices", root);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d)) && !r) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/class", de->d_name);
		if (read_line_at(root, path, buf, sizeof(buf)))
			continue;
		if ((strtoul(buf, NULL, 16) >> 16) == 0x03)
			r = add_pci(ts, k, root, de->d_name);
	}
	closedir(d);
	return r;
}

/* the PCI devices a module's drivers are bound to */
static int add_driver(struct target_set *ts, struct kmod_ctx *k, const char *root, const char *mod)
{
	char path[4096], norm[HOLD_MOD_LEN];
	struct dirent *de, *pe;
	DIR *d, *pd;
	int r;

	snprintf(norm, sizeof(norm), "%s", mod);
	for (char *c = norm; *c; c++)
		if (*c == '-')
			*c = '_';
	snprintf(path, sizeof(path), "%s/sys/module/%s", root, norm);
	if (access(path, F_OK) && !(k && module_known(k, norm)))
		return -ENOENT;
	if ((r = add_root_module(ts, k, norm)))
		return r;
	snprintf(path, sizeof(path), "%s/sys/module/%s/drivers", root, norm);
	d = opendir(path);
	if (!d)
		return 0; /* not loaded: nothing bound */
	while ((de = readdir(d)) && !r) {
		if (strncmp(de->d_name, "pci:", 4))
			continue;
		snprintf(path, sizeof(path), "%s/sys/module/%s/drivers/%s", root, norm, de->d_name);
		pd = opendir(path);
		if (!pd)
			continue;
		while ((pe = readdir(pd)) && !r) {
			char bdf[16];

			if (parse_pci(pe->d_name, bdf) == 0 && !strcmp(bdf, pe->d_name))
				r = add_pci(ts, k, root, bdf);
		}
		closedir(pd);
	}
	closedir(d);
	return r;
}

static int add_device(struct target_set *ts, const char *root, const char *arg)
{
	char full[4096], mod[HOLD_MOD_LEN];
	struct stat st;
	uint32_t kdev;
	int r;

	if (arg[0] != '/' && arg[0] != '.') {
		if (parse_majmin(arg, &kdev))
			return -EINVAL;
		return add_node(ts, kdev, false, "", arg);
	}
	snprintf(full, sizeof(full), "%s%s", arg[0] == '/' ? root : "", arg);
	if (stat(full, &st))
		return -errno;
	if (!S_ISCHR(st.st_mode))
		return -ENOTTY;
	kdev = KDEV(major(st.st_rdev), minor(st.st_rdev));
	scan_targets_add_node(&ts->scan, st.st_dev, st.st_ino);
	if ((r = add_node(ts, kdev, false, arg, "--device")))
		return r;
	/* the driver of the device behind the node, where sysfs says */
	snprintf(full, sizeof(full), "/sys/dev/char/%u:%u/device/driver/module", major(st.st_rdev),
		 minor(st.st_rdev));
	if (!read_link_base_at(root, full, mod, sizeof(mod)))
		return scan_targets_set_dev_mod(&ts->scan, kdev, mod);
	return 0;
}

/*
 * The one DRM driver a PRIME dma-buf can come from: a buffer pins the
 * module that exported it, so that is among DRM's dependents that are in
 * use and that nothing depends on (drivers, not helpers like ttm). When
 * exactly one such module exists and it is a target, it is the answer;
 * "" otherwise.
 */
static void find_prime_mod(struct target_set *ts, const char *root)
{
	char path[4096], leaf[HOLD_MOD_LEN] = "", buf[32];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/sys/module/drm/holders", root);
	if (!(d = opendir(path)))
		return;
	while ((de = readdir(d))) {
		bool has_deps = false;
		struct dirent *he;
		DIR *h;

		if (de->d_name[0] == '.' || strlen(de->d_name) >= sizeof(leaf))
			continue;
		snprintf(path, sizeof(path), "/sys/module/%s/refcnt", de->d_name);
		if (read_line_at(root, path, buf, sizeof(buf)) || atoi(buf) <= 0)
			continue;
		snprintf(path, sizeof(path), "%s/sys/module/%s/holders", root, de->d_name);
		if ((h = opendir(path))) {
			while ((he = readdir(h)))
				has_deps |= he->d_name[0] != '.';
			closedir(h);
		}
		if (!has_deps && n++ == 0)
			strcpy(leaf, de->d_name);
	}
	closedir(d);
	if (n != 1)
		return;
	for (size_t i = 0; i < ts->scan.n_mods; i++)
		if (!strcmp(ts->scan.mods[i], leaf))
			memcpy(ts->scan.prime_mod, ts->scan.mods[i], HOLD_MOD_LEN);
}

int targets_resolve(const char *root, const struct config *c, const struct target_req *req,
		    struct kmod_ctx *k, struct target_set *ts, char *err, size_t errlen)
{
	size_t i;
	int r = 0;

	memset(ts, 0, sizeof(*ts));
	err[0] = '\0';
	for (i = 0; i < req->n_pcis && !r; i++)
		if ((r = add_pci(ts, k, root, req->pcis[i])) == -ENODEV) {
			snprintf(err, errlen,
				 "no PCI device %s (%s/sys/bus/pci/devices/%s does not exist)",
				 req->pcis[i], root, req->pcis[i]);
			goto usage;
		}
	for (i = 0; i < req->n_drivers && !r; i++)
		if ((r = add_driver(ts, k, root, req->drivers[i])) == -ENOENT) {
			snprintf(err, errlen,
				 "no module '%s': not loaded and not installed for this kernel",
				 req->drivers[i]);
			goto usage;
		}
	for (i = 0; i < req->n_devices && !r; i++) {
		r = add_device(ts, root, req->devices[i]);
		if (r == -EINVAL) {
			snprintf(err, errlen,
				 "--device '%s': expected a device node path or MAJ:MIN (226:0)",
				 req->devices[i]);
			goto usage;
		} else if (r == -ENOTTY) {
			snprintf(err, errlen, "--device %s%s: not a character device", root,
				 req->devices[i]);
			goto usage;
		} else if (r < 0 && r != -ENOMEM && r != -E2BIG) {
			snprintf(err, errlen, "--device %s%s: %s", root, req->devices[i],
				 strerror(-r));
			goto usage;
		}
	}
	if (!r && !req->n_pcis && !req->n_drivers && !req->n_devices) {
		if (c && c->n_pcis) {
			ts->pcis_from_config = true;
			for (i = 0; i < c->n_pcis && !r; i++)
				if ((r = add_pci(ts, k, root, c->pcis[i])) == -ENODEV) {
					snprintf(
						err, errlen,
						"%s: pcis names %s, but there is no such PCI device",
						c->path, c->pcis[i]);
					goto usage;
				}
		} else if ((r = add_display_pcis(ts, k, root)) == -ENOENT) {
			snprintf(err, errlen,
				 "no GPU found: %s/sys/bus/pci/devices does not exist; name one "
				 "with --pci, --driver or --device",
				 root);
			goto usage;
		} else if (!r && !ts->n_pcis) {
			snprintf(
				err, errlen,
				"no GPU found: no display-class PCI device under "
				"%s/sys/bus/pci/devices; name one with --pci, --driver or --device",
				root);
			goto usage;
		}
	}
	if (r) {
		snprintf(err, errlen, "resolving the GPU: %s", strerror(-r));
		r = r == -EINVAL ? -EIO : r;
		goto out;
	}
	find_prime_mod(ts, root);
	ts->kmod = k;
	return 0;
usage:
	r = -EINVAL;
out:
	if (k)
		modules_close(k);
	target_set_free(ts);
	return r;
}

int target_req_init(struct target_req *req, int argc)
{
	memset(req, 0, sizeof(*req));
	req->drivers = calloc(argc, sizeof(*req->drivers));
	req->devices = calloc(argc, sizeof(*req->devices));
	req->pcis = calloc(argc, sizeof(*req->pcis));
	return req->drivers && req->devices && req->pcis ? 0 : -ENOMEM;
}

void target_req_free(struct target_req *req)
{
	free(req->drivers);
	free(req->devices);
	free(req->pcis);
	memset(req, 0, sizeof(*req));
}

void target_set_free(struct target_set *ts)
{
	if (ts->kmod)
		modules_close(ts->kmod);
	scan_targets_free(&ts->scan);
	free(ts->pcis);
	free(ts->nodes);
	free(ts->roots);
	memset(ts, 0, sizeof(*ts));
}

const char *const boot_fb_drivers[BOOT_FB_DRIVERS] = {
	"efi-framebuffer", "simple-framebuffer", "simpledrm", "vesa-framebuffer", "vesafb",
};

const char *target_set_pci_of(const struct target_set *ts, uint32_t rdev)
{
	for (size_t i = 0; i < ts->n_nodes; i++)
		if (!ts->nodes[i].whole_major && ts->nodes[i].kdev == rdev)
			return ts->nodes[i].pci[0] ? ts->nodes[i].pci : NULL;
	for (size_t i = 0; i < ts->n_nodes; i++)
		if (ts->nodes[i].whole_major && KDEV_MAJOR(ts->nodes[i].kdev) == KDEV_MAJOR(rdev))
			return ts->nodes[i].pci[0] ? ts->nodes[i].pci : NULL;
	return NULL;
}

bool target_set_has_pci(const struct target_set *ts, const char *bdf)
{
	for (size_t i = 0; i < ts->n_pcis; i++)
		if (!strcmp(ts->pcis[i].bdf, bdf))
			return true;
	return false;
}
