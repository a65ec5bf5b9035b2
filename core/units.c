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

/* a request to a user's helper: one call to its manager */
struct user_req {
	enum unit_op op;
	uint64_t timeout_us;
	char unit[UNIT_NAME_MAX + 1];
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

static int user_call(sd_bus *bus, const struct user_req *q, struct unit_op_result *res)
{
	if (q->op == UNIT_OP_IS_ACTIVE)
		return unit_is_active(bus, q->unit, &res->ans.active, res->err, sizeof(res->err));
	if (q->op == UNIT_OP_SOCKETS)
		return unit_sockets(bus, q->unit, res->ans.sockets, sizeof(res->ans.sockets),
				    res->err, sizeof(res->err));
	return (q->op == UNIT_OP_STOP ? unit_stop : unit_start)(bus, q->unit, q->timeout_us,
								res->err, sizeof(res->err));
}

/*
 * The helper, a child that is the user: its own credentials, one connection
 * to its bus (made again when the bus went away, as at a new login), and one
 * answer per request on fd until we close our end.
 */
static void user_child(const char *root, uid_t uid, gid_t gid, int fd)
{
	struct user_req q;
	sd_bus *bus = NULL;
	int e = 0;

	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
		e = -errno;
	for (;;) {
		struct unit_op_result res = { 0 };
		ssize_t k = recv(fd, &q, sizeof(q), 0);

		if (k < 0 && errno == EINTR)
			continue;
		if (k != sizeof(q))
			break;
		q.unit[sizeof(q.unit) - 1] = '\0';
		if (e < 0) {
			res.r = e;
			snprintf(res.err, sizeof(res.err), "cannot become uid %u: %s",
				 (unsigned int)uid, strerror(-e));
		} else {
			for (int tries = 0; tries < 2; tries++) {
				if (!bus && (res.r = user_bus(root, uid, &bus, res.err,
							      sizeof(res.err))) < 0)
					break;
				res.r = user_call(bus, &q, &res);
				if (res.r != -ENOTCONN && res.r != -ECONNRESET && res.r != -EPIPE)
					break;
				units_disconnect(bus);
				bus = NULL;
			}
		}
		if (send(fd, &res, sizeof(res), MSG_NOSIGNAL) != sizeof(res))
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
		close(p[0]);
		user_child(root, uid, gid, p[1]);
	}
	close(p[1]);
	u->n++;
	*out = l;
	return 0;
}

static void user_link_close(struct unit_user_link *l)
{
	int status;

	if (l->fd < 0)
		return;
	close(l->fd);
	l->fd = -1;
	while (waitpid(l->pid, &status, 0) < 0 && errno == EINTR)
		;
}

int unit_user_op(struct unit_users *u, const char *root, uid_t uid, enum unit_op op,
		 const char *unit, uint64_t timeout_us, struct unit_answer *ans, char *err,
		 size_t errlen)
{
	struct unit_op_result res = { .r = -EPIPE };
	struct user_req q = { .op = op, .timeout_us = timeout_us };
	struct unit_user_link *l = NULL;
	ssize_t k;
	int r;

	if ((r = dl_libsystemd(err, errlen)) < 0)
		return r;
	if (strlen(unit) >= sizeof(q.unit))
		return -ENAMETOOLONG;
	snprintf(q.unit, sizeof(q.unit), "%s", unit);
	if ((r = user_link(u, root, uid, &l)) < 0) {
		snprintf(err, errlen, "cannot start a call as uid %u: %s", (unsigned int)uid,
			 strerror(-r));
		return r;
	}
	/* the answer to a call a signal interrupted comes first */
	while (l->pending) {
		if ((k = recv(l->fd, &res, sizeof(res), 0)) < 0 && errno == EINTR)
			continue;
		l->pending = false;
	}
	if (send(l->fd, &q, sizeof(q), MSG_NOSIGNAL) != sizeof(q)) {
		user_link_close(l);
		snprintf(err, errlen, "the call as uid %u gave no answer", (unsigned int)uid);
		return -EPIPE;
	}
	if ((k = recv(l->fd, &res, sizeof(res), 0)) < 0 && errno == EINTR) {
		/* the job goes on; its answer is read before the next call */
		l->pending = true;
		snprintf(err, errlen, "interrupted");
		return -EINTR;
	}
	if (k != sizeof(res)) {
		user_link_close(l);
		snprintf(err, errlen, "the call as uid %u gave no answer", (unsigned int)uid);
		return -EPIPE;
	}
	res.err[sizeof(res.err) - 1] = '\0';
	res.ans.sockets[sizeof(res.ans.sockets) - 1] = '\0';
	if (ans)
		*ans = res.ans;
	if (res.r < 0)
		snprintf(err, errlen, "%s", res.err);
	return res.r;
}

void unit_users_close(struct unit_users *u)
{
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

int unit_is_active(sd_bus *bus, const char *unit, bool *active, char *err, size_t errlen)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	char *state = NULL, path[512];
	int r;

	*active = false;
	if ((r = loaded_path(bus, unit, path, sizeof(path), err, errlen)) < 0 || !path[0])
		return r;
	r = sym_sd_bus_get_property_string(bus, SD_DEST, path, "org.freedesktop.systemd1.Unit",
					   "ActiveState", &e, &state);
	if (r < 0) {
		r = bus_fail(r, &e, err, errlen);
		goto out;
	}
	*active = !strcmp(state, "active") || !strcmp(state, "activating") ||
		  !strcmp(state, "reloading");
	r = 0;
out:
	free(state);
	sym_sd_bus_error_free(&e);
	return r;
}

int unit_sockets(sd_bus *bus, const char *unit, char *names, size_t len, char *err, size_t errlen)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	char **by = NULL, path[512];
	size_t n = 0;
	int r;

