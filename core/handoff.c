// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The handoff engine. Every change is journaled before it is made, and
 * every undo is safe on a change that never happened, so that a crash
 * between the two still undoes cleanly. The phases below decide which
 * steps to take; each step type's run and undo sit side by side in
 * step_types[], which the plan's wording comes from too.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <libkmod.h>

#include "core/config.h"
#include "core/dl.h"
#include "core/domain.h"
#include "core/handoff.h"
#include "core/holders.h"
#include "core/journal.h"
#include "core/modules.h"
#include "core/preflight.h"
#include "core/state.h"
#include "core/sysfs.h"
#include "core/targets.h"
#include "core/units.h"
#include "shared/macro.h"
#include "shared/strbuf.h"
#include "shared/thread.h"

#define UNIT_TIMEOUT_US (90 * 1000000ull) /* systemd's DefaultTimeoutStopSec */
#define BIND_TIMEOUT_US (2 * 1000000ull)
#define POLL_US (200 * 1000)
#define DISPLAY_WAIT_US (10 * 1000000ull) /* a compositor opens its card within seconds */

struct handoff {
	const char *root;
	const struct config *c;
	const char *vm;
	const struct handoff_io *io;
	bool dry;
	int jfd;
	struct jrec *done; /* what this run changed, for rollback */
	size_t n_done;
	struct target_set ts;
	struct kmod_ctx *kmod;
	sd_bus *bus;
	/* the system bus, connected on a thread of its own while the run does its checks */
	struct {
		pthread_t thread;
		bool running;
		int r;
		sd_bus *bus;
		char err[320];
	} connect;
	bool dependents; /* the drivers' dependents are not yet module targets */
	/* phase 0's look at the holders, taken on a thread of its own beside the preflight */
	struct {
		pthread_t thread;
		bool running;
		int r;
		struct holder_scan hs;
		char err[320];
	} look;
	struct holder_scan first; /* that look, taken by units_check() for phase 0 */
	struct unit_users users;  /* the calls made as users, one child each */
	/* the units looked up before the first stop, each manager's in one batch */
	struct jrec *known;
	struct unit_job *known_ans;
	size_t n_known;
	struct jrec *batch; /* unit lines journaled, their stops not yet taken */
	size_t n_batch;
	bool batching;
	char (*planned)[JTOK + 24]; /* a dry run's units, so that each is planned once */
	size_t n_planned;
	/* users' holder units that refuse a manual stop, left to their session's end */
	struct jrec *sessions;
	size_t n_sessions;
	bool undoing; /* a rollback runs to its end, signal or not */
	char err[512];
};

/* a SIGTERM or SIGINT came: prepare rolls back, release keeps what is left */
static int stopped(const struct handoff *h)
{
	return h->io && h->io->stop && !h->undoing ? *h->io->stop : 0;
}

