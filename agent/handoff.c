// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The handoff. Every change is journaled before it is made, and every undo
 * is safe on a change that never happened, so that a crash between the two
 * still undoes cleanly.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <libkmod.h>

#include "agent/agent.h"
#include "agent/config.h"
#include "agent/dl.h"
#include "agent/domain.h"
#include "agent/handoff.h"
#include "agent/holders.h"
#include "agent/journal.h"
#include "agent/log.h"
#include "agent/macro.h"
#include "agent/modules.h"
#include "agent/sysfs.h"
#include "agent/targets.h"
#include "agent/units.h"

#define UNIT_TIMEOUT_S 90 /* systemd's DefaultTimeoutStopSec */
#define BIND_TIMEOUT_US (2 * 1000000)
#define LOCK_TIMEOUT_S 60
#define POLL_US (200 * 1000)

/* the boot framebuffers' platform drivers (simpledrm registers as simple-framebuffer) */
static const char *const fb_drivers[] = { "efi-framebuffer", "simple-framebuffer",
					  "vesa-framebuffer" };

struct handoff {
	const struct agent_ctx *ctx;
	const char *root;
	const struct config *c;
	const char *vm;
	bool dry;
	json_object *j; /* the plan as JSON (--dry-run --json), else NULL */
	int jfd;
	struct jrec *done; /* what this run changed, for rollback */
	size_t n_done;
	struct target_set ts;
	struct kmod_ctx *kmod;
	sd_bus *bus;
	char err[512];
};

static int fail(struct handoff *h, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(h->err, sizeof(h->err), fmt, ap);
	va_end(ap);
	return r < 0 ? r : -EIO;
}

/* the JSON plan's array KEY, made on first use */
static json_object *plan_array(struct handoff *h, const char *key)
{
	json_object *a;

	if (!json_object_object_get_ex(h->j, key, &a)) {
		a = json_object_new_array();
		json_object_object_add(h->j, key, a);
	}
	return a;
}

/* a line of the plan that is not a step: text, or one of the JSON plan's notes */
static void plan(struct handoff *h, const char *fmt, ...)
{
	char line[640];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (h->j)
		json_object_array_add(plan_array(h, "notes"), json_object_new_string(line));
	else
		printf("  %s\n", line);
}

static const char *plan_text(const struct jrec *r, char *buf, size_t len)
{
	switch (r->step) {
	case J_UNIT:
		snprintf(buf, len, "stop unit %s", r->a);
		break;
	case J_VTCON:
		snprintf(buf, len, "unbind console %s from its framebuffer", r->a);
		break;
	case J_FB:
		snprintf(buf, len, "unbind framebuffer %s from %s", r->b, r->a);
		break;
	case J_MODULE:
		snprintf(buf, len, "unload module %s", r->a);
		break;
	case J_UNBIND:
		snprintf(buf, len, "unbind %s from %s (the driver stays for other devices)", r->a,
			 r->b);
		break;
	case J_VFIO:
		snprintf(buf, len, "bind %s to vfio-pci", r->a);
		break;
	case J_LOADED:
		snprintf(buf, len, "load module %s", r->a);
		break;
	default:
		snprintf(buf, len, "?");
	}
	return buf;
}

/* a step the plan would take (or, undo, take back), as the journal names it */
static void plan_step(struct handoff *h, const struct jrec *rec, bool undo)
{
	char text[256];
	json_object *o;

	plan_text(rec, text, sizeof(text));
	if (!h->j) {
		printf("  %s%s\n", undo ? "undo: " : "", text);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "step", json_object_new_string(jstep_name(rec->step)));
	json_object_object_add(o, "undo", json_object_new_boolean(undo));
	json_object_object_add(o, "object", json_object_new_string(rec->a));
	if (rec->b[0])
		json_object_object_add(o, "from", json_object_new_string(rec->b));
	json_object_object_add(o, "text", json_object_new_string(text));
	json_object_array_add(plan_array(h, "steps"), o);
}

/* Journal a step before it runs; in a dry run, say what it would be. */
static int record(struct handoff *h, enum jstep step, const char *a, const char *b)
{
	struct jrec rec = { .step = step };
	int r;

	snprintf(rec.a, sizeof(rec.a), "%s", a);
	snprintf(rec.b, sizeof(rec.b), "%s", b ? b : "");
	if (h->dry) {
		plan_step(h, &rec, false);
		return 0;
	}
	void *p = realloc(h->done, (h->n_done + 1) * sizeof(*h->done));
	if (!p)
		return fail(h, -ENOMEM, "journal: out of memory");
	h->done = p;
	if ((r = journal_append(h->jfd, &rec)) < 0)
		return fail(h, r, "journal: cannot write %s/run/vfio-agent/%s.journal: %s", h->root,
			    h->vm, strerror(-r));
	h->done[h->n_done++] = rec;
	return 0;
}

