/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What vfio-agent init proposes from the host: the display devices and
 * their IOMMU groups, lspci-style names from the pci.ids database, the
 * display manager's unit and the default route's interface. Under --root.
 */
#ifndef VFIO_AGENT_HOSTINFO_H
#define VFIO_AGENT_HOSTINFO_H

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"

#define HOST_GPU_MEMBERS 16

struct host_gpu {
	char bdf[16];
	unsigned int vendor;
	bool boot_vga;
	int group; /* -1: no IOMMU group; members are then the device's own slot */
	char members[HOST_GPU_MEMBERS][16]; /* bdf itself first; bridges left out */
	size_t n_members;
};

/* every display-class PCI device, in BDF order; *out malloc'ed */
int host_gpus(const char *root, struct host_gpu **out, size_t *n);

/*
 * "VGA compatible controller: Advanced Micro Devices, Inc. [AMD/ATI] Navi 31
 * [1002:744c]" from pci.ids (/usr/share/misc or /usr/share/hwdata, under
 * root); the IDs alone ("Class 0300: [1002:744c]") where it is not there
 */
void pci_describe(const char *root, const char *bdf, char *buf, size_t len);

/* the unit display-manager.service links to ("gdm3.service"); -ENOENT when none */
int display_manager_unit(const char *root, char *unit, size_t len);

/* the interface of the IPv4 default route (/proc/net/route); -ENOENT when none */
int default_route_iface(const char *root, char *ifname, size_t len);

/* the CPU's vendor from /proc/cpuinfo; CPU_UNSET when it says neither */
enum cfg_cpu cpu_vendor_of(const char *root);

#endif
