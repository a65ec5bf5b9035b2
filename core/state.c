// SPDX-License-Identifier: GPL-2.0-or-later
/* The state directory and the lock. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/state.h"
#include "shared/macro.h"

#define LOCK_TIMEOUT_US (60 * 1000000ull)
#define LOCK_POLL_US (100 * 1000)

int state_dir_make(const char *root)
{
	char dir[4096];

	snprintf(dir, sizeof(dir), "%s/run", root);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	snprintf(dir, sizeof(dir), "%s" STATE_DIR, root);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int state_lock(const char *root, bool wait, int *fd, char *err, size_t errlen)
{
	uint64_t deadline = now_us() + (wait ? LOCK_TIMEOUT_US : 0);
	char path[4096];
	int r;

	snprintf(path, sizeof(path), "%s" STATE_DIR "/lock", root);
	if ((r = state_dir_make(root)) < 0)
		goto fail;
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*fd < 0) {
		r = -errno;
		goto fail;
	}
	while (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK || now_us() >= deadline) {
			r = -errno;
			snprintf(err, errlen, "%s: %s", path,
				 r == -EWOULDBLOCK
					 ? (wait ? "another vfio-agent has held it for a minute"
						 : "another vfio-agent holds it")
					 : strerror(-r));
			close(*fd);
			*fd = -1;
			return r;
		}
		usleep(LOCK_POLL_US);
	}
	return 0;
fail:
	snprintf(err, errlen, "cannot create %s: %s", path, strerror(-r));
	return r;
}