static int bus_get(struct handoff *h, const char *what)
{
	int r;

	if (h->bus)
		return 0;
	if ((r = units_connect(&h->bus)) < 0)
		return fail(h, r, "%s: cannot reach systemd on the system bus: %s", what,
			    strerror(-r));
	return 0;
}

/* 1. the configured units, stopped through systemd, when they run */
static int step_units(struct handoff *h)
{
	char err[256];
	int r;

	for (size_t i = 0; i < h->c->n_stop_units; i++) {
		const char *u = h->c->stop_units[i];
		bool active;

		if ((r = bus_get(h, "stop-units")) < 0) {
			if (!h->dry)
				return r;
			plan(h, "stop unit %s if it runs (%s)", u, h->err);
			continue;
		}
		if ((r = unit_is_active(h->bus, u, &active, err, sizeof(err))) < 0)
			return fail(h, r, "stop-units: %s: %s", u, err);
		if (!active) {
			log_info("%s is not running; left alone", u);
			continue;
		}
		if ((r = record(h, J_UNIT, u, NULL)))
			return r;
		if (h->dry)
			continue;
		log_info("stopping %s", u);
		if ((r = unit_stop(h->bus, u, UNIT_TIMEOUT_S * 1000000ull, err, sizeof(err))) < 0)
			return fail(h, r, "stop-units: %s did not stop: %s", u, err);
	}
	return 0;
}

static int scan_sorted(const char *root, const char *dir, struct dirent ***list)
{
	char full[4096];

	snprintf(full, sizeof(full), "%s%s", root, dir);
	return scandir(full, list, NULL, alphasort);
}

