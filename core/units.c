// SPDX-License-Identifier: GPL-2.0-or-later
/* systemd's Manager API, the way systemctl uses it: Subscribe, the job, JobRemoved. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "core/dl.h"
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
		if (errno || end == spec + 5 || *end != ':' || u >= 0x7fffffff || spec[5] == '-')
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
 * a lookup of jobs[0].unit (its answer in res), or a batch of jobs.
 */
struct user_msg {
	enum unit_op op;
	uint64_t timeout_us;
	size_t n;
	struct unit_op_result res;
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
		snprintf(jobs[i].err, sizeof(jobs[i].err), "%s", err);
	}
}

/* res.r and res.err: a lookup's, or a batch's first failure; each job's own in jobs */
static void msg_fail(struct user_msg *m, int r, const char *err)
{
	m->res.r = r;
	snprintf(m->res.err, sizeof(m->res.err), "%s", err);
	unit_jobs_fail(m->jobs, m->n, r, err);
}

static int user_call(sd_bus *bus, struct user_msg *m)
{
	struct unit_op_result *res = &m->res;
	const char *unit = m->jobs[0].unit;

	if (m->op == UNIT_OP_LOOKUP)
		return unit_lookup(bus, unit, &res->ans, res->err, sizeof(res->err));
	int r = unit_jobs(bus, m->op, m->jobs, m->n, m->timeout_us);

	for (size_t i = 0; r < 0 && i < m->n; i++)
		if (m->jobs[i].r) {
			snprintf(res->err, sizeof(res->err), "%s", m->jobs[i].err);
			break;
		}
	return r;
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
	for (;;) {
		ssize_t k = recv(fd, &m, sizeof(m), 0);

		if (k < 0 && errno == EINTR)
			continue;
		if (k != sizeof(m) || m.n < 1 || m.n > UNIT_BATCH_MAX)
			break;
		m.res = (struct unit_op_result){ 0 };
		for (size_t i = 0; i < m.n; i++)
			m.jobs[i].unit[sizeof(m.jobs[i].unit) - 1] = '\0';
		if (e < 0) {
			snprintf(why, sizeof(why), "cannot become uid %u: %s", (unsigned int)uid,
				 strerror(-e));
			msg_fail(&m, e, why);
		} else {
			for (int tries = 0; tries < 2; tries++) {
				if (!bus &&
				    (m.res.r = user_bus(root, uid, &bus, why, sizeof(why))) < 0) {
					msg_fail(&m, m.res.r, why);
					break;
				}
				m.res.r = user_call(bus, &m);
				if (m.res.r != -ENOTCONN && m.res.r != -ECONNRESET &&
				    m.res.r != -EPIPE)
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
		if (dup2(p[1], 3) < 0 || close_range(4, ~0U, 0) < 0)
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
	m->res.err[sizeof(m->res.err) - 1] = '\0';
	m->res.ans.sockets[sizeof(m->res.ans.sockets) - 1] = '\0';
	for (size_t i = 0; i < UNIT_BATCH_MAX; i++)
		m->jobs[i].err[sizeof(m->jobs[i].err) - 1] = '\0';
	return 0;
}

int unit_user_op(struct unit_users *u, const char *root, uid_t uid, enum unit_op op,
		 const char *unit, uint64_t timeout_us, struct unit_answer *ans, char *err,
		 size_t errlen)
{
	struct user_msg m = { .op = op, .timeout_us = timeout_us, .n = 1 };
	int r;

	if (strlen(unit) >= sizeof(m.jobs[0].unit))
		return -ENAMETOOLONG;
	snprintf(m.jobs[0].unit, sizeof(m.jobs[0].unit), "%s", unit);
	if ((r = user_send(u, root, uid, &m, err, errlen)) < 0 ||
	    (r = user_recv(u, uid, &m, err, errlen)) < 0)
		return r;
	if (ans)
		*ans = m.res.ans;
	if (m.res.r < 0)
		snprintf(err, errlen, "%s", m.res.err);
	return m.res.r;
}

int unit_user_jobs_begin(struct unit_users *u, const char *root, uid_t uid, enum unit_op op,
			 const struct unit_job *jobs, size_t n, uint64_t timeout_us, char *err,
			 size_t errlen)
{
	struct user_msg m = { .op = op, .timeout_us = timeout_us, .n = n };

	if (n < 1 || n > UNIT_BATCH_MAX || (op != UNIT_OP_STOP && op != UNIT_OP_START))
		return -EINVAL;
	memcpy(m.jobs, jobs, n * sizeof(*jobs));
	return user_send(u, root, uid, &m, err, errlen);
}

int unit_user_jobs_end(struct unit_users *u, uid_t uid, struct unit_job *jobs, size_t n)
{
	struct user_msg m;
	char err[256];
	int r;

	if ((r = user_recv(u, uid, &m, err, sizeof(err))) < 0) {
		unit_jobs_fail(jobs, n, r, err);
		return r;
	}
	for (size_t i = 0; i < n && i < m.n; i++) {
		jobs[i].r = m.jobs[i].r;
		memcpy(jobs[i].err, m.jobs[i].err, sizeof(jobs[i].err));
	}
	return m.res.r;
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

/* the loaded unit's object path; 0 with path "" when it is not loaded */
static int loaded_path(sd_bus *bus, const char *unit, char *path, size_t len, char *err,
		       size_t errlen)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const char *p;
	int r;

	path[0] = '\0';
	r = sym_sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, "GetUnit", &e, &reply, "s",
				   unit);
	if (r < 0) {
		/* not loaded: nothing runs it, nothing to stop or to start again */
		if (sym_sd_bus_error_has_name(&e, "org.freedesktop.systemd1.NoSuchUnit"))
			r = 0;
		else
			r = bus_fail(r, &e, err, errlen);
	} else if ((r = sym_sd_bus_message_read(reply, "o", &p)) < 0) {
		r = bus_fail(r, NULL, err, errlen);
	} else {
		snprintf(path, len, "%s", p);
		r = 0;
	}
	sym_sd_bus_message_unref(reply);
	sym_sd_bus_error_free(&e);
	return r;
}

int unit_lookup(sd_bus *bus, const char *unit, struct unit_answer *ans, char *err, size_t errlen)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	char *state = NULL, **by = NULL, path[512];
	size_t n = 0, k = strlen(unit);
	int r;

	ans->active = false;
	ans->sockets[0] = '\0';
	if ((r = loaded_path(bus, unit, path, sizeof(path), err, errlen)) < 0 || !path[0])
		return r;
	r = sym_sd_bus_get_property_string(bus, SD_DEST, path, "org.freedesktop.systemd1.Unit",
					   "ActiveState", &e, &state);
	if (r < 0) {
		r = bus_fail(r, &e, err, errlen);
		goto out;
	}
	ans->active = !strcmp(state, "active") || !strcmp(state, "activating") ||
		      !strcmp(state, "reloading");
	r = 0;
	if (!ans->active || k < 8 || strcmp(unit + k - 8, ".service"))
		goto out;
	r = sym_sd_bus_get_property_strv(bus, SD_DEST, path, "org.freedesktop.systemd1.Unit",
					 "TriggeredBy", &e, &by);
	if (r < 0) {
		r = bus_fail(r, &e, err, errlen);
		goto out;
	}
	/* paths and timers start it at a time or on a file, not on a client's connection */
	r = 0;
	for (char **s = by; s && *s; s++) {
		size_t len = strlen(*s);

		if (len < 7 || strcmp(*s + len - 7, ".socket") || !unit_name_valid(*s))
			continue;
		if (n + len + 2 > sizeof(ans->sockets)) {
			snprintf(err, errlen, "%s is started by too many sockets", unit);
			r = -ENOBUFS;
			goto out;
		}
		n += (size_t)snprintf(ans->sockets + n, sizeof(ans->sockets) - n, "%s%s",
				      n ? " " : "", *s);
	}
out:
	free(state);
	for (char **s = by; s && *s; s++)
		free(*s);
	free(by);
	sym_sd_bus_error_free(&e);
	return r;
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
