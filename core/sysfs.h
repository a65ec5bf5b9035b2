/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Small reads and writes of sysfs and procfs files, every path under --root. */
#ifndef VFIO_AGENT_SYSFS_H
#define VFIO_AGENT_SYSFS_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>

/* a small file's first line, newline cut; -errno */
int read_line_at(const char *root, const char *path, char *buf, size_t len);

/* basename of a symlink's target; "" (and -errno) when there is no link */
int read_link_base_at(const char *root, const char *path, char *out, size_t len);

/*
 * Write val to an existing attribute in one write(2), as the kernel wants;
 * -errno, the kernel's answer (EBUSY, ENODEV, EINVAL) included.
 */
int write_attr_at(const char *root, const char *path, const char *val);

/* a PCI device's hex attribute (vendor, device, class); 0 when unreadable */
unsigned long pci_attr_hex(const char *root, const char *bdf, const char *attr);

/* opendir(2) and access(F_OK) of root + path */
DIR *opendir_at(const char *root, const char *path);
bool exists_at(const char *root, const char *path);

#endif
