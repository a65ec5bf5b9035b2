// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vfio-agent init [--vm NAME]: a commented starting config for this host on
 * stdout: its display devices with their IOMMU groups and names, the
 * display manager, the default route's interface, and the libvirt domains
 * that have the GPU as a hostdev. What it prints passes `check`.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"
#include "agent/log.h"
#include "core/config.h"
#include "core/dl.h"
#include "core/domain.h"
#include "core/hostinfo.h"
#include "core/setup.h"
#include "shared/escape.h"

static const char init_usage[] =
	"Usage: vfio-agent [--root DIR] init [--vm NAME]\n"
	"\n"
	"Print a commented starting config for this host on stdout: the display\n"
	"devices with their IOMMU groups (names from pci.ids where it is installed),\n"
	"the display manager, the default route's interface, and the libvirt domains\n"
	"that have the GPU as a hostdev. --vm NAME: that domain. Save it as\n" CONFIG_DEFAULT_PATH
	",\n"
	"then run vfio-agent check and vfio-agent diagnose --vm NAME.\n";

#define INIT_DOMAINS 16

struct init_ctx {
	const char *root;
	const char *vm;			/* --vm */
	char domains[INIT_DOMAINS][64]; /* those with a display hostdev */
	char (*dom_pcis)[16];		/* the first one's PCI hostdevs */
	size_t n_domains, n_dom_pcis;
	char libvirt_err[256];
};

/* libvirt's domains with a GPU as a hostdev (only --vm's, when given) */
static void find_domains(struct init_ctx *ic)
{
	virConnectPtr conn = NULL;
	virDomainPtr *doms = NULL;
	int n;

	if (agent_libvirt_open(true, &conn, ic->libvirt_err, sizeof(ic->libvirt_err)) < 0)
		return;
	if ((n = sym_virConnectListAllDomains(conn, &doms, 0)) < 0) {
		snprintf(ic->libvirt_err, sizeof(ic->libvirt_err), "cannot list the domains");
		n = 0;
	}
	for (int i = 0; i < n; i++) {
		const char *name = sym_virDomainGetName(doms[i]);
		char *xml = NULL, err[256];
		struct domain d;

		if (name && (!ic->vm || !strcmp(ic->vm, name)) && ic->n_domains < INIT_DOMAINS &&
		    (xml = sym_virDomainGetXMLDesc(doms[i], VIR_DOMAIN_XML_INACTIVE)) &&
		    domain_parse(xml, strlen(xml), &d, err, sizeof(err)) == 0) {
			if (domain_has_display(ic->root, &d)) {
				snprintf(ic->domains[ic->n_domains++], sizeof(ic->domains[0]), "%s",
					 name);
				if (!ic->dom_pcis) {
					ic->dom_pcis = d.pcis;
					ic->n_dom_pcis = d.n_pcis;
					d.pcis = NULL;
				}
			}
			domain_free(&d);
		}
		free(xml);
		sym_virDomainFree(doms[i]);
	}
	free(doms);
	sym_virConnectClose(conn);
}

/* the GPU to propose: the one a domain has, else the boot GPU, else the first */
static const struct host_gpu *pick_gpu(const struct init_ctx *ic, const struct host_gpu *g,
				       size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < ic->n_dom_pcis; j++)
			if (!strcmp(g[i].bdf, ic->dom_pcis[j]))
				return &g[i];
	for (size_t i = 0; i < n; i++)
		if (g[i].boot_vga)
			return &g[i];
	return n ? &g[0] : NULL;
}