static void say(struct handoff *h, enum handoff_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say(struct handoff *h, enum handoff_level level, const char *fmt, ...)
{
	char line[640];
	va_list ap;

	if (!h->io || !h->io->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	h->io->log(h->io->data, level, line);
}

static int fail(struct handoff *h, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct handoff *h, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(h->err, sizeof(h->err), fmt, ap);
	va_end(ap);
	/* -EINVAL is the request's own fault; a step that fails is the job's */
	return r < 0 && r != -EINVAL ? r : -EIO;
}

static void plan_item(struct handoff *h, const struct plan_item *it)
{
	h->io->plan(h->io->data, it);
}

/* a line of the plan that is not a step */
static void plan_note(struct handoff *h, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void plan_note(struct handoff *h, const char *fmt, ...)
{
	char line[640];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	plan_item(h, &(struct plan_item){ .kind = PLAN_NOTE, .text = line });
}

static int pci_driver(const struct handoff *h, const char *bdf, char *drv, size_t len)
{
	char path[512];

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", bdf);
	return read_link_base_at(h->root, path, drv, len);
}

static int unbind_pci(const struct handoff *h, const char *bdf, const char *driver)
{
	char path[512];

	snprintf(path, sizeof(path), "/sys/bus/pci/drivers/%s/unbind", driver);
	return write_attr_at(h->root, path, bdf);
}

static void kmod_say(void *data, int priority, const char *line)
{
	say(data, priority <= LOG_ERR ? HANDOFF_WARN : HANDOFF_DEBUG, "libkmod: %s", line);
}

static void *connect_thread(void *arg)
{
	struct handoff *h = arg;

	h->connect.r = units_connect(h->root, &h->connect.bus, h->connect.err,
				     sizeof(h->connect.err));
	return NULL;
}

/*
 * The system bus connected beside the run's first work (libsystemd's load
 * and the connection take tens of milliseconds on a slow CPU); bus_get()
 * takes it. Nothing is asked of systemd until then.
 */
static void bus_connect_early(struct handoff *h)
{
	h->connect.running = !thread_start(&h->connect.thread, connect_thread, h);
}

/* the early connection's result: h->bus, or r and its reason */
static int bus_connect_join(struct handoff *h, char *err, size_t errlen)
{
	if (!h->connect.running)
		return 1;
	pthread_join(h->connect.thread, NULL);
	h->connect.running = false;
	h->bus = h->connect.bus;
	snprintf(err, errlen, "%s", h->connect.err);
	return h->connect.r;
}

static int bus_get(struct handoff *h, const char *what)
{
	char err[320];
	int r;

	if (h->bus)
		return 0;
	if ((r = bus_connect_join(h, err, sizeof(err))) == 1)
		r = units_connect(h->root, &h->bus, err, sizeof(err));
	if (r < 0)
		return fail(h, r, "%s: cannot reach systemd on the system bus: %s", what, err);
	return 0;
}

/* the system bus if it can be had, h->err left as it was (a rollback's reason stays there) */
static bool bus_try(struct handoff *h)
{
	char saved[sizeof(h->err)];
	int r;

	memcpy(saved, h->err, sizeof(saved));
	r = bus_get(h, "start");
	memcpy(h->err, saved, sizeof(saved));
	return r == 0;
}

/* the user of a manager "user:UID" (the journal's checked shape); 0 for "", the system's */
static uid_t mgr_uid(const char *mgr)
{
	return mgr[0] ? (uid_t)strtoul(mgr + 5, NULL, 10) : 0;
}

/*
 * A user's line whose manager does not run: no bus in the user's runtime
 * directory, which logind removes when their last session ends (the
 * display manager's stop ends it, unless they linger). Nothing can start
 * the unit; their next login starts what their session wants.
 */
static bool user_manager_gone(const struct handoff *h, const struct jrec *rec)
{
	char path[4200];
	struct stat st;

	if (!rec->b[0])
		return false;
	snprintf(path, sizeof(path), "%s/run/user/%u/bus", h->root, (unsigned int)mgr_uid(rec->b));
	return lstat(path, &st) < 0 && errno == ENOENT;
}

/*
 * One job of a unit's manager, waited for: "" the system's, over our bus;
 * "user:UID" that user's, made as that user (core/units.c). 0 or -errno,
 * err's line.
 */
static int manager_op(struct handoff *h, const char *mgr, enum unit_op op, const char *unit,
		      const char *what, char *err, size_t errlen)
{
	int r;

	if (mgr[0])
		return unit_user_op(&h->users, h->root, mgr_uid(mgr), op, unit, UNIT_TIMEOUT_US,
				    err, errlen);
	if ((r = bus_get(h, what)) < 0) {
		snprintf(err, errlen, "%.250s", h->err);
		return r;
	}
	return (op == UNIT_OP_STOP ? unit_stop : unit_start)(h->bus, unit, UNIT_TIMEOUT_US, err,
							     errlen);
}

/* "gdm.service" or "pipewire.service of user 1000", for a line */
static const char *unit_label(const struct jrec *rec, char *buf, size_t len)
{
	if (rec->b[0])
		snprintf(buf, len, "%s of user %s", rec->a, rec->b + 5);
	else
		snprintf(buf, len, "%s", rec->a);
	return buf;
}

/* ---- the step types: what each does, and its undo, safe on a step that never ran ---- */

/*
 * The unit lines recs[0..n) stopped, started or looked up (op): each
 * manager's as one batch (core/units.c), the users' helpers at work while
 * the system's batch runs. jobs[i] gets recs[i]'s result.
 */
static void units_batch(struct handoff *h, enum unit_op op, const struct jrec *recs, size_t n,
			struct unit_job *jobs)
{
	struct group {
		const char *mgr;
		uid_t uid; /* a user's manager: mgr is "user:UID" */
		size_t idx[UNIT_BATCH_MAX], k;
		struct unit_job j[UNIT_BATCH_MAX];
		bool sent;
	} *g = calloc(n ? n : 1, sizeof(*g));
	/* whose lines, for a failure to reach systemd */
	const char *what = op == UNIT_OP_START		   ? "start"
			   : n && recs[0].step == J_HOLDER ? "holders"
							   : "stop-units";
	bool waiting = true;

	for (size_t i = 0; i < n; i++) {
		/* whole: a user's helper gets each job as it is */
		jobs[i] = (struct unit_job){ .r = 1 }; /* not taken yet */
		snprintf(jobs[i].unit, sizeof(jobs[i].unit), "%s", recs[i].a);
	}
	if (!g) {
		unit_jobs_fail(jobs, n, -ENOMEM, strerror(ENOMEM));
		return;
	}
	/* a round takes each manager's next UNIT_BATCH_MAX lines */
	while (waiting) {
		size_t ng = 0, x;

		waiting = false;
		for (size_t i = 0; i < n; i++) {
			if (jobs[i].r != 1)
				continue;
			for (x = 0; x < ng && strcmp(g[x].mgr, recs[i].b); x++)
				;
			if (x == ng)
				g[ng++] = (struct group){ .mgr = recs[i].b,
							  .uid = mgr_uid(recs[i].b) };
			if (g[x].k == UNIT_BATCH_MAX) {
				waiting = true;
				continue;
			}
			g[x].idx[g[x].k] = i;
			g[x].j[g[x].k++] = jobs[i];
			jobs[i].r = 0;
		}
		for (x = 0; x < ng; x++) {
			char err[256];
			int r;

			if (!g[x].mgr[0])
				continue;
			r = unit_user_jobs_begin(&h->users, h->root, g[x].uid, op, g[x].j, g[x].k,
						 UNIT_TIMEOUT_US, err, sizeof(err));
			if (!(g[x].sent = r == 0))
				unit_jobs_fail(g[x].j, g[x].k, r, err);
		}
		for (x = 0; x < ng; x++) {
			if (g[x].mgr[0])
				continue;
			if (bus_get(h, what) < 0)
				unit_jobs_fail(g[x].j, g[x].k, -ENOTCONN, h->err);
			else if (op == UNIT_OP_LOOKUP || op == UNIT_OP_LOAD)
				unit_lookups(h->bus, g[x].j, g[x].k, op == UNIT_OP_LOAD);
			else
				unit_jobs(h->bus, op, g[x].j, g[x].k, UNIT_TIMEOUT_US);
		}
		for (x = 0; x < ng; x++) {
			if (g[x].sent)
				unit_user_jobs_end(&h->users, g[x].uid, g[x].j, g[x].k);
			for (size_t y = 0; y < g[x].k; y++)
				jobs[g[x].idx[y]] = g[x].j[y];
		}
	}
	free(g);
}

/*
 * A user's unit whose start job ran and failed at release (or in a
 * rollback), and which is a graphical session's (its manager says so: its
 * Slice is session.slice, or it is PartOf graphical-session.target, as
 * plasma-kwin_wayland.service), while logind says the user has no
 * graphical session now: the display manager's stop ended it, and their
 * manager stays (they linger, or are logged in on a text console or over
 * ssh). It cannot start outside its session, at this release or the next,
 * and a journal kept for it would refuse the next prepare; their next login
 * starts what the session wants. Anything less certain (a timeout, a
 * signal, a unit of no session, logind not answering) is kept, as before.
 */
static bool session_gone(struct handoff *h, const struct jrec *rec, const struct unit_job *job)
{
	struct unit_job q;
	char label[320];
	int r = -ENOTCONN;

	if (!rec->b[0] || !job->ran)
		return false;
	unit_label(rec, label, sizeof(label));
	/* loaded from its file: a start that failed on an assert or a Requisite= let it go */
	units_batch(h, UNIT_OP_LOAD, rec, 1, &q);
	if (q.r < 0 || !q.ans.session) {
		say(h, HANDOFF_DEBUG, "%s is %s", label,
		    q.r < 0 ? "not known to its manager now" : "no graphical session's");
		return false;
	}
	/* a bus that cannot be reached keeps the line */
	if (bus_try(h))
		r = user_graphical(h->bus, mgr_uid(rec->b));
	say(h, HANDOFF_DEBUG, "%s is a graphical session's; logind: %s", label,
	    r > 0    ? "the user has one"
	    : r == 0 ? "the user has none"
		     : strerror(-r));
	return r == 0;
}

/* ---- what the run knows of its units before its first stop ---- */

static void known_forget(struct handoff *h)
{
	free(h->known);
	free(h->known_ans);
	h->known = NULL;
	h->known_ans = NULL;
	h->n_known = 0;
}

/* recs[0..n) (a unit, b its manager) looked up, each manager's in one batch, and kept */
static void known_learn(struct handoff *h, struct jrec *recs, size_t n)
{
	struct unit_job *ans = calloc(n ? n : 1, sizeof(*ans));

	known_forget(h);
	if (!ans) {
		free(recs);
		return; /* each unit is looked up on its own when its turn comes */
	}
	units_batch(h, UNIT_OP_LOOKUP, recs, n, ans);
	h->known = recs;
	h->known_ans = ans;
	h->n_known = n;
}

/* what known_learn() got for unit of manager mgr ("" the system's), or NULL */
static const struct unit_job *known_find(const struct handoff *h, const char *unit, const char *mgr)
{
	for (size_t i = 0; i < h->n_known; i++)
		if (!strcmp(h->known[i].a, unit) && !strcmp(h->known[i].b, mgr))
			return &h->known_ans[i];
	return NULL;
}

/* a unit's lookup: the one known_learn() made, else (none, or it failed) one made now */
static void lookup(struct handoff *h, enum jstep type, const char *unit, const char *mgr,
		   struct unit_job *ans)
{
	const struct unit_job *k = known_find(h, unit, mgr);
	struct jrec rec = { .step = type };

	if (k && !k->r) {
		*ans = *k;
		return;
	}
	if (strlen(unit) >= sizeof(rec.a) || strlen(mgr) >= sizeof(rec.b)) {
		ans->r = -ENAMETOOLONG;
		snprintf(ans->err, sizeof(ans->err), "%s", strerror(ENAMETOOLONG));
		return;
	}
	snprintf(rec.a, sizeof(rec.a), "%s", unit);
	snprintf(rec.b, sizeof(rec.b), "%s", mgr);
	units_batch(h, UNIT_OP_LOOKUP, &rec, 1, ans);
}

/* the unit lines recs[0..n), stopped side by side; the first that did not stop fails the run */
static int stop_units(struct handoff *h, const struct jrec *recs, size_t n)
{
	struct unit_job *jobs = calloc(n ? n : 1, sizeof(*jobs));
	char label[320];
	int r = 0;

	if (!jobs)
		return fail(h, -ENOMEM, "units: out of memory");
	known_forget(h); /* from now on, a lookup asks again */
	for (size_t i = 0; i < n; i++)
		say(h, HANDOFF_INFO, "stopping %s", unit_label(&recs[i], label, sizeof(label)));
	units_batch(h, UNIT_OP_STOP, recs, n, jobs);
	for (size_t i = 0; i < n && !r; i++) {
		const char *what = recs[i].step == J_HOLDER ? "holders" : "stop-units";

		if (jobs[i].r >= 0)
			continue;
		unit_label(&recs[i], label, sizeof(label));
		if (jobs[i].r == -EINTR && stopped(h))
			/* the rollback's StartUnit replaces the job that still runs */
			r = fail(h, jobs[i].r, "%s: %s: interrupted by %s while its stop job ran",
				 what, label, strsignal(stopped(h)));
		else
			r = fail(h, jobs[i].r, "%s: %s did not stop: %s", what, label, jobs[i].err);
	}
	free(jobs);
	return r;
}

static int run_unit(struct handoff *h, const struct jrec *rec)
{
	void *p;

	if (!h->batching)
		return stop_units(h, rec, 1);
	/* a phase's units, stopped together when it has journaled them all */
	if (!(p = realloc(h->batch, (h->n_batch + 1) * sizeof(*h->batch))))
		return fail(h, -ENOMEM, "units: out of memory");
	h->batch = p;
	h->batch[h->n_batch++] = *rec;
	return 0;
}

/* the lines a batching phase journaled, stopped now */
static int units_flush(struct handoff *h, int r)
{
	h->batching = false;
	if (r >= 0 && h->n_batch)
		r = stop_units(h, h->batch, h->n_batch);
	free(h->batch);
	h->batch = NULL;
	h->n_batch = 0;
	return r;
}

static int undo_unit(struct handoff *h, const struct jrec *rec, char *err, size_t errlen)
{
	char label[320];

	say(h, HANDOFF_INFO, "starting %s", unit_label(rec, label, sizeof(label)));
	return manager_op(h, rec->b, UNIT_OP_START, rec->a, "start", err, errlen);
}

static int run_vtcon(struct handoff *h, const struct jrec *rec)
{
	char path[512];
	int r;

	snprintf(path, sizeof(path), "/sys/class/vtconsole/%s/bind", rec->a);
	if ((r = write_attr_at(h->root, path, "0\n")) < 0)
		return fail(h, r, "consoles: unbind %s: %s", rec->a, strerror(-r));
	return 0;
}

static int undo_vtcon(struct handoff *h, const struct jrec *rec, char *err, size_t errlen)
{
	char path[512];

	snprintf(path, sizeof(path), "/sys/class/vtconsole/%s/bind", rec->a);
	return write_attr_at(h->root, path, "1\n");
}

static int run_fb(struct handoff *h, const struct jrec *rec)
{
	char path[512];
	int r;

	snprintf(path, sizeof(path), "/sys/bus/platform/drivers/%s/unbind", rec->a);
	if ((r = write_attr_at(h->root, path, rec->b)) < 0)
		return fail(h, r, "framebuffers: unbind %s from %s: %s", rec->b, rec->a,
			    strerror(-r));
	return 0;
}

static int undo_fb(struct handoff *h, const struct jrec *rec, char *err, size_t errlen)
{
	char path[640], drv[64];

	snprintf(path, sizeof(path), "/sys/bus/platform/drivers/%s/%s", rec->a, rec->b);
	if (!read_link_base_at(h->root, path, drv, sizeof(drv)))
		return 0; /* still bound */
	snprintf(path, sizeof(path), "/sys/bus/platform/drivers/%s/bind", rec->a);
	return write_attr_at(h->root, path, rec->b);
}

static int run_module(struct handoff *h, const struct jrec *rec)
{
	char err[256];
	int r;

	say(h, HANDOFF_INFO, "unloading %s", rec->a);
	r = module_unload(h->kmod, rec->a, h->c->holder_timeout * 1000000ull,
			  h->undoing ? NULL
			  : h->io    ? h->io->stop
				     : NULL,
			  err, sizeof(err));
	if (r < 0)
		return fail(h, r, "modules: unload %s: %s", rec->a, err);
	return 0;
}

static int undo_module(struct handoff *h, const struct jrec *rec, char *err, size_t errlen)
{
	return module_load(h->kmod, rec->a, err, errlen);
}

static int run_unbind(struct handoff *h, const struct jrec *rec)
{
	int r;

	if ((r = unbind_pci(h, rec->a, rec->b)) < 0)
		return fail(h, r, "modules: unbind %s from %s: %s", rec->a, rec->b, strerror(-r));
	return 0;
}

static int undo_unbind(struct handoff *h, const struct jrec *rec, char *err, size_t errlen)
{
	char path[512], drv[64];

	if (!pci_driver(h, rec->a, drv, sizeof(drv)))
		return 0;
	snprintf(path, sizeof(path), "/sys/bus/pci/drivers/%s/bind", rec->b);
	return write_attr_at(h->root, path, rec->a);
}

/* driver_override, then a probe, then check that it took */
static int run_vfio(struct handoff *h, const struct jrec *rec)
{
	const char *bdf = rec->a;
	char path[512], drv[64], grp[32];
	uint64_t deadline;
	int r;

	pci_driver(h, bdf, drv, sizeof(drv));
	if (drv[0] && (r = unbind_pci(h, bdf, drv)) < 0)
		return fail(h, r, "vfio-pci: unbind %s from %s: %s", bdf, drv, strerror(-r));
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override", bdf);
	if ((r = write_attr_at(h->root, path, "vfio-pci")) < 0)
		return fail(h, r, "vfio-pci: %s: driver_override: %s", bdf, strerror(-r));
	if ((r = write_attr_at(h->root, "/sys/bus/pci/drivers_probe", bdf)) < 0)
		return fail(h, r, "vfio-pci: probe %s: %s", bdf, strerror(-r));
	deadline = now_us() + BIND_TIMEOUT_US;
	while (pci_driver(h, bdf, drv, sizeof(drv)),
	       strcmp(drv, "vfio-pci") && now_us() < deadline && !stopped(h))
		usleep(POLL_US / 4);
	if (strcmp(drv, "vfio-pci"))
		return fail(h, -EIO, "vfio-pci: %s did not bind to vfio-pci (driver: %s)", bdf,
			    drv[0] ? drv : "none");
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", bdf);
	if (!read_link_base_at(h->root, path, grp, sizeof(grp)))
		say(h, HANDOFF_INFO, "%s is on vfio-pci: /dev/vfio/%s", bdf, grp);
	else
		say(h, HANDOFF_INFO, "%s is on vfio-pci", bdf);
	return 0;
}

static int undo_vfio(struct handoff *h, const struct jrec *rec, char *err, size_t errlen)
{
	char path[512], drv[64];
	int r;

	if (!pci_driver(h, rec->a, drv, sizeof(drv)) && !strcmp(drv, "vfio-pci") &&
	    (r = unbind_pci(h, rec->a, "vfio-pci")) < 0)
		return r;
	/* what it was before prepare: a user's own override stays theirs */
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override", rec->a);
	if ((r = write_attr_at(h->root, path, rec->b[0] ? rec->b : "\n")) < 0)
		return r;
	/* the native driver, where it is loaded; a module reloaded later probes it itself */
	write_attr_at(h->root, "/sys/bus/pci/drivers_probe", rec->a);
	return 0;
}

static int run_loaded(struct handoff *h, const struct jrec *rec)
{
	char err[256];
	int r;

	if ((r = module_load(h->kmod, "vfio-pci", err, sizeof(err))) < 0)
		return fail(h, r, "vfio-pci: load vfio-pci: %s", err);
	return 0;
}

static int undo_loaded(struct handoff *h, const struct jrec *rec, char *err, size_t errlen)
{
	/* another guest may use it by now: leave it then */
	if (module_unload(h->kmod, rec->a, 0, NULL, err, errlen) < 0)
		say(h, HANDOFF_DEBUG, "%s stays loaded: %s", rec->a, err);
	return 0;
}

static const struct step_type {
	const char *fmt; /* the plan's words: %1$s the first field, %2$s the second */
	int (*run)(struct handoff *h, const struct jrec *rec);
	int (*undo)(struct handoff *h, const struct jrec *rec, char *err, size_t errlen);
} step_types[] = {
	[J_UNIT] = { "stop unit %1$s", run_unit, undo_unit },
	[J_VTCON] = { "unbind console %1$s from its framebuffer", run_vtcon, undo_vtcon },
	[J_FB] = { "unbind framebuffer %2$s from %1$s", run_fb, undo_fb },
	[J_MODULE] = { "unload module %1$s", run_module, undo_module },
	[J_UNBIND] = { "unbind %1$s from %2$s (the driver stays for other devices)", run_unbind,
		       undo_unbind },
	[J_VFIO] = { "bind %1$s to vfio-pci", run_vfio, undo_vfio },
	[J_LOADED] = { "load module %1$s", run_loaded, undo_loaded },
	[J_HOLDER] = { "stop unit %1$s (it holds the GPU)", run_unit, undo_unit },
};
_Static_assert(ARRAY_SIZE(step_types) == J__N, "every journal step has its run and undo");

void jrec_describe(const struct jrec *r, char *buf, size_t len)
{
	if (r->step >= J__N) {
		snprintf(buf, len, "?");
		return;
	}
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	snprintf(buf, len, step_types[r->step].fmt, r->a, r->b);
#pragma GCC diagnostic pop
}

/*
 * Journal a step into *rec, not taking it yet: 1; in a dry run, say what it
 * would be: 0.
 */
static int step_record(struct handoff *h, enum jstep type, const char *a, const char *b,
		       struct jrec *rec)
{
	char text[640];
	void *p;
	int r;

	*rec = (struct jrec){ .step = type };
	if (stopped(h))
		return fail(h, -EINTR, "interrupted by %s", strsignal(stopped(h)));
	if (strlen(a) >= sizeof(rec->a) || (b && strlen(b) >= sizeof(rec->b)))
		return fail(h, -ENAMETOOLONG, "journal: '%.64s...' is too long for a journal field",
			    a);
	snprintf(rec->a, sizeof(rec->a), "%s", a);
	snprintf(rec->b, sizeof(rec->b), "%s", b ? b : "");
	if (h->dry) {
		jrec_describe(rec, text, sizeof(text));
		plan_item(h, &(struct plan_item){ .kind = PLAN_STEP, .rec = rec, .text = text });
		return 0;
	}
	if (!(p = realloc(h->done, (h->n_done + 1) * sizeof(*h->done))))
		return fail(h, -ENOMEM, "journal: out of memory");
	h->done = p;
	if ((r = journal_append(h->jfd, rec)) < 0)
		return fail(h, r, "journal: cannot write %s/run/vfio-agent/%s.journal: %s", h->root,
			    h->vm, strerror(-r));
	h->done[h->n_done++] = *rec;
	return 1;
}

/* Journal a step, then take it; in a dry run, say what it would be. */
static int step(struct handoff *h, enum jstep type, const char *a, const char *b)
{
	struct jrec rec;
	int r = step_record(h, type, a, b, &rec);

	return r > 0 ? step_types[type].run(h, &rec) : r;
}

/* ---- the phases of prepare, in order ---- */

/* is unit (of manager mgr) journaled by this run? */
static bool unit_journaled(const struct handoff *h, const char *unit, const char *mgr)
{
	for (size_t i = 0; i < h->n_done; i++)
		if ((h->done[i].step == J_UNIT || h->done[i].step == J_HOLDER) &&
		    !strcmp(h->done[i].a, unit) && !strcmp(h->done[i].b, mgr))
			return true;
	return false;
}

/* is unit (of manager mgr) already stopped, or planned, by this run? */
static bool unit_taken(struct handoff *h, const char *unit, const char *mgr)
{
	char key[JTOK + 24];

	snprintf(key, sizeof(key), "%s %s", unit, mgr);
	if (unit_journaled(h, unit, mgr))
		return true;
	for (size_t i = 0; i < h->n_planned; i++)
		if (!strcmp(h->planned[i], key))
			return true;
	if (h->dry) {
		void *p = realloc(h->planned, (h->n_planned + 1) * sizeof(*h->planned));

		if (p) {
			h->planned = p;
			snprintf(h->planned[h->n_planned++], sizeof(*h->planned), "%s", key);
		}
	}
	return false;
}

static int stop_unit(struct handoff *h, enum jstep type, const char *unit, const char *mgr,
		     bool lenient);

/* the line of a user's holder unit left to its session's end, or NULL */
static const struct jrec *session_unit(const struct handoff *h, const char *unit, const char *mgr)
{
	for (size_t i = 0; i < h->n_sessions; i++)
		if (!strcmp(h->sessions[i].a, unit) && !strcmp(h->sessions[i].b, mgr))
			return &h->sessions[i];
	return NULL;
}

/*
 * A user's unit that holds the GPU and refuses a manual stop (CanStop
 * false: RefuseManualStop=yes, as GNOME Shell's org.gnome.Shell@wayland.service)
 * is its graphical session's: it stops when the session ends, which the
 * display manager's stop brings about. StopUnit would be refused, and fail
 * the run after that stop; so it is neither stopped nor journaled (nor
 * started by release: the session's next login starts it), said once, and
 * phase 4 waits for it within holder-timeout as for any holder outside a
 * unit (on-holders' second word).
 */
static int leave_to_session(struct handoff *h, const char *unit, const char *mgr)
{
	struct jrec rec = { .step = J_HOLDER }, *p;
	char label[320];

	if (session_unit(h, unit, mgr) || strlen(unit) >= sizeof(rec.a))
		return 0;
	snprintf(rec.a, sizeof(rec.a), "%s", unit);
	snprintf(rec.b, sizeof(rec.b), "%s", mgr);
	if ((p = realloc(h->sessions, (h->n_sessions + 1) * sizeof(*p)))) {
		h->sessions = p;
		h->sessions[h->n_sessions++] = rec;
	}
	unit_label(&rec, label, sizeof(label));
	if (h->dry)
		plan_note(h,
			  "leave %s to its session's end (it refuses a manual stop); wait for it "
			  "with the other holders",
			  label);
	else
		say(h, HANDOFF_INFO,
		    "leaving %s to its session's end: it refuses a manual stop "
		    "(RefuseManualStop=yes)",
		    label);
	return 0;
}

/*
 * A running unit that refuses a manual stop (CanStop false:
 * RefuseManualStop=yes), which the handoff cannot stop: why, and what to
 * do, one line in h->err; -EPERM. systemd would refuse its StopUnit, and
 * only after the others' stops, the display manager's among them.
 */
static int refuse_unit(struct handoff *h, enum jstep type, const char *unit, const char *mgr)
{
	struct jrec rec = { .step = type };
	char label[320];

	snprintf(rec.a, sizeof(rec.a), "%s", unit);
	snprintf(rec.b, sizeof(rec.b), "%s", mgr);
	unit_label(&rec, label, sizeof(label));
	if (type == J_UNIT)
		snprintf(h->err, sizeof(h->err),
			 "stop-units: %s refuses a manual stop (RefuseManualStop=yes), so systemd "
			 "would not stop it for the handoff: %s",
			 label,
			 h->c->stop_units_set ? "take it out of stop-units"
					      : "set stop-units (its default is "
						"display-manager.service) without it");
	else
		snprintf(h->err, sizeof(h->err),
			 "holders: %s holds the GPU and refuses a manual stop "
			 "(RefuseManualStop=yes), so on-holders = stop cannot stop it: end it "
			 "yourself, or set on-holders = wait if it ends with the display manager",
			 label);
	return -EPERM;
}

/*
 * A service's line, then those of the running sockets that start it
 * (sockets, its TriggeredBy), each stopped before the service: a client
 * connecting in between (pipewire's, to pipewire.socket) would start it
 * again and give it the device back. Release, from the last line, starts the
 * sockets first, as systemd does at boot, so that the service gets their
 * listening fds; and after the display server, as their lines are units of
 * the same kind.
 */
static int stop_with_sockets(struct handoff *h, enum jstep type, const char *unit, const char *mgr,
			     char *sockets)
{
	char *save = NULL;
	struct jrec rec;
	int r, taken;

	if (!sockets[0])
		return step(h, type, unit, mgr);
	if ((taken = step_record(h, type, unit, mgr, &rec)) < 0)
		return taken;
	for (char *s = strtok_r(sockets, " ", &save); s; s = strtok_r(NULL, " ", &save))
		if ((r = stop_unit(h, type, s, mgr, true)) < 0)
			return r;
	return taken ? step_types[type].run(h, &rec) : 0;
}

/* one unit of stop-units (or a holder's), stopped when it runs */
static int stop_unit(struct handoff *h, enum jstep type, const char *unit, const char *mgr,
		     bool lenient)
{
	const char *what = type == J_HOLDER ? "holders" : "stop-units";
	struct unit_job q;

	lookup(h, type, unit, mgr, &q);
	if (q.r < 0 && !mgr[0] && !h->bus) {
		/* the default display-manager.service, with no systemd to ask: none to stop */
		if (lenient)
			return 0;
		if (!h->dry)
			return q.r;
		plan_note(h, "stop unit %s if it runs (%s)", unit, h->err);
		return 0;
	}
	if (q.r < 0)
		return fail(h, q.r, "%s: %s: %s", what, unit, q.err);
	if (!q.ans.active) {
		if (!lenient)
			say(h, HANDOFF_INFO, "%s is not running; left alone", unit);
		return 0;
	}
	if (type == J_HOLDER && mgr[0] && q.ans.refuses_stop)
		return leave_to_session(h, unit, mgr);
	/*
	 * a service's socket (stop_with_sockets) that refuses: left listening,
	 * said; a client that starts the service again meets the holder wait
	 */
	if (q.ans.refuses_stop && lenient && str_ends_with(unit, ".socket")) {
		if (h->dry)
			plan_note(h, "leave %s listening: it refuses a manual stop", unit);
		else
			say(h, HANDOFF_INFO, "leaving %s listening: it refuses a manual stop",
			    unit);
		return 0;
	}
	/* one that took the GPU after units_check(): its StopUnit would be refused */
	if (q.ans.refuses_stop)
		return refuse_unit(h, type, unit, mgr);
	if (unit_taken(h, unit, mgr))
		return 0;
	return stop_with_sockets(h, type, unit, mgr, q.ans.sockets);
}

/* stop-units, else its default: display-manager.service when it exists */
static const char *const *stop_units_of(const struct config *c, size_t *n)
{
	static const char *const fallback[] = { "display-manager.service" };

	if (!c->stop_units_set) {
		*n = ARRAY_SIZE(fallback);
		return fallback;
	}
	*n = c->n_stop_units;
	return (const char *const *)c->stop_units;
}

/* a stop-units entry's unit and manager ("" the system's, "user:UID"); -EINVAL */
static int stop_unit_spec(const char *spec, const char **name, char mgr[24])
{
	uid_t uid;

	if (unit_spec_parse(spec, &uid, name) < 0)
		return -EINVAL;
	mgr[0] = '\0';
	if (uid != UNIT_SYSTEM_MANAGER)
		snprintf(mgr, 24, "user:%u", (unsigned int)uid);
	return 0;
}

static void units_learn(struct handoff *h, const struct holder_scan *hs);

/*
 * 1. the configured units (default: display-manager.service), stopped through
 * systemd in one batch with the holders' units that phase 0 journaled: the
 * display manager's stop runs beside theirs, systemd ordering the jobs by
 * their units' dependencies, as `systemctl stop` of them all would
 */
static int phase_units(struct handoff *h)
{
	size_t n;
	const char *const *units = stop_units_of(h->c, &n);
	char mgr[24];
	int r;

	/* units_check() looked them up with the holders' units */
	h->batching = true;
	for (size_t i = 0; i < n; i++) {
		const char *name;

		if (stop_unit_spec(units[i], &name, mgr) < 0)
			return units_flush(
				h, fail(h, -EINVAL, "stop-units: '%s' is not a unit", units[i]));
		if ((r = stop_unit(h, J_UNIT, name, mgr, !h->c->stop_units_set)) < 0)
			return units_flush(h, r);
	}
	return units_flush(h, 0);
}

/* the loaded system unit's object path, from what the run knows, else asked now */
static bool system_unit_path(struct handoff *h, const char *unit, char *path, size_t len)
{
	const struct unit_job *k = known_find(h, unit, "");

	if (k) {
		snprintf(path, len, "%s", k->ans.path);
		return k->r == 0 && path[0];
	}
	return h->bus && unit_path(h->bus, unit, path, len) == 0;
}

/* are a and b one system unit (b may be an alias such as display-manager.service)? */
static bool same_unit(struct handoff *h, const char *a, const char *b)
{
	char pa[512], pb[512];

	return !strcmp(a, b) || (system_unit_path(h, a, pa, sizeof(pa)) &&
				 system_unit_path(h, b, pb, sizeof(pb)) && !strcmp(pa, pb));
}

static bool in_stop_units(struct handoff *h, const char *unit)
{
	if (!h->c || !h->c->stop_units_set)
		return same_unit(h, unit, "display-manager.service");
	for (size_t i = 0; i < h->c->n_stop_units; i++)
		if (strncmp(h->c->stop_units[i], "user:", 5) &&
		    same_unit(h, unit, h->c->stop_units[i]))
			return true;
	return false;
}

/* a holder's unit that on-holders = stop may stop, and its manager ("" or "user:UID") */
static bool holder_unit(const struct proc_info *pi, char mgr[24])
{
	/* logind lets go when the display manager's session ends: never stopped */
	if ((pi->unit_kind != UNIT_SYSTEM && pi->unit_kind != UNIT_USER) ||
	    !unit_name_valid(pi->unit) || holder_is_logind(pi))
		return false;
	mgr[0] = '\0';
	if (pi->unit_kind == UNIT_USER)
		snprintf(mgr, 24, "user:%u", (unsigned int)pi->unit_uid);
	return true;
}

/*
 * on-holders = stop: the units whose processes hold the GPU, stopped
 * (journaled as holder lines, started again at release after the display
 * server); scopes, PID 1 and bare processes are left to wait/kill/fail.
 */
static int stop_holder_units(struct handoff *h, const struct holder_scan *hs)
{
	char mgr[24];
	int r;

	for (size_t i = 0; h->c->holders_stop && i < hs->n_holders; i++) {
		const struct proc_info *pi = &hs->holders[i].pi;

		/*
		 * one this run stopped whose process stays (its KillMode spared
		 * it), or left to its session: the holder wait's, not asked about
		 * again at each of its looks
		 */
		if (!holder_unit(pi, mgr) || unit_journaled(h, pi->unit, mgr) ||
		    session_unit(h, pi->unit, mgr))
			continue;
		if (!mgr[0] && bus_get(h, "holders") == 0 && in_stop_units(h, pi->unit))
			continue; /* the display manager: phase 1 stops it, and it comes back first */
		if ((r = stop_unit(h, J_HOLDER, pi->unit, mgr, false)) < 0)
			return r;
	}
	return 0;
}

static void *look_thread(void *arg)
{
	struct handoff *h = arg;

	/*
	 * /proc, with no BPF load (the verifier's time, long on a slow CPU);
	 * phase 4's scans see whatever it missed, and stop_holder_units()
	 * stops that too
	 */
	h->look.r = holders_scan(h->root, &h->ts.scan, SCAN_READY, &h->look.hs, h->look.err,
				 sizeof(h->look.err));
	return NULL;
}

/*
 * The scans' module targets, once the first look (which reads them) is
 * over: what depends on the drivers, for a target set resolved before
 * libkmod was loaded. The first look did without them; phase 4's scans
 * have them, and stop what that look missed.
 */
static int add_dependents(struct handoff *h)
{
	int r;

	if (!h->dependents)
		return 0;
	h->dependents = false;
	if ((r = targets_add_dependents(&h->ts, h->kmod)) < 0)
		return fail(h, r, "targets: what depends on the drivers: %s", strerror(-r));
	return 0;
}

/* phase 0's look, begun while libkmod loads and the preflight checks: both only read */
static void look_early(struct handoff *h)
{
	h->look.running = !thread_start(&h->look.thread, look_thread, h);
}

/* phase 0's look: the early one's, else one taken now. 0 or -errno with err */
static int look_take(struct handoff *h, struct holder_scan *hs, char *err, size_t errlen)
{
	if (!h->look.running) {
		look_thread(h);
	} else {
		pthread_join(h->look.thread, NULL);
		h->look.running = false;
	}
	*hs = h->look.hs;
	memset(&h->look.hs, 0, sizeof(h->look.hs));
	snprintf(err, errlen, "%s", h->look.err);
	return h->look.r;
}

/*
 * What phases 0 and 1 ask of systemd, asked at once: the holders' units
 * and stop-units, each manager's in one batch (two round trips for the
 * lot, the users' helpers beside the system's calls), not one unit after
 * another. Only what is known before the first stop; a failed lookup is
 * made again, on its own, when its unit's turn comes.
 */
static void units_learn(struct handoff *h, const struct holder_scan *hs)
{
	size_t n_stop, n = 0, n_hold = hs ? hs->n_holders : 0;
	const char *const *stop = stop_units_of(h->c, &n_stop);
	struct jrec *recs = calloc(n_hold + n_stop + 1, sizeof(*recs));
	char mgr[24];

	if (!recs)
		return;
	for (size_t i = 0; i < n_hold + n_stop; i++) {
		const char *unit = i < n_hold ? hs->holders[i].pi.unit : NULL;
		bool dup = false;

		if (unit ? !holder_unit(&hs->holders[i].pi, mgr)
			 : stop_unit_spec(stop[i - n_hold], &unit, mgr) < 0)
			continue;
		for (size_t j = 0; j < n && !dup; j++)
			dup = !strcmp(recs[j].a, unit) && !strcmp(recs[j].b, mgr);
		if (dup || strlen(unit) >= sizeof(recs[n].a))
			continue;
		recs[n].step = i < n_hold ? J_HOLDER : J_UNIT;
		snprintf(recs[n].a, sizeof(recs[n].a), "%s", unit);
		snprintf(recs[n].b, sizeof(recs[n].b), "%s", mgr);
		n++;
	}
	known_learn(h, recs, n);
}

/*
 * 0. before the display manager's line: the other units that hold the GPU,
 * journaled; phase 1 stops them with it
 */
static int phase_holder_units(struct handoff *h)
{
	int r;

	if (!h->c->holders_stop)
		return 0;
	h->batching = true;
	if ((r = stop_holder_units(h, &h->first)) < 0)
		r = units_flush(h, r);
	holder_scan_free(&h->first);
	return r;
}

/* is unit of manager mgr ("" or "user:UID") one that stop-units names? */
static bool named_in_stop_units(struct handoff *h, const char *unit, const char *mgr)
{
	size_t n;
	const char *const *units = stop_units_of(h->c, &n);
	const char *name;
	char m[24];

	if (!mgr[0])
		return in_stop_units(h, unit);
	for (size_t i = 0; i < n; i++)
		if (!stop_unit_spec(units[i], &name, m) && !strcmp(m, mgr) && !strcmp(name, unit))
			return true;
	return false;
}

/*
 * Before the journal, while nothing is changed: the first look at the
 * holders taken (kept for phase 0), the units phases 0 and 1 would stop
 * looked up together (units_learn), and a running one that refuses a
 * manual stop refused now: systemd would refuse its StopUnit only after
 * the others' stops, the display manager's among them, and the run would
 * roll back. A user's holder unit that refuses is its graphical session's,
 * left to its end (leave_to_session), unless stop-units names it. A lookup
 * that failed is made again, and reported, when its unit's turn comes.
 */
static int units_check(struct handoff *h)
{
	char err[320];
	int r;

	if (!h->c->holders_stop) {
		units_learn(h, NULL);
	} else {
		if ((r = look_take(h, &h->first, err, sizeof(err))) < 0)
			return fail(h, r, "holders: the scan failed: %s", err);
		if ((r = add_dependents(h)) < 0)
			return r;
		units_learn(h, &h->first);
	}
	for (size_t i = 0; i < h->n_known; i++) {
		const struct jrec *rec = &h->known[i];
		const struct unit_job *q = &h->known_ans[i];
		bool named;

		if (q->r || !q->ans.active || !q->ans.refuses_stop)
			continue;
		named = named_in_stop_units(h, rec->a, rec->b);
		if (!named && rec->b[0])
			continue;
		return refuse_unit(h, named ? J_UNIT : J_HOLDER, rec->a, rec->b);
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
static int phase_consoles(struct handoff *h)
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
		if (read_line_at(h->root, path, name, sizeof(name)) ||
		    !strstr(name, "frame buffer"))
			continue;
		snprintf(path, sizeof(path), "/sys/class/vtconsole/%s/bind", vt);
		if (read_line_at(h->root, path, bind, sizeof(bind)) || strcmp(bind, "1"))
			continue;
		r = step(h, J_VTCON, vt, NULL);
	}
	free_list(list, n);
	return r;
}

static bool is_attr(const char *name)
{
	static const char *const attrs[] = { ".",      "..",	 "bind",   "unbind",
					     "uevent", "module", "new_id", "remove_id" };

	for (size_t i = 0; i < ARRAY_SIZE(attrs); i++)
		if (!strcmp(name, attrs[i]))
			return true;
	return false;
}

/* 3. the boot framebuffers (efi, simple, vesa), which keep the GPU's memory mapped */
static int phase_framebuffers(struct handoff *h)
{
	int r = 0;

	for (size_t d = 0; d < ARRAY_SIZE(boot_fb_drivers) && !r; d++) {
		struct dirent **list;
		char dir[256];
		int n;

		snprintf(dir, sizeof(dir), "/sys/bus/platform/drivers/%s", boot_fb_drivers[d]);
		if ((n = scan_sorted(h->root, dir, &list)) < 0)
			continue;
		for (int i = 0; i < n && !r; i++)
			if (!is_attr(list[i]->d_name) && list[i]->d_type == DT_LNK)
				r = step(h, J_FB, boot_fb_drivers[d], list[i]->d_name);
		free_list(list, n);
	}
	return r;
}

static void describe_holders(const struct holder_scan *hs, char *buf, size_t len)
{
	struct strbuf sb = strbuf_on(buf, len);

	for (size_t i = 0; i < hs->n_holders; i++) {
		const struct proc_info *pi = &hs->holders[i].pi;

		if (i == 3) {
			sb_printf(&sb, " and %zu more", hs->n_holders - 3);
			break;
		}
		sb_printf(&sb, "%s%s (pid %u%s%s)", i ? ", " : "", pi->comm, pi->pid,
			  pi->unit[0] ? ", " : "", pi->unit);
	}
}

static void signal_holders(struct handoff *h, const struct holder_scan *hs, int sig)
{
	/* --root's /proc is a tree's: its pids are not ours to signal */
	if (h->root[0]) {
		say(h, HANDOFF_WARN,
		    "on-holders = kill under --root: no signal is sent to the pids of %s/proc; "
		    "waiting instead",
		    h->root);
		return;
	}
	for (size_t i = 0; i < hs->n_holders; i++) {
		pid_t pid = hs->holders[i].pi.pid;

		/* never init, never ourselves, never logind (it lets go when the session ends) */
		if (pid <= 1 || pid == getpid() || holder_is_logind(&hs->holders[i].pi))
			continue;
		if (kill(pid, sig) == 0)
			say(h, HANDOFF_WARN, "sent %s to %s (pid %d)",
			    sig == SIGKILL ? "SIGKILL" : "SIGTERM", hs->holders[i].pi.comm, pid);
	}
}

/* "waiting for lactd.service (pid 812) to release /dev/dri/renderD128 — 4 s of 10" */
static void progress_line(struct handoff *h, const struct holder_scan *hs, uint64_t waited)
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
	say(h, HANDOFF_PROGRESS, "waiting for %s (pid %u)%s to release %s — %llu s of %u",
	    first->pi.unit[0] ? first->pi.unit : first->pi.comm, first->pi.pid, more,
	    path[0] ? path : "the GPU", (unsigned long long)(waited / 1000000),
	    h->c->holder_timeout);
}

/*
 * what to do when a holder of hs is a user's unit left to its session's
 * end, else "": the failure's first words, so that no cut loses them
 */
static void session_hint(const struct handoff *h, const struct holder_scan *hs, char *buf,
			 size_t len)
{
	const struct jrec *rec;
	char mgr[24], label[320];

	buf[0] = '\0';
	for (size_t i = 0; i < hs->n_holders; i++)
		if (holder_unit(&hs->holders[i].pi, mgr) &&
		    (rec = session_unit(h, hs->holders[i].pi.unit, mgr))) {
			snprintf(buf, len,
				 "%s refuses a manual stop and ends with its session: log out "
				 "of that session, then try again; ",
				 unit_label(rec, label, sizeof(label)));
			return;
		}
	/* a process that a unit's stop left running (KillMode=process, none) */
	for (size_t i = 0; i < hs->n_holders; i++)
		if (holder_unit(&hs->holders[i].pi, mgr) &&
		    unit_journaled(h, hs->holders[i].pi.unit, mgr)) {
			struct jrec r = { .step = J_HOLDER };

			snprintf(r.a, sizeof(r.a), "%s", hs->holders[i].pi.unit);
			snprintf(r.b, sizeof(r.b), "%s", mgr);
			snprintf(buf, len,
				 "%s stopped, but left pid %u running (its KillMode spares it): "
				 "end it, then try again; ",
				 unit_label(&r, label, sizeof(label)), hs->holders[i].pi.pid);
			return;
		}
}

/* 4. processes that still have the GPU open: wait, end them, or fail (on-holders) */
static int phase_holders(struct handoff *h)
{
	uint64_t start = now_us(), deadline = start + h->c->holder_timeout * 1000000ull;
	char mode[24];
	bool termed = false, killed = false, told = false;
	uint64_t kill_deadline = 0, next_tell = 0;
	char who[400], err[320], note[640], mods[512], hint[420];
	struct strbuf sb = strbuf_on(mods, sizeof(mods));
	int shown = -1; /* the backend the last line named */

	config_on_holders(h->c, mode, sizeof(mode));
	for (size_t i = 0; i < h->ts.scan.n_mods; i++)
		sb_printf(&sb, "%s%s", i ? " " : "", h->ts.scan.mods[i]);
	say(h, HANDOFF_DEBUG, "holders: the files of the devices' nodes and of %s",
	    mods[0] ? mods : "no module");

	for (;;) {
		struct holder_scan hs;
		/*
		 * /proc until the BPF programs are loaded: their load, on a thread,
		 * begins only once there is a wait for their quicker scans to serve
		 */
		int r = holders_scan(h->root, &h->ts.scan, SCAN_READY, &hs, err, sizeof(err));
		uint64_t now = now_us();

		if (r < 0)
			return fail(h, r, "holders: the scan failed: %s", err);
		if ((int)hs.backend != shown) {
			say(h, HANDOFF_DEBUG, "holders: %zu process%s, seen by %s", hs.n_holders,
			    hs.n_holders == 1 ? "" : "es",
			    hs.backend == SCAN_BPF ? "BPF iterators" : "a walk of /proc");
			shown = (int)hs.backend;
		}
		if (stopped(h)) {
			holder_scan_free(&hs);
			say(h, HANDOFF_PROGRESS_END, "%s", "");
			return fail(h, -EINTR, "holders: interrupted by %s while waiting",
				    strsignal(stopped(h)));
		}
		if (!hs.n_holders && !h->dry) {
			holder_scan_free(&hs);
			say(h, HANDOFF_PROGRESS_END, "%s", "");
			return 0;
		}
		describe_holders(&hs, who, sizeof(who));
		if (h->dry) {
			if (hs.n_holders)
				snprintf(
					note, sizeof(note),
					"holders: %zu process%s now: %s (on-holders = %s, up to %u s)",
					hs.n_holders, hs.n_holders == 1 ? "" : "es", who, mode,
					h->c->holder_timeout);
			else
				snprintf(note, sizeof(note), "holders: none now (on-holders = %s)",
					 mode);
			plan_item(h, &(struct plan_item){ .kind = PLAN_HOLDERS,
							  .hs = &hs,
							  .text = note,
							  .on_holders = mode,
							  .timeout_s = h->c->holder_timeout });
			holder_scan_free(&hs);
			return 0;
		}
		/* units that took the GPU after the first look (a session's, once its DM stopped) */
		if (!h->dry && h->c->holders_stop && (r = stop_holder_units(h, &hs)) < 0) {
			holder_scan_free(&hs);
			return r;
		}
		if (h->c->on_holders == HOLDERS_FAIL) {
			session_hint(h, &hs, hint, sizeof(hint));
			holder_scan_free(&hs);
			return fail(h, -EBUSY,
				    "holders: %sthe GPU is held by %s; on-holders = fail", hint,
				    who);
		}
		if (h->c->on_holders == HOLDERS_KILL && !termed) {
			signal_holders(h, &hs, SIGTERM);
			termed = true;
		} else if (h->c->on_holders == HOLDERS_KILL && !killed && now >= deadline) {
			signal_holders(h, &hs, SIGKILL);
			killed = true;
			kill_deadline = now + BIND_TIMEOUT_US;
		} else if ((killed && now >= kill_deadline) ||
			   (h->c->on_holders == HOLDERS_WAIT && now >= deadline)) {
			session_hint(h, &hs, hint, sizeof(hint));
			holder_scan_free(&hs);
			return fail(h, -EBUSY, "holders: %sstill held after %llu s by %s", hint,
				    (unsigned long long)((now - start) / 1000000), who);
		}
		if (!told || now >= next_tell) {
			if (!told)
				holders_preload(h->root);
			progress_line(h, &hs, now - start);
			/* a terminal's line is rewritten each second; a log gets one every 5 s */
			next_tell = now + (isatty(STDERR_FILENO) ? 1000000ull : 5000000ull);
			told = true;
		}
		holder_scan_free(&hs);
		usleep(POLL_US);
	}
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
		if (strchr(list[i]->d_name, ':') && !target_set_has_pci(&h->ts, list[i]->d_name))
			shared = true;
	free_list(list, n);
	return shared;
}

/*
 * 5. the drivers: a module that drives only the handed-over devices is
 * unloaded with everything that depends on it; a built-in driver, or one
 * that other devices still use (the GPU's HDMI audio on snd_hda_intel),
 * only lets go of the device.
 */
static int phase_modules(struct handoff *h)
{
	modname_t *roots = calloc(h->ts.n_pcis + 1, sizeof(*roots)), *order = NULL;
	size_t n_roots = 0, n_order = 0;
	int r = 0;

	if (!roots)
		return fail(h, -ENOMEM, "modules: out of memory");
	for (size_t i = 0; i < h->ts.n_pcis && !r; i++) {
		const struct target_pci *p = &h->ts.pcis[i];
		bool builtin, dup = false;

		if (!p->driver[0] || !strcmp(p->driver, "vfio-pci"))
			continue;
		builtin = !p->module[0] ||
			  module_initstate(h->kmod, p->module) == KMOD_MODULE_BUILTIN;
		if (builtin || driver_shared(h, p->driver)) {
			r = step(h, J_UNBIND, p->bdf, p->driver);
			continue;
		}
		for (size_t j = 0; j < n_roots; j++)
			dup |= !strcmp(roots[j], p->module);
		if (!dup)
			snprintf(roots[n_roots++], HOLD_MOD_LEN, "%s", p->module);
	}
	if (!r && n_roots &&
	    (r = module_unload_order(h->kmod, roots, n_roots, &order, &n_order)) < 0)
		r = fail(h, r, "modules: the unload order of %s: %s", roots[0], strerror(-r));
	for (size_t i = 0; i < n_order && !r; i++)
		if (module_initstate(h->kmod, order[i]) >= 0) /* else not loaded */
			r = step(h, J_MODULE, order[i], NULL);
	free(order);
	free(roots);
	return r;
}

/* 6. vfio-pci loaded, and each device bound to it */
static int phase_vfio(struct handoff *h)
{
	char drv[64];
	int r;

	if (module_initstate(h->kmod, "vfio_pci") < 0 && (r = step(h, J_LOADED, "vfio_pci", NULL)))
		return r;
	for (size_t i = 0; i < h->ts.n_pcis; i++) {
		char path[512], old[64] = "";

		pci_driver(h, h->ts.pcis[i].bdf, drv, sizeof(drv));
		if (!strcmp(drv, "vfio-pci"))
			continue;
		/* the kernel shows an unset override as "(null)" */
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override",
			 h->ts.pcis[i].bdf);
		if (read_line_at(h->root, path, old, sizeof(old)) < 0 || !strcmp(old, "(null)") ||
		    !strcmp(old, "vfio-pci"))
			old[0] = '\0';
		if ((r = step(h, J_VFIO, h->ts.pcis[i].bdf, old)))
			return r;
	}
	return 0;
}

/*
 * The display server among the journal's system units: the
 * display-manager.service alias (or the unit behind it), a stop-units line
 * or a holder's (stop-units = lactd.service leaves an Xorg-in-its-unit
 * display manager such as sddm to on-holders = stop), else the first
 * stop-units line. It is started before the other units, which may open its
 * card too: in journal order a unit listed after it (stop-units =
 * display-manager.service lactd.service) would open the card first and take
 * DRM master from it.
 */
static ssize_t display_unit(struct handoff *h, const struct jrec *recs, size_t n)
{
	ssize_t first = -1;

	/* without a bus, by name only */
	for (size_t i = 0; i < n && !h->dry && !h->bus; i++)
		if ((recs[i].step == J_UNIT || recs[i].step == J_HOLDER) && !recs[i].b[0])
			bus_try(h);
	/* the stop-units lines first: the display manager is one of them unless it was a holder */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < n; i++) {
			if (recs[i].step != (pass ? J_HOLDER : J_UNIT))
				continue;
			if (first < 0 && !pass)
				first = (ssize_t)i;
			if (!recs[i].b[0] && same_unit(h, recs[i].a, "display-manager.service"))
				return (ssize_t)i;
		}
	return first;
}