	names[0] = '\0';
	if ((r = loaded_path(bus, unit, path, sizeof(path), err, errlen)) < 0 || !path[0])
		return r;
	r = sym_sd_bus_get_property_strv(bus, SD_DEST, path, "org.freedesktop.systemd1.Unit",
					 "TriggeredBy", &e, &by);
	if (r < 0) {
		r = bus_fail(r, &e, err, errlen);
		goto out;
	}
	/* paths and timers start it at a time or on a file, not on a client's connection */
	r = 0;
	for (char **s = by; s && *s; s++) {
		size_t k = strlen(*s);

		if (k < 7 || strcmp(*s + k - 7, ".socket") || !unit_name_valid(*s))
			continue;
		if (n + k + 2 > len) {
			snprintf(err, errlen, "%s is started by too many sockets", unit);
			r = -ENOBUFS;
			goto out;
		}
		n += (size_t)snprintf(names + n, len - n, "%s%s", n ? " " : "", *s);
	}
out:
	for (char **s = by; s && *s; s++)
		free(*s);
	free(by);
	sym_sd_bus_error_free(&e);
	return r;
}

struct job_wait {
	char *job;
	char result[32];
	bool done;
};

static int on_job_removed(sd_bus_message *m, void *data, sd_bus_error *e)
{
	struct job_wait *w = data;
	const char *path, *unit, *result;
	uint32_t id;

	if (sym_sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
		return 0;
	if (w->job && !strcmp(path, w->job)) {
		snprintf(w->result, sizeof(w->result), "%s", result);
		w->done = true;
	}
	return 0;
}

static int job_run(sd_bus *bus, const char *method, const char *unit, uint64_t timeout_us,
		   char *err, size_t errlen)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	sd_bus_slot *slot = NULL;
	struct job_wait w = { 0 };
	uint64_t deadline = now_us() + timeout_us;
	const char *job;
	int r;

	/* match before the call: a fast job's signal must not be missed */
	r = sym_sd_bus_match_signal(bus, &slot, SD_DEST, SD_PATH, SD_MANAGER, "JobRemoved",
				    on_job_removed, &w);
	if (r < 0) {
		r = bus_fail(r, NULL, err, errlen);
		goto out;
	}
	r = sym_sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, "Subscribe", &e, NULL, NULL);
	if (r < 0 && !sym_sd_bus_error_has_name(&e, "org.freedesktop.systemd1.AlreadySubscribed")) {
		r = bus_fail(r, &e, err, errlen);
		goto out;
	}
	sym_sd_bus_error_free(&e);
	r = sym_sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, method, &e, &reply, "ss",
				   unit, "replace");
	if (r < 0) {
		r = bus_fail(r, &e, err, errlen);
		goto out;
	}
	if ((r = sym_sd_bus_message_read(reply, "o", &job)) < 0 || !(w.job = strdup(job))) {
		r = bus_fail(r < 0 ? r : -ENOMEM, NULL, err, errlen);
		goto out;
	}
	while (!w.done) {
		uint64_t now = now_us();

		r = sym_sd_bus_process(bus, NULL);
		if (r < 0) {
			r = bus_fail(r, NULL, err, errlen);
			goto out;
		}
		if (r > 0)
			continue;
		if (now >= deadline) {
			snprintf(err, errlen, "its job did not finish in %llu s",
				 (unsigned long long)(timeout_us / 1000000));
			r = -ETIMEDOUT;
			goto out;
		}
		if ((r = sym_sd_bus_wait(bus, deadline - now)) < 0) {
			r = bus_fail(r, NULL, err, errlen);
			goto out;
		}
	}
	if (strcmp(w.result, "done")) {
		/* failed, timeout, canceled, dependency: systemd's own word for it */
		snprintf(err, errlen, "its job ended '%s' (journalctl -u %s says why)", w.result,
			 unit);
		r = -EIO;
		goto out;
	}
	r = 0;
out:
	free(w.job);
	sym_sd_bus_slot_unref(slot);
	sym_sd_bus_message_unref(reply);
	sym_sd_bus_error_free(&e);
	return r;
}

int unit_stop(sd_bus *bus, const char *unit, uint64_t timeout_us, char *err, size_t errlen)
{
	return job_run(bus, "StopUnit", unit, timeout_us, err, errlen);
}

int unit_start(sd_bus *bus, const char *unit, uint64_t timeout_us, char *err, size_t errlen)
{
	return job_run(bus, "StartUnit", unit, timeout_us, err, errlen);
}
