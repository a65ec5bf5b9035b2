// SPDX-License-Identifier: GPL-2.0-or-later
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "agent/log.h"
#include "shared/escape.h"

static enum log_target target = LOG_TO_STDERR;
static int verbosity = 1;  /* 0 -q: errors only; 1 default; 2 -v: debug */
static bool progress_open; /* a progress line on the terminal, not yet ended */

/* the next message starts on its own line */
static void progress_close(void)
{
	if (progress_open) {
		fputc('\n', stderr);
		progress_open = false;
	}
}

/* libbpf's own messages: its warnings at -v, its debug chatter never */
static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char msg[1024];

	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_debug("libbpf: %s", msg);
	return 0;
}

void log_setup(enum log_target t, int v)
{
	target = t;
	verbosity = v;
	libbpf_set_print(libbpf_log);
	if (t != LOG_TO_STDERR)
		openlog("vfio-agent", LOG_PID, LOG_DAEMON);
}

/*
 * The message, formatted and escaped once, here at the sink: a comm, a path
 * or a domain name in it cannot move the cursor, clear the screen of virsh
 * start's error, or forge a line of its own.
 */
#define LOG_MAX 4096
static void format_line(char *out, size_t len, const char *fmt, va_list ap)
{
	char msg[LOG_MAX];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	escape_text(msg, out, len);
}

static void emit(int prio, int min, const char *fmt, va_list ap)
{
	char line[ESCAPED_SIZE(LOG_MAX)];

	if (verbosity < min)
		return;
	format_line(line, sizeof(line), fmt, ap);
	progress_close();
	if (target != LOG_TO_STDERR) {
		syslog(prio, "%s", line);
		/*
		 * libvirt puts a failed hook's stderr in the error the user sees;
		 * with -v the hook says everything there too, for a run by hand
		 */
		if (target == LOG_TO_SYSLOG || (prio != LOG_ERR && verbosity < 2))
			return;
	}
	fprintf(stderr, "vfio-agent: %s%s\n", prio == LOG_WARNING ? "warning: " : "", line);
}

#define LOGFN(name, prio, min)            \
	void name(const char *fmt, ...)   \
	{                                 \
		va_list ap;               \
		va_start(ap, fmt);        \
		emit(prio, min, fmt, ap); \
		va_end(ap);               \
	}

LOGFN(log_error, LOG_ERR, 0)
LOGFN(log_warn, LOG_WARNING, 1)
LOGFN(log_info, LOG_INFO, 1)
LOGFN(log_debug, LOG_DEBUG, 2)

void log_progress(const char *fmt, ...)
{
	char line[ESCAPED_SIZE(LOG_MAX)];
	va_list ap;

	if (verbosity < 1)
		return;
	va_start(ap, fmt);
	if (target == LOG_TO_STDERR && isatty(STDERR_FILENO)) {
		/* one line, rewritten in place */
		format_line(line, sizeof(line), fmt, ap);
		fprintf(stderr, "\rvfio-agent: %s\033[K", line);
		fflush(stderr);
		progress_open = true;
	} else {
		emit(LOG_INFO, 1, fmt, ap);
	}
	va_end(ap);
}

void log_progress_end(void)
{
	progress_close();
}
