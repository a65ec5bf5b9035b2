// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The setup checks: what the peers' issue threads are mostly about (the
 * IOMMU off, a hook libvirt never loaded, an emulated display left in the
 * domain, the AMD reset bug), each a finding with what to do next.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/checks.h"
#include "core/config.h"
#include "core/domain.h"
#include "core/hostinfo.h"
#include "core/setup.h"
#include "core/sysfs.h"
#include "core/targets.h"
#include "shared/macro.h"
#include "shared/strbuf.h"

#define PCI_VENDOR_AMD 0x1002
#define PCI_VENDOR_NVIDIA 0x10de

/*
 * Polaris, Vega and Navi 10/12/14 do not come back from a bus reset: the
 * guest starts once per host boot unless vendor-reset's device-specific
 * reset is loaded (its device table names these families).
 */
static const struct {
	unsigned int lo, hi;
} amd_reset_ranges[] = {
	{ 0x67c0, 0x67ff }, /* Polaris 10, 11 */
	{ 0x6980, 0x699f }, /* Polaris 12 */
	{ 0x6860, 0x687f }, /* Vega 10 */
	{ 0x66a0, 0x66af }, /* Vega 20 */
	{ 0x7310, 0x731f }, /* Navi 10 */
	{ 0x7340, 0x734f }, /* Navi 14 */
	{ 0x7360, 0x7362 }, /* Navi 12 */
};

bool amd_reset_bug(unsigned int vendor, unsigned int device)
{
	if (vendor != PCI_VENDOR_AMD)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(amd_reset_ranges); i++)
		if (device >= amd_reset_ranges[i].lo && device <= amd_reset_ranges[i].hi)
			return true;
	return false;
}

static bool pci_is_display(const char *root, const char *bdf)
{
	return (pci_attr_hex(root, bdf, "class") >> 16) == 0x03;
}

/* a whole small file under root, NUL-ended; -errno */
static int read_all_at(const char *root, const char *path, char *buf, size_t len)
{
	char full[4096];
	size_t used = 0;
	FILE *f;

	snprintf(full, sizeof(full), "%s%s", root, path);
	if (!(f = fopen(full, "re")))
		return -errno;
	used = fread(buf, 1, len - 1, f);
	buf[used] = '\0';
	fclose(f);
	return 0;
}

/* the value of KEY=VALUE on the command line ("" for a bare KEY); NULL when absent */
static const char *cmdline_value(const char *cmdline, const char *key, char *val, size_t len)
{
	size_t kl = strlen(key);
	const char *found = NULL;

	/* the last one wins, as the kernel's own parser has it */
	for (const char *s = cmdline; (s = strstr(s, key)); s += kl) {
		if ((s != cmdline && !isspace((unsigned char)s[-1])) ||
		    (s[kl] && s[kl] != '=' && !isspace((unsigned char)s[kl])))
			continue;
		const char *v = s[kl] == '=' ? s + kl + 1 : s + kl;
		size_t n = strcspn(v, " \t\n");

		snprintf(val, len, "%.*s", (int)n, v);
		found = val;
	}
	return found;
}

static bool word_in(const char *list, const char *word)
{
	char buf[128], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", list);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
		if (!strcmp(t, word))
			return true;
	return false;
}

