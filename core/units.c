// SPDX-License-Identifier: GPL-2.0-or-later
/* systemd's Manager API, the way systemctl uses it: Subscribe, the job, JobRemoved. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "core/dl.h"
#include "shared/array.h"
#include "shared/macro.h"
#include "core/units.h"

#define SD_DEST "org.freedesktop.systemd1"
#define SD_PATH "/org/freedesktop/systemd1"
#define SD_MANAGER "org.freedesktop.systemd1.Manager"

int unit_spec_parse(const char *spec, uid_t *uid, const char **name)
{
	unsigned long u;
	char *end;

	*uid = UNIT_SYSTEM_MANAGER;
	*name = spec;
	if (!strncmp(spec, "user:", 5)) {
		errno = 0;
		u = strtoul(spec + 5, &end, 10);
		if (errno || end == spec + 5 || *end != ':' || u >= UNIT_USER_UID_END ||
		    spec[5] == '-')
			return -EINVAL;
		*uid = (uid_t)u;
		*name = end + 1;
	}
	return unit_name_valid(*name) ? 0 : -EINVAL;
}

bool unit_name_valid(const char *name)
{
	static const char *const kinds[] = { ".service", ".socket", ".scope" };
	size_t n = strlen(name);
	const char *at = strchr(name, '@'), *dot = strrchr(name, '.');

	/* systemd's unit_name_is_valid(): at most 255 bytes, its characters, one '@' at most */
	if (!n || n > UNIT_NAME_MAX || !dot || dot == name || name[0] == '@')
		return false;
	for (const char *s = name; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr(":-_.\\@", *s))
			return false;
	if (at && (strchr(at + 1, '@') || at > dot))
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (!strcmp(dot, kinds[i]))
			return true;
	return false;
}

int units_connect(const char *root, sd_bus **bus, char *err, size_t errlen)
{
	char addr[4200];
	int r;

	*bus = NULL;
	if ((r = dl_libsystemd(err, errlen)) < 0)
		return r;
	/* under --root: the tree's bus (or the one the environment names), never the host's */
	if (!root[0] || getenv("DBUS_SYSTEM_BUS_ADDRESS")) {
		r = sym_sd_bus_open_system(bus);
	} else {
		snprintf(addr, sizeof(addr), "unix:path=%s/run/dbus/system_bus_socket", root);
		if ((r = sym_sd_bus_new(bus)) >= 0 &&
		    (r = sym_sd_bus_set_address(*bus, addr)) >= 0 &&
		    (r = sym_sd_bus_set_bus_client(*bus, 1)) >= 0)
			r = sym_sd_bus_start(*bus);
		if (r < 0) {
			units_disconnect(*bus);
			*bus = NULL;
		}
	}
	if (r < 0)
		snprintf(err, errlen, "%s", strerror(-r));
	return r;
}

/*
 * A request to a user's helper and its answer, the same message both ways:
 * a batch of jobs[0..n), or of their lookups. r and err: the first failure,
 * or the helper's own (it could not become the user, or reach its bus).
 */
struct user_msg {
	enum unit_op op;
	uint64_t timeout_us;
	size_t n;
	int r;
	char err[256];
	struct unit_job jobs[UNIT_BATCH_MAX];
};

static int user_bus(const char *root, uid_t uid, sd_bus **bus, char *err, size_t errlen)
{
	char addr[4200];
	int r;

	*bus = NULL;
	snprintf(addr, sizeof(addr), "unix:path=%s/run/user/%u/bus", root, (unsigned int)uid);
	if ((r = sym_sd_bus_new(bus)) < 0 || (r = sym_sd_bus_set_address(*bus, addr)) < 0 ||
	    (r = sym_sd_bus_set_bus_client(*bus, 1)) < 0 || (r = sym_sd_bus_start(*bus)) < 0) {
		snprintf(err, errlen, "%.200s: %s", addr + 10, strerror(-r));
		units_disconnect(*bus);
		*bus = NULL;
	}
	return r;
}

void unit_jobs_fail(struct unit_job *jobs, size_t n, int r, const char *err)
{
	for (size_t i = 0; i < n; i++) {
		jobs[i].r = r;
		jobs[i].ran = false;
		snprintf(jobs[i].err, sizeof(jobs[i].err), "%s", err);
	}
}

/* the whole message failed with r, for the reason err: each lookup or job too */
static void msg_fail(struct user_msg *m, int r, const char *err)
{
	m->r = r;
	snprintf(m->err, sizeof(m->err), "%s", err);
	unit_jobs_fail(m->jobs, m->n, r, err);
}

