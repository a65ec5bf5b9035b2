// SPDX-License-Identifier: GPL-2.0-or-later
/* Host checks and kernel-side holders, from sysfs and procfs under --root. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/checks.h"
#include "core/config.h"
#include "core/forward.h"
#include "core/fwdpath.h"
#include "core/modules.h"
#include "core/preflight.h"
#include "core/sysfs.h"
#include "core/targets.h"
#include "shared/macro.h"
#include "shared/strbuf.h"

void findings_free(struct findings *f)
{
	free(f->v);
	f->v = NULL;
	f->n = 0;
}

const char *finding_level_name(enum finding_level l)
{
	return l == LEVEL_OK ? "ok" : l == LEVEL_WARN ? "warn" : "fail";
}

int findings_add(struct findings *f, const char *name, enum finding_level level, bool blocking,
		 const char *hint, const char *fmt, ...)
{
	struct finding *n = realloc(f->v, (f->n + 1) * sizeof(*n));
	va_list ap;

	if (!n)
		return -ENOMEM;
	f->v = n;
	n = &f->v[f->n++];
	memset(n, 0, sizeof(*n));
	snprintf(n->name, sizeof(n->name), "%s", name);
	n->level = level;
	n->ok = level == LEVEL_OK;
	n->blocking = blocking;
	snprintf(n->hint, sizeof(n->hint), "%s", hint ? hint : "");
	va_start(ap, fmt);
	vsnprintf(n->detail, sizeof(n->detail), fmt, ap);
	va_end(ap);
	return 0;
}

/* the handoff's own checks: a blocking one that fails is a fail, any other a warning */
#define add(f, name, ok, blocking, ...)         \
	findings_add(f, name,                   \
		     (ok)	  ? LEVEL_OK    \
		     : (blocking) ? LEVEL_FAIL  \
				  : LEVEL_WARN, \
		     blocking, NULL, __VA_ARGS__)

/* i2c clients ("5-0050") anywhere below the GPU's sysfs directory */
static int i2c_clients(const char *root, const char *dir, int depth, struct findings *out)
{
	struct dirent *de;
	DIR *d;
	int r = 0;

	if (depth > 6 || !(d = opendir_at(root, dir)))
		return 0;
	while ((de = readdir(d)) && !r) {
		char sub[4096], name[64] = "";
		unsigned int bus, addr;
		char tail;

		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		if (sscanf(de->d_name, "%u-%4x%c", &bus, &addr, &tail) == 2) {
			char np[4200];

			snprintf(np, sizeof(np), "%s/name", sub);
			read_line_at(root, np, name, sizeof(name));
			r = add(out, de->d_name, false, false, "i2c client %s on the GPU's bus %u",
				name[0] ? name : "?", bus);
			continue;
		}
		r = i2c_clients(root, sub, depth + 1, out);
	}
	closedir(d);
	return r;
}

/* the vtconsole fbcon is bound as ("" when none): its name says "frame buffer" */
static void fbcon_bound(const char *root, char *vt, size_t len)
{
	struct dirent *de;
	DIR *d;

	vt[0] = '\0';
	if (!(d = opendir_at(root, "/sys/class/vtconsole")))
		return;
	while ((de = readdir(d)) && !vt[0]) {
		char p[512], name[128] = "", bind[8] = "";

		if (strncmp(de->d_name, "vtcon", 5))
			continue;
		snprintf(p, sizeof(p), "/sys/class/vtconsole/%s/name", de->d_name);
		read_line_at(root, p, name, sizeof(name));
		snprintf(p, sizeof(p), "/sys/class/vtconsole/%s/bind", de->d_name);
		read_line_at(root, p, bind, sizeof(bind));
		if (strstr(name, "frame buffer") && !strcmp(bind, "1"))
			snprintf(vt, len, "%.15s", de->d_name);
	}
	closedir(d);
}

void kernel_fb_refs(const char *root, const struct target_set *ts, struct fb_refs *out)
{
	struct dirent *de;
	DIR *d;

	memset(out, 0, sizeof(*out));
	if (!(d = opendir_at(root, "/sys/class/graphics")))
		return;
	while ((de = readdir(d))) {
		char p[512], name[32] = "", dev[32] = "";
		uint32_t kdev;

		if (strncmp(de->d_name, "fb", 2) || !isdigit((unsigned char)de->d_name[2]))
			continue;
		snprintf(p, sizeof(p), "/sys/class/graphics/%s/name", de->d_name);
		read_line_at(root, p, name, sizeof(name));
		/* DRM's fbdev emulation names its framebuffers "<driver>drmfb" */
		if (!str_ends_with(name, "drmfb"))
			continue;
		out->emulations++;
		snprintf(p, sizeof(p), "/sys/class/graphics/%s/dev", de->d_name);
		if (read_line_at(root, p, dev, sizeof(dev)) || parse_majmin(dev, &kdev))
			continue;
		for (size_t i = 0; i < ts->n_nodes; i++)
			if (ts->nodes[i].kdev == kdev && !ts->nodes[i].whole_major &&
			    !out->target_fb[0]) {
				snprintf(out->target_fb, sizeof(out->target_fb), "%.15s",
					 de->d_name);
				snprintf(out->target_fb_name, sizeof(out->target_fb_name), "%s",
					 name);
			}
	}
	closedir(d);
	if (!out->emulations || !exists_at(root, "/sys/module/drm_kms_helper"))
		return;
	snprintf(out->module, sizeof(out->module), "drm_kms_helper");
	fbcon_bound(root, out->fbcon_vt, sizeof(out->fbcon_vt));
	out->fbcon = out->fbcon_vt[0] != '\0';
}