static size_t iommu_groups(const char *root)
{
	struct dirent *de;
	size_t n = 0;
	DIR *d = opendir_at(root, "/sys/kernel/iommu_groups");

	if (!d)
		return 0;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static enum cfg_cpu cpu_vendor(const char *root, const struct config *c)
{
	return c && c->cpu != CPU_UNSET ? c->cpu : cpu_vendor_of(root);
}

#define GRUB_HINT \
	" to the kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub)"

static const char *const iommu_keys[] = { "iommu", "intel_iommu", "amd_iommu" };

static int check_cmdline(const char *root, const struct config *c, struct findings *out)
{
	enum cfg_cpu cpu = cpu_vendor(root, c);
	char line[4096], v[64];
	size_t groups = iommu_groups(root);
	int r;

	if (read_line_at(root, "/proc/cmdline", line, sizeof(line)) < 0)
		return findings_add(out, "cmdline", LEVEL_WARN, false, NULL,
				    "cannot read /proc/cmdline");
	for (size_t i = 0; i < ARRAY_SIZE(iommu_keys); i++)
		if (cmdline_value(line, iommu_keys[i], v, sizeof(v)) && word_in(v, "off"))
			return findings_add(out, "cmdline", LEVEL_FAIL, false,
					    "remove it from the kernel command line and reboot",
					    "%s=off on the kernel command line turns the IOMMU off",
					    iommu_keys[i]);
	if (cpu == CPU_INTEL && cmdline_value(line, "intel_iommu", v, sizeof(v)) &&
	    word_in(v, "on"))
		r = findings_add(out, "cmdline", LEVEL_OK, false, NULL,
				 "Intel CPU, intel_iommu=on");
	else if (cpu == CPU_INTEL && groups)
		r = findings_add(out, "cmdline", LEVEL_OK, false, NULL,
				 "Intel CPU: the IOMMU is on (this kernel's default)");
	else if (cpu == CPU_INTEL)
		r = findings_add(out, "cmdline", LEVEL_FAIL, false, "add intel_iommu=on" GRUB_HINT,
				 "Intel CPU without intel_iommu=on: the IOMMU is off");
	else if (cpu == CPU_AMD && groups)
		r = findings_add(out, "cmdline", LEVEL_OK, false, NULL,
				 "AMD CPU: the IOMMU is on by default");
	else if (cpu == CPU_AMD)
		r = findings_add(out, "cmdline", LEVEL_FAIL, false,
				 "enable the IOMMU (AMD-Vi) in the firmware's settings",
				 "AMD CPU with no IOMMU groups: the firmware has the IOMMU off");
	else
		r = findings_add(out, "cmdline", LEVEL_WARN, false, "set cpu = intel or amd",
				 "cannot tell the CPU's vendor from /proc/cpuinfo");
	if (r)
		return r;
	if (cmdline_value(line, "iommu", v, sizeof(v)) && !strcmp(v, "pt"))
		return findings_add(out, "iommu=pt", LEVEL_OK, false, NULL, "iommu=pt");
	return findings_add(out, "iommu=pt", LEVEL_WARN, false, "add iommu=pt" GRUB_HINT,
			    "advice: without iommu=pt the host's own devices go through the "
			    "IOMMU's translation too");
}

/* the kernel marks remapped interrupt chips IR- in /proc/interrupts (IR-PCI-MSI) */
static int check_interrupts(const char *root, struct findings *out)
{
	static char buf[1 << 16];
	char v[8] = "";

	if (!iommu_groups(root))
		return 0; /* no IOMMU: the cmdline check says so */
	if (read_all_at(root, "/proc/interrupts", buf, sizeof(buf)) < 0)
		return findings_add(out, "interrupt remapping", LEVEL_WARN, false, NULL,
				    "cannot read /proc/interrupts");
	if (strstr(buf, " IR-"))
		return findings_add(out, "interrupt remapping", LEVEL_OK, false, NULL, "enabled");
	read_line_at(root, "/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts", v,
		     sizeof(v));
	if (!strcmp(v, "Y") || !strcmp(v, "1"))
		return findings_add(
			out, "interrupt remapping", LEVEL_WARN, false,
			"enable interrupt remapping in the firmware if it can",
			"off; vfio takes the device anyway (allow_unsafe_interrupts=1)");
	return findings_add(
		out, "interrupt remapping", LEVEL_FAIL, false,
		"enable it in the firmware, or options vfio_iommu_type1 allow_unsafe_interrupts=1 "
		"in /etc/modprobe.d (unsafe with a guest you do not trust)",
		"off: vfio refuses to hand the device to a guest");
}

static int check_kvm(const char *root, struct findings *out)
{
	char p[4096], v[8] = "";
	struct stat st;
	int r;

	snprintf(p, sizeof(p), "%s/dev/kvm", root);
	if (stat(p, &st) == 0 && S_ISCHR(st.st_mode))
		r = findings_add(out, "/dev/kvm", LEVEL_OK, false, NULL, "present");
	else
		r = findings_add(out, "/dev/kvm", LEVEL_FAIL, false,
				 "enable VT-x or AMD-V (SVM) in the firmware; modprobe kvm_intel "
				 "or kvm_amd",
				 "no /dev/kvm: guests run without KVM, far too slowly for a GPU");
	if (r || read_line_at(root, "/sys/module/kvm/parameters/ignore_msrs", v, sizeof(v)) < 0)
		return r;
	if (!strcmp(v, "Y") || !strcmp(v, "1"))
		return findings_add(out, "ignore_msrs", LEVEL_OK, false, NULL, "kvm.ignore_msrs=1");
	return findings_add(out, "ignore_msrs", LEVEL_WARN, false,
			    "options kvm ignore_msrs=1 report_ignored_msrs=0 in "
			    "/etc/modprobe.d/kvm.conf",
			    "advice for Windows guests: kvm.ignore_msrs=0, and some Windows "
			    "versions and games crash on an MSR KVM does not emulate");
}

static int check_reset(const char *root, const struct target_pci *p, struct findings *out)
{
	unsigned int vendor = pci_attr_hex(root, p->bdf, "vendor"),
		     device = pci_attr_hex(root, p->bdf, "device");
	char name[80], path[128], m[128] = "";

	snprintf(name, sizeof(name), "reset %s", p->bdf);
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/reset_method", p->bdf);
	/* the kernel shows the file only when the device has a reset method at all */
	read_line_at(root, path, m, sizeof(m));
	if (amd_reset_bug(vendor, device) && !strstr(m, "device_specific"))
		return findings_add(
			out, name, LEVEL_WARN, false,
			"install vendor-reset (github.com/gnif/vendor-reset) and load "
			"it before the guest starts",
			"AMD %04x:%04x has the reset bug: without vendor-reset the guest "
			"may start only once per host boot (reset_method: %s)",
			vendor, device, m[0] ? m : "none");
	if (!m[0])
		return findings_add(out, name, LEVEL_WARN, false,
				    "power the host off and on to reset it",
				    "no reset method: the guest may start only once per host boot");
	return findings_add(out, name, LEVEL_OK, false, NULL, "reset by %s", m);
}

static int check_boot_vga(const char *root, const struct config *c, const struct target_pci *p,
			  struct findings *out)
{
	char name[80], path[128], v[8] = "";
	bool nvidia = pci_attr_hex(root, p->bdf, "vendor") == PCI_VENDOR_NVIDIA;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/boot_vga", p->bdf);
	if (read_line_at(root, path, v, sizeof(v)) < 0)
		return 0; /* not a VGA device */
	snprintf(name, sizeof(name), "boot_vga %s", p->bdf);
	if (strcmp(v, "1"))
		return findings_add(out, name, LEVEL_OK, false, NULL, "not the boot GPU");
	if (nvidia)
		return findings_add(out, name, LEVEL_WARN, false,
				    "if the guest's screen stays black, give the hostdev a clean "
				    "ROM: <rom file='/var/lib/libvirt/vbios.rom'/>",
				    "the boot GPU: the firmware ran and changed its ROM, which "
				    "NVIDIA's guest driver may refuse");
	return findings_add(out, name, LEVEL_OK, false, NULL,
			    "the boot GPU: the handoff frees its console and boot framebuffer");
}

static bool nvidia_targets(const struct config *c, const struct target_set *ts)
{
	if (c && c->gpu == GPU_NVIDIA)
		return true;
	for (size_t i = 0; i < ts->n_pcis; i++)
		if (!strncmp(ts->pcis[i].driver, "nvidia", 6))
			return true;
	return false;
}

static int check_modeset(const char *root, struct findings *out)
{
	char v[8] = "";

	if (read_line_at(root, "/sys/module/nvidia_drm/parameters/modeset", v, sizeof(v)) < 0)
		return findings_add(out, "nvidia_drm modeset", LEVEL_OK, false, NULL,
				    "nvidia_drm is not loaded");
	if (strcmp(v, "Y") && strcmp(v, "1"))
		return findings_add(out, "nvidia_drm modeset", LEVEL_OK, false, NULL,
				    "nvidia_drm.modeset=0: no console on the GPU");
	return findings_add(out, "nvidia_drm modeset", LEVEL_WARN, false,
			    "if it stays in use after the display manager stops, boot with "
			    "nvidia_drm.fbdev=0 (or modeset=0)",
			    "nvidia_drm.modeset=1: nvidia_drm drives a console on the GPU and "
			    "must unload before nvidia can");
}

int setup_host_checks(const char *root, const struct config *c, const struct target_set *ts,
		      struct findings *out)
{
	int r;

	if ((r = check_cmdline(root, c, out)) || (r = check_interrupts(root, out)) ||
	    (r = check_kvm(root, out)))
		return r;
	for (size_t i = 0; i < ts->n_pcis && !r; i++)
		r = check_reset(root, &ts->pcis[i], out);
	for (size_t i = 0; i < ts->n_pcis && !r; i++)
		r = check_boot_vga(root, c, &ts->pcis[i], out);
	if (!r && nvidia_targets(c, ts))
		r = check_modeset(root, out);
	return r;
}

/* ---- libvirt: the hook and the daemons that read it ---- */

static const char *const libvirt_daemons[] = { "libvirtd", "virtqemud", "virtproxyd" };

/* does the file at root+path run vfio-agent's hook? */
static bool runs_agent(const char *root, const char *path)
{
	char buf[8192];

	return read_all_at(root, path, buf, sizeof(buf)) == 0 && strstr(buf, "vfio-agent");
}

/* our hook in the hooks directory dir: qemu.d/<anything of ours>, or qemu; "" if none */
static void find_hook(const char *root, const char *dir, char *out, size_t len)
{
	char p[512];
	struct dirent *de;
	DIR *d;

	out[0] = '\0';
	snprintf(p, sizeof(p), "%s/qemu.d", dir);
	if ((d = opendir_at(root, p))) {
		while ((de = readdir(d)) && !out[0]) {
			char f[1024];

			snprintf(f, sizeof(f), "%s/%s", p, de->d_name);
			if (de->d_name[0] != '.' && runs_agent(root, f))
				snprintf(out, len, "%s", f);
		}
		closedir(d);
	}
	snprintf(p, sizeof(p), "%s/qemu", dir);
	if (!out[0] && runs_agent(root, p))
		snprintf(out, len, "%s", p);
}

/* boot time from /proc/stat's btime; 0 when unknown */
static time_t boot_time(const char *root)
{
	char buf[16384];
	const char *b;

	if (read_all_at(root, "/proc/stat", buf, sizeof(buf)) < 0 || !(b = strstr(buf, "\nbtime ")))
		return 0;
	return (time_t)strtoll(b + 7, NULL, 10);
}

/* a process's comm and start time (seconds since the epoch) from /proc/PID/stat */
static int proc_start(const char *root, const char *pid, time_t btime, char *comm, size_t len,
		      time_t *start)
{
	char p[300], buf[1024], *open_, *close_, *save = NULL, *t;
	unsigned long long ticks = 0;

	snprintf(p, sizeof(p), "/proc/%s/stat", pid);
	if (read_line_at(root, p, buf, sizeof(buf)) < 0 || !(open_ = strchr(buf, '(')) ||
	    !(close_ = strrchr(buf, ')')))
		return -ENOENT;
	snprintf(comm, len, "%.*s", (int)(close_ - open_ - 1), open_ + 1);
	/* starttime is field 22; field 3 (state) follows the comm */
	t = strtok_r(close_ + 1, " ", &save);
	for (int field = 3; t && field < 22; field++)
		t = strtok_r(NULL, " ", &save);
	if (!t)
		return -EINVAL;
	ticks = strtoull(t, NULL, 10);
	*start = btime + (time_t)(ticks / (unsigned long long)sysconf(_SC_CLK_TCK));
	return 0;
}

static bool is_libvirt_daemon(const char *comm)
{
	for (size_t i = 0; i < ARRAY_SIZE(libvirt_daemons); i++)
		if (!strcmp(comm, libvirt_daemons[i]))
			return true;
	return false;
}

static void when(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm))
		snprintf(buf, len, "%lld", (long long)t);
}

