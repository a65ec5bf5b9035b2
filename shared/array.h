/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Growable arrays of fixed-size elements. */
#ifndef VFIO_SHARED_ARRAY_H
#define VFIO_SHARED_ARRAY_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

/* *arr resized to n elements of size bytes: 0, or -ENOMEM with *arr unchanged */
static inline int array_resize(void **arr, size_t n, size_t size)
{
	void *p;

	if (size && n > SIZE_MAX / size)
		return -ENOMEM;
	if (!(p = realloc(*arr, n && size ? n * size : 1)))
		return -ENOMEM;
	*arr = p;
	return 0;
}

/* room for arr[n] in an array that holds n elements now (small arrays: one realloc a push) */
#define ARRAY_GROW(arr, n) array_resize((void **)&(arr), (n) + 1, sizeof(*(arr)))

/*
 * The same for an array with a capacity: doubles, so n pushes cost O(n).
 * 0 or -ENOMEM.
 */
static inline int array_reserve(void **arr, size_t *cap, size_t n, size_t size)
{
	size_t want;
	int r;

	if (n < *cap)
		return 0;
	want = *cap ? *cap * 2 : 64;
	if (want <= n)
		want = n + 1;
	if ((r = array_resize(arr, want, size)) < 0)
		return r;
	*cap = want;
	return 0;
}
#define ARRAY_RESERVE(arr, cap, n) array_reserve((void **)&(arr), &(cap), (n), sizeof(*(arr)))

#endif
