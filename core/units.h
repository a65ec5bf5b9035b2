/* SPDX-License-Identifier: GPL-2.0-or-later */
/* systemd units through sd-bus: is it active, stop it, start it, and wait for the job. */
#ifndef VFIO_AGENT_UNITS_H
#define VFIO_AGENT_UNITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct sd_bus sd_bus;

#define UNIT_NAME_MAX 255 /* systemd's UNIT_NAME_MAX less its NUL */

/*
 * A unit the handoff may stop and start again: a name as systemd spells
 * them, of a service, socket or scope (never a target: reboot.target).
 */
bool unit_name_valid(const char *name);

/* whose manager: the system's, or a user's (uid) */
#define UNIT_SYSTEM_MANAGER ((uid_t)-1)
/*
 * A user's uid is below it, as systemd's are: (uid_t)-1 is "unchanged" to
 * setresuid(), and would leave a user's helper root
 */
#define UNIT_USER_UID_END 0x7fffffffu

/* "gdm.service" or "user:1000:pipewire.service": the manager and the unit's name; -EINVAL */
int unit_spec_parse(const char *spec, uid_t *uid, const char **name);

/*
 * The system bus; under root, root's /run/dbus/system_bus_socket unless
 * DBUS_SYSTEM_BUS_ADDRESS names one. -errno (ENOENT: no bus, no systemd).
 */
int units_connect(const char *root, sd_bus **bus, char *err, size_t errlen);
/*
 * LOAD: a lookup that loads the unit from its file (LoadUnit) where LOOKUP
 * asks for it as loaded now (GetUnit): the properties of a unit that
 * systemd let go of (one whose start failed on a condition, an assert or a
 * missing Requisite=, inactive and unreferenced)
 */
enum unit_op { UNIT_OP_LOOKUP, UNIT_OP_STOP, UNIT_OP_START, UNIT_OP_LOAD };

/*
 * a lookup's answer: is it running, does it refuse a manual stop (its
 * CanStop is false: RefuseManualStop=yes, as GNOME Shell's session unit),
 * is it a graphical session's (see unit_lookups), and a running service's
 * sockets
 */
struct unit_answer {
	bool active, refuses_stop, session;
	char sockets[1024];
	char path[512]; /* its object path, the same for an alias and its unit; "" not loaded */
};

/*
 * One unit's call in a batch: the unit's name in; out, the result (0 or
 * -errno) and its reason, and a lookup's answer.
 */
struct unit_job {
	char unit[UNIT_NAME_MAX + 1];
	int r;
	bool ran; /* r < 0 because its job ran and ended other than done (failed, dependency) */
	char err[256];
	struct unit_answer ans;
};

#define UNIT_BATCH_MAX 16 /* jobs one batch queues at once */

/* each of jobs[0..n) failed with r, for the reason err */
void unit_jobs_fail(struct unit_job *jobs, size_t n, int r, const char *err);

/* the children that make a run's calls as users, one per user */
struct unit_user_link {
	uid_t uid;
	pid_t pid;
	int fd;
	bool pending; /* a signal cut a call short: its answer is still to come */
};

struct unit_users {
	struct unit_user_link *v;
	size_t n;
};

/*
 * One job (STOP or START) of user uid's own service manager, on its bus at
 * root/run/user/UID/bus, made by a child process that is that user (the
 * first call starts it; the later ones of the run reuse it), and waited
 * for. 0 or -errno with err's line (-EINTR: a signal came while the job
 * ran; it goes on).
 */
int unit_user_op(struct unit_users *u, const char *root, uid_t uid, enum unit_op op,
		 const char *unit, uint64_t timeout_us, char *err, size_t errlen);
/*
 * A batch of user uid's jobs (STOP or START) or lookups (LOOKUP, as
 * unit_lookups() does them), sent to its helper: the caller may do other
 * work, then collect the results with _end (0 or the first one's failure;
 * each one's r and err, a lookup's ans). A begin that fails sent nothing:
 * no _end for it.
 */