/* the daemons started before the hook was written: libvirt reads hooks only at start */
static int check_loaded(const char *root, const char *hook, struct findings *out)
{
	time_t btime = boot_time(root), mtime;
	struct strbuf stale;
	char full[4096], list[256] = "", seen[128] = "";
	size_t running = 0;
	struct dirent *de;
	struct stat st;
	DIR *d;

	snprintf(full, sizeof(full), "%s%s", root, hook);
	if (stat(full, &st) < 0 || !(d = opendir_at(root, "/proc")))
		return 0;
	mtime = st.st_mtime;
	stale = strbuf_on(list, sizeof(list));
	struct strbuf fresh = strbuf_on(seen, sizeof(seen));
	while ((de = readdir(d))) {
		char comm[32], at[40];
		time_t start;

		if (!isdigit((unsigned char)de->d_name[0]) ||
		    proc_start(root, de->d_name, btime, comm, sizeof(comm), &start) < 0 ||
		    !is_libvirt_daemon(comm))
			continue;
		running++;
		when(start, at, sizeof(at));
		if (start < mtime)
			sb_printf(&stale, "%s%s (pid %s, started %s)", stale.off ? ", " : "", comm,
				  de->d_name, at);
		else
			sb_printf(&fresh, "%s%s", fresh.off ? ", " : "", comm);
	}
	closedir(d);
	if (!running)
		return findings_add(out, "hook loaded", LEVEL_WARN, false,
				    "start libvirtd (or virtqemud)",
				    "no libvirtd, virtqemud or virtproxyd is running");
	if (list[0]) {
		char at[40];

		when(mtime, at, sizeof(at));
		return findings_add(out, "hook loaded", LEVEL_FAIL, false,
				    "restart libvirtd: it looks for hooks only at start",
				    "%s: older than %s (written %s)", list, hook, at);
	}
	return findings_add(out, "hook loaded", LEVEL_OK, false, NULL, "%s started after %s", seen,
			    hook);
}

