/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The small helpers every layer uses: ARRAY_SIZE, the cleanup attributes
 * and their NULL-safe destructors, the monotonic clock.
 */
#ifndef VFIO_SHARED_MACRO_H
#define VFIO_SHARED_MACRO_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline void freep(void *p)
{
	free(*(void **)p);
}

static inline void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

static inline void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_fclose_ _cleanup_(fclosep)
#define _cleanup_close_ _cleanup_(closep)

/* do the first n bytes of s end in suffix? */
static inline bool strn_ends_with(const char *s, size_t n, const char *suffix)
{
	size_t l = strlen(suffix);

	return n >= l && !memcmp(s + n - l, suffix, l);
}

static inline bool str_ends_with(const char *s, const char *suffix)
{
	return strn_ends_with(s, strlen(s), suffix);
}

/* microseconds on the monotonic clock: deadlines that a clock change cannot move */
static inline uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

#endif
