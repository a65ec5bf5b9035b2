// SPDX-License-Identifier: GPL-2.0-or-later
/* The handoff journal: text lines, appended and synced one step at a time. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/journal.h"
#include "core/state.h"
#include "core/targets.h"
#include "core/units.h"
#include "shared/macro.h"

#define JOURNAL_HEADER "# vfio-agent journal 1: undone from the bottom up by release\n"

/* what a journal field may hold: only what vfio-agent itself writes there */
enum jfield {
	JF_NONE,
	JF_UNIT,     /* a service, socket or scope (core/units.h) */
	JF_VTCON,    /* vtconN */
	JF_FB_DRV,   /* one of boot_fb_drivers (core/targets.h) */
	JF_PLATFORM, /* a platform device's name: efi-framebuffer.0, simple-framebuffer.0 */
	JF_MODULE,   /* a module name in the kernel's charset */
	JF_BDF,	     /* DDDD:BB:DD.F, as the kernel writes it */
	JF_DRIVER,   /* a PCI driver's name: snd_hda_intel, bochs-drm */
	JF_OVERRIDE, /* a driver_override that was set before: a driver's name, or none */
	JF_MANAGER,  /* whose unit: none (the system's), or user:UID */
};

static const struct {
	const char *name;
	enum jfield field[2];
} steps[] = {
	[J_UNIT] = { "unit", { JF_UNIT, JF_MANAGER } },
	[J_HOLDER] = { "holder", { JF_UNIT, JF_MANAGER } },
	[J_VTCON] = { "vtcon", { JF_VTCON } },
	[J_FB] = { "fb", { JF_FB_DRV, JF_PLATFORM } },
	[J_MODULE] = { "module", { JF_MODULE } },
	[J_UNBIND] = { "unbind", { JF_BDF, JF_DRIVER } },
	[J_VFIO] = { "vfio", { JF_BDF, JF_OVERRIDE } },
	[J_LOADED] = { "loaded", { JF_MODULE } },
};
_Static_assert(ARRAY_SIZE(steps) == J__N, "every journal step has its name and fields");

static bool chars_in(const char *s, const char *extra)
{
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr(extra, *s))
			return false;
	return true;
}

bool jbdf_valid(const char *s)
{
	unsigned int dom, bus, dev, fn;
	char canon[16];
	int n = 0;

	/* exactly the kernel's form: lower-case hex, four, two, two and one digits */
	if (strlen(s) != 12 || sscanf(s, "%4x:%2x:%2x.%1x%n", &dom, &bus, &dev, &fn, &n) != 4 ||
	    n != 12 || dev > 0x1f || fn > 7)
		return false;
	snprintf(canon, sizeof(canon), "%04x:%02x:%02x.%x", dom, bus, dev, fn);
	return !strcmp(canon, s);
}

static bool field_valid(enum jfield f, const char *s)
{
	size_t n = strlen(s);

	switch (f) {
	case JF_NONE:
		return !n;
	case JF_UNIT:
		return unit_name_valid(s);
	case JF_VTCON:
		return n > 5 && n <= 8 && !strncmp(s, "vtcon", 5) &&
		       strspn(s + 5, "0123456789") == n - 5;
	case JF_FB_DRV:
		for (size_t i = 0; i < ARRAY_SIZE(boot_fb_drivers); i++)
			if (!strcmp(s, boot_fb_drivers[i]))
				return true;
		return false;
	case JF_PLATFORM:
		return n && n < 64 && s[0] != '.' && chars_in(s, "._:-");
	case JF_MODULE:
		return n && n < HOLD_MOD_LEN && chars_in(s, "_-");
	case JF_BDF:
		return jbdf_valid(s);
	case JF_DRIVER:
		return n && n < 64 && s[0] != '.' && chars_in(s, "._-");
	case JF_OVERRIDE:
		return !n || field_valid(JF_DRIVER, s);
	case JF_MANAGER:
		return !n || (n > 5 && n <= 15 && !strncmp(s, "user:", 5) &&
			      strspn(s + 5, "0123456789") == n - 5 &&
			      strtoul(s + 5, NULL, 10) < UNIT_USER_UID_END);
	}
	return false;
}

bool jrec_valid(const struct jrec *r)
{
	return r->step < J__N && field_valid(steps[r->step].field[0], r->a) &&
	       field_valid(steps[r->step].field[1], r->b);
}

const char *jstep_name(enum jstep s)
{
	return s < J__N ? steps[s].name : "?";
}