int setup_hook_checks(const char *root, struct findings *out)
{
	/* NixOS builds libvirt with its state directory as the config directory */
	bool nixos = exists_at(root, "/etc/NIXOS");
	const char *dir = nixos ? "/var/lib/libvirt/hooks" : "/etc/libvirt/hooks",
		   *other = nixos ? "/etc/libvirt/hooks" : "/var/lib/libvirt/hooks";
	char hook[1024], elsewhere[1024], full[4096];
	struct stat st;

	find_hook(root, dir, hook, sizeof(hook));
	if (!hook[0]) {
		find_hook(root, other, elsewhere, sizeof(elsewhere));
		if (elsewhere[0]) {
			char hint[128];

			snprintf(hint, sizeof(hint), "move it to %s/qemu.d/vfio-agent", dir);
			return findings_add(out, "hook", LEVEL_FAIL, false, hint,
					    "installed as %s, but this host's libvirt reads %s",
					    elsewhere, dir);
		}
		return findings_add(out, "hook", LEVEL_FAIL, false,
				    "make install, or a script that runs vfio-agent hook \"$@\" "
				    "as qemu.d/vfio-agent there",
				    "no vfio-agent hook in %s: libvirt will not call it", dir);
	}
	snprintf(full, sizeof(full), "%s%s", root, hook);
	if (stat(full, &st) < 0 || !(st.st_mode & 0111))
		return findings_add(out, "hook", LEVEL_FAIL, false, "chmod +x it",
				    "%s is not executable: libvirt skips it", hook);
	int r = findings_add(out, "hook", LEVEL_OK, false, NULL, "%s", hook);

	return r ? r : check_loaded(root, hook, out);
}

