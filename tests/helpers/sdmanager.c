// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A stand-in for systemd's manager on a private bus, for the fixture tier:
 * it owns org.freedesktop.systemd1 and answers the calls core/units.c makes
 * the way systemd does. GetUnit gives the unit's object path, or the error
 * org.freedesktop.systemd1.NoSuchUnit for a unit that is not loaded;
 * LoadUnit gives a path for any name; the unit's ActiveState is a property
 * of org.freedesktop.systemd1.Unit; StopUnit and StartUnit return a job's
 * path and then, once the reply is out and only to a bus where someone
 * called Subscribe, as systemd does, emit JobRemoved with the result "done"
 * (the unit is then inactive or active) or "failed".
 *
 * The units are files in DIR/units, named as the unit, holding one line:
 * its ActiveState, then any of the words fail-stop, fail-start (that job
 * ends "failed"), assert-start (that job ends "assert", and the unit is
 * then "unloaded": GetUnit says NoSuchUnit, LoadUnit loads it again, as
 * systemd lets go of an inactive unit nothing refers to), refuse-stop (StopUnit is refused at once with
 * org.freedesktop.systemd1.OperationRefused, as for RefuseManualStop=yes,
 * and its CanStop property is false; true without the word),
 * slow-stop (the stop job takes 2 s; a StartUnit in the meantime replaces
 * it, which ends it "canceled", as systemd's mode "replace" does) and
 * triggered-by=NAME (NAME, a socket, is in its TriggeredBy property; one
 * word per trigger) and cgroup=PATH (its org.freedesktop.systemd1.Service
 * ControlGroup, "" without it, as for a unit with no process), slice=NAME
 * (its Service's Slice, "" without it), part-of=NAME (in its PartOf; one
 * word each) or
 * alias-of=NAME (an alias such as display-manager.service: GetUnit, LoadUnit
 * and its object path give NAME's unit). A finished job writes the new state back to the file. Every method call
 * is appended to DIR/calls as "METHOD ARG...", its sender's unique name to
 * DIR/senders. It stands in for logind's GetUser, a User's Display and a
 * Session's Type too (see login_read). tests/helpers/sdmanager.sh
 * is the tests' side of it.
 *
 *   sdmanager DIR        (the bus from DBUS_SYSTEM_BUS_ADDRESS; "ready" on stdout)
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-bus.h>

#define SD_PATH "/org/freedesktop/systemd1"
#define UNIT_PREFIX SD_PATH "/unit"

static const char *dir;
static sd_bus *the_bus; /* for the sender of the call being answered */
static uint32_t next_job = 1;
static bool subscribed;

/* the one slow stop job that may be running */
static struct {
	bool on;
	uint32_t id;
	char path[64], unit[256], flags[192];
	uint64_t at;
} slow;

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void record(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void record(const char *fmt, ...)
{
	char path[PATH_MAX];
	va_list ap;
	FILE *f;

	snprintf(path, sizeof(path), "%s/calls", dir);
	if (!(f = fopen(path, "ae")))
		return;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fclose(f);
	/* and who made it, a line each in DIR/senders: one connection or many */
	sd_bus_message *m = the_bus ? sd_bus_get_current_message(the_bus) : NULL;
	const char *sender = m ? sd_bus_message_get_sender(m) : NULL;

	snprintf(path, sizeof(path), "%s/senders", dir);
	if (sender && (f = fopen(path, "ae"))) {
		fprintf(f, "%s\n", sender);
		fclose(f);
	}
}

/* the unit's file: its state and flags; false when there is none */
static bool unit_read(const char *unit, char *state, size_t len, char *flags, size_t flen)
{
	char path[PATH_MAX], line[256] = "";
	FILE *f;

	if (strchr(unit, '/') || unit[0] == '.')
		return false;
	snprintf(path, sizeof(path), "%s/units/%s", dir, unit);
	if (!(f = fopen(path, "re")))
		return false;
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	line[strcspn(line, "\n")] = '\0';
	size_t n = strcspn(line, " ");
	snprintf(state, len, "%.*s", (int)n, line);
	snprintf(flags, flen, " %s ", line + n);
	return true;
}

static void unit_write(const char *unit, const char *state, const char *flags)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/units/%s", dir, unit);
	if (!(f = fopen(path, "we")))
		return;
	/* flags keeps the spaces unit_read put around it */
	fprintf(f, "%s%.*s\n", state, (int)strlen(flags) - 1, flags);
	fclose(f);
}

/* the value of the unit's flag word "KEY=VALUE" (key with its '='), in buf; false without one */
static bool unit_word(const char *unit, const char *key, char *buf, size_t len)
{
	char state[64], flags[192], *save = NULL;
	bool found = false;

	if (!unit_read(unit, state, sizeof(state), flags, sizeof(flags)))
		return false;
	for (char *w = strtok_r(flags, " ", &save); w; w = strtok_r(NULL, " ", &save))
		if (!strncmp(w, key, strlen(key))) {
			snprintf(buf, len, "%s", w + strlen(key));
			found = true;
		}
	return found;
}

/* the unit an alias names (its flags' "alias-of=NAME"), else unit itself, in buf */
static const char *unit_resolve(const char *unit, char *buf, size_t len)
{
	if (!unit_word(unit, "alias-of=", buf, len))
		snprintf(buf, len, "%s", unit);
	return buf;
}

static int unit_path(const char *unit, char **path)
{
	return sd_bus_path_encode(UNIT_PREFIX, unit, path);
}

static int reply_path(sd_bus_message *m, const char *unit)
{
	char *path = NULL;
	int r = unit_path(unit, &path);

	if (r < 0)
		return r;
	r = sd_bus_reply_method_return(m, "o", path);
	free(path);
	return r;
}

static int get_unit(sd_bus_message *m, void *data, sd_bus_error *e)
{
	char state[64], flags[192], name[256];
	const char *unit;
	int r;

	if ((r = sd_bus_message_read(m, "s", &unit)) < 0)
		return r;
	record("GetUnit %s", unit);
	if (!unit_read(unit, state, sizeof(state), flags, sizeof(flags)) ||
	    !strcmp(state, "unloaded"))
		return sd_bus_error_setf(e, "org.freedesktop.systemd1.NoSuchUnit",
					 "Unit %s not loaded.", unit);
	return reply_path(m, unit_resolve(unit, name, sizeof(name)));
}

static int load_unit(sd_bus_message *m, void *data, sd_bus_error *e)
{
	char name[256];
	const char *unit;
	int r;

	if ((r = sd_bus_message_read(m, "s", &unit)) < 0)
		return r;
	record("LoadUnit %s", unit);
	return reply_path(m, unit_resolve(unit, name, sizeof(name)));
}

static int subscribe(sd_bus_message *m, void *data, sd_bus_error *e)
{
	record("Subscribe");
	subscribed = true;
	return sd_bus_reply_method_return(m, NULL);
}

static int job(sd_bus_message *m, sd_bus_error *e, bool start)
{
	const char *method = start ? "StartUnit" : "StopUnit", *unit, *mode, *result = "done";
	char state[64] = "inactive", flags[192] = " ", job_path[64];
	uint32_t id;
	int r;

	if ((r = sd_bus_message_read(m, "ss", &unit, &mode)) < 0)
		return r;
	record("%s %s %s", method, unit, mode);
	if (!unit_read(unit, state, sizeof(state), flags, sizeof(flags)))
		return sd_bus_error_setf(e, "org.freedesktop.systemd1.NoSuchUnit",
					 "Unit %s not found.", unit);
	if (!start && strstr(flags, " refuse-stop "))
		return sd_bus_error_setf(
			e, "org.freedesktop.systemd1.OperationRefused",
			"Operation refused, unit %s may be requested by dependency "
			"only (it is configured to refuse manual start/stop).",
			unit);
	id = next_job++;
	snprintf(job_path, sizeof(job_path), SD_PATH "/job/%u", id);
	if ((r = sd_bus_reply_method_return(m, "o", job_path)) < 0)
		return r;
	if (slow.on && !strcmp(slow.unit, unit)) {
		/* mode "replace": the running job gives way */
		record("canceled %s", unit);
		if (subscribed)
			sd_bus_emit_signal(sd_bus_message_get_bus(m), SD_PATH,
					   "org.freedesktop.systemd1.Manager", "JobRemoved", "uoss",
					   slow.id, slow.path, unit, "canceled");
		slow.on = false;
	}
	if (!start && strstr(flags, " slow-stop ")) {
		slow.on = true;
		slow.id = id;
		slow.at = now_us() + 2000000;
		snprintf(slow.path, sizeof(slow.path), "%s", job_path);
		snprintf(slow.unit, sizeof(slow.unit), "%s", unit);
		snprintf(slow.flags, sizeof(slow.flags), "%s", flags);
		return 1;
	}
	if (start && strstr(flags, " assert-start ")) {
		/* an assert that fails: the unit stays inactive, and unreferenced, systemd lets go of it */
		result = "assert";
		unit_write(unit, "unloaded", flags);
	} else if (strstr(flags, start ? " fail-start " : " fail-stop ")) {
		result = "failed";
		if (start)
			unit_write(unit, "failed", flags);
	} else {
		unit_write(unit, start ? "active" : "inactive", flags);
	}
	/* queued after the reply: the caller sees its job's path first */
	if (subscribed)
		sd_bus_emit_signal(sd_bus_message_get_bus(m), SD_PATH,
				   "org.freedesktop.systemd1.Manager", "JobRemoved", "uoss", id,
				   job_path, unit, result);
	return 1;
}

static int stop_unit(sd_bus_message *m, void *data, sd_bus_error *e)
{
	return job(m, e, false);
}

static int start_unit(sd_bus_message *m, void *data, sd_bus_error *e)
{
	return job(m, e, true);
}

static const sd_bus_vtable manager_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_METHOD("GetUnit", "s", "o", get_unit, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("LoadUnit", "s", "o", load_unit, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("StartUnit", "ss", "o", start_unit, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("StopUnit", "ss", "o", stop_unit, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("Subscribe", "", "", subscribe, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_SIGNAL("JobRemoved", "uoss", 0),
	SD_BUS_VTABLE_END
};

/* the unit objects: the name is the path's last part, decoded */
static int unit_find(sd_bus *bus, const char *path, const char *iface, void *data, void **found,
		     sd_bus_error *e)
{
	static char names[64][256];
	char *name = NULL, unit[256];
	size_t i;

	if (sd_bus_path_decode(path, UNIT_PREFIX, &name) <= 0)
		return 0;
	/* an alias's object is its unit's, as systemd's */
	unit_resolve(name, unit, sizeof(unit));
	free(name);
	/* the property getters' data: one copy per name, a handful in a test */
	for (i = 0; i < 64 && names[i][0] && strcmp(names[i], unit); i++)
		;
	if (i < 64 && !names[i][0])
		snprintf(names[i], sizeof(names[i]), "%s", unit);
	if (i == 64)
		return 0;
	*found = names[i];
	return 1;
}

static int prop_active_state(sd_bus *bus, const char *path, const char *iface, const char *prop,
			     sd_bus_message *reply, void *data, sd_bus_error *e)
{
	char state[64] = "inactive", flags[192];

	record("Get %s ActiveState", (const char *)data);
	unit_read(data, state, sizeof(state), flags, sizeof(flags));
	return sd_bus_message_append(reply, "s", strcmp(state, "unloaded") ? state : "inactive");
}

/* the values of the unit's flag words "KEY=VALUE" (key with its '='), in their order, as "as" */
static int append_words(sd_bus_message *reply, const char *unit, const char *key)
{
	char state[64], flags[192], *save = NULL;
	size_t n = strlen(key);
	int r;

	if (!unit_read(unit, state, sizeof(state), flags, sizeof(flags)))
		flags[0] = '\0';
	if ((r = sd_bus_message_open_container(reply, 'a', "s")) < 0)
		return r;
	for (char *w = strtok_r(flags, " ", &save); w; w = strtok_r(NULL, " ", &save))
		if (!strncmp(w, key, n) && (r = sd_bus_message_append(reply, "s", w + n)) < 0)
			return r;
	return sd_bus_message_close_container(reply);
}

/* the flags' "triggered-by=NAME" words */
static int prop_triggered_by(sd_bus *bus, const char *path, const char *iface, const char *prop,
			     sd_bus_message *reply, void *data, sd_bus_error *e)
{
	record("Get %s TriggeredBy", (const char *)data);
	return append_words(reply, data, "triggered-by=");
}

/* CanStop: false for a unit with the refuse-stop word, as for RefuseManualStop=yes */
static int prop_can_stop(sd_bus *bus, const char *path, const char *iface, const char *prop,
			 sd_bus_message *reply, void *data, sd_bus_error *e)
{
	char state[64], flags[192] = "";

	record("Get %s CanStop", (const char *)data);
	unit_read(data, state, sizeof(state), flags, sizeof(flags));
	return sd_bus_message_append(reply, "b", !strstr(flags, " refuse-stop "));
}

static int prop_id(sd_bus *bus, const char *path, const char *iface, const char *prop,
		   sd_bus_message *reply, void *data, sd_bus_error *e)
{
	return sd_bus_message_append(reply, "s", (const char *)data);
}

/*
 * a Service property from the unit's flag word, else "": ControlGroup
 * (cgroup=PATH; "" as systemd says of a unit with no process), Slice
 * (slice=NAME)
 */
static int prop_word(sd_bus *bus, const char *path, const char *iface, const char *prop,
		     sd_bus_message *reply, void *data, sd_bus_error *e)
{
	char v[192] = "";

	record("Get %s %s", (const char *)data, prop);
	unit_word(data, !strcmp(prop, "Slice") ? "slice=" : "cgroup=", v, sizeof(v));
	return sd_bus_message_append(reply, "s", v);
}

/* the flags' "part-of=NAME" words */
static int prop_part_of(sd_bus *bus, const char *path, const char *iface, const char *prop,
			sd_bus_message *reply, void *data, sd_bus_error *e)
{
	record("Get %s PartOf", (const char *)data);
	return append_words(reply, data, "part-of=");
}

static const sd_bus_vtable service_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_PROPERTY("ControlGroup", "s", prop_word, 0, 0),
	SD_BUS_PROPERTY("Slice", "s", prop_word, 0, 0),
	SD_BUS_VTABLE_END,
};

static const sd_bus_vtable unit_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_PROPERTY("Id", "s", prop_id, 0, 0),
	SD_BUS_PROPERTY("ActiveState", "s", prop_active_state, 0, 0),
	SD_BUS_PROPERTY("CanStop", "b", prop_can_stop, 0, 0),
	SD_BUS_PROPERTY("PartOf", "as", prop_part_of, 0, 0),
	SD_BUS_PROPERTY("TriggeredBy", "as", prop_triggered_by, 0, 0),
	SD_BUS_VTABLE_END
};

/*
 * logind, stood in for on the same bus (org.freedesktop.login1): a user it
 * knows has the file DIR/login/users/UID, holding "display=ID" when the
 * session ID is the user's Display (nothing: no session), and the session's
 * Type is the first word of DIR/login/sessions/ID. GetUser of another uid
 * is org.freedesktop.login1.NoSuchUser, as for a user with no session.
 */
#define LOGIN_PATH "/org/freedesktop/login1"

static bool login_read(const char *kind, const char *name, char *buf, size_t len)
{
	char path[PATH_MAX];
	FILE *f;

	if (strchr(name, '/') || name[0] == '.')
		return false;
	snprintf(path, sizeof(path), "%s/login/%s/%s", dir, kind, name);
	if (!(f = fopen(path, "re")))
		return false;
	if (!fgets(buf, (int)len, f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, " \n")] = '\0';
	return true;
}

static int get_user(sd_bus_message *m, void *data, sd_bus_error *e)
{
	char name[16], line[128], obj[64];
	uint32_t uid;
	int r;

	if ((r = sd_bus_message_read(m, "u", &uid)) < 0)
		return r;
	record("GetUser %u", uid);
	snprintf(name, sizeof(name), "%u", uid);
	if (!login_read("users", name, line, sizeof(line)))
		return sd_bus_error_setf(e, "org.freedesktop.login1.NoSuchUser",
					 "User ID %u is not logged in or lingering", uid);
	snprintf(obj, sizeof(obj), LOGIN_PATH "/user/_%u", uid);
	return sd_bus_reply_method_return(m, "o", obj);
}

static int prop_display(sd_bus *bus, const char *path, const char *iface, const char *prop,
			sd_bus_message *reply, void *data, sd_bus_error *e)
{
	const char *uid = strrchr(path, '_') ? strrchr(path, '_') + 1 : "";
	char line[128] = "", *obj = NULL;
	const char *id = "";
	int r;

	record("Get user %s Display", uid);
	if (login_read("users", uid, line, sizeof(line)) && !strncmp(line, "display=", 8))
		id = line + 8;
	if (!id[0])
		return sd_bus_message_append(reply, "(so)", "", "/");
	if ((r = sd_bus_path_encode(LOGIN_PATH "/session", id, &obj)) < 0)
		return r;
	r = sd_bus_message_append(reply, "(so)", id, obj);
	free(obj);
	return r;
}

static int prop_session_type(sd_bus *bus, const char *path, const char *iface, const char *prop,
			     sd_bus_message *reply, void *data, sd_bus_error *e)
{
	char type[64] = "", *id = NULL;
	int r;

	if ((r = sd_bus_path_decode(path, LOGIN_PATH "/session", &id)) <= 0)
		return r < 0 ? r : -ENOENT;
	record("Get session %s Type", id);
	if (!login_read("sessions", id, type, sizeof(type)))
		snprintf(type, sizeof(type), "unspecified");
	free(id);
	return sd_bus_message_append(reply, "s", type);
}

static const sd_bus_vtable login_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_METHOD("GetUser", "u", "o", get_user, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_VTABLE_END,
};

static const sd_bus_vtable user_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_PROPERTY("Display", "(so)", prop_display, 0, 0),
	SD_BUS_VTABLE_END,
};

static const sd_bus_vtable session_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_PROPERTY("Type", "s", prop_session_type, 0, 0),
	SD_BUS_VTABLE_END,
};

int main(int argc, char **argv)
{
	sd_bus *bus = NULL;
	int r;

	if (argc != 2) {
		fprintf(stderr, "usage: sdmanager DIR (the bus in DBUS_SYSTEM_BUS_ADDRESS)\n");
		return 2;
	}
	dir = argv[1];
	signal(SIGPIPE, SIG_IGN);
	if ((r = sd_bus_open_system(&bus)) >= 0)
		the_bus = bus;
	if (r < 0 ||
	    (r = sd_bus_add_object_vtable(bus, NULL, SD_PATH, "org.freedesktop.systemd1.Manager",
					  manager_vtable, NULL)) < 0 ||
	    (r = sd_bus_add_fallback_vtable(bus, NULL, UNIT_PREFIX, "org.freedesktop.systemd1.Unit",
					    unit_vtable, unit_find, NULL)) < 0 ||
	    (r = sd_bus_add_fallback_vtable(bus, NULL, UNIT_PREFIX,
					    "org.freedesktop.systemd1.Service", service_vtable,
					    unit_find, NULL)) < 0 ||
	    (r = sd_bus_add_object_vtable(bus, NULL, LOGIN_PATH, "org.freedesktop.login1.Manager",
					  login_vtable, NULL)) < 0 ||
	    (r = sd_bus_add_fallback_vtable(bus, NULL, LOGIN_PATH "/user",
					    "org.freedesktop.login1.User", user_vtable, NULL,
					    NULL)) < 0 ||
	    (r = sd_bus_add_fallback_vtable(bus, NULL, LOGIN_PATH "/session",
					    "org.freedesktop.login1.Session", session_vtable, NULL,
					    NULL)) < 0 ||
	    (r = sd_bus_request_name(bus, "org.freedesktop.systemd1", 0)) < 0 ||
	    (r = sd_bus_request_name(bus, "org.freedesktop.login1", 0)) < 0) {
		fprintf(stderr, "sdmanager: %s\n", strerror(-r));
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		if ((r = sd_bus_process(bus, NULL)) < 0) {
			fprintf(stderr, "sdmanager: %s\n", strerror(-r));
			return 1;
		}
		if (r > 0)
			continue;
		if (slow.on && now_us() >= slow.at) {
			slow.on = false;
			unit_write(slow.unit, "inactive", slow.flags);
			if (subscribed)
				sd_bus_emit_signal(bus, SD_PATH, "org.freedesktop.systemd1.Manager",
						   "JobRemoved", "uoss", slow.id, slow.path,
						   slow.unit, "done");
			continue;
		}
		if ((r = sd_bus_wait(bus, slow.on ? slow.at - now_us() : UINT64_MAX)) < 0 &&
		    r != -EINTR) {
			fprintf(stderr, "sdmanager: %s\n", strerror(-r));
			return 1;
		}
	}
}
