/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The one logger: stderr for interactive verbs, syslog in hook and daemon mode. */
#ifndef VFIO_AGENT_LOG_H
#define VFIO_AGENT_LOG_H

#include <stdbool.h>

/* LOG_TO_HOOK: syslog, and errors on stderr too, where libvirt reports them */
enum log_target { LOG_TO_STDERR, LOG_TO_SYSLOG, LOG_TO_HOOK };

void log_setup(enum log_target target, int verbosity);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * A progress line: on a terminal, rewritten in place until the next message
 * or log_progress_end(); elsewhere an info line (the caller says how often).
 */
void log_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_progress_end(void);

#endif