/* ---- the config's VM among libvirt's domains ---- */

/* edit distance, case-insensitive: the closest name to suggest */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[65];

	if (la > 64 || lb > 64)
		return (size_t)-1;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j], cost = tolower((unsigned char)a[i - 1]) !=
						   tolower((unsigned char)b[j - 1]);
			size_t best = diag + cost;

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

int setup_vm_name_check(const struct config *c, const char *const *names, size_t n,
			struct findings *out)
{
	const char *closest = NULL;
	size_t best = (size_t)-1;
	char hint[200];

	for (size_t i = 0; i < n; i++)
		if (!strcmp(names[i], c->vm))
			return findings_add(out, "vm", LEVEL_OK, true, NULL, "domain %s is defined",
					    c->vm);
	for (size_t i = 0; i < n; i++)
		if (!strcasecmp(names[i], c->vm)) {
			snprintf(hint, sizeof(hint), "set vm = %.100s in %s", names[i], "[vfio]");
			return findings_add(
				out, "vm", LEVEL_FAIL, true, hint,
				"vm = %s, but the domain is '%s': libvirt's names are "
				"case-sensitive, and the hook acts only on an exact match",
				c->vm, names[i]);
		}
	for (size_t i = 0; i < n; i++) {
		size_t dist = distance(names[i], c->vm);

		if (dist < best)
			best = dist, closest = names[i];
	}
	if (!closest)
		return findings_add(
			out, "vm", LEVEL_FAIL, true,
			"define it (virsh define FILE.xml) or name another in [vfio] vm",
			"no domain %s: libvirt has none defined", c->vm);
	snprintf(hint, sizeof(hint), "define %s, or set vm = %.100s", c->vm, closest);
	return findings_add(out, "vm", LEVEL_FAIL, true, hint,
			    "no domain %s (the closest name: %s)", c->vm, closest);
}

