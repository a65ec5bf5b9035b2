/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Who a process is: comm, exe, user, systemd unit, and what to do about it. */
#ifndef VFIO_AGENT_ATTRIB_H
#define VFIO_AGENT_ATTRIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum unit_kind {
	UNIT_NONE,
	UNIT_SYSTEM, /* a system service or other unit that can be stopped */
	UNIT_SCOPE,  /* a session or application scope: end the process */
	UNIT_USER,   /* a unit of a user's service manager */
	UNIT_INIT,   /* PID 1 itself */
};

struct proc_info {
	uint32_t pid;
	char comm[16];
	char exe[256];
	uid_t uid;
	char user[64];
	char cgroup[512];
	char unit[128];
	enum unit_kind unit_kind;
	uid_t unit_uid;	   /* UNIT_USER: whose manager */
	bool unit_session; /* UNIT_USER: in the user's session.slice */
};

/* fills what it can find; -ENOENT when the process is gone */
int proc_info_get(const char *root, uint32_t pid, struct proc_info *pi);

/*
 * The unit of a cgroup path, as systemd names them: the first component
 * that is not a slice; under user@UID.service the user's own unit, and
 * *session (when not NULL) whether it lies in that manager's
 * session.slice, where systemd.special(7) puts the units a graphical
 * session needs (a Wayland compositor's, GNOME Shell's, kwin_wayland's).
 */
void cgroup_unit(const char *path, char *unit, size_t len, enum unit_kind *kind, uid_t *uid,
		 bool *session);

/*
 * systemd-logind: it opens a session's DRM and input devices for its
 * compositor (TakeDevice) and keeps them until the session ends. Stopping
 * it would hurt every session and leave the fds in PID 1's store: the
 * handoff never stops it, it waits for the session to end.
 */
bool holder_is_logind(const struct proc_info *pi);

/* One line: what the user should do so that this process lets go. */
void holder_action(const struct proc_info *pi, char *buf, size_t len);

const char *unit_kind_name(enum unit_kind k);

#endif