int journal_path(const char *root, const char *vm, char *buf, size_t len)
{
	/* the VM name is a file name here; config validation keeps it one */
	if (!vm[0] || strchr(vm, '/') || !strcmp(vm, ".") || !strcmp(vm, ".."))
		return -EINVAL;
	if ((size_t)snprintf(buf, len, "%s/run/vfio-agent/%s.journal", root, vm) >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* "<vm>.journal": the name in the state directory */
static int journal_name(const char *vm, char *buf, size_t len)
{
	char path[4096];
	int r;

	if ((r = journal_path("", vm, path, sizeof(path))) < 0)
		return r;
	snprintf(buf, len, "%s", strrchr(path, '/') + 1);
	return 0;
}

int journal_create(const char *root, const char *vm, int *fd)
{
	_cleanup_close_ int dfd = -1;
	char name[256];
	int r;

	*fd = -1;
	if ((r = journal_name(vm, name, sizeof(name))) || (r = state_dir_open(root, true, &dfd)))
		return r;
	if ((r = state_open(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_APPEND, fd)) < 0)
		return r;
	if (write(*fd, JOURNAL_HEADER, strlen(JOURNAL_HEADER)) < 0) {
		r = -errno;
		close(*fd);
		*fd = -1;
		unlinkat(dfd, name, 0);
		return r;
	}
	return 0;
}

static int format(const struct jrec *r, char *line, size_t len)
{
	if (!jrec_valid(r))
		return -EINVAL;
	return snprintf(line, len, "%s %s%s%s\n", steps[r->step].name, r->a, r->b[0] ? " " : "",
			r->b);
}

int journal_append(int fd, const struct jrec *r)
{
	char line[JLINE_MAX];
	int n = format(r, line, sizeof(line));

	if (n < 0)
		return n;
	/* one write: a crash leaves the line whole or cut, never interleaved */
	if (write(fd, line, n) != n)
		return errno ? -errno : -EIO;
	return fdatasync(fd) < 0 ? -errno : 0;
}

static int parse_line(char *line, struct jrec *r)
{
	char *save = NULL, *name = strtok_r(line, " ", &save);
	char *a = strtok_r(NULL, " ", &save), *b = strtok_r(NULL, " ", &save);
	int s;

	if (!name || strtok_r(NULL, " ", &save))
		return -EINVAL;
	for (s = 0; s < J__N; s++)
		if (!strcmp(name, steps[s].name))
			break;
	if (s == J__N || !a || strlen(a) >= JTOK || (b && strlen(b) >= JTOK))
		return -EINVAL;
	memset(r, 0, sizeof(*r));
	r->step = s;
	strcpy(r->a, a);
	if (b)
		strcpy(r->b, b);
	/* only what vfio-agent could have written: every field in its shape */
	return jrec_valid(r) ? 0 : -EINVAL;
}

int journal_parse(const char *buf, size_t len, struct jrec **out, size_t *n, bool *cut,
		  size_t *bad_line)
{
	struct jrec *v = NULL;
	size_t nv = 0, lineno = 0;
	const char *p = buf, *end = buf + len;

	*cut = false;
	*bad_line = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', end - p);
		char line[JLINE_MAX];
		size_t l;

		lineno++;
		if (!nl) {
			*cut = true;
			break;
		}
		l = nl - p;
		if (l >= sizeof(line) || memchr(p, '\0', l))
			goto bad;
		memcpy(line, p, l);
		line[l] = '\0';
		p = nl + 1;
		if (!line[0] || line[0] == '#')
			continue;
		void *q = realloc(v, (nv + 1) * sizeof(*v));
		if (!q) {
			free(v);
			return -ENOMEM;
		}
		v = q;
		if (parse_line(line, &v[nv]) < 0)
			goto bad;
		nv++;
	}
	*out = v;
	*n = nv;
	return 0;
bad:
	free(v);
	*bad_line = lineno;
	return -EINVAL;
}

int journal_load(const char *root, const char *vm, struct jrec **out, size_t *n, bool *cut,
		 size_t *bad_line)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_close_ int dfd = -1, fd = -1;
	char name[256];
	struct stat st;
	size_t len = 0;
	ssize_t got = 0;
	int r;

	*bad_line = 0;
	if ((r = journal_name(vm, name, sizeof(name))))
		return r;
	/* no state directory: no journal; one that is not ours: nothing in it is trusted */
	if ((r = state_dir_open(root, false, &dfd)) < 0 ||
	    (r = state_open(dfd, name, O_RDONLY | O_NONBLOCK, &fd)) < 0)
		return r;
	/* a handoff is a few dozen lines; a megabyte is not ours */
	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size > (1 << 20))
		return -EFBIG;
	if (!(buf = malloc(st.st_size + 1)))
		return -ENOMEM;
	while (len < (size_t)st.st_size && (got = read(fd, buf + len, st.st_size - len)) > 0)
		len += got;
	if (got < 0)
		return -errno;
	return journal_parse(buf, len, out, n, cut, bad_line);
}

int journal_store(const char *root, const char *vm, const struct jrec *recs, size_t n)
{
	_cleanup_close_ int dfd = -1;
	char name[256], tmp[272], line[JLINE_MAX];
	_cleanup_fclose_ FILE *f = NULL;
	int r, fd;

	if ((r = journal_name(vm, name, sizeof(name))) || (r = state_dir_open(root, false, &dfd)))
		return r;
	if (!n)
		return unlinkat(dfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
	snprintf(tmp, sizeof(tmp), "%s.new", name);
	/* a leftover of a crash in the middle of this: ours to replace, never to follow */
	if (unlinkat(dfd, tmp, 0) < 0 && errno != ENOENT)
		return -errno;
	if ((r = state_open(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL, &fd)) < 0)
		return r;
	if (!(f = fdopen(fd, "w"))) {
		r = -errno;
		close(fd);
		unlinkat(dfd, tmp, 0);
		return r;
	}
	fputs(JOURNAL_HEADER, f);
	for (size_t i = 0; i < n; i++) {
		if ((r = format(&recs[i], line, sizeof(line))) < 0)
			goto fail;
		fputs(line, f);
	}
	if (fflush(f) || fdatasync(fileno(f))) {
		r = -errno;
		goto fail;
	}
	if (renameat(dfd, tmp, dfd, name) < 0) {
		r = -errno;
		goto fail;
	}
	return 0;
fail:
	unlinkat(dfd, tmp, 0);
	return r;
}