/* ---- the domain's XML ---- */

static bool dom_has_pci(const struct domain *d, const char *bdf)
{
	for (size_t i = 0; i < d->n_pcis; i++)
		if (!strcmp(d->pcis[i], bdf))
			return true;
	return false;
}

static bool config_has_pci(const struct config *c, const char *bdf)
{
	for (size_t i = 0; i < c->n_pcis; i++)
		if (!strcmp(c->pcis[i], bdf))
			return true;
	return false;
}

/* "LIST: WHY", and what to do: "add LIST WHERE" */
static int hostdevs_finding(struct findings *out, enum finding_level level, const char *list,
			    const char *where, const char *why)
{
	char hint[400];

	snprintf(hint, sizeof(hint), "add %s %s", list, where);
	return findings_add(out, "hostdevs", level, level == LEVEL_FAIL, hint, "%s: %s", list, why);
}

static int check_hostdevs(const char *root, const struct config *c, const struct target_set *ts,
			  const struct domain *d, struct findings *out)
{
	char lost[256] = "", notplan[256] = "", unused[256] = "";
	struct strbuf sl = strbuf_on(lost, sizeof(lost)), sn = strbuf_on(notplan, sizeof(notplan));
	struct strbuf su = strbuf_on(unused, sizeof(unused));

	if (!d->n_pcis)
		return findings_add(out, "hostdevs", LEVEL_FAIL, true,
				    "virsh edit: add the GPU and its functions as <hostdev "
				    "mode='subsystem' type='pci' managed='no'>",
				    "the domain has no PCI hostdev: no GPU is passed through");
	for (size_t i = 0; i < d->n_pcis; i++) {
		char others[256];

		if (c->n_pcis && !config_has_pci(c, d->pcis[i]) && pci_is_display(root, d->pcis[i]))
			sb_printf(&sn, "%s%s", sn.off ? " " : "", d->pcis[i]);
		/* a group member left on a host driver keeps the whole group from vfio */
		if (iommu_group_others(root, ts, d->pcis[i], others, sizeof(others)) < 0)
			continue;
		for (char *save = NULL, *w = strtok_r(others, " ", &save); w;
		     w = strtok_r(NULL, " ", &save))
			if (!dom_has_pci(d, w) && !strstr(lost, w))
				sb_printf(&sl, "%s%s", sl.off ? " " : "", w);
	}
	for (size_t i = 0; i < c->n_pcis; i++)
		if (!dom_has_pci(d, c->pcis[i]))
			sb_printf(&su, "%s%s", su.off ? " " : "", c->pcis[i]);
	if (notplan[0])
		return hostdevs_finding(out, LEVEL_FAIL, notplan, "to pcis",
					"a display device of the domain that pcis leaves out: the "
					"handoff keeps it on the host and the guest cannot start");
	if (lost[0])
		return hostdevs_finding(out, LEVEL_FAIL, lost, "to pcis and to the domain",
					"in an IOMMU group of the domain's hostdevs, left with the "
					"host: the guest cannot start");
	if (unused[0])
		return hostdevs_finding(out, LEVEL_WARN, unused, "to the domain as <hostdev>",
					"handed over, but the domain does not have it (the GPU's "
					"audio function, most often)");
	return findings_add(out, "hostdevs", LEVEL_OK, true, NULL,
			    "%zu PCI hostdev%s, their IOMMU groups whole, all in the plan",
			    d->n_pcis, d->n_pcis == 1 ? "" : "s");
}

