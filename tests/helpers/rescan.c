// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Several holder scans in one process, as the handoff makes them, for
 * tests/bpf/rescan.sh. Reads one command a line from stdin and answers on
 * stdout, each answer closed by a line "end":
 *
 *   scan BACKEND PATH...   holders_scan() (BACKEND auto, bpf, proc or ready,
 *                          +files: open files only, as the display wait
 *                          asks) with those device nodes as the only targets
 *                          (a PATH pid:N names a process to read, as the
 *                          display wait names its unit's); one
 *                          "PID KIND FD" line per hold (FD "-" for a mapping),
 *                          sorted, then "backend NAME"
 *   fds                    the BPF objects this process holds open: "progs N
 *                          links N iters N"
 *   maps                   the keys in the target maps it holds: "target_devs N
 *                          target_majors N target_mods N"
 *   preload ROOT           holders_preload(ROOT) ("-" for "")
 *   cleanup                holders_cleanup()
 *   loaded                 "loaded yes" once a ready scan would take BPF, else
 *                          "loaded no"
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "core/holders.h"
#include "shared/array.h"
#include "shared/macro.h"

static int cmp_line(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void scan(char *args)
{
	struct scan_targets t = { 0 };
	enum scan_backend want = SCAN_AUTO;
	struct holder_scan hs;
	char err[320], **lines;
	const char *b = strtok(args, " ");
	char *path;
	int r;

	char name[16];

	if (b && (t.files_only = str_ends_with(b, "+files"))) {
		snprintf(name, sizeof(name), "%.*s", (int)(strlen(b) - strlen("+files")), b);
		b = name;
	}
	if (b && !strcmp(b, "bpf"))
		want = SCAN_BPF;
	else if (b && !strcmp(b, "proc"))
		want = SCAN_PROC;
	else if (b && !strcmp(b, "ready"))
		want = SCAN_READY;
	while ((path = strtok(NULL, " "))) {
		struct stat st;

		if (!strncmp(path, "pid:", 4)) {
			if (ARRAY_GROW(t.pids, t.n_pids)) {
				printf("error out of memory\n");
				goto out;
			}
			t.pids[t.n_pids++] = (uint32_t)strtoul(path + 4, NULL, 10);
			continue;
		}
		if (stat(path, &st) || !S_ISCHR(st.st_mode)) {
			printf("error %s: not a char device\n", path);
			goto out;
		}
		scan_targets_add_dev(&t, KDEV(major(st.st_rdev), minor(st.st_rdev)));
		scan_targets_add_node(&t, st.st_dev, st.st_ino);
	}
	if ((r = holders_scan("", &t, want, &hs, err, sizeof(err))) < 0) {
		printf("error %s\n", err);
		goto out;
	}
	lines = calloc(hs.recs.n + 1, sizeof(*lines));
	for (size_t i = 0; lines && i < hs.recs.n; i++) {
		const struct hold_rec *rec = &hs.recs.v[i];
		char fd[16] = "-";

		if (rec->fd >= 0)
			snprintf(fd, sizeof(fd), "%d", rec->fd);
		if (asprintf(&lines[i], "%u %s %s", rec->pid, hold_kind_name(rec->kind), fd) < 0)
			lines[i] = NULL;
	}
	if (lines) {
		qsort(lines, hs.recs.n, sizeof(*lines), cmp_line);
		for (size_t i = 0; i < hs.recs.n; i++) {
			printf("%s\n", lines[i] ? lines[i] : "error out of memory");
			free(lines[i]);
		}
	}
	free(lines);
	printf("backend %s\n", scan_backend_name(hs.backend));
	holder_scan_free(&hs);
out:
	scan_targets_free(&t);
}

/* what an fd of this process is: "anon_inode:bpf-prog" and the like */
static void fd_kind(const char *name, char *buf, size_t len)
{
	char path[300];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%s", name);
	n = readlink(path, buf, len - 1);
	buf[n > 0 ? n : 0] = '\0';
}

static void fds(void)
{
	unsigned int progs = 0, links = 0, iters = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char kind[64];

		fd_kind(e->d_name, kind, sizeof(kind));
		progs += !strcmp(kind, "anon_inode:bpf-prog");
		links += !strcmp(kind, "anon_inode:bpf_link");
		iters += !strcmp(kind, "anon_inode:bpf_iter");
	}
	if (d)
		closedir(d);
	printf("progs %u links %u iters %u\n", progs, links, iters);
}

static unsigned int count_keys(int fd)
{
	char key[HOLD_MOD_LEN], next[HOLD_MOD_LEN];
	unsigned int n = 0;
	void *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(key, next, sizeof(key));
		prev = key;
		n++;
	}
	return n;
}

static void maps(void)
{
	static const char *const names[] = { "target_devs", "target_majors", "target_mods" };
	unsigned int n[3] = { 0 };
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	while (d && (e = readdir(d))) {
		struct bpf_map_info info = { 0 };
		__u32 len = sizeof(info);
		char kind[64];

		fd_kind(e->d_name, kind, sizeof(kind));
		if (strcmp(kind, "anon_inode:bpf-map") ||
		    bpf_obj_get_info_by_fd(atoi(e->d_name), &info, &len))
			continue;
		for (size_t i = 0; i < 3; i++)
			if (!strcmp(info.name, names[i]))
				n[i] += count_keys(atoi(e->d_name));
	}
	if (d)
		closedir(d);
	printf("target_devs %u target_majors %u target_mods %u\n", n[0], n[1], n[2]);
}

int main(void)
{
	char line[4096];

	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		if (!strncmp(line, "scan ", 5))
			scan(line + 5);
		else if (!strcmp(line, "fds"))
			fds();
		else if (!strcmp(line, "maps"))
			maps();
		else if (!strncmp(line, "preload ", 8))
			holders_preload(strcmp(line + 8, "-") ? line + 8 : "");
		else if (!strcmp(line, "cleanup"))
			holders_cleanup();
		else if (!strcmp(line, "loaded"))
			printf("loaded %s\n", scan_bpf_loaded() ? "yes" : "no");
		else
			printf("error unknown command '%s'\n", line);
		printf("end\n");
	}
	holders_cleanup();
	return 0;
}
