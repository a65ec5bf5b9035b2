// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The /proc backend: the same records as the iterators, from /proc/PID/fd
 * (one stat per fd, following the magic link to the open file), fdinfo
 * (drm-driver, exp_name) and maps + map_files. Used when BPF cannot load,
 * and on request.
 *
 * Mappings: a maps line names the mapped file by (st_dev, inode), not by
 * device number, so each distinct file is looked up once through map_files
 * (which needs CAP_SYS_ADMIN) and the answer cached for every process that
 * maps it. Without map_files the target nodes' own identities are used.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "bpf/scan.h"

#define DRM_MAJOR 226

struct file_verdict {
	uint64_t st_dev, ino;
	bool used;
	bool match;
	bool dmabuf;
	struct hold_rec tmpl; /* why, rdev, module, exporter */
};

struct fs_magic {
	uint64_t st_dev;
	unsigned long magic;
};

struct proc_scan {
	const struct scan_targets *t;
	struct hold_vec *out;
	int proc_fd;
	/* (st_dev, ino) of mapped files -> verdict; open addressing */
	struct file_verdict *files;
	size_t files_cap, files_n;
	struct fs_magic *fs;
	size_t n_fs;
	bool map_files_denied;
};

static uint64_t hash2(uint64_t a, uint64_t b)
{
	uint64_t h = a * 0x9e3779b97f4a7c15ULL ^ b;

	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ULL;
	return h ^ (h >> 29);
}

static struct file_verdict *verdict_slot(struct proc_scan *s, uint64_t st_dev, uint64_t ino)
{
	size_t i;

	if (s->files_n * 2 >= s->files_cap) {
		size_t cap = s->files_cap ? s->files_cap * 2 : 1024;
		struct file_verdict *nf = calloc(cap, sizeof(*nf));

		if (!nf)
			return NULL;
		for (i = 0; i < s->files_cap; i++) {
			struct file_verdict *o = &s->files[i];
			size_t j;

			if (!o->used)
				continue;
			for (j = hash2(o->st_dev, o->ino) & (cap - 1); nf[j].used;
			     j = (j + 1) & (cap - 1))
				;
			nf[j] = *o;
		}
		free(s->files);
		s->files = nf;
		s->files_cap = cap;
	}
	for (i = hash2(st_dev, ino) & (s->files_cap - 1); s->files[i].used;
	     i = (i + 1) & (s->files_cap - 1))
		if (s->files[i].st_dev == st_dev && s->files[i].ino == ino)
			return &s->files[i];
	return &s->files[i]; /* unused: the caller fills it */
}

/* the filesystem magic of a st_dev, one statfs per distinct filesystem */
static unsigned long fs_magic(struct proc_scan *s, uint64_t st_dev, int dirfd, const char *name)
{
	struct statfs sfs;
	char path[64];

	for (size_t i = 0; i < s->n_fs; i++)
		if (s->fs[i].st_dev == st_dev)
			return s->fs[i].magic;
	/* statfs has no *at form; /proc/self/fd/DIRFD/NAME reaches the same file */
	snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dirfd, name);
	if (statfs(path, &sfs))
		return 0;
	void *p = realloc(s->fs, (s->n_fs + 1) * sizeof(*s->fs));
	if (!p)
		return (unsigned long)sfs.f_type;
	s->fs = p;
	s->fs[s->n_fs++] = (struct fs_magic){ st_dev, (unsigned long)sfs.f_type };
	return (unsigned long)sfs.f_type;
}

