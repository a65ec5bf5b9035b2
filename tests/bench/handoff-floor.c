// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * handoff-floor prepare|release: the floor of tests/bench/handoff.sh, the
 * operations of a handoff alone, from one process, as fast as systemd and
 * the kernel let them go: no config, no preflight, no holder scan, no
 * journal. Prepare: the units' stop jobs (system and user, all queued, then
 * waited for), the framebuffer consoles unbound, the GPU's module unloaded
 * (retried every millisecond while busy), vfio-pci loaded, each device
 * unbound and bound to it. Release: each device back (override cleared,
 * probed), vfio-pci unloaded, the module loaded, the consoles bound, the
 * display manager started, the display server DRM master (woken by the
 * open of its card, then /sys/kernel/debug/dri/N/clients read), the other
 * units started. The same calls as vfio-agent's (core/units.c's jobs and
 * user helper, libkmod for the loads, sysfs writes), so that vfio-agent's
 * time above it is its own. Takes seed-hook.sh's environment: SEED_UNITS
 * (the display manager first), SEED_UID, SEED_USER_UNITS, SEED_PCIS,
 * SEED_MODULE, SEED_CLIENTS, SEED_DS. Prints "ops T" once its libraries,
 * its bus and the user's helper are ready, and "done T" when the last
 * operation has ended (T the wall clock, as EPOCHREALTIME): the operations
 * alone, without the process's start, its connections and its exit. Not a
 * tool: a benchmark's yardstick.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/modules.h"
#include "core/sysfs.h"
#include "core/units.h"
#include "shared/macro.h"

#define TIMEOUT_US (90 * 1000000ull)

static void die(const char *what, const char *why)
{
	fprintf(stderr, "handoff-floor: %s: %s\n", what, why);
	exit(1);
}

static size_t split(char *s, char **v, size_t max)
{
	size_t n = 0;

	for (char *t = strtok(s, " "); t && n < max; t = strtok(NULL, " "))
		v[n++] = t;
	return n;
}

static const char *env(const char *name)
{
	const char *v = getenv(name);

	if (!v || !v[0])
		die(name, "not set");
	return v;
}

static struct {
	char *units[UNIT_BATCH_MAX], *user_units[UNIT_BATCH_MAX], *pcis[8];
	size_t n_units, n_user_units, n_pcis;
	uid_t uid;
	sd_bus *bus;
	struct unit_users users;
	struct kmod_ctx *kmod;
} f;

/* units[0..n) and the user's units, stopped or started side by side */
static void jobs(enum unit_op op, char **units, size_t n, bool user)
{
	struct unit_job sys[UNIT_BATCH_MAX] = { 0 }, usr[UNIT_BATCH_MAX] = { 0 };
	size_t nu = user ? f.n_user_units : 0;
	char err[256];

	for (size_t i = 0; i < n; i++)
		snprintf(sys[i].unit, sizeof(sys[i].unit), "%s", units[i]);
	for (size_t i = 0; i < nu; i++)
		snprintf(usr[i].unit, sizeof(usr[i].unit), "%s", f.user_units[i]);
	if (nu && unit_user_jobs_begin(&f.users, "", f.uid, op, usr, nu, TIMEOUT_US, err,
				       sizeof(err)) < 0)
		die("user units", err);
	if (n && unit_jobs(f.bus, op, sys, n, TIMEOUT_US) < 0)
		die(sys[0].unit, sys[0].err);
	if (nu && unit_user_jobs_end(&f.users, f.uid, usr, nu) < 0)
		die(usr[0].unit, usr[0].err);
}

static void vtcons(const char *val)
{
	glob_t g;
	char name[128];

	if (glob("/sys/class/vtconsole/vtcon*", 0, NULL, &g))
		return;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		char path[256];

		snprintf(path, sizeof(path), "%s/name", g.gl_pathv[i]);
		if (read_line_at("", path, name, sizeof(name)) || !strstr(name, "frame buffer"))
			continue;
		snprintf(path, sizeof(path), "%s/bind", g.gl_pathv[i]);
		write_attr_at("", path, val);
	}
	globfree(&g);
}

static void attr(const char *path, const char *val)
{
	int r = write_attr_at("", path, val);

	if (r < 0)
		die(path, strerror(-r));
}

static void unbind(const char *bdf)
{
	char path[256];

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver/unbind", bdf);
	if (exists_at("", path))
		attr(path, bdf);
}

/* the display server holds the card as DRM master: its clients line says so */
static bool master(void)
{
	char line[256], comm[64], m;
	FILE *fp = fopen(env("SEED_CLIENTS"), "re");
	bool yes = false;

	while (fp && !yes && fgets(line, sizeof(line), fp))
		yes = sscanf(line, "%63s %*d %*d %c", comm, &m) == 2 &&
		      !strcmp(comm, env("SEED_DS")) && m == 'y';
	if (fp)
		fclose(fp);
	return yes;
}