static void free_list(struct dirent **list, int n)
{
	for (int i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

/* 2. every vtconsole bound to a framebuffer console (fbcon), not just vtcon0/1 */
static int step_consoles(struct handoff *h)
{
	struct dirent **list;
	int n = scan_sorted(h->root, "/sys/class/vtconsole", &list), r = 0;

	if (n < 0)
		return 0; /* no VT subsystem: nothing to unbind */
	for (int i = 0; i < n && !r; i++) {
		const char *vt = list[i]->d_name;
		char path[512], name[128], bind[8];

		if (strncmp(vt, "vtcon", 5))
			continue;
		snprintf(path, sizeof(path), "/sys/class/vtconsole/%s/name", vt);
		if (read_line_at(h->root, path, name, sizeof(name)) || !strstr(name, "frame buffer"))
			continue;
		snprintf(path, sizeof(path), "/sys/class/vtconsole/%s/bind", vt);
		if (read_line_at(h->root, path, bind, sizeof(bind)) || strcmp(bind, "1"))
			continue;
		if ((r = record(h, J_VTCON, vt, NULL)) || h->dry)
			continue;
		if ((r = write_attr_at(h->root, path, "0\n")) < 0)
			r = fail(h, r, "consoles: unbind %s: %s", vt, strerror(-r));
	}
	free_list(list, n);
	return r;
}

static bool is_attr(const char *name)
{
	static const char *const attrs[] = { ".", "..", "bind", "unbind", "uevent", "module",
					     "new_id", "remove_id" };

	for (size_t i = 0; i < ARRAY_SIZE(attrs); i++)
		if (!strcmp(name, attrs[i]))
			return true;
	return false;
}

/* 3. efi/simple/vesa framebuffers, which keep the GPU's memory mapped */
static int step_framebuffers(struct handoff *h)
{
	int r = 0;

	for (size_t d = 0; d < ARRAY_SIZE(fb_drivers) && !r; d++) {
		struct dirent **list;
		char dir[256];
		int n;

		snprintf(dir, sizeof(dir), "/sys/bus/platform/drivers/%s", fb_drivers[d]);
		if ((n = scan_sorted(h->root, dir, &list)) < 0)
			continue;
		for (int i = 0; i < n && !r; i++) {
			const char *dev = list[i]->d_name;
			char path[512];

			if (is_attr(dev) || list[i]->d_type != DT_LNK)
				continue;
			if ((r = record(h, J_FB, fb_drivers[d], dev)) || h->dry)
				continue;
			snprintf(path, sizeof(path), "%s/unbind", dir);
			if ((r = write_attr_at(h->root, path, dev)) < 0)
				r = fail(h, r, "framebuffers: unbind %s from %s: %s", dev,
					 fb_drivers[d], strerror(-r));
		}
		free_list(list, n);
	}
	return r;
}

static void describe_holders(const struct holder_scan *hs, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < hs->n_holders && used < len; i++) {
		const struct proc_info *pi = &hs->holders[i].pi;

		if (i == 3) {
			snprintf(buf + used, len - used, " and %zu more", hs->n_holders - 3);
			break;
		}
		used += snprintf(buf + used, len - used, "%s%s (pid %u%s%s)", i ? ", " : "", pi->comm,
				 pi->pid, pi->unit[0] ? ", " : "", pi->unit);
	}
}

static void signal_holders(const struct holder_scan *hs, int sig)
{
	for (size_t i = 0; i < hs->n_holders; i++) {
		pid_t pid = hs->holders[i].pi.pid;

		/* never init, never ourselves */
		if (pid <= 1 || pid == getpid())
			continue;
		if (kill(pid, sig) == 0)
			log_warn("sent %s to %s (pid %d)", sig == SIGKILL ? "SIGKILL" : "SIGTERM",
				 hs->holders[i].pi.comm, pid);
	}
}

/* "waiting for lactd.service (pid 812) to release /dev/dri/renderD128 — 4 s of 10" */
static void progress_line(const struct handoff *h, const struct holder_scan *hs, uint64_t waited)
{
	const struct holder *first = &hs->holders[0];
	char path[4096], more[48] = "";

	hold_rec_path(h->root, &first->recs[0], path, sizeof(path));
	/* gone already (a SIGTERM just went out): the node it held, by number */
	for (size_t i = 0; !path[0] && i < h->ts.n_nodes; i++)
		if (h->ts.nodes[i].kdev == first->recs[0].rdev && h->ts.nodes[i].path[0])
			snprintf(path, sizeof(path), "%s", h->ts.nodes[i].path);
	if (hs->n_holders > 1)
		snprintf(more, sizeof(more), " (and %zu more)", hs->n_holders - 1);
	log_progress("waiting for %s (pid %u)%s to release %s — %llu s of %u",
		     first->pi.unit[0] ? first->pi.unit : first->pi.comm, first->pi.pid, more,
		     path[0] ? path : "the GPU", (unsigned long long)(waited / 1000000),
		     h->c->holder_timeout);
}

static const char *const modes[] = { "wait", "kill", "fail" };

/* the JSON plan's holders: who holds the GPU now and what prepare would do about it */
static void plan_holders(struct handoff *h, const struct holder_scan *hs)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();

	for (size_t i = 0; i < hs->n_holders; i++) {
		const struct proc_info *pi = &hs->holders[i].pi;
		json_object *p = json_object_new_object();

		json_object_object_add(p, "pid", json_object_new_int64(pi->pid));
		json_object_object_add(p, "comm", json_object_new_string(pi->comm));
		if (pi->unit[0])
			json_object_object_add(p, "unit", json_object_new_string(pi->unit));
		json_object_array_add(a, p);
	}
	json_object_object_add(o, "processes", a);
	json_object_object_add(o, "on_holders", json_object_new_string(modes[h->c->on_holders]));
	json_object_object_add(o, "timeout_s", json_object_new_int64(h->c->holder_timeout));
	json_object_object_add(h->j, "holders", o);
}

/* 4. processes that still have the GPU open: wait, end them, or fail (on-holders) */
static int step_holders(struct handoff *h)
{
	uint64_t start = now_us(), deadline = start + h->c->holder_timeout * 1000000ull;
	bool termed = false, killed = false, told = false;
	uint64_t kill_deadline = 0, next_tell = 0;
	char who[400], err[320];

	for (;;) {
		struct holder_scan hs;
		int r = holders_scan(h->root, &h->ts.scan, SCAN_AUTO, &hs, err, sizeof(err));
		uint64_t now = now_us();

		if (r < 0)
			return fail(h, r, "holders: the scan failed: %s", err);
		if (h->j) {
			plan_holders(h, &hs);
			holder_scan_free(&hs);
			return 0;
		}
		if (!hs.n_holders) {
			holder_scan_free(&hs);
			log_progress_end();
			if (h->dry)
				plan(h, "holders: none now (on-holders = %s)", modes[h->c->on_holders]);
			return 0;
		}
		describe_holders(&hs, who, sizeof(who));
		if (h->dry) {
			plan(h, "holders: %zu process%s now: %s (on-holders = %s, up to %u s)",
			     hs.n_holders, hs.n_holders == 1 ? "" : "es", who,
			     modes[h->c->on_holders], h->c->holder_timeout);
			holder_scan_free(&hs);
			return 0;
		}
		if (h->c->on_holders == HOLDERS_FAIL) {
			holder_scan_free(&hs);
			return fail(h, -EBUSY, "holders: the GPU is held by %s; on-holders = fail", who);
		}
		if (h->c->on_holders == HOLDERS_KILL && !termed) {
			signal_holders(&hs, SIGTERM);
			termed = true;
		} else if (h->c->on_holders == HOLDERS_KILL && !killed && now >= deadline) {
			signal_holders(&hs, SIGKILL);
			killed = true;
			kill_deadline = now + BIND_TIMEOUT_US;
		} else if ((killed && now >= kill_deadline) ||
			   (h->c->on_holders == HOLDERS_WAIT && now >= deadline)) {
			holder_scan_free(&hs);
			return fail(h, -EBUSY, "holders: still held after %llu s by %s",
				    (unsigned long long)((now - start) / 1000000), who);
		}
		if (!told || now >= next_tell) {
			progress_line(h, &hs, now - start);
			/* a terminal's line is rewritten each second; a log gets one every 5 s */
			next_tell = now + (isatty(STDERR_FILENO) ? 1000000ull : 5000000ull);
			told = true;
		}
		holder_scan_free(&hs);
		usleep(POLL_US);
	}
}