/*
 * Until a card's node is opened (inotify's IN_OPEN on its /dev node, so the
 * compositor's own open wakes the wait at once), POLL_US at most, deadline
 * at the latest: logind's TakeDevice opens the node before the compositor
 * has the fd, and a node under another path is not watched, so the scans
 * go on between the events too. Without a watch (--root, no inotify) only
 * the periodic scan is left.
 */
static void wait_card_open(int ifd, uint64_t deadline)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct pollfd p = { .fd = ifd, .events = POLLIN };
	uint64_t now = now_us(), until = now + POLL_US < deadline ? now + POLL_US : deadline;

	if (until <= now)
		return;
	if (poll(&p, ifd >= 0, (int)((until - now + 999) / 1000)) > 0)
		while (read(ifd, buf, sizeof(buf)) > 0)
			; /* the events themselves say nothing more: the scan decides */
}

/*
 * The processes the display wait reads: those of the display server's
 * unit and of logind, from their control groups (dirs; "" for a logind
 * that does not run), put in t; a few processes, where a walk of /proc
 * reads each one's open files while the compositor starts beside it.
 * false (every process read) when a group cannot be read.
 */
static bool display_pids(char dirs[2][4096], struct scan_targets *t)
{
	t->n_pids = 0; /* the list of the look before is listed over */
	for (int i = 0; i < 2; i++)
		if (dirs[i][0] && cgroup_pids(dirs[i], &t->pids, &t->n_pids) < 0) {
			t->n_pids = 0;
			return false;
		}
	return true;
}