/* one "key:\tvalue" line of an fdinfo file */
static void fdinfo_get(int pid_fd, const char *fd, const char *key, char *val, size_t len)
{
	char path[64], buf[4096];
	size_t klen = strlen(key);
	ssize_t n;
	int f;

	val[0] = '\0';
	snprintf(path, sizeof(path), "fdinfo/%s", fd);
	f = openat(pid_fd, path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return;
	n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (char *line = buf; line && *line;
	     line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		if (strncmp(line, key, klen) || line[klen] != ':')
			continue;
		line += klen + 1;
		line += strspn(line, " \t");
		size_t l = strcspn(line, "\n");
		if (l >= len)
			l = len - 1;
		memcpy(val, line, l);
		val[l] = '\0';
		return;
	}
}

static void read_comm(int pid_fd, char comm[HOLD_COMM_LEN])
{
	ssize_t n;
	int f;

	memset(comm, 0, HOLD_COMM_LEN);
	f = openat(pid_fd, "comm", O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return;
	n = read(f, comm, HOLD_COMM_LEN - 1);
	close(f);
	if (n > 0 && comm[n - 1] == '\n')
		comm[n - 1] = '\0';
}

/* Decide about one open file, given its stat; fd_name for fdinfo. */
static bool classify(struct proc_scan *s, int pid_fd, int dirfd, const char *name,
		     const char *fdinfo_name, const struct stat *st, struct hold_rec *r)
{
	char driver[HOLD_MOD_LEN] = "";
	bool is_chr = S_ISCHR(st->st_mode), is_dmabuf = false;

	r->ino = st->st_ino;
	if (is_chr) {
		r->rdev = KDEV(major(st->st_rdev), minor(st->st_rdev));
		if (major(st->st_rdev) == DRM_MAJOR && fdinfo_name && s->t->n_drm_drivers)
			fdinfo_get(pid_fd, fdinfo_name, "drm-driver", driver, sizeof(driver));
	} else if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode) &&
		   fs_magic(s, st->st_dev, dirfd, name) == DMA_BUF_MAGIC) {
		is_dmabuf = true;
		if (fdinfo_name)
			fdinfo_get(pid_fd, fdinfo_name, "exp_name", r->exporter,
				   sizeof(r->exporter));
	}
	return hold_match(s->t, r, is_chr, driver, is_dmabuf);
}

static int scan_fds(struct proc_scan *s, int pid_fd, uint32_t pid, char comm[HOLD_COMM_LEN])
{
	struct dirent *de;
	DIR *d;
	int dfd, r = 0;

	dfd = openat(pid_fd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return 0; /* gone, or a kernel thread */
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return 0;
	}
	while ((de = readdir(d))) {
		struct hold_rec rec = { .pid = pid, .tid = pid, .kind = HOLD_FD };
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		if (fstatat(dfd, de->d_name, &st, 0))
			continue; /* closed meanwhile */
		if (!classify(s, pid_fd, dfd, de->d_name, de->d_name, &st, &rec))
			continue;
		rec.fd = atoi(de->d_name);
		if (!comm[0])
			read_comm(pid_fd, comm);
		memcpy(rec.comm, comm, HOLD_COMM_LEN);
		if ((r = hold_vec_push(s->out, &rec)))
			break;
	}
	closedir(d);
	return r;
}

static bool node_is_target(const struct scan_targets *t, uint64_t st_dev, uint64_t ino)
{
	for (size_t i = 0; i < t->n_nodes; i++)
		if (t->nodes[i].st_dev == st_dev && t->nodes[i].st_ino == ino)
			return true;
	return false;
}

/* the next field of a maps line: its number in base, and where the field ends */
static bool maps_field(const char **p, int base, unsigned long long *v, char end)
{
	char *e;

	errno = 0;
	*v = strtoull(*p, &e, base);
	if (e == *p || errno || *e != end)
		return false;
	*p = e + 1;
	return true;
}

/* "start-end perms offset major:minor inode [path]", as sscanf("%llx-%llx %*s %*s %x:%x %llu") */
static bool maps_line(const char *p, unsigned long long *start, unsigned long long *end,
		      unsigned int *dmaj, unsigned int *dmin, unsigned long long *ino)
{
	unsigned long long maj, min;

	if (!maps_field(&p, 16, start, '-') || !maps_field(&p, 16, end, ' '))
		return false;
	for (int skip = 0; skip < 2; skip++) { /* perms, offset */
		p += strcspn(p, " ");
		if (*p++ != ' ')
			return false;
	}
	if (!maps_field(&p, 16, &maj, ':') || !maps_field(&p, 16, &min, ' ') || maj > UINT32_MAX ||
	    min > UINT32_MAX)
		return false;
	*dmaj = (unsigned int)maj;
	*dmin = (unsigned int)min;
	*ino = strtoull(p, NULL, 10);
	return true;
}