static bool in_pcis(const struct target_set *ts, const char *bdf)
{
	for (size_t i = 0; i < ts->n_pcis; i++)
		if (!strcmp(ts->pcis[i].bdf, bdf))
			return true;
	return false;
}

/* does the driver drive a PCI device that is not being handed over? */
static bool driver_shared(struct handoff *h, const char *driver)
{
	struct dirent **list;
	char dir[256];
	bool shared = false;
	int n;

	snprintf(dir, sizeof(dir), "/sys/bus/pci/drivers/%s", driver);
	if ((n = scan_sorted(h->root, dir, &list)) < 0)
		return false;
	for (int i = 0; i < n; i++)
		if (strchr(list[i]->d_name, ':') && !in_pcis(&h->ts, list[i]->d_name))
			shared = true;
	free_list(list, n);
	return shared;
}

static int unbind_pci(struct handoff *h, const char *bdf, const char *driver)
{
	char path[256];

	snprintf(path, sizeof(path), "/sys/bus/pci/drivers/%s/unbind", driver);
	return write_attr_at(h->root, path, bdf);
}

/*
 * 5. the drivers: a module that drives only the handed-over devices is
 * unloaded with everything that depends on it; a built-in driver, or one
 * that other devices still use (the GPU's HDMI audio on snd_hda_intel),
 * only lets go of the device.
 */
static int step_modules(struct handoff *h)
{
	modname_t *roots = calloc(h->ts.n_pcis + 1, sizeof(*roots)), *order = NULL;
	size_t n_roots = 0, n_order = 0;
	char err[256];
	int r = 0;

	if (!roots)
		return fail(h, -ENOMEM, "modules: out of memory");
	for (size_t i = 0; i < h->ts.n_pcis && !r; i++) {
		const struct target_pci *p = &h->ts.pcis[i];
		bool builtin, dup = false;

		if (!p->driver[0] || !strcmp(p->driver, "vfio-pci"))
			continue;
		builtin = !p->module[0] || module_initstate(h->kmod, p->module) == KMOD_MODULE_BUILTIN;
		if (builtin || driver_shared(h, p->driver)) {
			if ((r = record(h, J_UNBIND, p->bdf, p->driver)) || h->dry)
				continue;
			if ((r = unbind_pci(h, p->bdf, p->driver)) < 0)
				r = fail(h, r, "modules: unbind %s from %s: %s", p->bdf, p->driver,
					 strerror(-r));
			continue;
		}
		for (size_t j = 0; j < n_roots; j++)
			dup |= !strcmp(roots[j], p->module);
		if (!dup)
			snprintf(roots[n_roots++], HOLD_MOD_LEN, "%s", p->module);
	}
	if (!r && n_roots && (r = module_unload_order(h->kmod, roots, n_roots, &order, &n_order)) < 0)
		r = fail(h, r, "modules: the unload order of %s: %s", roots[0], strerror(-r));
	for (size_t i = 0; i < n_order && !r; i++) {
		if (module_initstate(h->kmod, order[i]) < 0)
			continue; /* not loaded */
		if ((r = record(h, J_MODULE, order[i], NULL)) || h->dry)
			continue;
		log_info("unloading %s", order[i]);
		r = module_unload(h->kmod, order[i], h->c->holder_timeout * 1000000ull, err,
				  sizeof(err));
		if (r < 0)
			r = fail(h, r, "modules: unload %s: %s", order[i], err);
	}
	free(order);
	free(roots);
	return r;
}