int unit_user_jobs_begin(struct unit_users *u, const char *root, uid_t uid, enum unit_op op,
			 const struct unit_job *jobs, size_t n, uint64_t timeout_us, char *err,
			 size_t errlen);
int unit_user_jobs_end(struct unit_users *u, uid_t uid, struct unit_job *jobs, size_t n);
/*
 * User uid's helper started now, ahead of its first call, and connecting
 * to the user's bus while the caller goes on: its fork and connection off
 * the path of the calls. 0 or -errno; the first call reports a failure.
 */
int unit_users_warm(struct unit_users *u, const char *root, uid_t uid);
/* the children gone, when their last jobs have ended */
void unit_users_close(struct unit_users *u);
void units_disconnect(sd_bus *bus);

/* the unit's object path (the same for an alias and its unit); -errno (not loaded) */
int unit_path(sd_bus *bus, const char *unit, char *path, size_t len);
/*
 * The directory of a system service's control group (systemd's
 * ControlGroup) in the cgroup file system under root: the unified
 * hierarchy at /sys/fs/cgroup, else systemd's own beside cgroup v1's.
 * -errno: not loaded, no group (no process runs), no hierarchy shows it.
 */
int unit_cgroup_dir(sd_bus *bus, const char *root, const char *unit, char *dir, size_t len);

/*
 * Has user uid a graphical session now, as logind on bus says: the session
 * it elects as the user's Display (a graphical one when there is any) is of
 * Type x11, wayland or mir. 1 yes; 0 no (no session, as for a lingering
 * user's manager, or none graphical); -errno when logind cannot say.
 */
int user_graphical(sd_bus *bus, uid_t uid);
/*
 * The processes of a control group's directory and of those below it (8
 * levels at most), appended to *pids
 */
int cgroup_pids(const char *dir, uint32_t **pids, size_t *n);

/*
 * One look at each unit of q[0..n) (n <= UNIT_BATCH_MAX), all at once:
 * every GetUnit (LoadUnit when load is true: see UNIT_OP_LOAD) sent before
 * the first reply is read, then every Get, so
 * that the lot takes two round trips. An answer's active is true when the
 * unit is active, activating or reloading (a unit that was running; an
 * unknown unit is not, and has no path); refuses_stop when its CanStop is
 * false (RefuseManualStop=yes: a StopUnit would be refused); with load
 * only (two more calls a unit), session when
 * it belongs to a graphical session, by systemd's conventions for one
 * (systemd.special(7)): its Slice is session.slice, or it is PartOf
 * graphical-session.target (an error of either Get leaves it false, and
 * fails nothing); for a running service, sockets
 * names the socket units that start it on a connection (its TriggeredBy),
 * as "a.socket b.socket", else "". Each q[i].r is 0 or -errno with
 * q[i].err (-ENOBUFS: more sockets than the answer holds).
 */
void unit_lookups(sd_bus *bus, struct unit_job *q, size_t n, bool load);

/*
 * StopUnit/StartUnit with mode "replace", then wait for the job's
 * JobRemoved signal up to timeout_us. -errno; err holds systemd's reason
 * (a refused stop, a failed or timed-out job).
 */
int unit_stop(sd_bus *bus, const char *unit, uint64_t timeout_us, char *err, size_t errlen);
/*
 * The same for up to UNIT_BATCH_MAX units at once (op STOP or START): all
 * the jobs queued, then all waited for, so that systemd runs them side by
 * side in the order their units' dependencies give. 0, or the first
 * failed job's -errno; each job's own result in jobs[i].r and .err.
 */
int unit_jobs(sd_bus *bus, enum unit_op op, struct unit_job *jobs, size_t n, uint64_t timeout_us);
int unit_start(sd_bus *bus, const char *unit, uint64_t timeout_us, char *err, size_t errlen);

#endif
