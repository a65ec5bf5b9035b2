// SPDX-License-Identifier: GPL-2.0-or-later
/* The forward's path, judged: what would stop a LAN client's packet on its way to the guest. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <linux/bpf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "core/fwdpath.h"
#include "core/sysfs.h"
#include "netfilter/path.h"
#include "netfilter/rtnl.h"
#include "shared/macro.h"

#define MAX_ADDRS 256

__attribute__((format(printf, 4, 5))) static void add(struct fwd_path *p, enum fwd_level level,
						      const char *what, const char *fmt, ...)
{
	struct fwd_finding *f;
	va_list ap;

	if (level == FWD_BLOCKED)
		p->blocked = true;
	if (p->n == ARRAY_SIZE(p->f))
		return;
	f = &p->f[p->n++];
	f->level = level;
	snprintf(f->what, sizeof(f->what), "%s", what);
	va_start(ap, fmt);
	vsnprintf(f->text, sizeof(f->text), fmt, ap);
	va_end(ap);
}

const char *fwd_path_blocked(const struct fwd_path *p)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->f[i].level == FWD_BLOCKED)
			return p->f[i].text;
	return NULL;
}

static void sysctl_on(const char *root, const char *path, const char *name, struct fwd_path *p)
{
	char v[16] = "";

	if (read_line_at(root, path, v, sizeof(v)) < 0)
		add(p, FWD_BLOCKED, "ip_forward", "%s cannot be read: the host may not forward",
		    name);
	else if (strcmp(v, "1"))
		add(p, FWD_BLOCKED, "ip_forward",
		    "%s = %s: the host does not forward the flow (sysctl -w %s=1)", name, v, name);
}

static bool is_loopback(const struct nf_addr *a)
{
	static const uint8_t lo6[16] = { [15] = 1 };

	return a->family == AF_INET ? a->bytes[0] == 127 : !memcmp(a->bytes, lo6, 16);
}

static bool addr_in(const struct nf_addr *a, const struct nf_prefix *v, int n)
{
	for (int i = 0; i < n && i < MAX_ADDRS; i++)
		if (v[i].addr.family == a->family &&
		    !memcmp(v[i].addr.bytes, a->bytes, a->family == AF_INET ? 4 : 16))
			return true;
	return false;
}

/* "qemu-system-x86 (pid 123)": the process holding socket inode, from /proc */
static void socket_owner(const char *root, uint32_t inode, char *buf, size_t len)
{
	char want[32], path[300], link[64];
	struct dirent *de, *fe;
	DIR *d;

	snprintf(buf, len, "socket inode %u", inode);
	/* sock_diag is the running kernel's: its owner is in the real /proc only */
	if ((root && root[0] && strcmp(root, "/")) || !(d = opendir("/proc")))
		return;
	snprintf(want, sizeof(want), "socket:[%u]", inode);
	while ((de = readdir(d))) {
		DIR *fd;
		bool found = false;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", de->d_name);
		if (!(fd = opendir(path)))
			continue;
		while (!found && (fe = readdir(fd))) {
			ssize_t n;

			snprintf(path, sizeof(path), "/proc/%s/fd/%.16s", de->d_name, fe->d_name);
			n = readlink(path, link, sizeof(link) - 1);
			found = n > 0 && (link[n] = '\0', !strcmp(link, want));
		}
		closedir(fd);
		if (found) {
			char comm[32] = "?";

			snprintf(path, sizeof(path), "/proc/%s/comm", de->d_name);
			read_line_at("", path, comm, sizeof(comm));
			snprintf(buf, len, "%s (pid %.16s)", comm, de->d_name);
			break;
		}
	}
	closedir(d);
}

static void bpf_name(uint32_t id, char *buf, size_t len)
{
	struct bpf_prog_info info;
	uint32_t ilen = sizeof(info);
	int fd = bpf_prog_get_fd_by_id(id);

	memset(&info, 0, sizeof(info));
	if (fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &ilen) == 0 && info.name[0])
		snprintf(buf, len, "'%.*s'", (int)sizeof(info.name), info.name);
	else
		snprintf(buf, len, "(name unknown: %s)", strerror(fd < 0 ? errno : EIO));
	if (fd >= 0)
		close(fd);
}

int fwd_path_eval(const char *root, struct nf_sock *s, const struct nf_forward_spec *spec,
		  struct fwd_path *p, char *err, size_t errlen)
{
	static struct nf_prefix all[MAX_ADDRS], own[MAX_ADDRS];
	struct nf_drop_chain drop[8];
	const struct nf_foreign_chain *lv[NF_N_FOREIGN_CHAINS];
	struct nf_listener lis[8];
	struct rtnl_bpf progs[8];
	struct nf_err e = { 0 };
	char a[INET6_ADDRSTRLEN], who[96];
	int n_all, n_own, n, ifindex;

	memset(p, 0, sizeof(*p));
	if (spec->fam[NF_V4].enabled)
		sysctl_on(root, "/proc/sys/net/ipv4/ip_forward", "net.ipv4.ip_forward", p);
	if (spec->fam[NF_V6].enabled)
		sysctl_on(root, "/proc/sys/net/ipv6/conf/all/forwarding",
			  "net.ipv6.conf.all.forwarding", p);