static int scan_maps(struct proc_scan *s, int pid_fd, uint32_t pid, char comm[HOLD_COMM_LEN])
{
	char *line = NULL;
	size_t cap = 0;
	FILE *f;
	int fd, r = 0, mf = -1;

	fd = openat(pid_fd, "maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	f = fdopen(fd, "re");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	while (getline(&line, &cap, f) > 0) {
		unsigned long long start, end, ino;
		unsigned int dmaj, dmin;
		struct file_verdict *v;
		uint64_t st_dev;
		char range[48];

		if (!maps_line(line, &start, &end, &dmaj, &dmin, &ino) || !ino)
			continue;
		st_dev = makedev(dmaj, dmin);
		v = verdict_slot(s, st_dev, ino);
		if (!v) {
			r = -ENOMEM;
			break;
		}
		if (!v->used) {
			struct stat st;

			*v = (struct file_verdict){ .st_dev = st_dev, .ino = ino, .used = true };
			s->files_n++;
			snprintf(range, sizeof(range), "%llx-%llx", start, end);
			if (mf < 0 && !s->map_files_denied)
				mf = openat(pid_fd, "map_files",
					    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (mf >= 0 && !fstatat(mf, range, &st, 0)) {
				v->match = classify(s, pid_fd, mf, range, NULL, &st, &v->tmpl);
			} else if (errno == EPERM || errno == EACCES || s->map_files_denied) {
				s->map_files_denied = true;
				if (node_is_target(s->t, st_dev, ino)) {
					v->match = true;
					v->tmpl.why = WHY_DEV;
				}
			} else {
				v->used = false; /* unmapped meanwhile: decide next time */
				s->files_n--;
			}
		}
		if (!v->match)
			continue;
		struct hold_rec rec = v->tmpl;
		rec.pid = rec.tid = pid;
		rec.fd = -1;
		rec.kind = rec.why & WHY_EXPORTER ? HOLD_DMABUF : HOLD_MMAP;
		rec.start = start;
		rec.end = end;
		if (!comm[0])
			read_comm(pid_fd, comm);
		memcpy(rec.comm, comm, HOLD_COMM_LEN);
		if ((r = hold_vec_push(s->out, &rec)))
			break;
	}
	if (mf >= 0)
		close(mf);
	free(line);
	fclose(f);
	return r;
}

int scan_proc(const char *root, const struct scan_targets *t, struct hold_vec *out, char *err,
	      size_t errlen)
{
	struct proc_scan s = { .t = t, .out = out };
	char path[4096];
	struct dirent *de;
	DIR *d;
	int r = 0;

	snprintf(path, sizeof(path), "%s/proc", root);
	s.proc_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s.proc_fd < 0 || !(d = fdopendir(s.proc_fd))) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		if (s.proc_fd >= 0)
			close(s.proc_fd);
		return r;
	}
	/* every process of /proc, or only those the targets name */
	for (size_t i = 0;; i++) {
		char comm[HOLD_COMM_LEN] = "", name[16];
		const char *dir = name;
		uint32_t pid;
		int pid_fd;

		if (t->n_pids) {
			if (i == t->n_pids)
				break;
			pid = t->pids[i];
			snprintf(name, sizeof(name), "%u", pid);
		} else if (!(de = readdir(d))) {
			break;
		} else if (!isdigit((unsigned char)de->d_name[0])) {
			continue;
		} else {
			pid = (uint32_t)strtoul(de->d_name, NULL, 10);
			dir = de->d_name;
		}
		pid_fd = openat(s.proc_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (pid_fd < 0)
			continue; /* exited */
		r = scan_fds(&s, pid_fd, pid, comm);
		if (!r && !t->files_only)
			r = scan_maps(&s, pid_fd, pid, comm);
		close(pid_fd);
		if (r) {
			snprintf(err, errlen, "scanning /proc: %s", strerror(-r));
			break;
		}
	}
	closedir(d);
	free(s.files);
	free(s.fs);
	if (!r)
		hold_vec_normalize(out);
	return r;
}
