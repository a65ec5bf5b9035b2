// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The holder match on synthetic records: by device number, by whole major,
 * by f_op->owner module name, by DRM driver name (fdinfo), by dma-buf
 * exporter; module names with '-' and '_' alike. Also the cgroup -> unit
 * mapping, actions, device numbers, and record grouping.
 */
#include <stdlib.h>

#include "core/attrib.h"
#include "core/targets.h"
#include "bpf/scan.h"
#include "tap.h"

static struct hold_rec rec(uint32_t rdev, const char *owner, const char *exporter)
{
	struct hold_rec r = { .pid = 1, .fd = 3, .kind = HOLD_FD, .rdev = rdev };

	snprintf(r.module, sizeof(r.module), "%s", owner ? owner : "");
	snprintf(r.exporter, sizeof(r.exporter), "%s", exporter ? exporter : "");
	return r;
}

static void test_match(void)
{
	struct scan_targets t = { 0 };
	struct hold_rec r;

	scan_targets_add_dev(&t, KDEV(226, 0));
	scan_targets_add_dev(&t, KDEV(226, 128));
	scan_targets_add_major(&t, 195);
	scan_targets_add_mod(&t, "amdgpu");
	scan_targets_add_mod(&t, "nvidia-drm"); /* normalised to nvidia_drm */
	scan_targets_add_drm_driver(&t, "bochs-drm", "bochs");
	CHECK("a module is added once", scan_targets_add_mod(&t, "amdgpu") == 0 && t.n_mods == 2);

	r = rec(KDEV(226, 0), NULL, NULL);
	CHECK("card0 by number", hold_match(&t, &r, true, NULL, false) && r.why == WHY_DEV);
	r = rec(KDEV(226, 1), NULL, NULL);
	CHECK("another card is not ours", !hold_match(&t, &r, true, NULL, false));
	r = rec(KDEV(226, 0), NULL, NULL);
	CHECK("a number only counts for char devices", !hold_match(&t, &r, false, NULL, false));
	r = rec(KDEV(195, 255), NULL, NULL);
	CHECK("nvidiactl by major", hold_match(&t, &r, true, NULL, false) && r.why == WHY_DEV);
	r = rec(0, "amdgpu", NULL);
	CHECK("an anon file owned by amdgpu",
	      hold_match(&t, &r, false, NULL, false) && r.why == WHY_OWNER && r.kind == HOLD_FD);
	r = rec(0, "nvidia_drm", NULL);
	CHECK("owner nvidia_drm matches target nvidia-drm",
	      hold_match(&t, &r, false, NULL, false) && r.why == WHY_OWNER);
	r = rec(0, "snd", NULL);
	CHECK("a file owned by another module", !hold_match(&t, &r, false, NULL, false));
	r = rec(KDEV(226, 2), NULL, NULL);
	CHECK("drm-driver bochs-drm (fdinfo) is module bochs",
	      hold_match(&t, &r, true, "bochs-drm", false) && r.why == WHY_OWNER);
	CHECK_STR("drm-driver gives the module name", r.module, "bochs");
	r = rec(KDEV(226, 2), NULL, NULL);
	CHECK("drm-driver i915 is not ours", !hold_match(&t, &r, true, "i915", false));
	r = rec(0, NULL, "amdgpu");
	CHECK("a dma-buf exported by amdgpu", hold_match(&t, &r, false, NULL, true) &&
						      r.why == WHY_EXPORTER &&
						      r.kind == HOLD_DMABUF);
	CHECK_STR("its module is the exporter", r.module, "amdgpu");
	r = rec(0, "amdgpu", "drm_prime");
	CHECK("a dma-buf whose owner module is ours",
	      hold_match(&t, &r, false, NULL, true) && r.why == WHY_EXPORTER);
	r = rec(0, NULL, "i915");
	CHECK("a dma-buf of another exporter", !hold_match(&t, &r, false, NULL, true));
	r = rec(0, NULL, "amdgpu");
	CHECK("an exporter name on a non-dma-buf file means nothing",
	      !hold_match(&t, &r, false, NULL, false));
	r = rec(KDEV(226, 128), "amdgpu", NULL);
	CHECK("renderD128 of amdgpu: number and owner",
	      hold_match(&t, &r, true, NULL, false) && r.why == (WHY_DEV | WHY_OWNER));
	scan_targets_free(&t);
	CHECK("free leaves it empty", scan_targets_empty(&t));
}

static void test_vec(void)
{
	struct hold_vec v = { 0 };
	struct hold_rec a = { .pid = 20, .fd = 4, .kind = HOLD_FD },
			b = { .pid = 10, .fd = -1, .kind = HOLD_MMAP, .start = 0x1000 },
			c = { .pid = 10, .fd = 7, .kind = HOLD_FD };

	/* a thread with its own fd table reports its leader's fds again */
	hold_vec_push(&v, &a);
	hold_vec_push(&v, &b);
	hold_vec_push(&v, &c);
	hold_vec_push(&v, &a);
	hold_vec_normalize(&v);
	CHECK("repeats dropped", v.n == 3);
	CHECK("sorted by pid, then kind", v.v[0].pid == 10 && v.v[0].kind == HOLD_FD &&
						  v.v[1].kind == HOLD_MMAP && v.v[2].pid == 20);
	hold_vec_free(&v);
}

static void unit_case_in(const char *cg, const char *unit, enum unit_kind kind, int uid,
			 bool session)
{
	char got[128], name[256];
	enum unit_kind k;
	uid_t u;
	bool s = !session;

	cgroup_unit(cg, got, sizeof(got), &k, &u, &s);
	snprintf(name, sizeof(name), "cgroup %s -> %s (%s%s)", cg, unit, unit_kind_name(kind),
		 session ? ", a session's" : "");
	CHECK(name,
	      !strcmp(got, unit) && k == kind && (uid < 0 || u == (uid_t)uid) && s == session);
}

