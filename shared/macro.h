/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VFIO_AGENT_MACRO_H
#define VFIO_AGENT_MACRO_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

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

#define _cleanup_free_ _cleanup_(freep)

/* microseconds on the monotonic clock: deadlines that a clock change cannot move */
static inline uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
#define _cleanup_fclose_ _cleanup_(fclosep)


#endif