/* the message's calls on the user's bus; its first failure in r and err */
static int user_call(sd_bus *bus, struct user_msg *m)
{
	if (m->op == UNIT_OP_LOOKUP || m->op == UNIT_OP_LOAD)
		unit_lookups(bus, m->jobs, m->n, m->op == UNIT_OP_LOAD);
	else
		unit_jobs(bus, m->op, m->jobs, m->n, m->timeout_us);
	for (size_t i = 0; i < m->n; i++)
		if (m->jobs[i].r < 0) {
			snprintf(m->err, sizeof(m->err), "%s", m->jobs[i].err);
			return m->jobs[i].r;
		}
	return 0;
}

/*
 * The helper, a child that is the user: its own credentials, one connection
 * to its bus (made again when the bus went away, as at a new login), and one
 * answer per request on fd until we close our end.
 */
static void user_child(const char *root, uid_t uid, gid_t gid, int fd)
{
	struct user_msg m;
	sd_bus *bus = NULL;
	char why[256];
	int e = 0;

	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
		e = -errno;
	else /* on the bus before the first request, while the parent goes on; else at it */
		user_bus(root, uid, &bus, why, sizeof(why));
	for (;;) {
		ssize_t k = recv(fd, &m, sizeof(m), 0);

		if (k < 0 && errno == EINTR)
			continue;
		if (k != sizeof(m) || m.n < 1 || m.n > UNIT_BATCH_MAX)
			break;
		m.r = 0;
		m.err[0] = '\0';
		for (size_t i = 0; i < m.n; i++)
			m.jobs[i].unit[sizeof(m.jobs[i].unit) - 1] = '\0';
		if (e < 0) {
			snprintf(why, sizeof(why), "cannot become uid %u: %s", (unsigned int)uid,
				 strerror(-e));
			msg_fail(&m, e, why);
		} else {
			for (int tries = 0; tries < 2; tries++) {
				if (!bus &&
				    (m.r = user_bus(root, uid, &bus, why, sizeof(why))) < 0) {
					msg_fail(&m, m.r, why);
					break;
				}
				m.r = user_call(bus, &m);
				if (m.r != -ENOTCONN && m.r != -ECONNRESET && m.r != -EPIPE)
					break;
				units_disconnect(bus);
				bus = NULL;
			}
		}
		if (send(fd, &m, sizeof(m), MSG_NOSIGNAL) != sizeof(m))
			break;
	}
	units_disconnect(bus);
	_exit(0);
}

/*
 * Every fd from first up closed, in a child after fork (system calls
 * only): close_range(), or on a kernel before 5.9 each one below the
 * open-file limit (65536 at most: ours are a handful, and fs.nr_open may
 * let the limit be a billion).
 */
static int close_from(int first)
{
	struct rlimit rl;

	if (close_range((unsigned int)first, ~0U, 0) == 0)
		return 0;
	if (errno != ENOSYS || getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	for (rlim_t fd = (rlim_t)first; fd < rl.rlim_cur && fd < 65536; fd++)
		close((int)fd);
	return 0;
}

static int user_link(struct unit_users *u, const char *root, uid_t uid, struct unit_user_link **out)
{
	struct unit_user_link *l;
	char path[4096];
	struct stat st;
	gid_t gid = (gid_t)uid;
	int p[2], r;
	void *v;

	for (size_t i = 0; i < u->n; i++)
		if (u->v[i].uid == uid && u->v[i].fd >= 0) {
			*out = &u->v[i];
			return 0;
		}
	/* the runtime directory's group is the user's own */
	snprintf(path, sizeof(path), "%s/run/user/%u", root, (unsigned int)uid);
	if (stat(path, &st) == 0 && st.st_uid == uid)
		gid = st.st_gid;
	if (!(v = realloc(u->v, (u->n + 1) * sizeof(*u->v))))
		return -ENOMEM;
	u->v = v;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p) < 0)
		return -errno;
	l = &u->v[u->n];
	*l = (struct unit_user_link){ .uid = uid, .fd = p[0] };
	/*
	 * A user's bus takes its owner's connections only: a child of ours that
	 * is that user makes the calls, as systemctl --user -M UID@ has
	 * systemd-stdio-bridge do; we stay root. One child per user for the
	 * whole run: a fork and a bus connection once, not per call.
	 */
	if ((l->pid = fork()) < 0) {
		r = -errno;
		close(p[0]);
		close(p[1]);
		return r;
	}
	if (l->pid == 0) {
		/*
		 * Nothing of ours but its socket, as fd 3: not the journal or the
		 * lock, and not the other helpers' sockets, each of which must
		 * see its EOF when we close it.
		 */
		if (dup2(p[1], 3) < 0 || close_from(4) < 0)
			_exit(1);
		user_child(root, uid, gid, 3);
	}
	close(p[1]);
	u->n++;
	*out = l;
	return 0;
}