/*
 * After the display server's unit started again: wait (a bounded time)
 * until a process of it, or logind for its session, holds a DRM primary
 * node of the journal's devices, so that it, not a unit started after it,
 * becomes DRM master: the first opener of a primary node with no master
 * gets it. Release loads no BPF
 * for these scans: /proc answers them while the CPU is the compositor's
 * (a rollback's, after prepare's scans, take BPF's loaded programs), and
 * for a system unit they read only its processes and logind's, listed
 * afresh from their control groups each time (display_pids()).
 */
static void wait_display_server(struct handoff *h, const struct jrec *recs, size_t n,
				const struct jrec *display)
{
	uint64_t deadline = now_us() + DISPLAY_WAIT_US;
	struct scan_targets t = { 0 };
	char err[320], path[256], dev[32], dirs[2][4096] = { "", "" };
	bool found = false, few;
	uint32_t kdev;
	int r;
	int ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

	/* a display server (or logind for it) holds the card by an open file: no mappings to read */
	t.files_only = true;
	/* the journal's devices (release), or the plan's (a rollback before vfio-pci) */
	for (size_t i = 0; i < n + h->ts.n_pcis; i++) {
		const char *bdf = i < n ? recs[i].a : h->ts.pcis[i - n].bdf;
		struct dirent **list;
		int m;

		if (i < n && recs[i].step != J_VFIO)
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/drm", bdf);
		if ((m = scan_sorted(h->root, path, &list)) < 0)
			continue;
		for (int j = 0; j < m; j++) {
			char attr[600];

			if (strncmp(list[j]->d_name, "card", 4))
				continue;
			snprintf(attr, sizeof(attr), "%s/%s/dev", path, list[j]->d_name);
			if (read_line_at(h->root, attr, dev, sizeof(dev)) ||
			    parse_majmin(dev, &kdev))
				continue;
			scan_targets_add_dev(&t, kdev);
			/* before the first scan: no open falls between the two */
			snprintf(attr, sizeof(attr), "%s/dev/dri/%s", h->root, list[j]->d_name);
			if (ifd >= 0)
				inotify_add_watch(ifd, attr, IN_OPEN);
		}
		free_list(list, m);
	}
	/* a system unit: its processes and logind's are known by their groups */
	few = !display->b[0] && h->bus &&
	      !unit_cgroup_dir(h->bus, h->root, display->a, dirs[0], sizeof(dirs[0]));
	if (few && (r = unit_cgroup_dir(h->bus, h->root, "systemd-logind.service", dirs[1],
					sizeof(dirs[1]))) < 0) {
		few = r == -ENOENT; /* a logind that does not run holds nothing */
		dirs[1][0] = '\0';
	}
	if (few)
		say(h, HANDOFF_DEBUG,
		    "display wait: the processes of %s and of systemd-logind.service", display->a);
	else
		say(h, HANDOFF_DEBUG, "display wait: every process (%s%s)", display->a,
		    display->b[0] ? " is a user's unit" : "'s control group could not be read");
	while (!found && t.n_devs && now_us() < deadline && !stopped(h)) {
		struct holder_scan hs;

		/* listed again at each look: a process of the unit may have started since */
		if (few && !display_pids(dirs, &t))
			few = false;
		/* no process in either group yet, so none holds the card (no list is all of /proc) */
		if (few && !t.n_pids) {
			wait_card_open(ifd, deadline);
			continue;
		}
		if (holders_scan(h->root, &t, SCAN_READY, &hs, err, sizeof(err)) < 0)
			break;
		for (size_t i = 0; i < hs.n_holders && !found; i++) {
			const struct proc_info *pi = &hs.holders[i].pi;

			/*
			 * or logind, which opens the card for a session's compositor
			 * (TakeDevice), its fd the compositor's: a greeter drawing from
			 * a login session of its own (gdm's gnome-shell) holds it so
			 */
			found = holder_is_logind(pi) ||
				(pi->unit[0] &&
				 (display->b[0] ? pi->unit_kind == UNIT_USER &&
							  !strcmp(pi->unit, display->a)
						: pi->unit_kind == UNIT_SYSTEM &&
							  same_unit(h, pi->unit, display->a)));
		}
		holder_scan_free(&hs);
		if (!found)
			wait_card_open(ifd, deadline);
	}
	if (ifd >= 0)
		close(ifd);
	if (t.n_devs && !found)
		say(h, HANDOFF_WARN,
		    "%s holds no DRM card after %llu s; starting "
		    "the other units anyway",
		    display->a, (unsigned long long)(DISPLAY_WAIT_US / 1000000));
	scan_targets_free(&t);
}

