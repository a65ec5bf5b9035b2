// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vfio-agent diagnose: who holds the GPU, what the kernel holds, and
 * whether it can be handed off. Exit 0 ready, 1 blocked, 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "agent/agent.h"
#include "core/checks.h"
#include "core/config.h"
#include "core/holders.h"
#include "agent/log.h"
#include "agent/show.h"
#include "shared/macro.h"
#include "core/modules.h"
#include "core/sysfs.h"
#include "core/targets.h"
#include "shared/escape.h"

static const char diagnose_usage[] =
	"Usage: vfio-agent diagnose [--vm NAME] [--pci BDF]... [--driver MODULE]...\n"
	"                           [--device PATH|MAJ:MIN]... [--json] [--backend bpf|proc]\n\n"
	"Who holds the GPU: processes with open files, mappings or dma-bufs of its\n"
	"devices and driver modules, their systemd units, what the kernel itself\n"
	"holds, and the host checks for a handoff. Without targets: the config's\n"
	"pcis, else every display-class PCI device.\n\n"
	"  --pci BDF        a PCI device (0000:03:00.0 or pci_0000_03_00_0)\n"
	"  --driver MODULE  a driver module, its dependents and the devices it drives\n"
	"  --device NODE    a device node path, or a device number MAJ:MIN\n"
	"  --backend B      bpf (BPF iterators) or proc (/proc); default: bpf, falling\n"
	"                   back to proc when BPF cannot load\n"
	"  --json           one JSON object\n\n"
	"Exit status: 0 ready to hand off, 1 something blocks it, 2 usage or config error.\n";

struct module_report {
	struct module_state st;
	size_t files, dmabufs, kernel, explained;
	char kernel_why[160]; /* what the kernel's own references are */
	long unexplained;     /* -1 unknown */
};

struct diag {
	struct target_set ts;
	struct holder_scan hs;
	struct module_report *mods;
	size_t n_mods;
	struct findings kernel;
	struct findings checks;
	bool ready;
	size_t blocking_failed;
};

/* every open of a DRM framebuffer's node also pins the fbdev helper */
static size_t fb_files(const struct holder_scan *hs, const char *fb, const char *root)
{
	char p[256], dev[32] = "";
	uint32_t kdev;

	snprintf(p, sizeof(p), "/sys/class/graphics/%s/dev", fb);
	if (!fb[0] || read_line_at(root, p, dev, sizeof(dev)) || parse_majmin(dev, &kdev))
		return 0;
	return holders_count_node_files(hs, kdev);
}

static int account_modules(struct diag *d, const char *root)
{
	struct kmod_ctx *k = d->ts.kmod;
	size_t n = d->ts.scan.n_mods;
	bool listed = false;
	struct fb_refs fb;
	int r = 0;

	if (!k)
		return -ENOMEM;
	kernel_fb_refs(root, &d->ts, &fb);
	for (size_t i = 0; i < n; i++)
		listed |= !strcmp(d->ts.scan.mods[i], fb.module);
	d->mods = calloc(n + 1, sizeof(*d->mods));
	if (!d->mods)
		return -ENOMEM;
	/* the targets, and the fbdev helper when the kernel holds it for them */
	for (size_t i = 0; i <= n; i++) {
		struct module_report *m = &d->mods[d->n_mods];
		const char *name = i < n ? d->ts.scan.mods[i] : fb.module;
		bool fbdev = fb.module[0] && fb.target_fb[0] && !strcmp(name, fb.module);

		if (i == n && (!fbdev || listed))
			break;
		if ((r = module_state_get(k, name, &m->st)) < 0 && r != -ENOENT)
			break;
		r = 0;
		d->n_mods++;
		m->files = holders_count_files(&d->hs, m->st.name, WHY_OWNER);
		m->dmabufs = holders_count_files(&d->hs, m->st.name, WHY_EXPORTER);
		if (fbdev) {
			m->files += fb_files(&d->hs, fb.target_fb, root);
			m->kernel = fb.emulations + fb.fbcon;
			snprintf(m->kernel_why, sizeof(m->kernel_why), "%zu fbdev emulation%s%s%s",
				 fb.emulations, fb.emulations == 1 ? "" : "s",
				 fb.fbcon ? ", fbcon as " : "", fb.fbcon ? fb.fbcon_vt : "");
		}
		m->explained = m->st.n_holders + m->files + m->dmabufs + m->kernel;
		m->unexplained = m->st.refcnt < 0 ? -1 : (long)m->st.refcnt - (long)m->explained;
		if (m->unexplained < 0)
			m->unexplained = 0; /* files of a module reached through a dependent */
	}
	return r;
}