static void user_link_close(struct unit_user_link *l)
{
	int status;

	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	while (l->pid > 0 && waitpid(l->pid, &status, 0) < 0 && errno == EINTR)
		;
	l->pid = 0;
}

int unit_users_warm(struct unit_users *u, const char *root, uid_t uid)
{
	struct unit_user_link *l;
	char err[256];
	int r;

	if ((r = dl_libsystemd(err, sizeof(err))) < 0)
		return r;
	return user_link(u, root, uid, &l);
}

static int user_send(struct unit_users *u, const char *root, uid_t uid, struct user_msg *m,
		     char *err, size_t errlen)
{
	struct unit_user_link *l = NULL;
	struct user_msg old;
	ssize_t k;
	int r;

	if ((r = dl_libsystemd(err, errlen)) < 0)
		return r;
	if ((r = user_link(u, root, uid, &l)) < 0) {
		snprintf(err, errlen, "cannot start a call as uid %u: %s", (unsigned int)uid,
			 strerror(-r));
		return r;
	}
	/* the answer to a call a signal cut short comes first */
	while (l->pending) {
		if ((k = recv(l->fd, &old, sizeof(old), 0)) < 0 && errno == EINTR)
			continue;
		l->pending = false;
	}
	if (send(l->fd, m, sizeof(*m), MSG_NOSIGNAL) != sizeof(*m)) {
		user_link_close(l);
		snprintf(err, errlen, "the call as uid %u gave no answer", (unsigned int)uid);
		return -EPIPE;
	}
	l->pending = true;
	return 0;
}

static int user_recv(struct unit_users *u, uid_t uid, struct user_msg *m, char *err, size_t errlen)
{
	struct unit_user_link *l = NULL;
	ssize_t k;

	for (size_t i = 0; i < u->n && !l; i++)
		if (u->v[i].uid == uid && u->v[i].fd >= 0 && u->v[i].pending)
			l = &u->v[i];
	if (!l)
		return -EINVAL;
	if ((k = recv(l->fd, m, sizeof(*m), 0)) < 0 && errno == EINTR) {
		/* the jobs go on; their answer is read before the next call */
		snprintf(err, errlen, "interrupted");
		return -EINTR;
	}
	l->pending = false;
	if (k != sizeof(*m)) {
		user_link_close(l);
		snprintf(err, errlen, "the call as uid %u gave no answer", (unsigned int)uid);
		return -EPIPE;
	}
	/* its strings end within their fields, whatever the helper wrote */
	m->err[sizeof(m->err) - 1] = '\0';
	for (size_t i = 0; i < UNIT_BATCH_MAX; i++) {
		struct unit_job *j = &m->jobs[i];

		j->err[sizeof(j->err) - 1] = '\0';
		j->ans.sockets[sizeof(j->ans.sockets) - 1] = '\0';
		j->ans.path[sizeof(j->ans.path) - 1] = '\0';
	}
	return 0;
}

int unit_user_op(struct unit_users *u, const char *root, uid_t uid, enum unit_op op,
		 const char *unit, uint64_t timeout_us, char *err, size_t errlen)
{
	struct unit_job j = { 0 };
	int r;

	if (strlen(unit) >= sizeof(j.unit))
		return -ENAMETOOLONG;
	snprintf(j.unit, sizeof(j.unit), "%s", unit);
	if ((r = unit_user_jobs_begin(u, root, uid, op, &j, 1, timeout_us, err, errlen)) < 0)
		return r;
	if ((r = unit_user_jobs_end(u, uid, &j, 1)) < 0)
		snprintf(err, errlen, "%s", j.err);
	return r;
}

int unit_user_jobs_begin(struct unit_users *u, const char *root, uid_t uid, enum unit_op op,
			 const struct unit_job *jobs, size_t n, uint64_t timeout_us, char *err,
			 size_t errlen)
{
	struct user_msg m = { .op = op, .timeout_us = timeout_us, .n = n };

	if (n < 1 || n > UNIT_BATCH_MAX)
		return -EINVAL;
	memcpy(m.jobs, jobs, n * sizeof(*jobs));
	return user_send(u, root, uid, &m, err, errlen);
}

