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

/* ours: root's (the euid's), not a link, not writable by anyone else */
static int owned(int fd, mode_t type, mode_t forbidden)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if ((st.st_mode & S_IFMT) != type || st.st_uid != geteuid() || (st.st_mode & forbidden))
		return -EPERM;
	return 0;
}

int state_dir_open(const char *root, bool create, int *dfd)
{
	char dir[4096];
	int r;

	*dfd = -1;
	if (create && (r = state_dir_make(root)) < 0)
		return r;
	snprintf(dir, sizeof(dir), "%s" STATE_DIR, root);
	*dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*dfd < 0)
		return errno == ENOTDIR ? -ELOOP : -errno;
	/* 0700 as made: a directory others can write could hold their journal */
	if ((r = owned(*dfd, S_IFDIR, 077)) < 0) {
		close(*dfd);
		*dfd = -1;
		return -EACCES;
	}
	return 0;
}

int state_open(int dfd, const char *name, int flags, int *fd)
{
	int r;

	*fd = openat(dfd, name, flags | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (*fd < 0)
		return -errno;
	if ((r = owned(*fd, S_IFREG, 022)) < 0) {
		close(*fd);
		*fd = -1;
	}
	return r;
}

const char *state_strerror(int r)
{
	switch (r) {
	case -ELOOP:
		return "a symbolic link, not vfio-agent's file";
	case -EPERM:
		return "not vfio-agent's: another owner, or writable by others";
	case -EACCES:
		return "its directory " STATE_DIR " is not root's own 0700 directory";
	default:
		return strerror(-r);
	}
}

int state_lock(const char *root, bool wait, int *fd, char *err, size_t errlen)
{
	uint64_t deadline = now_us() + (wait ? LOCK_TIMEOUT_US : 0);
	char path[4096];
	int r;

	_cleanup_close_ int dfd = -1;

	snprintf(path, sizeof(path), "%s" STATE_DIR "/lock", root);
	if ((r = state_dir_open(root, true, &dfd)) < 0 ||
	    (r = state_open(dfd, "lock", O_RDWR | O_CREAT, fd)) < 0)
		goto fail;
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
	snprintf(err, errlen, "cannot open %s: %s", path, state_strerror(r));
	return r;
}
