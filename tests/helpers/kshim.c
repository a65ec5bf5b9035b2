// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * An LD_PRELOAD stand-in for the kernel under a fixture root, in the manner
 * of kmod's testsuite: libkmod's fixed paths (/proc/modules, /sys/module,
 * /lib/modules) are remapped under KSHIM_ROOT; delete_module and
 * finit_module/init_module answer as KSHIM_SCRIPT says and then change the
 * fixture as the kernel would (sysfs entries, driver directories, probing);
 * writes to KSHIM_ROOT/sys/... behave as sysfs does (bind, unbind,
 * drivers_probe, each write replacing the value) and are logged, in order,
 * to KSHIM_LOG. KSHIM_FAIL=REL[=VALUE] makes that one write fail with EIO;
 * KSHIM_NOPROBE=BDF makes its native driver's probe bind nothing;
 * KSHIM_NO_CLOSE_RANGE makes close_range() answer ENOSYS.
 *
 * Script lines:  delete_module NAME RESULT...   init_module NAME RESULT...
 * RESULT is 0 or an errno name (EBUSY, EAGAIN, ENOENT, EPERM); the last
 * one repeats. Modules not in the script succeed. KSHIM_SYSLOG: see vsyslog below.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static __thread int inside;

#define REAL(ret, name, ...)                    \
	static ret (*real_##name)(__VA_ARGS__); \
	if (!real_##name)                       \
	real_##name = dlsym(RTLD_NEXT, #name)

static const char *kroot(void)
{
	const char *r = getenv("KSHIM_ROOT");

	return r && r[0] ? r : NULL;
}

static const char *remap(const char *path, char *buf)
{
	static const char *const prefixes[] = { "/proc/modules", "/sys/module", "/lib/modules" };
	const char *root = kroot();

	if (!root || !path || inside)
		return path;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t l = strlen(prefixes[i]);

		if (!strncmp(path, prefixes[i], l) && (path[l] == '\0' || path[l] == '/')) {
			snprintf(buf, PATH_MAX, "%s%s", root, path);
			return buf;
		}
	}
	return path;
}

/* a line appended to the file at path, past our own write() */
static void append_line(const char *log, const char *fmt, va_list ap)
{
	char line[1024];
	int fd, n;

	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	inside++;
	fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0) {
		REAL(ssize_t, write, int, const void *, size_t);
		real_write(fd, line, n);
		close(fd);
	}
	inside--;
}

static void slog(const char *fmt, ...)
{
	const char *log = getenv("KSHIM_LOG");
	va_list ap;

	if (!log)
		return;
	va_start(ap, fmt);
	append_line(log, fmt, ap);
	va_end(ap);
}

/*
 * KSHIM_SYSLOG=FILE: what the agent sends to syslog lands in FILE, one line
 * each, so that a test can read the hook's and the daemon's messages (the
 * test machine has no /dev/log). The priority is not kept.
 */
void vsyslog(int prio, const char *fmt, va_list ap)
{
	const char *log = getenv("KSHIM_SYSLOG");

	if (!log) {
		REAL(void, vsyslog, int, const char *, va_list);
		real_vsyslog(prio, fmt, ap);
		return;
	}
	append_line(log, fmt, ap);
}

void syslog(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsyslog(prio, fmt, ap);
	va_end(ap);
}

/* ---- the fixture's kernel state ---- */