int unit_user_jobs_end(struct unit_users *u, uid_t uid, struct unit_job *jobs, size_t n)
{
	struct user_msg m;
	char err[256];
	int r;

	if ((r = user_recv(u, uid, &m, err, sizeof(err))) == 0 && m.n != n) {
		snprintf(err, sizeof(err), "the call as uid %u gave another answer",
			 (unsigned int)uid);
		r = -EPROTO;
	}
	if (r < 0) {
		unit_jobs_fail(jobs, n, r, err);
		return r;
	}
	for (size_t i = 0; i < n; i++) {
		jobs[i].r = m.jobs[i].r;
		jobs[i].ran = m.jobs[i].ran;
		jobs[i].ans = m.jobs[i].ans;
		memcpy(jobs[i].err, m.jobs[i].err, sizeof(jobs[i].err));
	}
	return m.r;
}

void unit_users_close(struct unit_users *u)
{
	/* every socket closed before the first wait: no helper waits for another */
	for (size_t i = 0; i < u->n; i++)
		if (u->v[i].fd >= 0) {
			close(u->v[i].fd);
			u->v[i].fd = -1;
		}
	for (size_t i = 0; i < u->n; i++)
		user_link_close(&u->v[i]);
	free(u->v);
	*u = (struct unit_users){ 0 };
}

/* a property of dest's object at path, its value's variant of type entered in *reply; 0 or -errno */
static int prop_get(sd_bus *bus, const char *dest, const char *path, const char *iface,
		    const char *prop, const char *type, sd_bus_message **reply)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	int r;

	r = sym_sd_bus_call_method(bus, dest, path, "org.freedesktop.DBus.Properties", "Get", &e,
				   reply, "ss", iface, prop);
	sym_sd_bus_error_free(&e);
	return r < 0 ? r : sym_sd_bus_message_enter_container(*reply, 'v', type);
}

int unit_path(sd_bus *bus, const char *unit, char *path, size_t len)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const char *p;
	int r;

	r = sym_sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, "GetUnit", &e, &reply, "s",
				   unit);
	if (r >= 0 && (r = sym_sd_bus_message_read(reply, "o", &p)) >= 0)
		snprintf(path, len, "%s", p);
	sym_sd_bus_message_unref(reply);
	sym_sd_bus_error_free(&e);
	return r < 0 ? r : 0;
}

int unit_cgroup_dir(sd_bus *bus, const char *root, const char *unit, char *dir, size_t len)
{
	static const char *const bases[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified",
					     "/sys/fs/cgroup/systemd" };
	sd_bus_message *reply = NULL;
	const char *cg = NULL;
	char procs[4200], *path = NULL;
	size_t i = 0;
	int r;

	/* the unit's object path from its name (an alias's is its unit's): one round trip */
	if ((r = sym_sd_bus_path_encode(SD_PATH "/unit", unit, &path)) < 0)
		return r;
	r = prop_get(bus, SD_DEST, path, "org.freedesktop.systemd1.Service", "ControlGroup", "s",
		     &reply);
	free(path);
	if (r >= 0)
		r = sym_sd_bus_message_read(reply, "s", &cg);
	/* "" while no process runs; never the root group */
	if (r >= 0 && (!cg || cg[0] != '/' || !cg[1] || strstr(cg, "/..")))
		r = -ENOENT;
	for (; r >= 0 && i < ARRAY_SIZE(bases); i++) {
		snprintf(dir, len, "%s%s%s", root, bases[i], cg);
		snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
		if (!access(procs, R_OK))
			break;
	}
	if (r >= 0 && i == ARRAY_SIZE(bases))
		r = -ENOENT; /* no hierarchy shows it */
	sym_sd_bus_message_unref(reply);
	return r < 0 ? r : 0;
}

#define LOGIN_DEST "org.freedesktop.login1"

