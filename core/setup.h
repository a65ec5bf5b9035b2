/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The setup checks of diagnose: the host (kernel command line, KVM,
 * interrupt remapping, reset methods, the boot GPU, nvidia_drm, kvm's MSRs),
 * libvirt (the hook where the running daemon reads it, the daemons started
 * after it, the config's vm among the domains) and the VM's own XML. All of
 * them data: findings with a level and what to do next. Every host path is
 * read under --root.
 */
#ifndef VFIO_AGENT_SETUP_H
#define VFIO_AGENT_SETUP_H

#include <stddef.h>

struct config;
struct domain;
struct findings;
struct target_set;

/* AMD GPUs with the reset bug vendor-reset works around */
bool amd_reset_bug(unsigned int vendor, unsigned int device);

/* does the domain have a display-class PCI device (a GPU) as a hostdev? */
bool domain_has_display(const char *root, const struct domain *d);

int setup_host_checks(const char *root, const struct config *c, const struct target_set *ts,
		      struct findings *out);

/* the hook installed where this host's libvirt reads it, executable, and loaded */
int setup_hook_checks(const char *root, struct findings *out);

/* the config's vm among libvirt's domain names: exact, by case only, or the closest */
int setup_vm_name_check(const struct config *c, const char *const *names, size_t n,
			struct findings *out);

/*
 * The domain's XML against the config, its targets and the host: hostdevs
 * and IOMMU groups, passthrough, managed, emulated video and graphics, the
 * ROM BAR, vendor_id and kvm hidden, an emulated TPM's swtpm (on PATH), the
 * firmware files (as the host sees them: QEMU opens them, not --root's tree).
 */
int setup_domain_checks(const char *root, const struct config *c, const struct target_set *ts,
			const struct domain *d, struct findings *out);

#endif