int kernel_holders_find(const char *root, const struct target_set *ts, struct findings *out)
{
	struct fb_refs fb;
	struct dirent *de;
	DIR *d;
	int r = 0;

	kernel_fb_refs(root, ts, &fb);
	if (!fb.fbcon_vt[0])
		fbcon_bound(root, fb.fbcon_vt, sizeof(fb.fbcon_vt));
	if (fb.fbcon && fb.target_fb[0])
		r = add(out, fb.fbcon_vt, false, false,
			"fbcon draws on %s (%s): it holds a reference on %s, not on the GPU's "
			"driver, and keeps the console on the GPU",
			fb.target_fb, fb.target_fb_name, fb.module);
	else if (fb.fbcon_vt[0])
		r = add(out, fb.fbcon_vt, false, false,
			"console bound to a framebuffer: fbcon pins the framebuffer driver's module");
	for (size_t i = 0; i < ARRAY_SIZE(boot_fb_drivers) && !r; i++) {
		char p[256];

		snprintf(p, sizeof(p), "/sys/bus/platform/drivers/%s", boot_fb_drivers[i]);
		if (!(d = opendir_at(root, p)))
			continue;
		while ((de = readdir(d)) && !r)
			if (de->d_type == DT_LNK && strcmp(de->d_name, "module"))
				r = add(out, de->d_name, false, false,
					"boot framebuffer bound to %s; it holds the GPU's memory",
					boot_fb_drivers[i]);
		closedir(d);
	}
	for (size_t i = 0; i < ts->n_pcis && !r; i++) {
		char p[256];

		snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s", ts->pcis[i].bdf);
		r = i2c_clients(root, p, 0, out);
	}
	if (!r && !fb.fbcon_vt[0] && exists_at(root, "/sys/class/graphics/fbcon"))
		for (size_t i = 0; i < ts->n_nodes && !r; i++)
			if (KDEV_MAJOR(ts->nodes[i].kdev) == 29 && !ts->nodes[i].whole_major)
				r = add(out, "fbcon", false, false,
					"%s is a framebuffer fbcon can use", ts->nodes[i].what);
	return r;
}

int iommu_group_others(const char *root, const struct target_set *ts, const char *bdf, char *others,
		       size_t len)
{
	struct strbuf sb = strbuf_on(others, len);
	char path[256];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group/devices", bdf);
	if (!(d = opendir_at(root, path)))
		return -ENOENT;
	while ((de = readdir(d))) {
		char cp[512], cls[16] = "", drv[64] = "";

		if (de->d_name[0] == '.' || target_set_has_pci(ts, de->d_name))
			continue;
		snprintf(cp, sizeof(cp), "/sys/bus/pci/devices/%s/class", de->d_name);
		read_line_at(root, cp, cls, sizeof(cls));
		if ((strtoul(cls, NULL, 16) >> 8) == 0x0604)
			continue; /* a bridge stays with the host */
		/* vfio needs the group's other devices unused by the host: no driver, or a stub */
		snprintf(cp, sizeof(cp), "/sys/bus/pci/devices/%s/driver", de->d_name);
		if (read_link_base_at(root, cp, drv, sizeof(drv)) < 0 || !strcmp(drv, "vfio-pci") ||
		    !strcmp(drv, "pci-stub"))
			continue;
		sb_printf(&sb, "%s%.16s", sb.off ? " " : "", de->d_name);
	}
	closedir(d);
	return 0;
}

bool vfio_pci_available(const char *root, struct kmod_ctx *k)
{
	if (exists_at(root, "/sys/bus/pci/drivers/vfio-pci") ||
	    exists_at(root, "/sys/module/vfio_pci"))
		return true;
	/* installed but not loaded: libkmod reads the tree's modules under --root */
	return k && module_known(k, "vfio-pci");
}

static int check_group(const char *root, const struct target_set *ts, const struct target_pci *p,
		       struct findings *out)
{
	char name[80], others[256];

	snprintf(name, sizeof(name), "iommu-group %s", p->bdf);
	if (iommu_group_others(root, ts, p->bdf, others, sizeof(others)) < 0)
		return 0; /* no IOMMU: the iommu check says so */
	if (others[0])
		return add(
			out, name, false, true,
			"its IOMMU group also holds %s; add them to pcis, or the guest cannot start",
			others);
	return add(out, name, true, true, "every device of its IOMMU group is in pcis");
}