int user_graphical(sd_bus *bus, uid_t uid)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const char *s, *id;
	char path[256] = "";
	int r;

	r = sym_sd_bus_call_method(bus, LOGIN_DEST, "/org/freedesktop/login1",
				   "org.freedesktop.login1.Manager", "GetUser", &e, &reply, "u",
				   (uint32_t)uid);
	/* not known to logind: no session at all (a lingering manager has none) */
	if (r < 0 && sym_sd_bus_error_has_name(&e, "org.freedesktop.login1.NoSuchUser"))
		r = 0;
	else if (r >= 0 && (r = sym_sd_bus_message_read(reply, "o", &s)) >= 0)
		r = snprintf(path, sizeof(path), "%s", s) < (int)sizeof(path) ? 1 : -ENAMETOOLONG;
	sym_sd_bus_error_free(&e);
	reply = sym_sd_bus_message_unref(reply);
	/* the session logind elects as the user's display, a graphical one first */
	if (r > 0 &&
	    (r = prop_get(bus, LOGIN_DEST, path, "org.freedesktop.login1.User", "Display", "(so)",
			  &reply)) >= 0 &&
	    (r = sym_sd_bus_message_read(reply, "(so)", &id, &s)) >= 0)
		r = !id[0]							? 0
		    : snprintf(path, sizeof(path), "%s", s) < (int)sizeof(path) ? 1
										: -ENAMETOOLONG;
	reply = sym_sd_bus_message_unref(reply);
	if (r > 0 &&
	    (r = prop_get(bus, LOGIN_DEST, path, "org.freedesktop.login1.Session", "Type", "s",
			  &reply)) >= 0 &&
	    (r = sym_sd_bus_message_read(reply, "s", &s)) >= 0)
		r = !strcmp(s, "x11") || !strcmp(s, "wayland") || !strcmp(s, "mir");
	sym_sd_bus_message_unref(reply);
	return r;
}

/* a service's own groups below its top: deeper ones are not read */
#define CGROUP_DEPTH_MAX 8

static int cgroup_pids_at(const char *dir, uint32_t **pids, size_t *n, int depth)
{
	char path[4200], line[32];
	struct dirent *de;
	FILE *f;
	DIR *d;
	int r = 0;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	if (!(f = fopen(path, "re")))
		return -errno;
	while (!r && fgets(line, sizeof(line), f)) {
		char *end;
		unsigned long pid = strtoul(line, &end, 10);

		if (end == line || pid > UINT32_MAX)
			continue;
		if (!(r = ARRAY_GROW(*pids, *n)))
			(*pids)[(*n)++] = (uint32_t)pid;
	}
	fclose(f);
	if (r || depth == CGROUP_DEPTH_MAX || !(d = opendir(dir)))
		return r;
	while (!r && (de = readdir(d)))
		if (de->d_type == DT_DIR && de->d_name[0] != '.' &&
		    snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) < (int)sizeof(path))
			r = cgroup_pids_at(path, pids, n, depth + 1) == -ENOMEM ? -ENOMEM : 0;
	closedir(d);
	return r;
}

int cgroup_pids(const char *dir, uint32_t **pids, size_t *n)
{
	return cgroup_pids_at(dir, pids, n, 0);
}

void units_disconnect(sd_bus *bus)
{
	if (bus)
		sym_sd_bus_flush_close_unref(bus);
}

static int bus_fail(int r, const sd_bus_error *e, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s", e && e->message ? e->message : strerror(-r));
	/* systemd's messages end in a full stop; ours go on after them */
	size_t n = strlen(err);
	if (n && err[n - 1] == '.')
		err[n - 1] = '\0';
	return r < 0 ? r : -EIO;
}

/*
 * One call of a batch of lookups in flight: GetUnit (the unit's path), or
 * the Get of one of its properties. Its reply, an error or a timeout, each
 * comes once to on_lookup_reply.
 */
enum lookup_ask {
	ASK_PATH,
	ASK_LOAD, /* the path from LoadUnit */
	ASK_STATE,
	ASK_CAN_STOP,
	ASK_SLICE,
	ASK_PART_OF,
	ASK_TRIGGERS,
};

struct lookup_call {
	struct unit_job *q;
	enum lookup_ask ask;
	sd_bus_slot *slot;
	bool done;
	size_t *pending;
	char **strv; /* ASK_TRIGGERS's or ASK_PART_OF's answer, for the caller to read */
};