static void wait_master(void)
{
	int ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	struct pollfd p = { .fd = ifd, .events = POLLIN };
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	uint64_t deadline = now_us() + 10000000ull;

	/* the watch first, then the look: no open falls between the two */
	inotify_add_watch(ifd, "/dev/dri/card0", IN_OPEN);
	while (!master()) {
		if (now_us() >= deadline)
			die(env("SEED_DS"), "not DRM master after 10 s");
		/* the open wakes us; the master bit may come a moment after it */
		if (poll(&p, 1, 5) > 0)
			while (read(ifd, buf, sizeof(buf)) > 0)
				;
	}
	close(ifd);
}

/* the wall clock, as bash's EPOCHREALTIME gives it */
static void stamp(const char *what)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	printf("%s %lld.%06ld\n", what, (long long)ts.tv_sec, ts.tv_nsec / 1000);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	char units[1024], user_units[1024], pcis[256], err[256], path[256];
	const char *mod;
	int r;

	if (argc != 2 || (strcmp(argv[1], "prepare") && strcmp(argv[1], "release")))
		die("usage", "handoff-floor prepare|release");
	snprintf(units, sizeof(units), "%s", env("SEED_UNITS"));
	snprintf(user_units, sizeof(user_units), "%s", env("SEED_USER_UNITS"));
	snprintf(pcis, sizeof(pcis), "%s", env("SEED_PCIS"));
	f.n_units = split(units, f.units, ARRAY_SIZE(f.units));
	f.n_user_units = split(user_units, f.user_units, ARRAY_SIZE(f.user_units));
	f.n_pcis = split(pcis, f.pcis, ARRAY_SIZE(f.pcis));
	f.uid = (uid_t)strtoul(env("SEED_UID"), NULL, 10);
	mod = env("SEED_MODULE");
	if (!f.n_units)
		die("SEED_UNITS", "no unit");
	if ((r = units_connect("", &f.bus, err, sizeof(err))) < 0)
		die("the system bus", err);
	if ((r = modules_open("", &f.kmod, NULL, NULL, err, sizeof(err))) < 0)
		die("libkmod", err);
	/* the user's helper started and on its bus: a lookup of its units */
	if (f.n_user_units) {
		struct unit_job q[UNIT_BATCH_MAX] = { 0 };

		for (size_t i = 0; i < f.n_user_units; i++)
			snprintf(q[i].unit, sizeof(q[i].unit), "%s", f.user_units[i]);
		if (unit_user_jobs_begin(&f.users, "", f.uid, UNIT_OP_LOOKUP, q, f.n_user_units,
					 TIMEOUT_US, err, sizeof(err)) < 0 ||
		    unit_user_jobs_end(&f.users, f.uid, q, f.n_user_units) < 0)
			die("user units", q[0].err[0] ? q[0].err : err);
	}
	/* the operations alone from here: the process, its libraries and connections are ready */
	stamp("ops");

	if (!strcmp(argv[1], "prepare")) {
		jobs(UNIT_OP_STOP, f.units, f.n_units, true);
		vtcons("0");
		while ((r = (int)syscall(SYS_delete_module, mod, O_NONBLOCK)) < 0 &&
		       (errno == EAGAIN || errno == EBUSY))
			usleep(1000);
		if (r < 0 && errno != ENOENT)
			die(mod, strerror(errno));
		if (module_initstate(f.kmod, "vfio_pci") < 0 &&
		    module_load(f.kmod, "vfio-pci", err, sizeof(err)) < 0)
			die("vfio-pci", err);
		for (size_t i = 0; i < f.n_pcis; i++) {
			unbind(f.pcis[i]);
			snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override",
				 f.pcis[i]);
			attr(path, "vfio-pci");
			attr("/sys/bus/pci/drivers_probe", f.pcis[i]);
		}
	} else {
		for (size_t i = f.n_pcis; i-- > 0;) {
			unbind(f.pcis[i]);
			snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override",
				 f.pcis[i]);
			attr(path, "\n");
			attr("/sys/bus/pci/drivers_probe", f.pcis[i]);
		}
		syscall(SYS_delete_module, "vfio_pci", O_NONBLOCK);
		if (module_load(f.kmod, mod, err, sizeof(err)) < 0)
			die(mod, err);
		vtcons("1");
		jobs(UNIT_OP_START, f.units, 1, false);
		wait_master();
		jobs(UNIT_OP_START, f.units + 1, f.n_units - 1, true);
	}
	stamp("done");
	unit_users_close(&f.users);
	units_disconnect(f.bus);
	modules_close(f.kmod);
	return 0;
}