/* ---- the JSON report ---- */

static void majmin(uint32_t kdev, char *buf, size_t len)
{
	snprintf(buf, len, "%u:%u", KDEV_MAJOR(kdev), KDEV_MINOR(kdev));
}

static json_object *json_holder(const char *root, const struct target_set *ts,
				const struct holder *h)
{
	json_object *o = json_object_new_object(), *fds = json_object_new_array(),
		    *holds = json_object_new_array();
	const struct hold_rec *first = &h->recs[0];
	char path[4096], first_path[4096] = "", dev[32];

	json_object_object_add(o, "pid", json_object_new_int64(h->pi.pid));
	json_object_object_add(o, "comm", json_opt(h->pi.comm));
	json_object_object_add(o, "exe", json_opt(h->pi.exe));
	json_object_object_add(o, "user", json_opt(h->pi.user));
	json_object_object_add(o, "uid",
			       h->pi.uid == (uid_t)-1 ? NULL : json_object_new_int64(h->pi.uid));
	json_object_object_add(o, "unit", json_opt(h->pi.unit));
	json_object_object_add(o, "unit_type", json_str(unit_kind_name(h->pi.unit_kind)));
	json_object_object_add(o, "cgroup", json_opt(h->pi.cgroup));
	for (size_t i = 0; i < h->n_recs; i++) {
		const struct hold_rec *r = &h->recs[i];
		json_object *e = json_object_new_object();

		hold_rec_path(root, r, path, sizeof(path));
		if (i == 0)
			memcpy(first_path, path, sizeof(path));
		majmin(r->rdev, dev, sizeof(dev));
		json_object_object_add(e, "kind", json_str(hold_kind_name(r->kind)));
		json_object_object_add(e, "fd", r->fd >= 0 ? json_object_new_int(r->fd) : NULL);
		if (r->fd < 0) {
			char range[48];

			snprintf(range, sizeof(range), "%llx-%llx", (unsigned long long)r->start,
				 (unsigned long long)r->end);
			json_object_object_add(e, "mapping", json_str(range));
		}
		json_object_object_add(e, "path", json_opt(path));
		json_object_object_add(e, "device", r->rdev ? json_str(dev) : NULL);
		json_object_object_add(e, "module", json_opt(r->module));
		json_object_object_add(e, "pci", json_opt(target_set_pci_of(ts, r->rdev)));
		json_object_object_add(e, "exporter", json_opt(r->exporter));
		json_object_array_add(holds, e);
		if (r->fd >= 0)
			json_object_array_add(fds, json_object_new_int(r->fd));
	}
	/* the first hold, flat, for readers that want one line per holder */
	majmin(first->rdev, dev, sizeof(dev));
	json_object_object_add(o, "kind", json_str(hold_kind_name(first->kind)));
	json_object_object_add(o, "fd", first->fd >= 0 ? json_object_new_int(first->fd) : NULL);
	json_object_object_add(o, "fds", fds);
	json_object_object_add(o, "path", json_opt(first_path));
	json_object_object_add(o, "device", first->rdev ? json_str(dev) : NULL);
	json_object_object_add(o, "module", json_opt(first->module));
	json_object_object_add(o, "pci", json_opt(target_set_pci_of(ts, first->rdev)));
	json_object_object_add(o, "holds", holds);
	json_object_object_add(o, "action", json_str(h->action));
	return o;
}

static json_object *json_findings(const struct findings *f, bool checks)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < f->n; i++) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "name", json_str(f->v[i].name));
		if (checks) {
			json_object_object_add(o, "ok", json_object_new_boolean(f->v[i].ok));
			json_object_object_add(o, "blocking",
					       json_object_new_boolean(f->v[i].blocking));
			json_object_object_add(
				o, "level",
				json_object_new_string(finding_level_name(f->v[i].level)));
		}
		json_object_object_add(o, "detail", json_str(f->v[i].detail));
		if (checks)
			json_object_object_add(o, "hint", json_opt(f->v[i].hint));
		json_object_array_add(a, o);
	}
	return a;
}