static int on_lookup_reply(sd_bus_message *m, void *data, sd_bus_error *ret)
{
	struct lookup_call *c = data;
	struct unit_job *q = c->q;
	const sd_bus_error *e = sym_sd_bus_message_get_error(m);
	const char *s;
	int r = 0, b;

	(*c->pending)--;
	c->done = true;
	if (q->r < 0)
		return 0;
	/* what makes a unit a session's is a hint: a systemd without it fails nothing */
	if (e && (c->ask == ASK_SLICE || c->ask == ASK_PART_OF))
		return 0;
	if (e) {
		int en = sym_sd_bus_message_get_errno(m);

		/* not loaded: nothing runs it, nothing to stop or to start again */
		if (c->ask == ASK_PATH &&
		    sym_sd_bus_error_has_name(e, "org.freedesktop.systemd1.NoSuchUnit"))
			return 0;
		q->r = bus_fail(en > 0 ? -en : -EIO, e, q->err, sizeof(q->err));
		return 0;
	}
	switch (c->ask) {
	case ASK_PATH:
	case ASK_LOAD:
		if ((r = sym_sd_bus_message_read(m, "o", &s)) >= 0)
			snprintf(q->ans.path, sizeof(q->ans.path), "%s", s);
		break;
	case ASK_STATE:
		if ((r = sym_sd_bus_message_read(m, "v", "s", &s)) >= 0)
			q->ans.active = !strcmp(s, "active") || !strcmp(s, "activating") ||
					!strcmp(s, "reloading");
		break;
	case ASK_CAN_STOP:
		if ((r = sym_sd_bus_message_read(m, "v", "b", &b)) >= 0)
			q->ans.refuses_stop = !b;
		break;
	case ASK_SLICE:
		if ((r = sym_sd_bus_message_read(m, "v", "s", &s)) >= 0 &&
		    !strcmp(s, "session.slice"))
			q->ans.session = true;
		break;
	case ASK_PART_OF:
	case ASK_TRIGGERS:
		if ((r = sym_sd_bus_message_enter_container(m, 'v', "as")) >= 0)
			r = sym_sd_bus_message_read_strv(m, &c->strv);
		break;
	}
	if (r < 0)
		q->r = bus_fail(r, NULL, q->err, sizeof(q->err));
	return 0;
}

/* one call of the batch sent: its reply comes to on_lookup_reply */
static void lookup_send(sd_bus *bus, struct lookup_call *c, struct unit_job *q, enum lookup_ask ask,
			size_t *pending)
{
	static const char *const props[] = {
		[ASK_STATE] = "ActiveState", [ASK_CAN_STOP] = "CanStop",     [ASK_SLICE] = "Slice",
		[ASK_PART_OF] = "PartOf",    [ASK_TRIGGERS] = "TriggeredBy",
	};
	/* Slice is a property of the unit's type: a service's, a socket's */
	const char *iface = ask != ASK_SLICE ? "org.freedesktop.systemd1.Unit"
			    : str_ends_with(q->unit, ".socket")
				    ? "org.freedesktop.systemd1.Socket"
				    : "org.freedesktop.systemd1.Service";
	int r;

	*c = (struct lookup_call){ .q = q, .ask = ask, .pending = pending };
	if (ask == ASK_PATH || ask == ASK_LOAD)
		r = sym_sd_bus_call_method_async(bus, &c->slot, SD_DEST, SD_PATH, SD_MANAGER,
						 ask == ASK_LOAD ? "LoadUnit" : "GetUnit",
						 on_lookup_reply, c, "s", q->unit);
	else
		r = sym_sd_bus_call_method_async(bus, &c->slot, SD_DEST, q->ans.path,
						 "org.freedesktop.DBus.Properties", "Get",
						 on_lookup_reply, c, "ss", iface, props[ask]);
	if (r < 0)
		q->r = bus_fail(r, NULL, q->err, sizeof(q->err));
	else
		(*pending)++;
}

/* every reply to the calls in flight; on a broken bus, the calls still waiting fail */
static void lookup_wait(sd_bus *bus, struct lookup_call *c, size_t n, size_t *pending)
{
	char err[256];
	int r = 0;

	while (*pending && r >= 0) {
		if ((r = sym_sd_bus_process(bus, NULL)) == 0)
			r = sym_sd_bus_wait(bus, UINT64_MAX);
	}
	if (r < 0)
		bus_fail(r, NULL, err, sizeof(err));
	for (size_t i = 0; i < n; i++) {
		if (r < 0 && c[i].slot && !c[i].done && c[i].q->r >= 0) {
			c[i].q->r = r;
			snprintf(c[i].q->err, sizeof(c[i].q->err), "%s", err);
		}
		/* a call still in flight is dropped with its slot: no reply reaches c later */
		c[i].slot = sym_sd_bus_slot_unref(c[i].slot);
	}
}

