// SPDX-License-Identifier: GPL-2.0-or-later
/* The host as vfio-agent init describes it, every path under --root. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hostinfo.h"
#include "core/sysfs.h"
#include "shared/macro.h"

static int cmp_bdf(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* the members of bdf's IOMMU group, or of its slot when there are no groups */
static void members_of(const char *root, struct host_gpu *g)
{
	char path[128], link[64] = "";
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", g->bdf);
	g->group = read_link_base_at(root, path, link, sizeof(link)) < 0 ? -1 : atoi(link);
	if (g->group >= 0)
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group/devices", g->bdf);
	else
		snprintf(path, sizeof(path), "/sys/bus/pci/devices");
	snprintf(g->members[0], sizeof(g->members[0]), "%s", g->bdf);
	g->n_members = 1;
	if (!(d = opendir_at(root, path)))
		return;
	while ((de = readdir(d)) && g->n_members < HOST_GPU_MEMBERS) {
		if (de->d_name[0] == '.' || !strcmp(de->d_name, g->bdf) ||
		    strlen(de->d_name) >= sizeof(g->members[0]) ||
		    (pci_attr_hex(root, de->d_name, "class") >> 8) == 0x0604)
			continue;
		/* without groups: the other functions of the same slot ("0000:03:00.") */
		if (g->group < 0 && strncmp(de->d_name, g->bdf, strlen(g->bdf) - 1))
			continue;
		snprintf(g->members[g->n_members++], sizeof(g->members[0]), "%s", de->d_name);
	}
	closedir(d);
	qsort(g->members + 1, g->n_members - 1, sizeof(g->members[0]), cmp_bdf);
}

int host_gpus(const char *root, struct host_gpu **out, size_t *n)
{
	struct host_gpu *v = NULL;
	struct dirent *de;
	DIR *d;

	*out = NULL;
	*n = 0;
	if (!(d = opendir_at(root, "/sys/bus/pci/devices")))
		return -errno;
	while ((de = readdir(d))) {
		char p[128], bv[8] = "";
		struct host_gpu *g;

		if (de->d_name[0] == '.' || strlen(de->d_name) >= sizeof(g->bdf) ||
		    (pci_attr_hex(root, de->d_name, "class") >> 16) != 0x03)
			continue;
		if (!(g = realloc(v, (*n + 1) * sizeof(*v)))) {
			free(v);
			closedir(d);
			return -ENOMEM;
		}
		v = g;
		g = &v[(*n)++];
		memset(g, 0, sizeof(*g));
		snprintf(g->bdf, sizeof(g->bdf), "%s", de->d_name);
		g->vendor = pci_attr_hex(root, g->bdf, "vendor");
		snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/boot_vga", g->bdf);
		g->boot_vga = read_line_at(root, p, bv, sizeof(bv)) == 0 && !strcmp(bv, "1");
		members_of(root, g);
	}
	closedir(d);
	if (v)
		qsort(v, *n, sizeof(*v), cmp_bdf);
	*out = v;
	return 0;
}

static FILE *pci_ids_open(const char *root)
{
	static const char *const paths[] = { "/usr/share/misc/pci.ids",
					     "/usr/share/hwdata/pci.ids" };

	for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
		char full[4096];
		FILE *f;

		snprintf(full, sizeof(full), "%s%s", root, paths[i]);
		if ((f = fopen(full, "re")))
			return f;
	}
	return NULL;
}

/* a pci.ids line "ID  Name" at depth tabs: the name when ID matches */
static const char *ids_match(const char *line, int tabs, const char *id)
{
	size_t l = strlen(id);

	for (int i = 0; i < tabs; i++)
		if (line[i] != '\t')
			return NULL;
	line += tabs;
	if (line[0] == '\t' || strncasecmp(line, id, l) || line[l] != ' ' || line[l + 1] != ' ')
		return NULL;
	return line + l + 2;
}

struct ids_names {
	char vendor[128], device[160], cls[96];
};