static int pci_driver(struct handoff *h, const char *bdf, char *drv, size_t len)
{
	char path[256];

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", bdf);
	return read_link_base_at(h->root, path, drv, len);
}

/* 6. vfio-pci: driver_override, then a probe, then check it took */
static int step_vfio(struct handoff *h)
{
	char err[256], path[256], drv[64], grp[32];
	int r;

	if (module_initstate(h->kmod, "vfio_pci") < 0) {
		if ((r = record(h, J_LOADED, "vfio_pci", NULL)))
			return r;
		if (!h->dry && (r = module_load(h->kmod, "vfio-pci", err, sizeof(err))) < 0)
			return fail(h, r, "vfio-pci: load vfio-pci: %s", err);
	}
	for (size_t i = 0; i < h->ts.n_pcis; i++) {
		const char *bdf = h->ts.pcis[i].bdf;
		uint64_t deadline;

		pci_driver(h, bdf, drv, sizeof(drv));
		if (!strcmp(drv, "vfio-pci"))
			continue;
		if ((r = record(h, J_VFIO, bdf, NULL)))
			return r;
		if (h->dry)
			continue;
		if (drv[0] && (r = unbind_pci(h, bdf, drv)) < 0)
			return fail(h, r, "vfio-pci: unbind %s from %s: %s", bdf, drv, strerror(-r));
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override", bdf);
		if ((r = write_attr_at(h->root, path, "vfio-pci")) < 0)
			return fail(h, r, "vfio-pci: %s: driver_override: %s", bdf, strerror(-r));
		if ((r = write_attr_at(h->root, "/sys/bus/pci/drivers_probe", bdf)) < 0)
			return fail(h, r, "vfio-pci: probe %s: %s", bdf, strerror(-r));
		deadline = now_us() + BIND_TIMEOUT_US;
		while (pci_driver(h, bdf, drv, sizeof(drv)), strcmp(drv, "vfio-pci") &&
							      now_us() < deadline)
			usleep(POLL_US / 4);
		if (strcmp(drv, "vfio-pci"))
			return fail(h, -EIO, "vfio-pci: %s did not bind to vfio-pci (driver: %s)", bdf,
				    drv[0] ? drv : "none");
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", bdf);
		if (!read_link_base_at(h->root, path, grp, sizeof(grp)))
			log_info("%s is on vfio-pci: /dev/vfio/%s", bdf, grp);
		else
			log_info("%s is on vfio-pci", bdf);
	}
	return 0;
}

/* ---- undo: each one safe on a step that never ran ---- */

static int undo_one(struct handoff *h, const struct jrec *rec, char *err, size_t errlen)
{
	char path[256], drv[64];
	int r = 0;

	switch (rec->step) {
	case J_UNIT:
		if (bus_get(h, "start") < 0) {
			snprintf(err, errlen, "%.300s", h->err);
			return -ENOTCONN;
		}
		return unit_start(h->bus, rec->a, UNIT_TIMEOUT_S * 1000000ull, err, errlen);
	case J_VTCON:
		snprintf(path, sizeof(path), "/sys/class/vtconsole/%s/bind", rec->a);
		r = write_attr_at(h->root, path, "1\n");
		break;
	case J_FB:
		snprintf(path, sizeof(path), "/sys/bus/platform/drivers/%s/%s", rec->a, rec->b);
		if (!read_link_base_at(h->root, path, drv, sizeof(drv)))
			return 0; /* still bound */
		snprintf(path, sizeof(path), "/sys/bus/platform/drivers/%s/bind", rec->a);
		r = write_attr_at(h->root, path, rec->b);
		break;
	case J_MODULE:
		return module_load(h->kmod, rec->a, err, errlen);
	case J_UNBIND:
		if (!pci_driver(h, rec->a, drv, sizeof(drv)))
			return 0;
		snprintf(path, sizeof(path), "/sys/bus/pci/drivers/%s/bind", rec->b);
		r = write_attr_at(h->root, path, rec->a);
		break;
	case J_VFIO:
		if (!pci_driver(h, rec->a, drv, sizeof(drv)) && !strcmp(drv, "vfio-pci") &&
		    (r = unbind_pci(h, rec->a, "vfio-pci")) < 0)
			break;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override", rec->a);
		if ((r = write_attr_at(h->root, path, "\n")) < 0)
			break;
		/* the native driver, where it is loaded; a module reloaded later probes it itself */
		write_attr_at(h->root, "/sys/bus/pci/drivers_probe", rec->a);
		return 0;
	case J_LOADED:
		/* another guest may use it by now: leave it then */
		if (module_unload(h->kmod, rec->a, 0, err, errlen) < 0)
			log_debug("%s stays loaded: %s", rec->a, err);
		return 0;
	default:
		return -EINVAL;
	}
	if (r < 0)
		snprintf(err, errlen, "%s", strerror(-r));
	return r;
}