/* q's running sockets from its TriggeredBy; -ENOBUFS when they do not fit */
static void lookup_sockets(struct unit_job *q, char **by)
{
	size_t n = 0;

	/* paths and timers start it at a time or on a file, not on a client's connection */
	for (char **s = by; s && *s && q->r >= 0; s++) {
		size_t len = strlen(*s);

		if (!str_ends_with(*s, ".socket") || !unit_name_valid(*s))
			continue;
		if (n + len + 2 > sizeof(q->ans.sockets)) {
			snprintf(q->err, sizeof(q->err), "%.200s is started by too many sockets",
				 q->unit);
			q->r = -ENOBUFS;
			break;
		}
		n += (size_t)snprintf(q->ans.sockets + n, sizeof(q->ans.sockets) - n, "%s%s",
				      n ? " " : "", *s);
	}
}

static void strv_free(char **v)
{
	for (char **s = v; s && *s; s++)
		free(*s);
	free(v);
}

void unit_lookups(sd_bus *bus, struct unit_job *q, size_t n, bool load)
{
	struct lookup_call c[5 * UNIT_BATCH_MAX];
	size_t pending = 0, k = 0;

	for (size_t i = 0; i < n; i++) {
		q[i].r = 0;
		q[i].err[0] = '\0';
		q[i].ans = (struct unit_answer){ 0 };
		q[i].unit[sizeof(q[i].unit) - 1] = '\0';
	}
	if (n > UNIT_BATCH_MAX) {
		for (size_t i = 0; i < n; i++) {
			q[i].r = -EINVAL;
			snprintf(q[i].err, sizeof(q[i].err), "more than %d units at once",
				 UNIT_BATCH_MAX);
		}
		return;
	}
	/* one round trip for every path, then one for every property asked */
	for (size_t i = 0; i < n; i++)
		lookup_send(bus, &c[k++], &q[i], load ? ASK_LOAD : ASK_PATH, &pending);
	lookup_wait(bus, c, k, &pending);
	k = 0;
	for (size_t i = 0; i < n; i++) {
		if (q[i].r < 0 || !q[i].ans.path[0])
			continue;
		lookup_send(bus, &c[k++], &q[i], ASK_STATE, &pending);
		lookup_send(bus, &c[k++], &q[i], ASK_CAN_STOP, &pending);
		/* whose it is: only for release's look at a unit that did not start */
		if (load)
			lookup_send(bus, &c[k++], &q[i], ASK_PART_OF, &pending);
		if (load &&
		    (str_ends_with(q[i].unit, ".service") || str_ends_with(q[i].unit, ".socket")))
			lookup_send(bus, &c[k++], &q[i], ASK_SLICE, &pending);
		if (str_ends_with(q[i].unit, ".service"))
			lookup_send(bus, &c[k++], &q[i], ASK_TRIGGERS, &pending);
	}
	lookup_wait(bus, c, k, &pending);
	for (size_t i = 0; i < k; i++) {
		/* a running service's sockets only: a stopped one's stay as they are */
		if (c[i].ask == ASK_TRIGGERS && c[i].q->ans.active)
			lookup_sockets(c[i].q, c[i].strv);
		for (char **t = c[i].ask == ASK_PART_OF ? c[i].strv : NULL; t && *t; t++)
			c[i].q->ans.session |= !strcmp(*t, "graphical-session.target");
		strv_free(c[i].strv);
	}
}

/* a batch's jobs as systemd named them, and how each ended */
struct job_batch {
	struct unit_job *jobs;
	char *path[UNIT_BATCH_MAX];
	char result[UNIT_BATCH_MAX][32];
	bool done[UNIT_BATCH_MAX];
	size_t n;
};

static int on_job_removed(sd_bus_message *m, void *data, sd_bus_error *e)
{
	struct job_batch *b = data;
	const char *path, *unit, *result;
	uint32_t id;

	if (sym_sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
		return 0;
	for (size_t i = 0; i < b->n; i++)
		if (b->path[i] && !b->done[i] && !strcmp(path, b->path[i])) {
			snprintf(b->result[i], sizeof(b->result[i]), "%s", result);
			b->done[i] = true;
			break;
		}
	return 0;
}

/* every job of b that has none yet (no job at all when jobs_only is false) gets r and err */
static void batch_fail(struct job_batch *b, bool jobs_only, int r, const char *err)
{
	for (size_t i = 0; i < b->n; i++)
		if (!b->jobs[i].r && !b->done[i] && (b->path[i] || !jobs_only)) {
			b->jobs[i].r = r;
			snprintf(b->jobs[i].err, sizeof(b->jobs[i].err), "%s", err);
		}
}

static bool batch_waits(const struct job_batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->path[i] && !b->done[i] && !b->jobs[i].r)
			return true;
	return false;
}