/*
 * Did bdf have a driver before prepare? The journal unbound it from one
 * that stayed, or unloaded one that its modalias resolves to.
 */
static bool had_driver(struct handoff *h, const struct jrec *recs, size_t n, const char *bdf)
{
	char path[512], alias[256];

	for (size_t i = 0; i < n; i++)
		if (recs[i].step == J_UNBIND && !strcmp(recs[i].a, bdf))
			return true;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/modalias", bdf);
	if (!h->kmod || read_line_at(h->root, path, alias, sizeof(alias)) < 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (recs[i].step == J_MODULE && module_resolves_to(h->kmod, alias, recs[i].a))
			return true;
	return false;
}

/*
 * Undo recs from the last to the first, the display server's unit with the
 * steps that are not units, the other units after it (those of stop-units,
 * then the holders'). What could not be undone stays in the journal, in its
 * order, for the next release; err names the first such step. Two kinds of
 * user's unit that no release could start are warned about and not kept:
 * one whose manager is gone (user_manager_gone), and a graphical
 * session's whose user has no such session now (session_gone).
 */
static int undo_all(struct handoff *h, const struct jrec *recs, size_t n, char *err, size_t errlen)
{
	bool *keep = calloc(n + 1, sizeof(*keep)), display_back = false, interrupted = false;
	struct jrec *left = calloc(n + 1, sizeof(*left));
	struct unit_job *jobs = calloc(n + 1, sizeof(*jobs));
	size_t n_left = 0, n_kept = 0, *at = calloc(n + 1, sizeof(*at));
	char why[320], text[640];
	ssize_t display;
	int r;

	if (!left || !keep || !jobs || !at) {
		free(left);
		free(keep);
		free(jobs);
		free(at);
		return -ENOMEM;
	}
	err[0] = '\0';
	display = display_unit(h, recs, n);
	for (int pass = 0; pass < 2; pass++) {
		bool others = false, held;

		/* pass 1: the units that could take the display server's card */
		for (size_t i = n; i-- > 0;)
			others |= (recs[i].step == J_HOLDER || recs[i].step == J_UNIT) &&
				  (ssize_t)i != display;
		size_t n_later = 0;

		if (pass == 1 && others && display_back && !h->dry && !interrupted)
			wait_display_server(h, recs, n, &recs[display]);
		/*
		 * the display server's unit did not start: the others stay in the
		 * journal with it, not started before it, where they could open its
		 * card first and take DRM master from it at the next release's start
		 */
		held = pass == 1 && display >= 0 && !display_back && !h->dry && !interrupted &&
		       !stopped(h);
		/* pass 1's units started side by side, from the last line: left[] lends its room */
		if (pass == 1 && others && !held && !h->dry && !interrupted && !stopped(h)) {
			for (size_t i = n; i-- > 0;) {
				if ((recs[i].step != J_HOLDER && recs[i].step != J_UNIT) ||
				    (ssize_t)i == display)
					continue;
				if (user_manager_gone(h, &recs[i])) {
					at[i] = SIZE_MAX; /* undone: there is nothing to start it */
					say(h, HANDOFF_WARN,
					    "not starting %s: the user's manager does not run (their "
					    "session ended); their next login starts their units",
					    unit_label(&recs[i], text, sizeof(text)));
					continue;
				}
				at[i] = n_later;
				left[n_later++] = recs[i];
				say(h, HANDOFF_INFO, "starting %s",
				    unit_label(&recs[i], text, sizeof(text)));
			}
			if (n_later)
				units_batch(h, UNIT_OP_START, left, n_later, jobs);
		}
		for (size_t i = n; i-- > 0;) {
			const struct jrec *rec = &recs[i];
			const struct unit_job *job;
			bool later = (rec->step == J_HOLDER || rec->step == J_UNIT) &&
				     (ssize_t)i != display;

			if (later != (pass == 1))
				continue;
			if (h->dry) {
				jrec_describe(rec, text, sizeof(text));
				plan_item(h, &(struct plan_item){
						     .kind = PLAN_UNDO, .rec = rec, .text = text });
				continue;
			}
			if (held) {
				say(h, HANDOFF_WARN,
				    "not starting %s: %s did not start, and it must hold its card "
				    "first",
				    unit_label(rec, text, sizeof(text)), recs[display].a);
				keep[i] = true;
				continue;
			}
			if (!n_later && (interrupted || stopped(h))) {
				/* the undo that ran finished; what is left stays for the next release */
				interrupted = true;
				keep[i] = true;
				n_kept++;
				continue;
			}
			why[0] = '\0';
			job = NULL;
			if (later && at[i] == SIZE_MAX) {
				r = 0;
			} else if (n_later) {
				job = &jobs[at[i]];
				r = job->r;
				snprintf(why, sizeof(why), "%s", job->err);
			} else {
				r = rec->step < J__N
					    ? step_types[rec->step].undo(h, rec, why, sizeof(why))
					    : -EINVAL;
			}
			if (r < 0 && !why[0])
				snprintf(why, sizeof(why), "%s", strerror(-r));
			if (r < 0 && job && session_gone(h, rec, job)) {
				say(h, HANDOFF_WARN,
				    "not keeping %s: it did not start (%s), it is a graphical "
				    "session's, and the user has none now; their next login starts it",
				    unit_label(rec, text, sizeof(text)), why);
				r = 0;
			}
			if (r < 0) {
				say(h, HANDOFF_WARN, "cannot undo '%s %s%s%s': %s",
				    jstep_name(rec->step), rec->a, rec->b[0] ? " " : "", rec->b,
				    why);
				if (!err[0])
					snprintf(err, errlen, "undo %s %s: %s",
						 jstep_name(rec->step), rec->a, why);
				keep[i] = true;
			} else if ((ssize_t)i == display) {
				display_back = true;
			}
		}
	}
	if (interrupted && !err[0])
		snprintf(err, errlen, "interrupted by %s with %zu step%s left",
			 strsignal(stopped(h)), n_kept, n_kept == 1 ? "" : "s");
	/* kept in journal order: the next release undoes them from the end */
	for (size_t i = 0; i < n; i++)
		if (keep[i])
			left[n_left++] = recs[i];
	/* a device we moved must be back on a driver: a reloaded module probes it */
	if (!h->dry)
		for (size_t i = 0; i < n; i++) {
			char drv[64];

			if (recs[i].step != J_VFIO || keep[i])
				continue;
			pci_driver(h, recs[i].a, drv, sizeof(drv));
			if (!strcmp(drv, "vfio-pci")) {
				if (!err[0])
					snprintf(err, errlen, "%s is still on vfio-pci", recs[i].a);
			} else if (!drv[0] && had_driver(h, recs, n, recs[i].a)) {
				say(h, HANDOFF_WARN,
				    "%s is on no driver: its driver's probe did not bind it (the "
				    "kernel's log says why)",
				    recs[i].a);
				if (!err[0])
					snprintf(err, errlen, "%s did not come back on its driver",
						 recs[i].a);
			} else {
				say(h, HANDOFF_INFO, "%s is back on %s", recs[i].a,
				    drv[0] ? drv : "no driver, as before");
			}
		}
	if (!h->dry && (r = journal_store(h->root, h->vm, left, n_left)) < 0 && !err[0])
		snprintf(err, errlen, "cannot rewrite the journal: %s", strerror(-r));
	free(left);
	free(keep);
	free(jobs);
	free(at);
	return err[0] ? -EIO : 0;
}

/* the helpers of the users whose units recs[0..n) starts, begun before their turn */
static void users_warm(struct handoff *h, const struct jrec *recs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((recs[i].step == J_UNIT || recs[i].step == J_HOLDER) && recs[i].b[0] &&
		    !user_manager_gone(h, &recs[i]))
			unit_users_warm(&h->users, h->root, mgr_uid(recs[i].b));
}

/* ---- a journal vfio-agent could have written, and no other ---- */

static bool bdf_in(char (*v)[16], size_t n, const char *bdf)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], bdf))
			return true;
	return false;
}