static void report_json(const struct agent_ctx *ctx, const struct diag *d)
{
	json_object *o = json_object_new_object(), *a, *t;
	char dev[32];

	json_object_object_add(o, "ready", json_object_new_boolean(d->ready));
	json_object_object_add(o, "backend", json_str(scan_backend_name(d->hs.backend)));
	json_object_object_add(o, "backend_note", json_opt(d->hs.fallback));

	t = json_object_new_object();
	a = json_object_new_array();
	for (size_t i = 0; i < d->ts.n_pcis; i++) {
		json_object *p = json_object_new_object();

		json_object_object_add(p, "bdf", json_str(d->ts.pcis[i].bdf));
		json_object_object_add(p, "driver", json_opt(d->ts.pcis[i].driver));
		json_object_object_add(p, "module", json_opt(d->ts.pcis[i].module));
		json_object_array_add(a, p);
	}
	json_object_object_add(t, "pci", a);
	a = json_object_new_array();
	for (size_t i = 0; i < d->ts.n_nodes; i++) {
		json_object *n = json_object_new_object();

		majmin(d->ts.nodes[i].kdev, dev, sizeof(dev));
		if (d->ts.nodes[i].whole_major)
			snprintf(dev, sizeof(dev), "%u:*", KDEV_MAJOR(d->ts.nodes[i].kdev));
		json_object_object_add(n, "device", json_str(dev));
		json_object_object_add(n, "path", json_opt(d->ts.nodes[i].path));
		json_object_object_add(n, "name", json_opt(d->ts.nodes[i].what));
		json_object_object_add(n, "pci", json_opt(d->ts.nodes[i].pci));
		json_object_array_add(a, n);
	}
	json_object_object_add(t, "devices", a);
	a = json_object_new_array();
	for (size_t i = 0; i < d->ts.scan.n_mods; i++)
		json_object_array_add(a, json_str(d->ts.scan.mods[i]));
	json_object_object_add(t, "modules", a);
	json_object_object_add(o, "targets", t);

	a = json_object_new_array();
	for (size_t i = 0; i < d->hs.n_holders; i++)
		json_object_array_add(a, json_holder(ctx->root, &d->ts, &d->hs.holders[i]));
	json_object_object_add(o, "holders", a);

	a = json_object_new_array();
	for (size_t i = 0; i < d->n_mods; i++) {
		const struct module_report *m = &d->mods[i];
		json_object *mo = json_object_new_object(), *h = json_object_new_array();

		json_object_object_add(mo, "name", json_str(m->st.name));
		json_object_object_add(mo, "state", json_str(m->st.state));
		json_object_object_add(mo, "refcnt",
				       m->st.refcnt < 0 ? NULL : json_object_new_int(m->st.refcnt));
		for (size_t j = 0; j < m->st.n_holders; j++)
			json_object_array_add(h, json_str(m->st.holders[j]));
		json_object_object_add(mo, "holders", h);
		json_object_object_add(mo, "files", json_object_new_int64((int64_t)m->files));
		json_object_object_add(mo, "dmabufs", json_object_new_int64((int64_t)m->dmabufs));
		json_object_object_add(mo, "kernel", json_object_new_int64((int64_t)m->kernel));
		json_object_object_add(mo, "kernel_refs", json_opt(m->kernel_why));
		json_object_object_add(mo, "unexplained",
				       m->unexplained < 0 ? NULL
							  : json_object_new_int64(m->unexplained));
		json_object_array_add(a, mo);
	}
	json_object_object_add(o, "modules", a);
	json_object_object_add(o, "kernel_holders", json_findings(&d->kernel, false));
	json_object_object_add(o, "checks", json_findings(&d->checks, true));
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

/* ---- the text report ---- */

struct style {
	const char *red, *green, *yellow, *bold, *off;
};

static void holds_summary(const struct holder *h, char *buf, size_t len)
{
	size_t l = 0;
	uint32_t kind = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < h->n_recs && l + 1 < len; i++) {
		const struct hold_rec *r = &h->recs[i];

		if (r->kind != kind) {
			l += snprintf(buf + l, len - l, "%s%s", l ? "; " : "",
				      hold_kind_name(r->kind));
			kind = r->kind;
			if (r->fd < 0) {
				size_t n = 0;

				for (size_t j = i; j < h->n_recs && h->recs[j].kind == kind; j++)
					n++;
				l += snprintf(buf + l, len - l, " x%zu", n);
				continue;
			}
			l += snprintf(buf + l, len - l, " ");
		} else if (r->fd >= 0) {
			l += snprintf(buf + l, len - l, ",");
		}
		if (r->fd >= 0 && l < len)
			l += snprintf(buf + l, len - l, "%d", r->fd);
	}
}

