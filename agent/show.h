/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Untrusted strings (process names, paths, units, names from the kernel,
 * the journal or the XML) on their way into the verbs' JSON: one helper,
 * so the document is always valid UTF-8 (shared/escape.h decides how).
 * Text goes through escape_text(); log lines are escaped in agent/log.c.
 */
#ifndef VFIO_AGENT_SHOW_H
#define VFIO_AGENT_SHOW_H

#include <json-c/json.h>

#include "shared/escape.h"

/* s as a JSON string, each invalid byte as U+FFFD; NULL (null) for NULL */
json_object *json_str(const char *s);
/* the same, and null for "" too: a field that is not known */
json_object *json_opt(const char *s);

/*
 * For text: s escaped (escape_text) into a buffer that lives as long as the
 * enclosing block, for one printf. SHOW takes an array and sizes the buffer
 * from it (a pointer is a compile error); SHOW_N a string of up to n bytes.
 */
#define SHOW_N(s, n) escape_text((s), (char[ESCAPED_SIZE(n)]){ 0 }, ESCAPED_SIZE(n))
#define SHOW(arr) SHOW_N(arr, sizeof(arr) + MUST_BE_ARRAY(arr))
/* 0, or a compile error when a is a pointer */
#define MUST_BE_ARRAY(a)                                                                          \
	(sizeof(struct {                                                                          \
		 int not_an_array : __builtin_types_compatible_p(typeof(a), typeof(&(a)[0])) ? -1 \
											     : 1; \
	 }) *                                                                                     \
	 0)

#endif
