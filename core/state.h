/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The state directory, root/run/vfio-agent: the journals and the lock that
 * lets one hook, handoff, forward or daemon change the host at a time.
 */
#ifndef VFIO_CORE_STATE_H
#define VFIO_CORE_STATE_H

#include <stdbool.h>
#include <stddef.h>

#define STATE_DIR "/run/vfio-agent"

/* root/run/vfio-agent made when missing (0700); 0 or -errno */
int state_dir_make(const char *root);

/*
 * The state directory, opened without following a link and checked with
 * fstat: the euid's (root's), mode 0700. create: made when missing. 0;
 * -ELOOP for a link, -EACCES for another owner or mode, another -errno.
 */
int state_dir_open(const char *root, bool create, int *dfd);

/*
 * name in the state directory dfd, opened without following a link
 * (O_CREAT in flags makes it 0600), and checked: a regular file of the
 * euid's that no one else may write. 0, -ELOOP, -EPERM or another -errno.
 */
int state_open(int dfd, const char *name, int flags, int *fd);

/* the words for state_dir_open's and state_open's errors */
const char *state_strerror(int r);

/*
 * root/run/vfio-agent/lock, held until the process exits or closes fd.
 * wait: up to a minute for another holder; else -EWOULDBLOCK at once. 0 or
 * -errno, with err's line.
 */
int state_lock(const char *root, bool wait, int *fd, char *err, size_t errlen);

#endif