static void report_text(const struct agent_ctx *ctx, const struct diag *d)
{
	bool tty = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
	struct style s = tty ? (struct style){ "\033[31m", "\033[32m", "\033[33m", "\033[1m",
					       "\033[0m" }
			     : (struct style){ "", "", "", "", "" };
	char path[4096], dev[32], how[256];
	const char *pci;

	if (d->ready)
		printf("%s%sREADY%s: nothing holds the GPU; it can be handed off\n", s.bold,
		       s.green, s.off);
	else {
		printf("%s%sNOT READY%s:", s.bold, s.red, s.off);
		if (d->hs.n_holders)
			printf(" %zu process%s hold%s the GPU%s", d->hs.n_holders,
			       d->hs.n_holders == 1 ? "" : "es", d->hs.n_holders == 1 ? "s" : "",
			       d->blocking_failed ? ";" : "");
		if (d->blocking_failed)
			printf(" %zu blocking check%s failed", d->blocking_failed,
			       d->blocking_failed == 1 ? "" : "s");
		putchar('\n');
	}
	printf("\n%sTargets%s\n", s.bold, s.off);
	for (size_t i = 0; i < d->ts.n_pcis; i++)
		printf("  %-18s driver %s\n", d->ts.pcis[i].bdf,
		       d->ts.pcis[i].driver[0] ? SHOW(d->ts.pcis[i].driver) : "none");
	for (size_t i = 0; i < d->ts.n_nodes; i++) {
		const struct target_node *n = &d->ts.nodes[i];

		if (n->whole_major)
			snprintf(dev, sizeof(dev), "%u:*", KDEV_MAJOR(n->kdev));
		else
			majmin(n->kdev, dev, sizeof(dev));
		printf("  %-18s %-10s %s\n", SHOW(n->what), dev, SHOW(n->path));
	}
	if (d->ts.scan.n_mods) {
		printf("  %-18s", "modules");
		for (size_t i = 0; i < d->ts.scan.n_mods; i++)
			printf(" %s", SHOW(d->ts.scan.mods[i]));
		putchar('\n');
	}

	printf("\n%sHolders%s (backend %s%s%s)\n", s.bold, s.off, scan_backend_name(d->hs.backend),
	       d->hs.fallback[0] ? ": " : "", SHOW(d->hs.fallback));
	if (!d->hs.n_holders)
		printf("  none\n");
	else
		printf("  %-7s %-15s %-10s %-28s %-18s %-9s %s\n", "PID", "COMM", "USER", "UNIT",
		       "HOW", "DEVICE", "PATH");
	for (size_t i = 0; i < d->hs.n_holders; i++) {
		const struct holder *h = &d->hs.holders[i];

		holds_summary(h, how, sizeof(how));
		hold_rec_path(ctx->root, &h->recs[0], path, sizeof(path));
		majmin(h->recs[0].rdev, dev, sizeof(dev));
		pci = target_set_pci_of(&d->ts, h->recs[0].rdev);
		printf("  %-7u %-15s %-10s %-28s %-18s %-9s %s%s%s%s\n", h->pi.pid,
		       SHOW(h->pi.comm), h->pi.user[0] ? SHOW(h->pi.user) : "?",
		       h->pi.unit[0] ? SHOW(h->pi.unit) : "-", how,
		       h->recs[0].rdev ? dev : SHOW(h->recs[0].module), path[0] ? SHOW(path) : "?",
		       pci ? "  (PCI " : "", pci ? pci : "", pci ? ")" : "");
		printf("  %*s %s-> %s%s\n", 7, "", s.yellow, SHOW(h->action), s.off);
	}

	if (d->n_mods) {
		printf("\n%sModules%s\n", s.bold, s.off);
		for (size_t i = 0; i < d->n_mods; i++) {
			const struct module_report *m = &d->mods[i];

			if (m->st.refcnt < 0) {
				printf("  %-16s %s\n", SHOW(m->st.name), m->st.state);
				continue;
			}
			printf("  %-16s %-8s refcnt %d = %zu dependent%s + %zu file%s + %zu dma-buf%s",
			       SHOW(m->st.name), m->st.state, m->st.refcnt, m->st.n_holders,
			       m->st.n_holders == 1 ? "" : "s", m->files, m->files == 1 ? "" : "s",
			       m->dmabufs, m->dmabufs == 1 ? "" : "s");
			if (m->kernel)
				printf(" + %zu kernel (%s)", m->kernel, SHOW(m->kernel_why));
			if (m->unexplained > 0)
				printf(" + %s%ld unexplained%s", s.yellow, m->unexplained, s.off);
			putchar('\n');
		}
	}
	if (d->kernel.n) {
		printf("\n%sKernel holders%s (the handoff unbinds these)\n", s.bold, s.off);
		for (size_t i = 0; i < d->kernel.n; i++)
			printf("  %-20s %s\n", SHOW(d->kernel.v[i].name),
			       SHOW(d->kernel.v[i].detail));
	}
	if (d->checks.n) {
		printf("\n%sChecks%s\n", s.bold, s.off);
		for (size_t i = 0; i < d->checks.n; i++) {
			const struct finding *f = &d->checks.v[i];
			const char *mark = f->level == LEVEL_OK	    ? "ok"
					   : f->level == LEVEL_WARN ? "warn"
								    : "FAIL";
			const char *col = f->level == LEVEL_OK	   ? s.green
					  : f->level == LEVEL_WARN ? s.yellow
								   : s.red;
			printf("  %s%-4s%s %-26s %s\n", col, mark, s.off, SHOW(f->name),
			       SHOW(f->detail));
			if (f->hint[0])
				printf("  %-4s %-26s -> %s\n", "", "", SHOW(f->hint));
		}
	}
}

