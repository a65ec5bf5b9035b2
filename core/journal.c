// SPDX-License-Identifier: GPL-2.0-or-later
/* The handoff journal: text lines, appended and synced one step at a time. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/journal.h"
#include "core/state.h"
#include "shared/macro.h"

#define JOURNAL_HEADER "# vfio-agent journal 1: undone from the bottom up by release\n"

static const struct {
	const char *name;
	int nargs;
} steps[J__N] = {
	[J_UNIT] = { "unit", 1 },     [J_VTCON] = { "vtcon", 1 },   [J_FB] = { "fb", 2 },
	[J_MODULE] = { "module", 1 }, [J_UNBIND] = { "unbind", 2 }, [J_VFIO] = { "vfio", 1 },
	[J_LOADED] = { "loaded", 1 },
};

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

static bool token_ok(const char *t)
{
	if (!t[0])
		return false;
	for (; *t; t++)
		if ((unsigned char)*t <= ' ' || *t == 0x7f)
			return false;
	return true;
}

int journal_create(const char *root, const char *vm, int *fd)
{
	char path[4096];
	int r;

	if ((r = journal_path(root, vm, path, sizeof(path))) || (r = state_dir_make(root)))
		return r;
	*fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
	if (*fd < 0)
		return -errno;
	if (write(*fd, JOURNAL_HEADER, strlen(JOURNAL_HEADER)) < 0) {
		r = -errno;
		close(*fd);
		unlink(path);
		return r;
	}
	return 0;
}

static int format(const struct jrec *r, char *line, size_t len)
{
	if (r->step >= J__N || !token_ok(r->a) || (steps[r->step].nargs == 2) != !!r->b[0] ||
	    (r->b[0] && !token_ok(r->b)))
		return -EINVAL;
	return snprintf(line, len, "%s %s%s%s\n", steps[r->step].name, r->a, r->b[0] ? " " : "",
			r->b);
}

int journal_append(int fd, const struct jrec *r)
{
	char line[16 + 2 * JTOK];
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
	if (s == J__N || !a || (steps[s].nargs == 2) != !!b)
		return -EINVAL;
	if (strlen(a) >= JTOK || (b && strlen(b) >= JTOK) || !token_ok(a) || (b && !token_ok(b)))
		return -EINVAL;
	memset(r, 0, sizeof(*r));
	r->step = s;
	strcpy(r->a, a);
	if (b)
		strcpy(r->b, b);
	return 0;
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
		char line[256];
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
	char path[4096];
	struct stat st;
	size_t len = 0;
	ssize_t got = 0;
	int fd, r;

	*bad_line = 0;
	if ((r = journal_path(root, vm, path, sizeof(path))))
		return r;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* a handoff is a few dozen lines; a megabyte is not ours */
	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (st.st_size > (1 << 20))
		r = -EFBIG;
	else if (!(buf = malloc(st.st_size + 1)))
		r = -ENOMEM;
	if (r) {
		close(fd);
		return r;
	}
	while (len < (size_t)st.st_size && (got = read(fd, buf + len, st.st_size - len)) > 0)
		len += got;
	r = got < 0 ? -errno : 0;
	close(fd);
	if (r)
		return r;
	return journal_parse(buf, len, out, n, cut, bad_line);
}

int journal_store(const char *root, const char *vm, const struct jrec *recs, size_t n)
{
	char path[4096], tmp[4112], line[16 + 2 * JTOK];
	_cleanup_fclose_ FILE *f = NULL;
	int r;

	if ((r = journal_path(root, vm, path, sizeof(path))))
		return r;
	if (!n)
		return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	f = fopen(tmp, "wxe");
	if (!f && errno == EEXIST && unlink(tmp) == 0)
		f = fopen(tmp, "wxe");
	if (!f)
		return -errno;
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
	if (rename(tmp, path) < 0) {
		r = -errno;
		goto fail;
	}
	return 0;
fail:
	unlink(tmp);
	return r;
}
