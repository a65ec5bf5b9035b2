// SPDX-License-Identifier: GPL-2.0-or-later
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/sysfs.h"

int read_line_at(const char *root, const char *path, char *buf, size_t len)
{
	char full[4096];
	ssize_t n;
	int fd;

	snprintf(full, sizeof(full), "%s%s", root, path);
	fd = open(full, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

int read_link_base_at(const char *root, const char *path, char *out, size_t len)
{
	char full[4096], target[4096];
	ssize_t n;

	out[0] = '\0';
	snprintf(full, sizeof(full), "%s%s", root, path);
	n = readlink(full, target, sizeof(target) - 1);
	if (n <= 0)
		return n < 0 ? -errno : -ENOENT;
	target[n] = '\0';
	snprintf(out, len, "%s", basename(target));
	return 0;
}

int write_attr_at(const char *root, const char *path, const char *val)
{
	char full[4096];
	size_t len = strlen(val);
	ssize_t n;
	int fd, r = 0;

	snprintf(full, sizeof(full), "%s%s", root, path);
	/* no O_CREAT: a missing attribute is an answer, not a file to make */
	fd = open(full, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, val, len);
	if (n < 0)
		r = -errno;
	else if ((size_t)n != len)
		r = -EIO;
	if (close(fd) < 0 && !r)
		r = -errno;
	return r;
}

unsigned long pci_attr_hex(const char *root, const char *bdf, const char *attr)
{
	char p[128], v[32] = "";

	snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/%s", bdf, attr);
	return read_line_at(root, p, v, sizeof(v)) < 0 ? 0 : strtoul(v, NULL, 16);
}

DIR *opendir_at(const char *root, const char *path)
{
	char full[4096];

	snprintf(full, sizeof(full), "%s%s", root, path);
	return opendir(full);
}

bool exists_at(const char *root, const char *path)
{
	char full[4096];

	snprintf(full, sizeof(full), "%s%s", root, path);
	return access(full, F_OK) == 0;
}