/*
 * Undo recs from the last to the first. What could not be undone stays in
 * the journal for the next release; err names the first such step.
 */
static int undo_all(struct handoff *h, const struct jrec *recs, size_t n, char *err, size_t errlen)
{
	struct jrec *left = calloc(n + 1, sizeof(*left));
	size_t n_left = 0;
	char why[320];
	int r;

	if (!left)
		return -ENOMEM;
	err[0] = '\0';
	for (size_t i = n; i-- > 0;) {
		const struct jrec *rec = &recs[i];

		if (h->dry) {
			plan_step(h, rec, true);
			continue;
		}
		why[0] = '\0';
		if ((r = undo_one(h, rec, why, sizeof(why))) < 0) {
			log_warn("cannot undo '%s %s%s%s': %s", jstep_name(rec->step), rec->a,
				 rec->b[0] ? " " : "", rec->b, why[0] ? why : strerror(-r));
			if (!err[0])
				snprintf(err, errlen, "undo %s %s: %s", jstep_name(rec->step), rec->a,
					 why[0] ? why : strerror(-r));
			/* kept in journal order: the next release undoes them from the end */
			memmove(left + 1, left, n_left * sizeof(*left));
			left[0] = *rec;
			n_left++;
		}
	}
	/* a device we moved must be back on a driver: a reloaded module probes it */
	if (!h->dry)
		for (size_t i = 0; i < n; i++) {
			char drv[64];

			if (recs[i].step != J_VFIO)
				continue;
			pci_driver(h, recs[i].a, drv, sizeof(drv));
			if (!strcmp(drv, "vfio-pci") && !err[0])
				snprintf(err, errlen, "%s is still on vfio-pci", recs[i].a);
			else
				log_info("%s is back on %s", recs[i].a, drv[0] ? drv : "no driver");
		}
	if (!h->dry && (r = journal_store(h->root, h->vm, left, n_left)) < 0 && !err[0])
		snprintf(err, errlen, "cannot rewrite the journal: %s", strerror(-r));
	free(left);
	return err[0] ? -EIO : 0;
}

int handoff_lock(const char *root, bool wait, int *fd, char *err, size_t errlen)
{
	char path[4096];
	uint64_t deadline = now_us() + (wait ? LOCK_TIMEOUT_S * 1000000ull : 0);
	int r;

	snprintf(path, sizeof(path), "%s/run", root);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		goto fail;
	snprintf(path, sizeof(path), "%s/run/vfio-agent", root);
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		goto fail;
	snprintf(path, sizeof(path), "%s/run/vfio-agent/lock", root);
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*fd < 0)
		goto fail;
	while (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK || now_us() >= deadline) {
			r = -errno;
			snprintf(err, errlen, "%s: %s", path,
				 r == -EWOULDBLOCK ? (wait ? "another vfio-agent has held it for a minute"
							   : "another vfio-agent holds it")
						   : strerror(-r));
			close(*fd);
			*fd = -1;
			return r;
		}
		usleep(POLL_US / 2);
	}
	return 0;
fail:
	r = -errno;
	snprintf(err, errlen, "cannot create %s: %s", path, strerror(-r));
	return r;
}

/* the plan's opening: a header line, or the JSON object's fixed fields */
static void plan_begin(struct handoff *h, enum handoff_mode mode, const char *verb,
		       const char *jpath)
{
	h->dry = mode != HANDOFF_RUN;
	if (mode == HANDOFF_PLAN) {
		printf("handoff %s %s: the plan (--dry-run: nothing is changed)\n", verb, h->vm);
	} else if (mode == HANDOFF_PLAN_JSON) {
		h->j = json_object_new_object();
		json_object_object_add(h->j, "verb", json_object_new_string(verb));
		json_object_object_add(h->j, "vm", json_object_new_string(h->vm));
		json_object_object_add(h->j, "dry_run", json_object_new_boolean(true));
		json_object_object_add(h->j, "journal", json_object_new_string(jpath));
		json_object_object_add(h->j, "journal_exists",
				       json_object_new_boolean(!access(jpath, F_OK)));
		plan_array(h, "steps");
	}
}