static uint32_t pci_class(const char *root, const char *bdf)
{
	char path[512], buf[32];

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/class", bdf);
	return read_line_at(root, path, buf, sizeof(buf)) ? 0 : (uint32_t)strtoul(buf, NULL, 16);
}

/* a device the handoff could have moved: the config's or the domain's, else the GPU's own */
static bool device_plausible(const char *root, const struct config *c, const struct domain *dom,
			     const struct jrec *recs, size_t n, const char *bdf)
{
	if (c && bdf_in(c->allow_non_gpu, c->n_allow_non_gpu, bdf))
		return true;
	if ((c && c->n_pcis) || (dom && dom->n_pcis))
		return (c && bdf_in(c->pcis, c->n_pcis, bdf)) ||
		       (dom && bdf_in(dom->pcis, dom->n_pcis, bdf));
	/* neither is known (release --vm without a config): the preflight's class rule */
	if ((pci_class(root, bdf) >> 16) == 0x03)
		return true;
	for (size_t i = 0; i < n; i++)
		if ((recs[i].step == J_VFIO || recs[i].step == J_UNBIND) &&
		    !strncmp(recs[i].a, bdf, 10) && (pci_class(root, recs[i].a) >> 16) == 0x03)
			return true;
	return false;
}

/* a module unloaded for the journal's own devices: their modalias's, or one needing it */
static bool module_plausible(struct handoff *h, const struct jrec *recs, size_t n, const char *mod)
{
	char path[512], alias[256];

	for (size_t i = 0; i < n; i++) {
		if (recs[i].step != J_VFIO && recs[i].step != J_UNBIND)
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/modalias", recs[i].a);
		if (read_line_at(h->root, path, alias, sizeof(alias)) < 0)
			continue;
		if (module_resolves_to(h->kmod, alias, mod))
			return true;
		/* what depends on the device's driver was unloaded before it */
		for (size_t j = 0; j < n; j++)
			if (recs[j].step == J_MODULE &&
			    module_resolves_to(h->kmod, alias, recs[j].a) &&
			    module_depends_on(h->kmod, mod, recs[j].a))
				return true;
	}
	return false;
}