static void unit_case(const char *cg, const char *unit, enum unit_kind kind, int uid)
{
	unit_case_in(cg, unit, kind, uid, false);
}

static void test_units(void)
{
	unit_case("/system.slice/lactd.service", "lactd.service", UNIT_SYSTEM, -1);
	unit_case("/system.slice/system-getty.slice/getty@tty1.service", "getty@tty1.service",
		  UNIT_SYSTEM, -1);
	unit_case("/user.slice/user-1000.slice/user@1000.service/app.slice/x.service", "x.service",
		  UNIT_USER, 1000);
	unit_case("/user.slice/user-1000.slice/user@1000.service/app.slice/"
		  "app-firefox-1234.scope",
		  "app-firefox-1234.scope", UNIT_USER, 1000);
	unit_case("/user.slice/user-1000.slice/user@1000.service/init.scope", "init.scope",
		  UNIT_USER, 1000);
	/* systemd.special(7)'s session.slice of the user's manager: its graphical session's */
	unit_case_in("/user.slice/user-1000.slice/user@1000.service/session.slice/"
		     "org.gnome.Shell@wayland.service",
		     "org.gnome.Shell@wayland.service", UNIT_USER, 1000, true);
	/* the slice right above the unit decides, and only under a user's manager */
	unit_case("/user.slice/user-1000.slice/user@1000.service/session.slice/a.slice/x.service",
		  "x.service", UNIT_USER, 1000);
	unit_case("/session.slice/x.service", "x.service", UNIT_SYSTEM, -1);
	unit_case("/user.slice/user-1000.slice/user@1000.service/xsession.slice/x.service",
		  "x.service", UNIT_USER, 1000);
	unit_case("/user.slice/user-1000.slice/user@1000.service", "user@1000.service", UNIT_SYSTEM,
		  1000);
	unit_case("/user.slice/user-1000.slice/session-2.scope", "session-2.scope", UNIT_SCOPE, -1);
	unit_case("/init.scope", "init.scope", UNIT_INIT, -1);
	unit_case("/", "", UNIT_NONE, -1);
	unit_case("", "", UNIT_NONE, -1);
	unit_case("/machine.slice/machine-qemu\\x2d1\\x2dwin11.scope/libvirt/emulator",
		  "machine-qemu\\x2d1\\x2dwin11.scope", UNIT_SCOPE, -1);
}

static void test_actions(void)
{
	struct proc_info pi = { .pid = 4242 };
	char buf[256];

	snprintf(pi.unit, sizeof(pi.unit), "lactd.service");
	pi.unit_kind = UNIT_SYSTEM;
	holder_action(&pi, buf, sizeof(buf));
	CHECK_STR("action: a system service", buf,
		  "stop lactd.service (systemctl stop lactd.service)");
	snprintf(pi.unit, sizeof(pi.unit), "systemd-logind.service");
	holder_action(&pi, buf, sizeof(buf));
	CHECK("action: logind is not a unit to stop, its session is",
	      holder_is_logind(&pi) && strstr(buf, "logind keeps this fd") &&
		      !strstr(buf, "systemctl stop"));
	pi.unit_kind = UNIT_USER;
	CHECK("a user's unit of that name is not logind", !holder_is_logind(&pi));
	snprintf(pi.unit, sizeof(pi.unit), "plasma-kwin_wayland.service");
	pi.unit_uid = 1000;
	holder_action(&pi, buf, sizeof(buf));
	CHECK_STR("action: a user's unit", buf,
		  "stop plasma-kwin_wayland.service of user 1000 (systemctl --user -M 1000@ stop "
		  "plasma-kwin_wayland.service)");
	/* GNOME Shell's refuses a manual stop; kwin_wayland's stop ends the user's desktop */
	pi.unit_session = true;
	holder_action(&pi, buf, sizeof(buf));
	CHECK_STR("action: a graphical session's unit is left to its session", buf,
		  "plasma-kwin_wayland.service of user 1000 is their graphical session's "
		  "(session.slice) and ends with it: log out of that session (or stop the "
		  "display manager)");
	pi.unit_session = false;
	pi.unit_kind = UNIT_NONE;
	holder_action(&pi, buf, sizeof(buf));
	CHECK_STR("action: no unit", buf, "end pid 4242 (kill 4242)");
	pi.pid = 1;
	pi.unit_kind = UNIT_INIT;
	holder_action(&pi, buf, sizeof(buf));
	CHECK("action: PID 1 keeps it for logind", strstr(buf, "PID 1 keeps this fd for logind"));
}

static void test_majmin(void)
{
	uint32_t d = 0;

	CHECK("226:0", parse_majmin("226:0", &d) == 0 && d == KDEV(226, 0));
	CHECK("195:255", parse_majmin("195:255", &d) == 0 && KDEV_MINOR(d) == 255);
	CHECK("'1:x' is refused", parse_majmin("1:x", &d) < 0);
	CHECK("'1:' is refused", parse_majmin("1:", &d) < 0);
	CHECK("':1' is refused", parse_majmin(":1", &d) < 0);
	CHECK("'1:2:3' is refused", parse_majmin("1:2:3", &d) < 0);
	CHECK("'4096:0' (major > 12 bits) is refused", parse_majmin("4096:0", &d) < 0);
	CHECK("'-1:0' is refused", parse_majmin("-1:0", &d) < 0);
}

int main(void)
{
	test_match();
	test_vec();
	test_units();
	test_actions();
	test_majmin();
	TAP_EXIT();
}