bool domain_has_display(const char *root, const struct domain *d)
{
	for (size_t i = 0; i < d->n_pcis; i++)
		if (pci_is_display(root, d->pcis[i]))
			return true;
	return false;
}

static int check_passthrough(const char *root, const struct config *c, const struct domain *d,
			     struct findings *out)
{
	bool display = domain_has_display(root, d);

	if (display && !c->passthrough)
		return findings_add(
			out, "passthrough", LEVEL_WARN, false, "set passthrough = true in [vfio]",
			"passthrough = false (the default): the hook leaves the GPU with "
			"the host although the domain has it as a hostdev");
	if (!display && c->passthrough)
		return findings_add(out, "passthrough", LEVEL_WARN, false, NULL,
				    "passthrough = true, but the domain has no display device as a "
				    "hostdev");
	return findings_add(out, "passthrough", LEVEL_OK, false, NULL, "passthrough = %s",
			    c->passthrough ? "true, and the domain has the GPU"
					   : "false, and the domain has no GPU");
}

static int check_managed(const struct config *c, const struct domain *d, size_t i,
			 struct findings *out)
{
	char name[80];
	bool managed = d->hostdevs[i].managed;

	snprintf(name, sizeof(name), "managed %s", d->pcis[i]);
	if (c->passthrough && managed)
		return findings_add(
			out, name, LEVEL_WARN, false,
			"managed='no': the handoff alone binds it and gives it back",
			"managed='yes': libvirt also rebinds it to the host's driver at "
			"stop, before the handoff's release");
	if (!c->passthrough && !managed)
		return findings_add(out, name, LEVEL_FAIL, true, "set passthrough = true",
				    "managed='no' and passthrough = false: nothing binds it to "
				    "vfio-pci, and the guest cannot start");
	if (!c->passthrough)
		return findings_add(out, name, LEVEL_WARN, false,
				    "passthrough = true and managed='no'",
				    "managed='yes' without the handoff: libvirt unbinds it while "
				    "the desktop still holds it");
	return findings_add(out, name, LEVEL_OK, false, NULL, "managed='no': the handoff binds it");
}

/* the seed's Troubleshooting, as checks of each display hostdev */
static int check_vendor_advice(const char *root, const struct domain *d, size_t i,
			       struct findings *out)
{
	unsigned long vendor = pci_attr_hex(root, d->pcis[i], "vendor");
	char name[80];
	int r;

	if (!pci_is_display(root, d->pcis[i]))
		return 0;
	if (vendor == PCI_VENDOR_AMD) {
		snprintf(name, sizeof(name), "rom bar %s", d->pcis[i]);
		if (d->hostdevs[i].rom_bar_off)
			return findings_add(out, name, LEVEL_OK, false, NULL, "<rom bar='off'/>");
		return findings_add(out, name, LEVEL_WARN, false,
				    "add <rom bar='off'/> to its <hostdev>",
				    "advice for AMD GPUs: with the ROM BAR on, the guest may hang "
				    "at boot or show nothing");
	}
	if (vendor != PCI_VENDOR_NVIDIA)
		return 0;
	r = d->vendor_id ? findings_add(out, "hyperv vendor_id", LEVEL_OK, false, NULL,
					"<vendor_id state='on'/>")
			 : findings_add(out, "hyperv vendor_id", LEVEL_WARN, false,
					"add <hyperv><vendor_id state='on' value='0123456789ab'/>"
					"</hyperv> to <features>",
					"NVIDIA drivers before 465 stop with Code 43 when they see "
					"Hyper-V's vendor id");
	if (r)
		return r;
	return d->kvm_hidden ? findings_add(out, "kvm hidden", LEVEL_OK, false, NULL,
					    "<kvm><hidden state='on'/>")
			     : findings_add(out, "kvm hidden", LEVEL_WARN, false,
					    "add <kvm><hidden state='on'/></kvm> to <features>",
					    "NVIDIA drivers before 465 refuse to run when they see "
					    "KVM's signature");
}