int diagnose_main(struct agent_ctx *ctx, int argc, char **argv)
{
	/* clang-format off */
	static const struct option opts[] = {
		{ "vm", required_argument, NULL, 'm' },
		TARGET_OPTIONS,
		{ "json", no_argument, NULL, 'j' },
		{ "backend", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	/* clang-format on */
	struct target_req req = { 0 };
	enum scan_backend backend = SCAN_AUTO;
	struct config *c = NULL;
	struct diag d = { 0 };
	const char *vm = NULL;
	bool json = false;
	char err[512];
	int opt, r, ret = EXIT_USAGE;

	if (target_req_init(&req, argc) < 0) {
		log_error("out of memory");
		ret = EXIT_FAILED;
		goto out;
	}
	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if ((r = agent_target_opt(&req, "diagnose", opt, optarg)) < 0)
			goto out;
		if (r)
			continue;
		switch (opt) {
		case 'm':
			vm = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'b':
			if (!strcmp(optarg, "bpf")) {
				backend = SCAN_BPF;
			} else if (!strcmp(optarg, "proc")) {
				backend = SCAN_PROC;
			} else {
				log_error("diagnose: --backend '%s': expected bpf or proc", optarg);
				goto out;
			}
			break;
		case 'h':
			fputs(diagnose_usage, stdout);
			ret = EXIT_OK;
			goto out;
		default:
			agent_bad_option("diagnose", argv[optind - 1]);
			goto out;
		}
	}
	ret = agent_targets_setup(ctx, "diagnose", vm, argc - optind, argv + optind, &req, &c,
				  &d.ts);
	if (ret != EXIT_OK)
		goto out;

	ret = EXIT_FAILED;
	r = holders_scan(ctx->root, &d.ts.scan, backend, &d.hs, err, sizeof(err));
	if (r < 0) {
		log_error("diagnose: %s", err);
		goto out;
	}
	if (d.hs.fallback[0] && backend == SCAN_AUTO && ctx->root[0] == '\0')
		log_info("%s; using /proc", d.hs.fallback);
	if ((r = account_modules(&d, ctx->root)) < 0 ||
	    (r = kernel_holders_find(ctx->root, &d.ts, &d.kernel)) < 0 ||
	    (r = checks_run(ctx->root, c, &d.ts, &d.checks)) < 0 ||
	    (r = agent_setup_checks(ctx, c, vm, &d.ts, &d.checks)) < 0) {
		log_error("diagnose: %s", strerror(-r));
		goto out;
	}
	for (size_t i = 0; i < d.checks.n; i++)
		d.blocking_failed += !d.checks.v[i].ok && d.checks.v[i].blocking;
	d.ready = !d.hs.n_holders && !d.blocking_failed;
	if (json)
		report_json(ctx, &d);
	else
		report_text(ctx, &d);
	ret = d.ready ? EXIT_OK : EXIT_FAILED;
out:
	for (size_t i = 0; i < d.n_mods; i++)
		module_state_free(&d.mods[i].st);
	free(d.mods);
	findings_free(&d.kernel);
	findings_free(&d.checks);
	holder_scan_free(&d.hs);
	target_set_free(&d.ts);
	config_free(c);
	target_req_free(&req);
	return ret;
}