int unit_jobs(sd_bus *bus, enum unit_op op, struct unit_job *jobs, size_t n, uint64_t timeout_us)
{
	const char *method = op == UNIT_OP_STOP ? "StopUnit" : "StartUnit";
	struct job_batch b = { .jobs = jobs, .n = n };
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_slot *slot = NULL;
	uint64_t deadline = now_us() + timeout_us;
	char err[256];
	int r;

	if (n > UNIT_BATCH_MAX || (op != UNIT_OP_STOP && op != UNIT_OP_START))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		jobs[i].r = 0;
		jobs[i].ran = false;
		jobs[i].err[0] = '\0';
	}
	/* match before the calls: a fast job's signal must not be missed */
	r = sym_sd_bus_match_signal(bus, &slot, SD_DEST, SD_PATH, SD_MANAGER, "JobRemoved",
				    on_job_removed, &b);
	if (r >= 0) {
		r = sym_sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, "Subscribe", &e, NULL,
					   NULL);
		if (r < 0 &&
		    sym_sd_bus_error_has_name(&e, "org.freedesktop.systemd1.AlreadySubscribed"))
			r = 0;
	}
	if (r < 0) {
		bus_fail(r, &e, err, sizeof(err));
		batch_fail(&b, false, r, err);
		goto out;
	}
	/* every job queued before the first is waited for: systemd runs them side by side */
	for (size_t i = 0; i < n; i++) {
		sd_bus_message *reply = NULL;
		const char *job;

		sym_sd_bus_error_free(&e);
		r = sym_sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, method, &e, &reply,
					   "ss", jobs[i].unit, "replace");
		if (r < 0)
			jobs[i].r = bus_fail(r, &e, jobs[i].err, sizeof(jobs[i].err));
		else if ((r = sym_sd_bus_message_read(reply, "o", &job)) < 0 ||
			 !(b.path[i] = strdup(job)))
			jobs[i].r = bus_fail(r < 0 ? r : -ENOMEM, NULL, jobs[i].err,
					     sizeof(jobs[i].err));
		sym_sd_bus_message_unref(reply);
	}
	while (batch_waits(&b)) {
		uint64_t now = now_us();

		r = sym_sd_bus_process(bus, NULL);
		if (r > 0)
			continue;
		if (r == 0 && now >= deadline) {
			snprintf(err, sizeof(err), "its job did not finish in %llu s",
				 (unsigned long long)(timeout_us / 1000000));
			r = -ETIMEDOUT;
		} else if (r == 0 && (r = sym_sd_bus_wait(bus, deadline - now)) >= 0) {
			continue;
		} else {
			bus_fail(r, NULL, err, sizeof(err));
		}
		batch_fail(&b, true, r, err);
	}
	for (size_t i = 0; i < n; i++)
		if (b.done[i] && !jobs[i].r && strcmp(b.result[i], "done")) {
			/* failed, timeout, canceled, dependency: systemd's own word for it */
			snprintf(jobs[i].err, sizeof(jobs[i].err),
				 "its job ended '%s' (journalctl -u %.100s says why)", b.result[i],
				 jobs[i].unit);
			jobs[i].r = -EIO;
			jobs[i].ran = true;
		}
out:
	r = 0;
	for (size_t i = 0; i < n; i++) {
		free(b.path[i]);
		if (!r)
			r = jobs[i].r;
	}
	sym_sd_bus_slot_unref(slot);
	sym_sd_bus_error_free(&e);
	return r;
}

static int job_one(sd_bus *bus, enum unit_op op, const char *unit, uint64_t timeout_us, char *err,
		   size_t errlen)
{
	struct unit_job j;
	int r;

	if (strlen(unit) >= sizeof(j.unit))
		return -ENAMETOOLONG;
	snprintf(j.unit, sizeof(j.unit), "%s", unit);
	r = unit_jobs(bus, op, &j, 1, timeout_us);
	if (r < 0)
		snprintf(err, errlen, "%s", j.err);
	return r;
}

int unit_stop(sd_bus *bus, const char *unit, uint64_t timeout_us, char *err, size_t errlen)
{
	return job_one(bus, UNIT_OP_STOP, unit, timeout_us, err, errlen);
}

int unit_start(sd_bus *bus, const char *unit, uint64_t timeout_us, char *err, size_t errlen)
{
	return job_one(bus, UNIT_OP_START, unit, timeout_us, err, errlen);
}
