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
 * root/run/vfio-agent/lock, held until the process exits or closes fd.
 * wait: up to a minute for another holder; else -EWOULDBLOCK at once. 0 or
 * -errno, with err's line.
 */
int state_lock(const char *root, bool wait, int *fd, char *err, size_t errlen);

#endif
