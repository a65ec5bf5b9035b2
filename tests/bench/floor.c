// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * floor: load tests/bench/floor.bpf.c, run both iterators at once (as
 * diagnose runs its two), print "FILES VMAS WALK_MS". The benchmark times
 * the whole process, as it times diagnose.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "floor.skel.h"

static void *walk(void *arg)
{
	struct bpf_link *link = bpf_program__attach_iter(arg, NULL);
	char buf[64];
	int fd;

	if (!link || (fd = bpf_iter_create(bpf_link__fd(link))) < 0)
		return (void *)1;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
	bpf_link__destroy(link);
	return NULL;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(void)
{
	struct floor_bpf *skel = floor_bpf__open_and_load();
	pthread_t t[2];
	void *r[2];
	double start;

	if (!skel) {
		fprintf(stderr, "floor: cannot load: %s\n", strerror(errno));
		return 1;
	}
	start = now_ms();
	pthread_create(&t[0], NULL, walk, skel->progs.count_files);
	pthread_create(&t[1], NULL, walk, skel->progs.count_vmas);
	pthread_join(t[0], &r[0]);
	pthread_join(t[1], &r[1]);
	if (r[0] || r[1]) {
		fprintf(stderr, "floor: an iterator did not run\n");
		floor_bpf__destroy(skel);
		return 1;
	}
	printf("%llu %llu %.1f\n", (unsigned long long)skel->bss->files,
	       (unsigned long long)skel->bss->vmas, now_ms() - start);
	floor_bpf__destroy(skel);
	return 0;
}
