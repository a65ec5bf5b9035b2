/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The handoff's preflight: every check that can refuse it, run before the
 * first change to the host, by prepare, its dry run and diagnose alike.
 */
#ifndef VFIO_CORE_PREFLIGHT_H
#define VFIO_CORE_PREFLIGHT_H

#include <stddef.h>

struct config;
struct target_pci;
struct target_set;

/*
 * May p be handed over? It must be display class or a function of a
 * display device in the plan (its slot or IOMMU group), or be named in
 * allow-non-gpu; and nothing below it may be in the host's use (a mounted,
 * swapped or held block device; a network interface with an address).
 * 0 yes, 1 no with why's one line, or -errno.
 */
int preflight_device(const char *root, const struct config *c, const struct target_set *ts,
		     const struct target_pci *p, char *why, size_t len);

/*
 * Every device, then every IOMMU group whole, then vfio-pci. 0, or -EPERM
 * with err's one line naming the device and what to do.
 */
int handoff_preflight(const char *root, const struct config *c, const struct target_set *ts,
		      char *err, size_t errlen);

#endif