/*
 * One pass over pci.ids: the vendor and its device (before the class
 * section "C xx"), then the class and its subclass.
 */
static void ids_lookup(FILE *f, unsigned int vendor, unsigned int device, unsigned int cls,
		       struct ids_names *n)
{
	char line[512], vid[16], did[16], cid[16], sid[16];
	bool in_vendor = false, in_class = false, classes = false;
	const char *name;

	snprintf(vid, sizeof(vid), "%04x", vendor);
	snprintf(did, sizeof(did), "%04x", device);
	snprintf(cid, sizeof(cid), "C %02x", cls >> 8);
	snprintf(sid, sizeof(sid), "%02x", cls & 0xff);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '#' || !line[0])
			continue;
		if (line[0] != '\t') {
			classes |= line[0] == 'C' && line[1] == ' ';
			in_vendor = !classes && (name = ids_match(line, 0, vid));
			if (in_vendor)
				snprintf(n->vendor, sizeof(n->vendor), "%s", name);
			in_class = classes && (name = ids_match(line, 0, cid));
			if (in_class)
				snprintf(n->cls, sizeof(n->cls), "%s", name);
			continue;
		}
		if (in_vendor && (name = ids_match(line, 1, did)))
			snprintf(n->device, sizeof(n->device), "%s", name);
		if (in_class && (name = ids_match(line, 1, sid)))
			snprintf(n->cls, sizeof(n->cls), "%s", name);
	}
}

void pci_describe(const char *root, const char *bdf, char *buf, size_t len)
{
	unsigned int vendor = pci_attr_hex(root, bdf, "vendor"),
		     device = pci_attr_hex(root, bdf, "device"),
		     cls = pci_attr_hex(root, bdf, "class") >> 8;
	struct ids_names n = { "", "", "" };
	FILE *f = pci_ids_open(root);

	if (f) {
		ids_lookup(f, vendor, device, cls, &n);
		fclose(f);
	}
	if (!n.cls[0])
		snprintf(n.cls, sizeof(n.cls), "Class %04x", cls);
	snprintf(buf, len, "%s: %s%s%s%s[%04x:%04x]", n.cls, n.vendor, n.vendor[0] ? " " : "",
		 n.device, n.device[0] ? " " : "", vendor, device);
}

int display_manager_unit(const char *root, char *unit, size_t len)
{
	return read_link_base_at(root, "/etc/systemd/system/display-manager.service", unit, len);
}

int default_route_iface(const char *root, char *ifname, size_t len)
{
	char full[4096], line[512];
	int r = -ENOENT;
	FILE *f;

	snprintf(full, sizeof(full), "%s/proc/net/route", root);
	if (!(f = fopen(full, "re")))
		return -errno;
	/* Iface Destination Gateway Flags ...: the default route's destination is 0 */
	while (r && fgets(line, sizeof(line), f)) {
		char dev[32];
		unsigned long dest, flags;

		if (sscanf(line, "%31s %lx %*x %lx", dev, &dest, &flags) == 3 && !dest &&
		    (flags & 1) /* RTF_UP */) {
			snprintf(ifname, len, "%s", dev);
			r = 0;
		}
	}
	fclose(f);
	return r;
}

enum cfg_cpu cpu_vendor_of(const char *root)
{
	char full[4096], line[256];
	enum cfg_cpu cpu = CPU_UNSET;
	FILE *f;

	snprintf(full, sizeof(full), "%s/proc/cpuinfo", root);
	if (!(f = fopen(full, "re")))
		return CPU_UNSET;
	while (cpu == CPU_UNSET && fgets(line, sizeof(line), f))
		if (!strncmp(line, "vendor_id", 9))
			cpu = strstr(line, "GenuineIntel")   ? CPU_INTEL
			      : strstr(line, "AuthenticAMD") ? CPU_AMD
							     : CPU_UNSET;
	fclose(f);
	return cpu;
}
