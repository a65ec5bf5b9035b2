/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One result line per check, in the form tests/run counts. */
#ifndef VFIO_TESTS_TAP_H
#define VFIO_TESTS_TAP_H

#include <stdio.h>
#include <string.h>

static int tap_failed;

#define CHECK(name, cond)                                                                   \
	do {                                                                                \
		if (cond) {                                                                 \
			printf("ok %s\n", name);                                            \
		} else {                                                                    \
			printf("not ok %s: %s (%s:%d)\n", name, #cond, __FILE__, __LINE__); \
			tap_failed++;                                                       \
		}                                                                           \
	} while (0)

#define CHECK_STR(name, got, want)                                                           \
	do {                                                                                 \
		const char *g_ = (got), *w_ = (want);                                        \
		if (g_ && w_ && !strcmp(g_, w_)) {                                           \
			printf("ok %s\n", name);                                             \
		} else {                                                                     \
			printf("not ok %s: got '%s', want '%s'\n", name, g_ ? g_ : "(null)", \
			       w_ ? w_ : "(null)");                                          \
			tap_failed++;                                                        \
		}                                                                            \
	} while (0)

#define TAP_EXIT() return tap_failed ? 1 : 0

#endif