static int journal_check(struct handoff *h, const struct config *c, const struct domain *dom,
			 const struct jrec *recs, size_t n, const char *jpath, char *err,
			 size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		const struct jrec *r = &recs[i];
		const char *why = NULL;

		switch (r->step) {
		case J_UNBIND:
		case J_VFIO:
			if (!device_plausible(h->root, c, dom, recs, n, r->a))
				why = c && c->n_pcis ? "not one of pcis in the config"
						     : "not a device the handoff would move";
			break;
		case J_LOADED:
			if (!module_depends_on(h->kmod, "vfio_pci", r->a))
				why = "the handoff loads only vfio-pci and what it needs";
			break;
		case J_MODULE:
			if (!module_plausible(h, recs, n, r->a))
				why = "no device of this journal is driven by it";
			break;
		default:
			break; /* units, consoles, framebuffers: their shape is the whole rule */
		}
		if (why) {
			snprintf(
				err, errlen,
				"%s: '%s %s%s%s' is not a step vfio-agent could have written (%s); "
				"nothing was undone",
				jpath, jstep_name(r->step), r->a, r->b[0] ? " " : "", r->b, why);
			return -EPERM;
		}
	}
	return 0;
}

static void handoff_done(struct handoff *h)
{
	char err[320];

	/* the target set's libkmod context, when it has one, is this one */
	if (h->kmod && h->kmod != h->ts.kmod)
		modules_close(h->kmod);
	if (h->jfd >= 0)
		close(h->jfd);
	bus_connect_join(h, err, sizeof(err));
	units_disconnect(h->bus);
	if (h->look.running)
		pthread_join(h->look.thread, NULL);
	holder_scan_free(&h->look.hs);
	holder_scan_free(&h->first);
	known_forget(h);
	unit_users_close(&h->users);
	free(h->batch);
	free(h->planned);
	free(h->sessions);
	free(h->done);
	target_set_free(&h->ts);
}