static void rm_rf(const char *path)
{
	char sub[PATH_MAX];
	struct dirent *de;
	DIR *d = opendir(path);

	if (d) {
		while ((de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
			if (de->d_type == DT_DIR)
				rm_rf(sub);
			else
				unlink(sub);
		}
		closedir(d);
		rmdir(path);
	} else {
		unlink(path);
	}
}

static void put(const char *path, const char *val)
{
	FILE *f = fopen(path, "we");

	if (f) {
		fputs(val, f);
		fclose(f);
	}
}

static void get(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");

	buf[0] = '\0';
	if (f) {
		if (!fgets(buf, len, f))
			buf[0] = '\0';
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = '\0';
}

static void dev_driver(const char *bdf, char *drv, size_t len)
{
	char p[PATH_MAX], t[PATH_MAX];
	ssize_t n;

	drv[0] = '\0';
	snprintf(p, sizeof(p), "%s/sys/bus/pci/devices/%s/driver", kroot(), bdf);
	if ((n = readlink(p, t, sizeof(t) - 1)) > 0) {
		t[n] = '\0';
		snprintf(drv, len, "%s", basename(t));
	}
}

static int pci_bind(const char *bdf, const char *drv)
{
	char dev[PATH_MAX], real[PATH_MAX], p[PATH_MAX], d[PATH_MAX];
	struct stat st;

	snprintf(d, sizeof(d), "%s/sys/bus/pci/drivers/%s", kroot(), drv);
	if (stat(d, &st) < 0)
		return -ENODEV;
	snprintf(dev, sizeof(dev), "%s/sys/bus/pci/devices/%s", kroot(), bdf);
	if (!realpath(dev, real))
		return -ENODEV;
	snprintf(p, sizeof(p), "%s/driver", real);
	if (symlink(d, p) < 0)
		return -EBUSY;
	snprintf(p, sizeof(p), "%s/%s", d, bdf);
	symlink(real, p);
	slog("kernel: %s bound to %s", bdf, drv);
	return 0;
}

static int pci_unbind(const char *bdf, const char *drv)
{
	char cur[64], p[PATH_MAX];

	dev_driver(bdf, cur, sizeof(cur));
	if (strcmp(cur, drv))
		return -ENODEV;
	snprintf(p, sizeof(p), "%s/sys/bus/pci/devices/%s/driver", kroot(), bdf);
	unlink(p);
	snprintf(p, sizeof(p), "%s/sys/bus/pci/drivers/%s/%s", kroot(), drv, bdf);
	unlink(p);
	slog("kernel: %s unbound from %s", bdf, drv);
	return 0;
}

/* what the kernel would bind: driver_override, else the device's own driver */
static void pci_probe(const char *bdf, const char *only)
{
	char p[PATH_MAX], ovr[64], native[64], cur[64];

	dev_driver(bdf, cur, sizeof(cur));
	if (cur[0])
		return;
	snprintf(p, sizeof(p), "%s/sys/bus/pci/devices/%s/driver_override", kroot(), bdf);
	get(p, ovr, sizeof(ovr));
	snprintf(p, sizeof(p), "%s/sys/bus/pci/devices/%s/fixture-native", kroot(), bdf);
	get(p, native, sizeof(native));
	const char *want = ovr[0] ? ovr : native;
	const char *fails = getenv("KSHIM_NOPROBE");

	/* KSHIM_NOPROBE=BDF: its native driver's probe fails (a GPU that did not reset) */
	if (fails && !strcmp(fails, bdf) && !ovr[0])
		return;
	if (want[0] && (!only || !strcmp(only, want)))
		pci_bind(bdf, want);
}

/* each "module driver" line of lib/modules/fixture-drivers */
static int drivers_of(const char *mod, char out[][64], int max)
{
	char p[PATH_MAX], line[256], m[64], d[64];
	int n = 0;
	FILE *f;

	snprintf(p, sizeof(p), "%s/lib/modules/fixture-drivers", kroot());
	if (!(f = fopen(p, "re")))
		return 0;
	while (n < max && fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %63s", m, d) == 2 && !strcmp(m, mod))
			snprintf(out[n++], 64, "%s", d);
	fclose(f);
	return n;
}

static void each_device(void (*fn)(const char *bdf, const char *arg), const char *arg)
{
	char p[PATH_MAX];
	struct dirent *de;
	DIR *d;

	snprintf(p, sizeof(p), "%s/sys/bus/pci/devices", kroot());
	if (!(d = opendir(p)))
		return;
	while ((de = readdir(d)))
		if (strchr(de->d_name, ':'))
			fn(de->d_name, arg);
	closedir(d);
}

static void unbind_from(const char *bdf, const char *drv)
{
	pci_unbind(bdf, drv);
}

static void probe_for(const char *bdf, const char *drv)
{
	pci_probe(bdf, drv);
}

static void proc_modules_edit(const char *mod, bool add)
{
	char p[PATH_MAX], tmp[PATH_MAX], line[512], first[64];
	FILE *in, *out;

	snprintf(p, sizeof(p), "%s/proc/modules", kroot());
	snprintf(tmp, sizeof(tmp), "%s.new", p);
	in = fopen(p, "re");
	out = fopen(tmp, "we");
	if (!out) {
		if (in)
			fclose(in);
		return;
	}
	while (in && fgets(line, sizeof(line), in))
		if (sscanf(line, "%63s", first) != 1 || strcmp(first, mod))
			fputs(line, out);
	if (add)
		fprintf(out, "%s 16384 0 - Live 0x0000000000000000\n", mod);
	if (in)
		fclose(in);
	fclose(out);
	rename(tmp, p);
}

static void module_gone(const char *mod)
{
	char drivers[8][64], p[PATH_MAX];
	int n = drivers_of(mod, drivers, 8);

	for (int i = 0; i < n; i++) {
		each_device(unbind_from, drivers[i]);
		snprintf(p, sizeof(p), "%s/sys/bus/pci/drivers/%s", kroot(), drivers[i]);
		rm_rf(p);
	}
	snprintf(p, sizeof(p), "%s/sys/module/%s", kroot(), mod);
	rm_rf(p);
	proc_modules_edit(mod, false);
}

static void module_here(const char *mod)
{
	char drivers[8][64], p[PATH_MAX], m[PATH_MAX];
	int n = drivers_of(mod, drivers, 8);

	snprintf(m, sizeof(m), "%s/sys/module/%s", kroot(), mod);
	mkdir(m, 0755);
	snprintf(p, sizeof(p), "%s/holders", m);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/initstate", m);
	put(p, "live\n");
	snprintf(p, sizeof(p), "%s/refcnt", m);
	put(p, "0\n");
	proc_modules_edit(mod, true);
	for (int i = 0; i < n; i++) {
		char d[PATH_MAX];

		snprintf(d, sizeof(d), "%s/sys/bus/pci/drivers/%s", kroot(), drivers[i]);
		mkdir(d, 0755);
		snprintf(p, sizeof(p), "%s/bind", d);
		put(p, "");
		snprintf(p, sizeof(p), "%s/unbind", d);
		put(p, "");
		snprintf(p, sizeof(p), "%s/module", d);
		symlink(m, p);
		snprintf(p, sizeof(p), "%s/drivers", m);
		mkdir(p, 0755);
		snprintf(p, sizeof(p), "%s/drivers/pci:%s", m, drivers[i]);
		symlink(d, p);
		/* a registering driver probes every device it matches */
		each_device(probe_for, drivers[i]);
	}
}

/* ---- scripted syscalls ---- */

static struct script {
	char call[16], mod[64];
	int results[8], n, next;
} scripts[32];
static int n_scripts = -1;

static int errno_of(const char *s)
{
	static const struct {
		const char *name;
		int e;
	} names[] = { { "EBUSY", EBUSY }, { "EAGAIN", EAGAIN }, { "ENOENT", ENOENT },
		      { "EPERM", EPERM }, { "EEXIST", EEXIST }, { "EINVAL", EINVAL },
		      { "SLOW", -1 } /* a second, then success: a call to interrupt */ };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(s, names[i].name))
			return names[i].e;
	return 0;
}

static int scripted(const char *call, const char *mod)
{
	if (n_scripts < 0) {
		const char *path = getenv("KSHIM_SCRIPT");
		char line[256];
		FILE *f;

		n_scripts = 0;
		if (path && (f = fopen(path, "re"))) {
			while (n_scripts < 32 && fgets(line, sizeof(line), f)) {
				struct script *s = &scripts[n_scripts];
				char *save, *tok = strtok_r(line, " \t\n", &save);

				if (!tok)
					continue;
				snprintf(s->call, sizeof(s->call), "%s", tok);
				if (!(tok = strtok_r(NULL, " \t\n", &save)))
					continue;
				snprintf(s->mod, sizeof(s->mod), "%s", tok);
				while (s->n < 8 && (tok = strtok_r(NULL, " \t\n", &save)))
					s->results[s->n++] = errno_of(tok);
				if (s->n)
					n_scripts++;
			}
			fclose(f);
		}
	}
	for (int i = 0; i < n_scripts; i++) {
		struct script *s = &scripts[i];

		if (strcmp(s->call, call) || strcmp(s->mod, mod))
			continue;
		int r = s->results[s->next < s->n ? s->next++ : s->n - 1];

		if (r == -1) {
			usleep(1000 * 1000);
			r = 0;
		}
		return r;
	}
	return 0;
}

static long fake_delete(const char *name)
{
	char p[PATH_MAX];
	struct stat st;
	int e;

	snprintf(p, sizeof(p), "%s/sys/module/%s", kroot(), name);
	if (stat(p, &st) < 0) {
		slog("delete_module %s -> ENOENT", name);
		errno = ENOENT;
		return -1;
	}
	e = scripted("delete_module", name);
	slog("delete_module %s -> %s", name, e ? strerrorname_np(e) : "0");
	if (e) {
		errno = e;
		return -1;
	}
	module_gone(name);
	return 0;
}

static long fake_insert(const char *name)
{
	char p[PATH_MAX];
	struct stat st;
	int e;

	snprintf(p, sizeof(p), "%s/sys/module/%s", kroot(), name);
	e = stat(p, &st) == 0 ? EEXIST : scripted("init_module", name);
	slog("init_module %s -> %s", name, e ? strerrorname_np(e) : "0");
	if (e) {
		errno = e;
		return -1;
	}
	module_here(name);
	return 0;
}

static void name_of_file(const char *path, char *out, size_t len)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", path);
	snprintf(out, len, "%s", basename(tmp));
	out[strcspn(out, ".")] = '\0';
	for (char *c = out; *c; c++)
		if (*c == '-')
			*c = '_';
}

int delete_module(const char *name, unsigned int flags)
{
	if (!kroot())
		return syscall(__NR_delete_module, name, flags);
	return fake_delete(name);
}

int init_module(void *image, unsigned long len, const char *params)
{
	const char *n = memmem(image, len, "name=", 5);

	if (!kroot())
		return syscall(__NR_init_module, image, len, params);
	return fake_insert(n ? n + 5 : "unknown");
}

long syscall(long nr, ...)
{
	REAL(long, syscall, long, ...);
	long a[6];
	va_list ap;

	va_start(ap, nr);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (kroot() && nr == __NR_finit_module) {
		char fdp[64], path[PATH_MAX], name[64];
		ssize_t n;

		snprintf(fdp, sizeof(fdp), "/proc/self/fd/%d", (int)a[0]);
		n = readlink(fdp, path, sizeof(path) - 1);
		path[n > 0 ? n : 0] = '\0';
		name_of_file(path, name, sizeof(name));
		return fake_insert(name);
	}
	if (kroot() && nr == __NR_delete_module)
		return fake_delete((const char *)a[0]);
	return real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* ---- libkmod's fixed paths ---- */

/* open and open64: the same call, remapped; mode only exists with O_CREAT */
#define OPEN_REMAPPED(name)                                        \
	int name(const char *path, int flags, ...)                 \
	{                                                          \
		REAL(int, name, const char *, int, ...);           \
		char buf[PATH_MAX];                                \
		va_list ap;                                        \
		mode_t mode;                                       \
                                                                   \
		va_start(ap, flags);                               \
		mode = va_arg(ap, mode_t);                         \
		va_end(ap);                                        \
		return real_##name(remap(path, buf), flags, mode); \
	}
OPEN_REMAPPED(open)
OPEN_REMAPPED(open64)

/*
 * KSHIM_NO_CLOSE_RANGE: close_range() answers ENOSYS, as a kernel before 5.9
 * does. Called in a child after fork: no dlsym, the system call itself.
 */
int close_range(unsigned int first, unsigned int last, int flags)
{
	if (getenv("KSHIM_NO_CLOSE_RANGE")) {
		errno = ENOSYS;
		return -1;
	}
	return (int)syscall(SYS_close_range, first, last, flags);
}

int openat(int dirfd, const char *path, int flags, ...)
{
	REAL(int, openat, int, const char *, int, ...);
	char buf[PATH_MAX];
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = va_arg(ap, mode_t);
	va_end(ap);
	return real_openat(dirfd, remap(path, buf), flags, mode);
}

#define FOPEN_REMAPPED(name)                                    \
	FILE *name(const char *path, const char *mode)          \
	{                                                       \
		REAL(FILE *, name, const char *, const char *); \
		char buf[PATH_MAX];                             \
                                                                \
		return real_##name(remap(path, buf), mode);     \
	}
FOPEN_REMAPPED(fopen)
FOPEN_REMAPPED(fopen64)

DIR *opendir(const char *path)
{
	REAL(DIR *, opendir, const char *);
	char buf[PATH_MAX];

	return real_opendir(remap(path, buf));
}

int stat(const char *path, struct stat *st)
{
	REAL(int, stat, const char *, struct stat *);
	char buf[PATH_MAX];

	return real_stat(remap(path, buf), st);
}

int lstat(const char *path, struct stat *st)
{
	REAL(int, lstat, const char *, struct stat *);
	char buf[PATH_MAX];

	return real_lstat(remap(path, buf), st);
}

int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	REAL(int, fstatat, int, const char *, struct stat *, int);
	char buf[PATH_MAX];

	return real_fstatat(dirfd, remap(path, buf), st, flags);
}

int access(const char *path, int mode)
{
	REAL(int, access, const char *, int);
	char buf[PATH_MAX];

	return real_access(remap(path, buf), mode);
}

/* ---- sysfs writes ---- */

static bool ends(const char *s, const char *suffix)
{
	size_t l = strlen(s), m = strlen(suffix);

	return l >= m && !strcmp(s + l - m, suffix);
}

/* "sys/bus/pci/drivers/D/attr" -> D */
static bool driver_dir(const char *rel, const char *bus, char *drv, size_t len)
{
	char prefix[64];
	const char *d, *slash;

	snprintf(prefix, sizeof(prefix), "/sys/bus/%s/drivers/", bus);
	if (strncmp(rel, prefix, strlen(prefix)))
		return false;
	d = rel + strlen(prefix);
	slash = strchr(d, '/');
	if (!slash || (size_t)(slash - d) >= len)
		return false;
	memcpy(drv, d, slash - d);
	drv[slash - d] = '\0';
	return true;
}

static int sysfs_effect(const char *rel, const char *val)
{
	char drv[64], p[PATH_MAX], real[PATH_MAX];

	if (driver_dir(rel, "pci", drv, sizeof(drv)) && ends(rel, "/unbind"))
		return pci_unbind(val, drv);
	if (driver_dir(rel, "pci", drv, sizeof(drv)) && ends(rel, "/bind")) {
		dev_driver(val, real, sizeof(real));
		return real[0] ? -EBUSY : pci_bind(val, drv);
	}
	if (!strcmp(rel, "/sys/bus/pci/drivers_probe")) {
		pci_probe(val, NULL);
		return 0;
	}
	if (driver_dir(rel, "platform", drv, sizeof(drv)) && ends(rel, "/unbind")) {
		snprintf(p, sizeof(p), "%s/sys/bus/platform/drivers/%s/%s", kroot(), drv, val);
		if (unlink(p) < 0)
			return -ENODEV;
		slog("kernel: %s unbound from %s", val, drv);
		return 0;
	}
	if (driver_dir(rel, "platform", drv, sizeof(drv)) && ends(rel, "/bind")) {
		snprintf(p, sizeof(p), "%s/sys/bus/platform/drivers/%s/%s", kroot(), drv, val);
		snprintf(real, sizeof(real), "%s/sys/devices/platform/%s", kroot(), val);
		if (symlink(real, p) < 0)
			return -EBUSY;
		slog("kernel: %s bound to %s", val, drv);
		return 0;
	}
	return 0;
}

ssize_t write(int fd, const void *buf, size_t n)
{
	REAL(ssize_t, write, int, const void *, size_t);
	const char *root = kroot(), *fail = getenv("KSHIM_FAIL");
	char fdp[64], path[PATH_MAX], val[256];
	size_t rl;
	ssize_t l;
	int e;

	if (!root || inside)
		return real_write(fd, buf, n);
	snprintf(fdp, sizeof(fdp), "/proc/self/fd/%d", fd);
	inside++;
	l = readlink(fdp, path, sizeof(path) - 1);
	inside--;
	rl = strlen(root);
	if (l <= 0)
		return real_write(fd, buf, n);
	path[l] = '\0';
	if (strncmp(path, root, rl) || strncmp(path + rl, "/sys/", 5))
		return real_write(fd, buf, n);
	snprintf(val, sizeof(val), "%.*s", (int)(n < sizeof(val) ? n : sizeof(val) - 1),
		 (const char *)buf);
	val[strcspn(val, "\n")] = '\0';
	slog("write %s %s", path + rl, val[0] ? val : "\"\"");
	if (fail) {
		const char *eq = strchr(fail, '=');
		size_t fl = eq ? (size_t)(eq - fail) : strlen(fail);

		if (!strncmp(path + rl, fail, fl) && !path[rl + fl] &&
		    (!eq || !strcmp(eq + 1, val))) {
			slog("write %s failed: EIO (KSHIM_FAIL)", path + rl);
			errno = EIO;
			return -1;
		}
	}
	inside++;
	e = sysfs_effect(path + rl, val);
	inside--;
	if (e < 0) {
		errno = -e;
		return -1;
	}
	/* a sysfs attribute holds the last value written, not an append */
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, n, 0) < 0)
		return -1;
	return n;
}