	ifindex = rtnl_link_index(spec->ifname);
	if (ifindex < 0) {
		snprintf(err, errlen, "interface %s: %s", spec->ifname, strerror(-ifindex));
		return ifindex;
	}
	n_all = rtnl_link_addrs(0, AF_UNSPEC, all, MAX_ADDRS);
	n_own = n_all < 0 ? n_all : rtnl_link_addrs(ifindex, AF_UNSPEC, own, MAX_ADDRS);
	if (n_own < 0) {
		snprintf(err, errlen, "cannot read the host's addresses: %s", strerror(-n_own));
		return n_own;
	}
	for (int fam = 0; fam < NF_NFAM; fam++) {
		const struct nf_family *f = &spec->fam[fam];

		if (!f->enabled)
			continue;
		nf_addr_str(&f->guest, a, sizeof(a));
		if (is_loopback(&f->guest))
			add(p, FWD_BLOCKED, "guest-ip",
			    "guest.ip %s is a loopback address: a forwarded packet never goes there",
			    a);
		else if (addr_in(&f->guest, all, n_all))
			add(p, FWD_BLOCKED, "guest-ip",
			    "guest.ip %s is an address of this host, not the guest's", a);
		if (!addr_in(&f->host, own, n_own))
			add(p, FWD_BLOCKED, "host-ip",
			    "host.ip %s is not an address of %s: LAN clients cannot reach it there",
			    nf_addr_str(&f->host, a, sizeof(a)), spec->ifname);
	}

	n = nf_path_listeners(spec, lis, ARRAY_SIZE(lis));
	if (n < 0) {
		snprintf(err, errlen, "cannot list the listening sockets (sock_diag): %s",
			 strerror(-n));
		return n;
	}
	for (int i = 0; i < n && i < (int)ARRAY_SIZE(lis); i++) {
		socket_owner(root, lis[i].inode, who, sizeof(who));
		add(p, FWD_BLOCKED, "listener",
		    "%s %s%s%s:%u is served by %s on this host: the forward takes its connections "
		    "over (QEMU's own VNC or SPICE? let it listen on 127.0.0.1, or choose another "
		    "host.port)",
		    nf_proto_name(lis[i].proto), lis[i].addr.family == AF_INET6 ? "[" : "",
		    nf_addr_str(&lis[i].addr, a, sizeof(a)),
		    lis[i].addr.family == AF_INET6 ? "]" : "", lis[i].port, who);
	}

	n = nf_path_drop_chains(s, spec, false, drop, ARRAY_SIZE(drop), &e);
	if (n < 0) {
		snprintf(err, errlen, "cannot read the ruleset's chains: %s%s%s", strerror(-n),
			 e.msg[0] ? ": " : "", e.msg);
		return n;
	}
	for (int i = 0; i < n && i < (int)ARRAY_SIZE(drop); i++)
		add(p, FWD_BLOCKED, "chain",
		    "%s %s %s (hook %s) drops the flow: %s, and no rule there accepts "
		    "`ct status dnat` (add `ct status dnat accept` ahead of its drop)",
		    nf_family_name(drop[i].nfproto), drop[i].table, drop[i].chain,
		    nf_hook_name(drop[i].nfproto, drop[i].hook),
		    drop[i].policy ? "its policy is drop" : "its last rule drops");

	n = nf_path_libvirt_rejects(s, spec, lv, ARRAY_SIZE(lv), &e);
	if (n < 0) {
		snprintf(err, errlen, "cannot read libvirt's chains: %s%s%s", strerror(-n),
			 e.msg[0] ? ": " : "", e.msg);
		return n;
	}
	for (int i = 0; i < n && i < (int)ARRAY_SIZE(lv); i++)
		add(p, FWD_BLOCKED, "chain",
		    "%s %s %s (libvirt's) rejects new flows into its guests, and no rule there "
		    "accepts `ct status dnat` (%s)",
		    nf_family_name(lv[i]->family), lv[i]->table, lv[i]->chain,
		    spec->exempt == NF_EXEMPT_NONE
			    ? "exempt = none: set exempt = libvirt for our accept at its head"
			    : "forward up puts our accept at its head");

	n = rtnl_bpf_progs(ifindex, progs, ARRAY_SIZE(progs));
	if (n < 0) {
		snprintf(err, errlen, "cannot read %s's XDP and tc programs: %s", spec->ifname,
			 strerror(-n));
		return n;
	}
	for (int i = 0; i < n && i < (int)ARRAY_SIZE(progs); i++) {
		bpf_name(progs[i].id, who, sizeof(who));
		add(p, FWD_WARN, !strncmp(progs[i].where, "xdp", 3) ? "xdp" : "tc",
		    "BPF program id %u %s, %s on %s, runs before nftables and may drop the flow: "
		    "vfio-agent cannot evaluate it",
		    progs[i].id, who, progs[i].where, spec->ifname);
	}
	return 0;
}