static bool on_path(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[4096], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path && path[0] ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
	for (char *dir = strtok_r(buf, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		char full[4200];

		snprintf(full, sizeof(full), "%s/%s", dir, prog);
		if (access(full, X_OK) == 0)
			return true;
	}
	return false;
}

static int check_firmware(const struct domain *d, struct findings *out)
{
	char hint[1100];

	if (d->loader[0] && access(d->loader, R_OK) < 0) {
		snprintf(hint, sizeof(hint), "install the firmware (ovmf) or fix <loader>");
		return findings_add(out, "firmware", LEVEL_FAIL, true, hint,
				    "the loader %.900s does not exist", d->loader);
	}
	if (d->nvram_template[0] && access(d->nvram_template, R_OK) < 0)
		return findings_add(out, "firmware", LEVEL_FAIL, true,
				    "install the firmware (ovmf) or fix <nvram template=>",
				    "the NVRAM template %.900s does not exist", d->nvram_template);
	if (d->nvram[0] && access(d->nvram, R_OK) < 0 && !d->nvram_template[0])
		return findings_add(out, "firmware", LEVEL_WARN, false,
				    "give <nvram> a template=, or check qemu.conf's nvram list",
				    "the NVRAM file %.900s does not exist yet: libvirt makes it "
				    "from qemu.conf's template for the loader",
				    d->nvram);
	if (!d->loader[0] && !d->nvram[0])
		return 0;
	return findings_add(out, "firmware", LEVEL_OK, true, NULL, "%.900s%s",
			    d->loader[0] ? d->loader : d->nvram,
			    d->loader[0] && d->nvram[0] ? " and its NVRAM" : "");
}

int setup_domain_checks(const char *root, const struct config *c, const struct target_set *ts,
			const struct domain *d, struct findings *out)
{
	int r;

	if ((r = check_hostdevs(root, c, ts, d, out)) || (r = check_passthrough(root, c, d, out)))
		return r;
	for (size_t i = 0; i < d->n_pcis && !r; i++)
		r = check_managed(c, d, i, out);
	for (size_t i = 0; i < d->n_pcis && !r; i++)
		r = check_vendor_advice(root, d, i, out);
	if (r)
		return r;
	r = d->videos[0] ? findings_add(out, "video", LEVEL_WARN, false,
					"set its <model type='none'/>, so the GPU is the guest's "
					"only display",
					"emulated video left in the domain: %s", d->videos)
			 : findings_add(out, "video", LEVEL_OK, false, NULL, "no emulated video");
	if (!r)
		r = d->graphics[0]
			    ? findings_add(
				      out, "graphics", LEVEL_WARN, false,
				      "remove <graphics>: a VNC server in the guest is reached "
				      "through the forward",
				      "the domain has emulated graphics: %s", d->graphics)
			    : findings_add(out, "graphics", LEVEL_OK, false, NULL,
					   "no emulated graphics");
	if (!r && d->tpm_emulator)
		r = on_path("swtpm")
			    ? findings_add(out, "tpm", LEVEL_OK, true, NULL,
					   "emulated TPM, swtpm installed")
			    : findings_add(out, "tpm", LEVEL_FAIL, true,
					   "install swtpm (apt install swtpm swtpm-tools)",
					   "an emulated TPM needs swtpm, which is not on PATH");
	return r ? r : check_firmware(d, out);
}