/* the JSON plan, printed once it is whole */
static void plan_print(struct handoff *h)
{
	if (!h->j)
		return;
	puts(json_object_to_json_string_ext(h->j, JSON_C_TO_STRING_PRETTY |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
}

static void handoff_done(struct handoff *h)
{
	json_object_put(h->j);
	/* the target set's libkmod context is shared, and freed with it */
	if (h->kmod && h->kmod != h->ts.kmod)
		sym_kmod_unref(h->kmod);
	if (h->jfd >= 0)
		close(h->jfd);
	units_disconnect(h->bus);
	free(h->done);
	target_set_free(&h->ts);
}

int handoff_prepare(const struct agent_ctx *ctx, const struct config *c, const struct domain *dom,
		    enum handoff_mode mode, char *err, size_t errlen)
{
	static int (*const steps[])(struct handoff *) = {
		step_units, step_consoles, step_framebuffers, step_holders, step_modules, step_vfio,
	};
	struct handoff h = { .ctx = ctx, .root = ctx->root, .c = c, .vm = c->vm, .jfd = -1 };
	struct target_req req = { 0 };
	char jpath[4096];
	int r, ret;

	/* the config's devices, else the guest's own PCI hostdevs */
	if (c->n_pcis) {
		req.pcis = c->pcis;
		req.n_pcis = c->n_pcis;
	} else if (dom && dom->n_pcis) {
		req.pcis = dom->pcis;
		req.n_pcis = dom->n_pcis;
	} else {
		snprintf(err, errlen, "no devices to hand over: set pcis in %s%s", c->path,
			 dom ? " or give the domain a PCI <hostdev>" : "");
		return EXIT_USAGE;
	}
	/* it logs its own line (no such device, ...) */
	if ((ret = targets_resolve(ctx, c, &req, &h.ts)) != EXIT_OK) {
		err[0] = '\0';
		return ret;
	}
	h.kmod = h.ts.kmod;
	if (!h.kmod && !(h.kmod = agent_kmod_new())) {
		snprintf(err, errlen, "libkmod: %s", strerror(errno));
		ret = EXIT_FAILED;
		goto out;
	}
	journal_path(h.root, h.vm, jpath, sizeof(jpath));
	plan_begin(&h, mode, "prepare", jpath);
	if (h.j) {
		json_object *a = plan_array(&h, "devices");

		for (size_t i = 0; i < h.ts.n_pcis; i++) {
			json_object *d = json_object_new_object();

			json_object_object_add(d, "pci", json_object_new_string(h.ts.pcis[i].bdf));
			json_object_object_add(d, "driver", h.ts.pcis[i].driver[0] ?
				json_object_new_string(h.ts.pcis[i].driver) : NULL);
			json_object_array_add(a, d);
		}
	} else if (h.dry) {
		for (size_t i = 0; i < h.ts.n_pcis; i++)
			plan(&h, "device %s on %s", h.ts.pcis[i].bdf,
			     h.ts.pcis[i].driver[0] ? h.ts.pcis[i].driver : "no driver");
	}
	if (h.dry && !access(jpath, F_OK))
		plan(&h, "note: %s exists; prepare would refuse until it is released", jpath);
	if (!h.dry && (r = journal_create(h.root, h.vm, &h.jfd)) < 0) {
		if (r == -EEXIST)
			snprintf(err, errlen, "%s exists: a handoff of %s is in place; release it first "
				 "(vfio-agent handoff release --vm %s)", jpath, c->vm, c->vm);
		else
			snprintf(err, errlen, "cannot create %s: %s", jpath, strerror(-r));
		ret = EXIT_FAILED;
		goto out;
	}
	for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
		if ((r = steps[i](&h)) < 0) {
			char uerr[320];

			log_info("prepare %s: rolling back %zu step%s", c->vm, h.n_done,
				 h.n_done == 1 ? "" : "s");
			if (undo_all(&h, h.done, h.n_done, uerr, sizeof(uerr)) < 0)
				snprintf(err, errlen, "%s; the rollback did not finish: %s (%s keeps "
					 "what is left)", h.err, uerr, jpath);
			else
				snprintf(err, errlen, "%s; rolled back, the host is as it was", h.err);
			ret = EXIT_FAILED;
			goto out;
		}
	}
	if (!h.dry)
		log_info("prepare %s: the GPU is on vfio-pci (%zu steps in %s)", c->vm, h.n_done, jpath);
	plan_print(&h);
	ret = EXIT_OK;
out:
	handoff_done(&h);
	return ret;
}

int handoff_release(const struct agent_ctx *ctx, const char *vm, enum handoff_mode mode,
		    char *err, size_t errlen)
{
	struct handoff h = { .ctx = ctx, .root = ctx->root, .vm = vm, .dry = mode != HANDOFF_RUN,
			     .jfd = -1 };
	struct jrec *recs = NULL;
	char jpath[4096], uerr[320];
	size_t n = 0, bad = 0;
	bool cut;
	int r, ret = EXIT_OK;

	if ((r = journal_path(h.root, vm, jpath, sizeof(jpath))) < 0) {
		snprintf(err, errlen, "'%s' cannot name a journal", vm);
		return EXIT_USAGE;
	}
	r = journal_load(h.root, vm, &recs, &n, &cut, &bad);
	if (r == -ENOENT) {
		log_info("release %s: no journal, nothing to undo", vm);
		if (mode == HANDOFF_PLAN) {
			printf("handoff release %s: no journal (%s), nothing to undo\n", vm, jpath);
		} else if (mode == HANDOFF_PLAN_JSON) {
			plan_begin(&h, mode, "release", jpath);
			plan_print(&h);
			handoff_done(&h);
		}
		return EXIT_OK;
	}
	if (r < 0) {
		if (bad)
			snprintf(err, errlen, "%s line %zu is not a journal step; nothing was undone",
				 jpath, bad);
		else
			snprintf(err, errlen, "cannot read %s: %s", jpath, strerror(-r));
		return EXIT_FAILED;
	}
	if (cut)
		log_warn("%s: the last line was cut off while being written; its step never ran",
			 jpath);
	if (!(h.kmod = agent_kmod_new())) {
		snprintf(err, errlen, "libkmod: %s", strerror(errno));
		free(recs);
		return EXIT_FAILED;
	}
	plan_begin(&h, mode, "release", jpath);
	if (undo_all(&h, recs, n, uerr, sizeof(uerr)) < 0) {
		snprintf(err, errlen, "%s; %s keeps what is left: run release again", uerr, jpath);
		ret = EXIT_FAILED;
	} else if (!h.dry) {
		log_info("release %s: %zu steps undone", vm, n);
	}
	plan_print(&h);
	free(recs);
	handoff_done(&h);
	return ret;
}

static const char handoff_usage[] =
	"Usage: vfio-agent handoff prepare|release [--vm NAME] [--dry-run [--json]]\n"
	"\n"
	"Hand the GPU to vfio-pci (prepare) or take it back (release), as the hook\n"
	"does at a guest's start and end. prepare journals each step in\n"
	"/run/vfio-agent/NAME.journal and rolls back if one fails; release undoes the\n"
	"journal.\n"
	"\n"
	"  --vm NAME   the VM (default: the config's vm)\n"
	"  --dry-run   print the plan and change nothing\n"
	"  --json      the plan as JSON (with --dry-run)\n";

int handoff_main(struct agent_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vm", required_argument, NULL, 'm' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static const char *const subs[] = { "prepare", "release", NULL };
	struct config *c = NULL;
	const char *vm = NULL, *sub;
	bool dry = false, json = false, prepare;
	enum handoff_mode mode;
	char err[768];
	int opt, ret, lock = -1;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			vm = optarg;
			break;
		case 'n':
			dry = true;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			fputs(handoff_usage, stdout);
			return EXIT_OK;
		default:
			return agent_bad_option("handoff", argv[optind - 1]);
		}
	}
	if (!(sub = agent_subcommand("handoff", argc, argv, optind, subs)))
		return EXIT_USAGE;
	prepare = !strcmp(sub, "prepare");
	if (json && !dry) {
		log_error("handoff %s: --json prints the plan: add --dry-run (what a real run did is "
			  "in /run/vfio-agent/NAME.journal)", sub);
		return EXIT_USAGE;
	}
	mode = !dry ? HANDOFF_RUN : json ? HANDOFF_PLAN_JSON : HANDOFF_PLAN;
	/* release needs only the journal: with --vm it works with the config gone or changed */
	if ((prepare || !vm) &&
	    (ret = agent_load_config_vm(ctx, "handoff", vm, prepare, &c)) != EXIT_OK)
		return ret;
	if (!vm && !c) {
		log_error("handoff release: no config at %s; name the VM with --vm", ctx->config_path);
		return EXIT_USAGE;
	}
	if (!vm)
		vm = c->vm;
	if (prepare && !c->passthrough && !dry) {
		log_error("handoff prepare: passthrough = false in %s; nothing to hand over", c->path);
		ret = EXIT_USAGE;
		goto out;
	}
	if (!dry && handoff_lock(ctx->root, true, &lock, err, sizeof(err)) < 0) {
		log_error("handoff %s: %s", sub, err);
		ret = EXIT_FAILED;
		goto out;
	}
	if (prepare)
		ret = handoff_prepare(ctx, c, NULL, mode, err, sizeof(err));
	else
		ret = handoff_release(ctx, vm, mode, err, sizeof(err));
	if (ret != EXIT_OK && err[0])
		log_error("%s %s: %s", sub, vm, err);
out:
	if (lock >= 0)
		close(lock);
	config_free(c);
	return ret;
}