/* the preflight's device rules, as diagnose's checks */
static int check_device(const char *root, const struct config *c, const struct target_set *ts,
			const struct target_pci *p, struct findings *out)
{
	char name[80], why[512];
	int r;

	snprintf(name, sizeof(name), "hand-over %s", p->bdf);
	if ((r = preflight_device(root, c, ts, p, why, sizeof(why))) < 0)
		return add(out, name, false, true, "cannot tell: %s", strerror(-r));
	if (r > 0)
		return add(out, name, false, true, "%s", why);
	return add(out, name, true, true, "%s",
		   (p->class >> 16) == 0x03 ? "a display device, not in the host's use"
					    : "a function of the GPU, not in the host's use");
}

static int check_forward(const char *root, const struct config *c, struct findings *out)
{
	struct fwd_spec fs;
	struct fwd_path path = { 0 };
	struct nf_sock *sock = NULL;
	struct nf_status st;
	struct nf_err e = { 0 };
	char err[512];
	int r;

	if (c->vnc.guest_auto)
		return add(out, "vnc-forward", true, false,
			   "guest.ip = auto: the hook or the daemon sets it when the guest runs");
	if (fwd_spec_resolve(c, &fs, err, sizeof(err))) {
		fwd_spec_free(&fs);
		return add(out, "vnc-forward", false, false, "%s", err);
	}
	r = nf_sock_open(&sock);
	if (!r)
		r = nf_forward_status(sock, &fs.spec, &st, &e);
	if (!r && (r = fwd_path_eval(root, sock, &fs.spec, &path, err, sizeof(err))) < 0)
		nf_status_free(&st);
	else if (r < 0)
		snprintf(err, sizeof(err), "cannot read the ruleset: %s", strerror(-r));
	nf_sock_close(sock);
	fwd_spec_free(&fs);
	if (r < 0)
		return add(out, "vnc-forward", false, false, "%s", err);
	if (path.blocked)
		r = add(out, "vnc-forward", false, false, "BLOCKED: %s", fwd_path_blocked(&path));
	else if (!st.table)
		r = add(out, "vnc-forward", false, false,
			"not installed (the hook installs it when %s starts; or forward up)",
			c->vm);
	else if (!st.matches)
		r = add(out, "vnc-forward", false, false,
			"installed but differs from the config (forward up repairs it)");
	else
		r = add(out, "vnc-forward", true, false, "installed and matches the config");
	/* what vfio-agent cannot judge: a warning of its own */
	for (size_t i = 0; r == 0 && i < path.n; i++)
		if (path.f[i].level == FWD_WARN)
			r = add(out, "vnc-forward-bpf", false, false, "%s", path.f[i].text);
	nf_status_free(&st);
	return r;
}

int checks_run(const char *root, const struct config *c, const struct target_set *ts,
	       struct findings *out)
{
	int r = 0;

	if (ts->n_pcis) {
		struct dirent *de;
		size_t groups = 0;
		DIR *d = opendir_at(root, "/sys/kernel/iommu_groups");

		if (d) {
			while ((de = readdir(d)))
				groups += de->d_name[0] != '.';
			closedir(d);
		}
		r = groups ? add(out, "iommu", true, true, "enabled (%zu group%s)", groups,
				 groups == 1 ? "" : "s")
			   : add(out, "iommu", false, true,
				 "no IOMMU groups: enable VT-d/AMD-Vi in the firmware and boot with "
				 "intel_iommu=on or amd_iommu=on");
		for (size_t i = 0; i < ts->n_pcis && !r; i++)
			r = check_device(root, c, ts, &ts->pcis[i], out);
		for (size_t i = 0; i < ts->n_pcis && !r; i++)
			r = check_group(root, ts, &ts->pcis[i], out);
		if (!r) {
			bool vfio = vfio_pci_available(root, ts->kmod);

			r = vfio ? add(out, "vfio-pci", true, true, "available")
				 : add(out, "vfio-pci", false, true,
				       "the vfio-pci module is neither loaded nor installed for this "
				       "kernel");
		}
		for (size_t i = 0; i < ts->n_pcis && !r; i++) {
			const struct target_pci *p = &ts->pcis[i];
			char name[80];

			snprintf(name, sizeof(name), "driver %s", p->bdf);
			r = add(out, name, true, false, "%s%s%s%s",
				p->driver[0] ? p->driver : "none",
				p->module[0] && strcmp(p->module, p->driver) ? " (module " : "",
				p->module[0] && strcmp(p->module, p->driver) ? p->module : "",
				p->module[0] && strcmp(p->module, p->driver) ? ")" : "");
		}
	}
	if (!r && c && c->vnc.enable) {
		char v[8] = "";

		read_line_at(root, "/proc/sys/net/ipv4/ip_forward", v, sizeof(v));
		r = !strcmp(v, "1")
			    ? add(out, "ip_forward", true, false, "net.ipv4.ip_forward = 1")
			    : add(out, "ip_forward", false, false,
				  "net.ipv4.ip_forward = %s: the guest's VNC port cannot be "
				  "forwarded (sysctl -w net.ipv4.ip_forward=1)",
				  v[0] ? v : "?");
		if (!r && !root[0])
			r = check_forward(root, c, out);
	}
	return r;
}