/* prepare's refusal when vm's journal exists; -EEXIST */
static int in_place(char *err, size_t errlen, const char *jpath, const char *vm)
{
	snprintf(err, errlen,
		 "%s exists: a handoff of %s is in place; release it first "
		 "(vfio-agent handoff release --vm %s)",
		 jpath, vm, vm);
	return -EEXIST;
}

int handoff_prepare(const char *root, const struct config *c, const struct domain *dom,
		    struct kmod_ctx *k, const struct handoff_io *io, char *err, size_t errlen)
{
	static int (*const phases[])(struct handoff *) = {
		phase_holder_units, phase_units,   phase_consoles, phase_framebuffers,
		phase_holders,	    phase_modules, phase_vfio,
	};
	struct handoff h = {
		.root = root, .c = c, .vm = c->vm, .io = io, .dry = io && io->plan, .jfd = -1
	};
	struct target_req req = { 0 };
	char jpath[4096];
	int r;

	if (c->holders_stop || !c->stop_units_set || c->n_stop_units)
		bus_connect_early(&h);
	/* the config's devices, else the guest's own PCI hostdevs */
	if (c->n_pcis) {
		req.pcis = c->pcis;
		req.n_pcis = c->n_pcis;
	} else if (dom && dom->n_pcis) {
		req.pcis = dom->pcis;
		req.n_pcis = dom->n_pcis;
	} else {
		if (k)
			modules_close(k);
		snprintf(err, errlen, "no devices to hand over: set pcis in %s%s", c->path,
			 dom ? " or give the domain a PCI <hostdev>" : "");
		r = -EINVAL;
		goto out;
	}
	/* on failure it has closed k and left h.ts empty */
	if ((r = targets_resolve(root, c, &req, k, &h.ts, err, errlen)) < 0)
		goto out;
	/* the first look begins while libkmod loads: what depends on the drivers comes after it */
	if (c->holders_stop)
		look_early(&h);
	h.kmod = h.ts.kmod;
	if (!h.kmod && (r = modules_open(root, &h.kmod, kmod_say, &h, err, errlen)) < 0)
		goto out;
	if (!h.ts.kmod) {
		h.ts.kmod = h.kmod;
		h.dependents = true;
		if (!h.look.running && (r = add_dependents(&h)) < 0) {
			snprintf(err, errlen, "%s", h.err);
			goto out;
		}
	}
	/* every refusal before the first change: no unit stopped, no journal */
	if ((r = handoff_preflight(root, c, &h.ts, err, errlen)) < 0)
		goto out;
	journal_path(root, h.vm, jpath, sizeof(jpath));
	/* a handoff in place says so before any look at its stopped units */
	if (!h.dry && !access(jpath, F_OK)) {
		r = in_place(err, errlen, jpath, c->vm);
		goto out;
	}
	if ((r = units_check(&h)) < 0) {
		snprintf(err, errlen, "%s", h.err);
		goto out;
	}
	if (h.dry) {
		plan_item(&h, &(struct plan_item){ .kind = PLAN_BEGIN,
						   .verb = "prepare",
						   .vm = h.vm,
						   .path = jpath });
		plan_note(&h,
			  "preflight: ok (%zu device%s: the GPU and its functions, none in the "
			  "host's use; IOMMU groups whole; vfio-pci available)",
			  h.ts.n_pcis, h.ts.n_pcis == 1 ? "" : "s");
		for (size_t i = 0; i < h.ts.n_pcis; i++)
			plan_item(&h,
				  &(struct plan_item){ .kind = PLAN_DEVICE, .pci = &h.ts.pcis[i] });
		if (!access(jpath, F_OK))
			plan_note(&h, "note: %s exists; prepare would refuse until it is released",
				  jpath);
	} else if ((r = journal_create(root, h.vm, &h.jfd)) < 0) {
		if (r == -EEXIST)
			r = in_place(err, errlen, jpath, c->vm);
		else
			snprintf(err, errlen, "cannot create %s: %s", jpath, strerror(-r));
		r = r == -EINVAL ? -EIO : r;
		goto out;
	}
	for (size_t i = 0; i <= ARRAY_SIZE(phases); i++) {
		/* past the last phase: a signal during it still undoes the whole */
		if (i == ARRAY_SIZE(phases))
			r = stopped(&h)
				    ? fail(&h, -EINTR, "interrupted by %s", strsignal(stopped(&h)))
				    : 0;
		else
			r = phases[i](&h);
		if (r < 0) {
			char uerr[320];

			say(&h, HANDOFF_INFO, "prepare %s: rolling back %zu step%s", c->vm,
			    h.n_done, h.n_done == 1 ? "" : "s");
			h.undoing = true;
			if (undo_all(&h, h.done, h.n_done, uerr, sizeof(uerr)) < 0 &&
			    !access(jpath, F_OK))
				snprintf(err, errlen,
					 "%s; the rollback did not finish: %s (%s keeps "
					 "what is left)",
					 h.err, uerr, jpath);
			else if (uerr[0])
				snprintf(err, errlen, "%s; rolled back, but %s", h.err, uerr);
			else
				snprintf(err, errlen, "%s; rolled back, the host is as it was",
					 h.err);
			goto out;
		}
	}
	if (!h.dry)
		say(&h, HANDOFF_INFO, "prepare %s: the GPU is on vfio-pci (%zu steps in %s)", c->vm,
		    h.n_done, jpath);
	r = 0;
out:
	handoff_done(&h);
	return r;
}

int handoff_release(const char *root, const char *vm, const struct config *c,
		    const struct domain *dom, struct kmod_ctx *k, const struct handoff_io *io,
		    char *err, size_t errlen)
{
	struct handoff h = {
		.root = root, .vm = vm, .c = c, .io = io, .dry = io && io->plan, .jfd = -1, .kmod = k
	};
	struct jrec *recs = NULL;
	char jpath[4096], uerr[320];
	size_t n = 0, bad = 0;
	bool cut;
	int r;

	if (journal_path(root, vm, jpath, sizeof(jpath)) < 0) {
		snprintf(err, errlen, "'%s' cannot name a journal", vm);
		r = -EINVAL;
		goto out;
	}
	r = journal_load(root, vm, &recs, &n, &cut, &bad);
	if (r == -ENOENT) {
		say(&h, HANDOFF_INFO, "release %s: no journal, nothing to undo", vm);
		if (h.dry)
			plan_item(&h, &(struct plan_item){ .kind = PLAN_NO_JOURNAL,
							   .verb = "release",
							   .vm = vm,
							   .path = jpath });
		r = 0;
		goto out;
	}
	if (r < 0) {
		if (bad)
			snprintf(err, errlen,
				 "%s line %zu is not a journal step; nothing was undone", jpath,
				 bad);
		else if (r == -ELOOP || r == -EPERM || r == -EACCES)
			snprintf(err, errlen, "%s is refused: %s; nothing was undone", jpath,
				 state_strerror(r));
		else
			snprintf(err, errlen, "cannot read %s: %s", jpath, strerror(-r));
		r = r == -EINVAL ? -EIO : r;
		goto out;
	}
	if (cut)
		say(&h, HANDOFF_WARN,
		    "%s: the last line was cut off while being written; its step never ran", jpath);
	/* a system unit to start: the bus connects while the kernel's steps are undone */
	for (size_t i = 0; i < n; i++)
		if ((recs[i].step == J_UNIT || recs[i].step == J_HOLDER) && !recs[i].b[0]) {
			bus_connect_early(&h);
			break;
		}
	if (!h.kmod && (r = modules_open(root, &h.kmod, kmod_say, &h, err, errlen)) < 0)
		goto out;
	/* a line this handoff could not have written refuses the whole journal */
	if ((r = journal_check(&h, c, dom, recs, n, jpath, err, errlen)) < 0)
		goto out;
	/* a user's units to start: its helper forks and connects while the kernel's steps are undone */
	if (!h.dry)
		users_warm(&h, recs, n);
	if (h.dry)
		plan_item(&h,
			  &(struct plan_item){
				  .kind = PLAN_BEGIN, .verb = "release", .vm = vm, .path = jpath });
	r = undo_all(&h, recs, n, uerr, sizeof(uerr));
	if (r < 0 && access(jpath, F_OK))
		snprintf(err, errlen, "%s; every other step was undone", uerr);
	else if (r < 0)
		snprintf(err, errlen, "%s; %s keeps what is left: run release again", uerr, jpath);
	else if (!h.dry)
		say(&h, HANDOFF_INFO, "release %s: %zu steps undone", vm, n);
out:
	free(recs);
	handoff_done(&h);
	return r;
}
