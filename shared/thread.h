/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A helper thread that takes no signal. */
#ifndef VFIO_AGENT_THREAD_H
#define VFIO_AGENT_THREAD_H

#include <pthread.h>
#include <signal.h>

/*
 * A thread of ours takes no signal: a SIGTERM during a handoff must reach the
 * thread that waits in poll() or a job, and end its wait with EINTR.
 * pthread_create()'s result (0 or an errno).
 */
static inline int thread_start(pthread_t *th, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int r;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(th, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

#endif