static void print_vfio(const struct init_ctx *ic, const struct host_gpu *gpus, size_t n)
{
	const struct host_gpu *gpu = pick_gpu(ic, gpus, n);
	enum cfg_cpu cpu = cpu_vendor_of(ic->root);
	char desc[512], esc[1024], unit[256];

	printf("[vfio]\n");
	if (ic->libvirt_err[0])
		printf("# libvirt: %s; no domains listed\n",
		       escape_text(ic->libvirt_err, esc, sizeof(esc)));
	else if (!ic->n_domains)
		printf("# libvirt has no domain with a GPU as a hostdev%s\n",
		       ic->vm ? " of that name" : " yet");
	for (size_t i = 0; i < ic->n_domains; i++)
		printf("# a domain with the GPU as a hostdev: %s\n",
		       escape_text(ic->domains[i], esc, sizeof(esc)));
	printf("# the libvirt domain that gets the GPU (names are case-sensitive)\n");
	printf("vm = %s\n", ic->vm ? ic->vm : ic->n_domains ? ic->domains[0] : "win11");
	if (cpu != CPU_UNSET)
		printf("# from /proc/cpuinfo: the IOMMU's kernel parameters depend on it\n"
		       "cpu = %s\n",
		       cpu == CPU_INTEL ? "intel" : "amd");
	if (gpu && (gpu->vendor == 0x1002 || gpu->vendor == 0x10de))
		printf("gpu = %s\n", gpu->vendor == 0x1002 ? "amd" : "nvidia");
	printf("# display devices, and the IOMMU group each is in (a group goes to the guest "
	       "whole)\n");
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < gpus[i].n_members; j++) {
			pci_describe(ic->root, gpus[i].members[j], desc, sizeof(desc));
			printf("#   %s %s", gpus[i].members[j],
			       escape_text(desc, esc, sizeof(esc)));
			if (gpus[i].group >= 0)
				printf(" (IOMMU group %d)", gpus[i].group);
			printf("%s\n", j == 0 && gpus[i].boot_vga ? ", the boot GPU" : "");
		}
	}
	if (!gpu)
		printf("# no display-class PCI device found: name the GPU and its functions\n"
		       "# pcis = 0000:03:00.0 0000:03:00.1\n");
	else {
		printf("pcis =");
		for (size_t j = 0; j < gpu->n_members; j++)
			printf(" %s", gpu->members[j]);
		printf("\n");
	}
	printf("# hand the GPU to vfio-pci at the guest's prepare, take it back at release;\n"
	       "# the default is false, and without it the guest cannot have the GPU\n"
	       "passthrough = true\n");
	if (display_manager_unit(ic->root, unit, sizeof(unit)) == 0)
		printf("# display-manager.service is %s here: stopped at prepare, started at "
		       "release\nstop-units = display-manager.service\n",
		       escape_text(unit, esc, sizeof(esc)));
	else
		printf("# no display-manager.service here: name the unit of your display server\n"
		       "# stop-units = gdm.service\n");
	printf("# processes that hold the GPU: their units are stopped (and started again)\n"
	       "on-holders = stop\n");
}

/* the interface's IPv4 address as a comment; only on the running host */
static void iface_addr(const char *root, const char *ifname, char *buf, size_t len)
{
	struct ifaddrs *ifa, *i;

	buf[0] = '\0';
	if (root[0] || getifaddrs(&ifa) < 0)
		return;
	for (i = ifa; i && !buf[0]; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
		    !strcmp(i->ifa_name, ifname))
			inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, buf,
				  len);
	freeifaddrs(ifa);
}

static void print_vnc(const struct init_ctx *ic)
{
	char ifname[64], addr[INET_ADDRSTRLEN], esc[256];

	printf("\n[vnc]\n"
	       "# forward a VNC server in the guest to this host's LAN address: a second\n"
	       "# machine then reaches the guest while the host has no display\n");
	if (default_route_iface(ic->root, ifname, sizeof(ifname)) < 0) {
		printf("# no default route: name the LAN interface\nenable = false\n"
		       "# interface = wlp4s0\n");
		return;
	}
	iface_addr(ic->root, ifname, addr, sizeof(addr));
	printf("# the default route's interface%s%s\n", addr[0] ? ", now " : "", addr);
	printf("enable = false\ninterface = %s\n", escape_text(ifname, esc, sizeof(esc)));
	printf("# auto: follow the interface's address, and learn the guest's from its MAC\n"
	       "host.ip = auto\nhost.port = 5900\nguest.ip = auto\nguest.port = 5900\n");
}

int init_main(struct agent_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vm", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct init_ctx ic = { .root = ctx->root };
	struct host_gpu *gpus = NULL;
	size_t n = 0;
	int opt, r;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			if (!config_vm_name_valid(optarg)) {
				log_error("init: --vm '%s' is not a name the config takes", optarg);
				return EXIT_USAGE;
			}
			ic.vm = optarg;
			break;
		case 'h':
			fputs(init_usage, stdout);
			return EXIT_OK;
		default:
			return agent_bad_option("init", argv[optind - 1]);
		}
	}
	if (optind < argc) {
		log_error("init: unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}
	if ((r = host_gpus(ctx->root, &gpus, &n)) < 0) {
		log_error("init: cannot read %s/sys/bus/pci/devices: %s", ctx->root, strerror(-r));
		return EXIT_FAILED;
	}
	find_domains(&ic);
	if (ic.libvirt_err[0])
		log_debug("init: libvirt: %s", ic.libvirt_err);
	printf("# vfio-agent.conf(5): a starting config for this host from vfio-agent init.\n"
	       "# Check it with vfio-agent --config FILE check, then run\n"
	       "# vfio-agent diagnose --vm NAME.\n\n");
	print_vfio(&ic, gpus, n);
	print_vnc(&ic);
	free(ic.dom_pcis);
	free(gpus);
	return EXIT_OK;
}
