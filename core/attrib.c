// SPDX-License-Identifier: GPL-2.0-or-later
/* Attribution of a holder: /proc/PID and its cgroup, read under --root. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/attrib.h"
#include "shared/macro.h"
#include "core/sysfs.h"
#include "core/targets.h"

void cgroup_unit(const char *path, char *unit, size_t len, enum unit_kind *kind, uid_t *uid,
		 bool *session)
{
	const char *p = path, *user_mgr = NULL;
	bool in_session = false;
	unsigned long u;

	unit[0] = '\0';
	*kind = UNIT_NONE;
	*uid = (uid_t)-1;
	if (session)
		*session = false;
	while (*p) {
		size_t n;

		p += strspn(p, "/");
		n = strcspn(p, "/");
		if (!n)
			break;
		if (strn_ends_with(p, n, ".slice")) {
			/* the slice right above the user's unit */
			in_session = user_mgr && n == 13 && !strncmp(p, "session.slice", n);
			p += n;
			continue;
		}
		if (!user_mgr && n > 5 && !strncmp(p, "user@", 5) &&
		    strn_ends_with(p, n, ".service")) {
			/* the user's manager: its own units lie below */
			user_mgr = p;
			u = strtoul(p + 5, NULL, 10);
			*uid = (uid_t)u;
			snprintf(unit, len, "%.*s", (int)n, p);
			*kind = UNIT_SYSTEM;
			p += n;
			continue;
		}
		snprintf(unit, len, "%.*s", (int)n, p);
		if (user_mgr) {
			*kind = UNIT_USER;
			if (session)
				*session = in_session;
		} else if (!strcmp(unit, "init.scope"))
			*kind = UNIT_INIT;
		else if (strn_ends_with(p, n, ".scope"))
			*kind = UNIT_SCOPE;
		else
			*kind = UNIT_SYSTEM;
		return;
	}
}

const char *unit_kind_name(enum unit_kind k)
{
	switch (k) {
	case UNIT_SYSTEM:
		return "system";
	case UNIT_SCOPE:
		return "scope";
	case UNIT_USER:
		return "user";
	case UNIT_INIT:
		return "init";
	case UNIT_NONE:
		break;
	}
	return "none";
}

/*
 * /proc/PID/cgroup: on a unified host the "0::" line; on a hybrid one the
 * named systemd hierarchy is systemd's own bookkeeping, so it wins.
 */
static void read_cgroup(const char *root, uint32_t pid, char *out, size_t len)
{
	char path[4096], line[1024], v2[512] = "";
	FILE *f;

	out[0] = '\0';
	snprintf(path, sizeof(path), "%s/proc/%u/cgroup", root, pid);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *c = strchr(line, ':'), *p;

		line[strcspn(line, "\n")] = '\0';
		if (!c || !(p = strchr(c + 1, ':')))
			continue;
		if (!strncmp(c + 1, "name=systemd:", 13) && strcmp(p + 1, "/"))
			snprintf(out, len, "%s", p + 1);
		else if (!strncmp(line, "0::", 3))
			snprintf(v2, sizeof(v2), "%s", p + 1);
	}
	fclose(f);
	if (!out[0])
		snprintf(out, len, "%s", v2);
}

/* the kernel's comm and its one newline: a newline inside it is part of the name */
static int read_comm(const char *root, uint32_t pid, char comm[16])
{
	char path[4096], buf[17];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/proc/%u/comm", root, pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0)
		return -errno;
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	n = n > 15 ? 15 : n;
	memcpy(comm, buf, n);
	comm[n] = '\0';
	return 0;
}

int proc_info_get(const char *root, uint32_t pid, struct proc_info *pi)
{
	char path[4096], buf[4096];
	ssize_t n;
	FILE *f;

	memset(pi, 0, sizeof(*pi));
	pi->pid = pid;
	pi->uid = (uid_t)-1;
	if (read_comm(root, pid, pi->comm) < 0)
		return -ENOENT;
	snprintf(path, sizeof(path), "%s/proc/%u/exe", root, pid);
	n = readlink(path, pi->exe, sizeof(pi->exe) - 1);
	pi->exe[n > 0 ? n : 0] = '\0';
	snprintf(path, sizeof(path), "%s/proc/%u/status", root, pid);
	f = fopen(path, "re");
	if (f) {
		while (fgets(buf, sizeof(buf), f))
			if (sscanf(buf, "Uid:\t%*u\t%u", &pi->uid) == 1)
				break;
		fclose(f);
	}
	if (pi->uid != (uid_t)-1) {
		struct passwd pw, *res = NULL;

		if (!getpwuid_r(pi->uid, &pw, buf, sizeof(buf), &res) && res)
			snprintf(pi->user, sizeof(pi->user), "%s", res->pw_name);
		else
			snprintf(pi->user, sizeof(pi->user), "%u", pi->uid);
	}
	read_cgroup(root, pid, pi->cgroup, sizeof(pi->cgroup));
	cgroup_unit(pi->cgroup, pi->unit, sizeof(pi->unit), &pi->unit_kind, &pi->unit_uid,
		    &pi->unit_session);
	if (pid == 1)
		pi->unit_kind = UNIT_INIT;
	return 0;
}

bool holder_is_logind(const struct proc_info *pi)
{
	return pi->unit_kind == UNIT_SYSTEM && !strcmp(pi->unit, "systemd-logind.service");
}

void holder_action(const struct proc_info *pi, char *buf, size_t len)
{
	if (holder_is_logind(pi)) {
		snprintf(buf, len,
			 "logind keeps this fd for a session's compositor: end the graphical "
			 "session (stop the display manager) so that logind releases it");
		return;
	}
	switch (pi->unit_kind) {
	case UNIT_INIT:
		/* logind hands session devices to PID 1's fd store (FDSTORE=1) */
		snprintf(buf, len,
			 "PID 1 keeps this fd for logind: end the graphical session "
			 "(stop the display manager) so that logind releases it");
		return;
	case UNIT_SYSTEM:
		snprintf(buf, len, "stop %s (systemctl stop %s)", pi->unit, pi->unit);
		return;
	case UNIT_USER:
		/* stopping it ends the desktop under its user, or systemd refuses it (GNOME Shell) */
		if (pi->unit_session) {
			snprintf(buf, len,
				 "%s of user %u is their graphical session's (session.slice) and "
				 "ends with it: log out of that session (or stop the display "
				 "manager)",
				 pi->unit, pi->unit_uid);
			return;
		}
		snprintf(buf, len, "stop %s of user %u (systemctl --user -M %u@ stop %s)", pi->unit,
			 pi->unit_uid, pi->unit_uid, pi->unit);
		return;
	case UNIT_SCOPE:
		snprintf(buf, len, "end pid %u (kill %u; it runs in %s)", pi->pid, pi->pid,
			 pi->unit);
		return;
	case UNIT_NONE:
		break;
	}
	snprintf(buf, len, "end pid %u (kill %u)", pi->pid, pi->pid);
}
