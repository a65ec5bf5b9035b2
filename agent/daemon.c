// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vfio-agent daemon: keeps the forward of the configured VM true to the
 * config while the VM runs. One event loop (libvirt's default one, with our
 * sockets added to it) waits on libvirt's domain and network events,
 * rtnetlink, the nftables monitor and a signalfd; every relevant event
 * runs one reconcile, which changes the ruleset in one transaction only
 * when it differs. No polling: timers exist only for retries, reconnects
 * and the watchdog.
 */
/* libvirt's enums with their _LAST, for the tables' _Static_asserts */
#define VIR_ENUM_SENTINELS
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/netconf.h>
#include <linux/netfilter/nf_tables.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <systemd/sd-daemon.h>

#include "agent/agent.h"
#include "core/config.h"
#include "core/dl.h"
#include "agent/forward.h"
#include "core/fwdpath.h"
#include "core/guest.h"
#include "agent/handoff.h"
#include "core/state.h"
#include "agent/log.h"
#include "shared/macro.h"
#include "netfilter/monitor.h"
#include "netfilter/nft.h"
#include "netfilter/rtnl.h"

static const char daemon_usage[] =
	"Usage: vfio-agent daemon [--foreground]\n"
	"\n"
	"Keep the configured VM's forward in place while it runs: follow the host's\n"
	"and the guest's addresses, repair the rules when another program flushes\n"
	"them, re-add the exemption when libvirt rewrites its chains, reconnect\n"
	"when libvirtd restarts. SIGHUP reloads the config; SIGTERM and SIGINT\n"
	"remove the forward and exit 0.\n"
	"\n"
	"  --foreground   stay attached, log to stderr (systemd: Type=notify)\n"
	"\n"
	"LIBVIRT_DEFAULT_URI names the libvirt connection (default qemu:///system).\n";

#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 30000
/*
 * A neighbour that appeared behind the bridge while the forward points
 * elsewhere is looked at again this often, this many times: the guest
 * talks from a new lease before libvirt's dnsmasq helper has written it
 */
#define NEIGH_RECHECK_MS 200
#define NEIGH_RECHECKS 15
#define DESC_LEN 256
#define WANT_MAX_PORTS (CONFIG_MAX_FORWARDS + 1) /* the VNC port and the forwards */

/* The forward the daemon keeps in place, compared field by field. */
struct want {
	bool up; /* false: none (the VM is not running or has no address) */
	char ifname[IFNAMSIZ];
	bool fam[NF_NFAM];
	struct nf_addr host[NF_NFAM], guest[NF_NFAM];
	struct nf_port ports[WANT_MAX_PORTS];
	size_t n_ports;
	char desc[DESC_LEN]; /* the same, as one line for the log and STATUS= */
};

struct daemon {
	const struct agent_ctx *ctx;
	struct config *c;
	const char *uri;

	virConnectPtr conn;
	int dom_cb, net_cb;
	int reconnect_timer, reconnect_ms;
	bool conn_lost;
	bool opening;	  /* a reconnect's open is in flight (open_async) */
	int open_pipe[2]; /* its result comes back here */

	struct nl_monitor *rtnl, *mon;
	struct nf_watch *watch; /* which nftables events concern the forward */
	struct nf_sock *nf;
	int sfd;
	int retry_timer, retry_ms;
	bool retry_armed;     /* the retry timer is set */
	struct nf_addr neigh; /* a neighbour that appeared, not the forward's guest yet */
	int neigh_rechecks;   /* looks left until the forward follows it */
	int watchdog_timer;

	struct want want;  /* the forward in place */
	char why[256];	   /* what the next reconcile answers */
	char blocked[320]; /* what blocks the forward's path, "" when nothing does */
	char last_err[512];
	bool quit;
};

/* ---- the desired state ---- */

static void want_set(struct want *w, const struct fwd_spec *fs, const char *desc)
{
	memset(w, 0, sizeof(*w));
	if (!fs)
		return;
	w->up = true;
	snprintf(w->ifname, sizeof(w->ifname), "%.*s", IFNAMSIZ - 1, fs->spec.ifname);
	for (int fam = 0; fam < NF_NFAM; fam++)
		if ((w->fam[fam] = fs->spec.fam[fam].enabled)) {
			w->host[fam] = fs->spec.fam[fam].host;
			w->guest[fam] = fs->spec.fam[fam].guest;
		}
	w->n_ports = fs->spec.n_ports < WANT_MAX_PORTS ? fs->spec.n_ports : WANT_MAX_PORTS;
	memcpy(w->ports, fs->spec.ports, w->n_ports * sizeof(*w->ports));
	snprintf(w->desc, sizeof(w->desc), "%s", desc);
}

static bool addr_eq(const struct nf_addr *a, const struct nf_addr *b)
{
	return a->family == b->family && !memcmp(a->bytes, b->bytes, sizeof(a->bytes));
}

static bool want_equal(const struct want *a, const struct want *b)
{
	if (a->up != b->up || strcmp(a->ifname, b->ifname) || a->n_ports != b->n_ports)
		return false;
	for (int fam = 0; fam < NF_NFAM; fam++)
		if (a->fam[fam] != b->fam[fam] ||
		    (a->fam[fam] && (!addr_eq(&a->host[fam], &b->host[fam]) ||
				     !addr_eq(&a->guest[fam], &b->guest[fam]))))
			return false;
	for (size_t i = 0; i < a->n_ports; i++)
		if (a->ports[i].proto != b->ports[i].proto ||
		    a->ports[i].host_port != b->ports[i].host_port ||
		    a->ports[i].guest_port != b->ports[i].guest_port)
			return false;
	return true;
}

/* is addr the guest side of the forward in place? */
static bool want_is_guest(const struct want *w, const struct nf_addr *addr)
{
	for (int fam = 0; w->up && fam < NF_NFAM; fam++)
		if (w->fam[fam] && addr_eq(&w->guest[fam], addr))
			return true;
	return false;
}

/*
 * Did libvirt's last call fail for want of libvirtd, not for what it
 * answered? A call that failed with no error recorded counts as away when
 * none_is_away (a lookup always records why).
 */
static bool libvirt_away(bool none_is_away)
{
	virErrorPtr e = sym_virGetLastError();

	if (!e)
		return none_is_away;
	return e->domain == VIR_FROM_RPC || e->code == VIR_ERR_SYSTEM_ERROR ||
	       e->code == VIR_ERR_RPC || e->code == VIR_ERR_NO_CONNECT ||
	       e->code == VIR_ERR_INVALID_CONN;
}

/*
 * 1 the domain runs (*dom its handle), 0 it does not, -1 libvirt cannot say:
 * its connection broke, and the loss is not noticed yet (a killed libvirtd).
 */
static int domain_running(struct daemon *d, virDomainPtr *dom)
{
	int r;

	*dom = sym_virDomainLookupByName(d->conn, d->c->vm);
	if (!*dom)
		return libvirt_away(true) ? -1 : 0;
	if ((r = sym_virDomainIsActive(*dom)) == 1)
		return 1;
	sym_virDomainFree(*dom);
	*dom = NULL;
	return r == 0 ? 0 : -1;
}

static void describe(const struct fwd_spec *fs, char *buf, size_t len)
{
	char h[64], g[64];
	size_t l = 0;

	buf[0] = '\0';
	for (int fam = 0; fam < NF_NFAM && l < len; fam++) {
		const struct nf_family *f = &fs->spec.fam[fam];

		if (!f->enabled)
			continue;
		for (size_t i = 0; i < fs->spec.n_ports && l < len; i++)
			l += (size_t)snprintf(
				buf + l, len - l, "%s%s %s:%u -> %s:%u", l ? ", " : "",
				nf_proto_name(fs->spec.ports[i].proto),
				nf_addr_str(&f->host, h, sizeof(h)), fs->spec.ports[i].host_port,
				nf_addr_str(&f->guest, g, sizeof(g)), fs->spec.ports[i].guest_port);
	}
	if (l < len)
		snprintf(buf + l, len - l, " on %s", fs->spec.ifname);
}

static void notify_status(struct daemon *d)
{
	sym_sd_notifyf(0, "STATUS=%s%s%s%s", d->want.up ? d->c->vm : "", d->want.up ? ": " : "",
		       d->want.up && d->blocked[0] ? "BLOCKED: " : "",
		       d->want.up ? (d->blocked[0] ? d->blocked : d->want.desc)
				  : "no forward (the VM is not running or has no address)");
}

/* the forward in place, and its path judged: a change in what blocks it is logged once */
static void judge_path(struct daemon *d, const struct nf_forward_spec *spec)
{
	struct fwd_path p;
	char err[512];
	const char *b;

	if (fwd_path_eval(d->ctx->root, d->nf, spec, &p, err, sizeof(err)) < 0) {
		log_debug("the path cannot be judged: %s", err);
		return;
	}
	b = fwd_path_blocked(&p);
	if (b && strcmp(b, d->blocked))
		log_warn("forward %s: BLOCKED: %s", d->c->vm, b);
	else if (!b && d->blocked[0])
		log_info("forward %s: no longer blocked", d->c->vm);
	snprintf(d->blocked, sizeof(d->blocked), "%s", b ? b : "");
}

static void retry_later(struct daemon *d)
{
	/*
	 * The back-off grows once per retry that failed, not per event: a burst
	 * of them (libvirtd starting while the hook holds the lock) would
	 * otherwise put the next try 30 s away.
	 */
	if (d->retry_armed)
		return;
	d->retry_ms = d->retry_ms ? d->retry_ms * 2 : RETRY_MIN_MS;
	if (d->retry_ms > RETRY_MAX_MS)
		d->retry_ms = RETRY_MAX_MS;
	d->retry_armed = true;
	sym_virEventUpdateTimeout(d->retry_timer, d->retry_ms);
}

/* log an error once until it changes or clears */
static void fail_once(struct daemon *d, const char *msg)
{
	if (strcmp(d->last_err, msg)) {
		log_error("%s", msg);
		snprintf(d->last_err, sizeof(d->last_err), "%s", msg);
	}
}

/* the guest's address as the forward in place has it, not asked of libvirt */
static void keep_guest(struct config *want, const struct want *w)
{
	for (int fam = 0; fam < NF_NFAM; fam++)
		if (w->fam[fam])
			want->vnc.guest[fam] = w->guest[fam];
	want->vnc.guest_auto = false;
}

static void reconcile(struct daemon *d, const char *why)
{
	struct fwd_spec fs = { 0 };
	struct config want = *d->c;
	struct want next;
	struct nf_err e = { 0 };
	char desc[DESC_LEN] = "", src[64] = "", err[512];
	virDomainPtr dom = NULL;
	bool running, removed, kept = false;
	int lock, r;

	if (d->conn && (r = domain_running(d, &dom)) >= 0) {
		running = r && d->c->vnc.enable;
	} else if (d->want.up) {
		/*
		 * libvirtd is away, restarting as a rule: the forward last known
		 * wanted is kept. libvirt makes its chains again as it starts, its
		 * reject ahead of our exemption until we put it back; the
		 * reconnect comes later, and libvirt's answer later still.
		 */
		running = d->c->vnc.enable;
		kept = true;
	} else {
		log_debug("%s: libvirt is not connected and no forward is in place", why);
		return;
	}
	if (running && want.vnc.guest_auto && kept) {
		keep_guest(&want, &d->want);
	} else if (running && want.vnc.guest_auto) {
		struct nf_addr ip;

		bool found = guest_addr_find(dom, &ip, src, sizeof(src));

		if (!found && d->want.up && libvirt_away(false)) {
			/* the connection broke since the lookup: the forward in place stays */
			keep_guest(&want, &d->want);
		} else if (!found) {
			running = false;
			snprintf(desc, sizeof(desc), "-");
		} else {
			want.vnc.guest[ip.family == AF_INET ? NF_V4 : NF_V6] = ip;
			want.vnc.guest_auto = false;
		}
	}
	if (dom)
		sym_virDomainFree(dom);
	if (running && fwd_spec_resolve(&want, &fs, err, sizeof(err)) < 0) {
		fail_once(d, err);
		fwd_spec_free(&fs);
		return; /* the next address or link event tries again */
	}
	if (running)
		describe(&fs, desc, sizeof(desc));

	/* one writer at a time with the hook; the loop never waits for it */
	if ((r = state_lock(d->ctx->root, false, &lock, err, sizeof(err))) < 0) {
		if (r == -EWOULDBLOCK) {
			log_debug("%s: the hook holds the lock; again shortly", why);
			snprintf(d->why, sizeof(d->why), "%s", why);
			retry_later(d);
		} else {
			fail_once(d, err);
		}
		fwd_spec_free(&fs);
		return;
	}
	if (running)
		r = nf_forward_up(d->nf, &fs.spec, &e);
	else
		r = nf_forward_down(d->nf, &removed, &e);
	close(lock);
	if (running && r >= 0)
		judge_path(d, &fs.spec);
	else
		d->blocked[0] = '\0';
	want_set(&next, running ? &fs : NULL, desc);
	fwd_spec_free(&fs);
	if (r < 0) {
		snprintf(err, sizeof(err), "%s: forward %s %s failed: %s%s%s; retrying", why,
			 d->c->vm, running ? "up" : "down", strerror(-r), e.msg[0] ? ": " : "",
			 e.msg);
		fail_once(d, err);
		snprintf(d->why, sizeof(d->why), "%s", why);
		retry_later(d);
		return;
	}
	d->last_err[0] = '\0';
	d->retry_ms = 0;
	d->retry_armed = false;
	sym_virEventUpdateTimeout(d->retry_timer, -1);
	if (running && (r == NF_UP_CHANGED || !want_equal(&d->want, &next))) {
		if (want_equal(&d->want, &next))
			log_info("%s: forward %s repaired: %s", why, d->c->vm, desc);
		else if (d->want.up)
			log_info("%s: forward %s updated: %s (was %s)", why, d->c->vm, desc,
				 d->want.desc);
		else
			log_info("%s: forward %s up: %s%s%s%s", why, d->c->vm, desc,
				 src[0] ? " (guest address from the " : "", src, src[0] ? ")" : "");
	} else if (!running && (removed || d->want.up)) {
		log_info("%s: forward %s removed%s", why, d->c->vm,
			 !strcmp(desc, "-") ? " until the guest has an address" : "");
	} else if (running) {
		/* every unrelated ruleset change lands here: worth a line only with -v */
		log_debug("%s: forward %s already up", why, d->c->vm);
	}
	d->want = next;
	notify_status(d);
	/* a new lease that libvirt does not show yet: asked again shortly, a few times */
	if (d->neigh_rechecks > 0 && running && !want_is_guest(&d->want, &d->neigh) &&
	    !d->retry_armed) {
		/* the first look's why; the rechecks' own end in " (retry)" */
		if (d->neigh_rechecks-- == NEIGH_RECHECKS)
			snprintf(d->why, sizeof(d->why), "%s", why);
		d->retry_armed = true;
		sym_virEventUpdateTimeout(d->retry_timer, NEIGH_RECHECK_MS);
	} else if (d->neigh_rechecks > 0 && (!running || want_is_guest(&d->want, &d->neigh))) {
		d->neigh_rechecks = 0;
	}
}

/* ---- libvirt ---- */

static const char *const lifecycle_names[] = {
	[VIR_DOMAIN_EVENT_DEFINED] = "defined",	   [VIR_DOMAIN_EVENT_UNDEFINED] = "undefined",
	[VIR_DOMAIN_EVENT_STARTED] = "started",	   [VIR_DOMAIN_EVENT_SUSPENDED] = "suspended",
	[VIR_DOMAIN_EVENT_RESUMED] = "resumed",	   [VIR_DOMAIN_EVENT_STOPPED] = "stopped",
	[VIR_DOMAIN_EVENT_SHUTDOWN] = "shut down", [VIR_DOMAIN_EVENT_PMSUSPENDED] = "pmsuspended",
	[VIR_DOMAIN_EVENT_CRASHED] = "crashed",
};
/* a lifecycle event libvirt adds is a build error here, not a "changed" in the log */
_Static_assert(ARRAY_SIZE(lifecycle_names) == VIR_DOMAIN_EVENT_LAST,
	       "a name for every domain lifecycle event");

static const char *const network_names[] = {
	[VIR_NETWORK_EVENT_DEFINED] = "defined",
	[VIR_NETWORK_EVENT_UNDEFINED] = "undefined",
	[VIR_NETWORK_EVENT_STARTED] = "started",
	[VIR_NETWORK_EVENT_STOPPED] = "stopped",
};
_Static_assert(ARRAY_SIZE(network_names) == VIR_NETWORK_EVENT_LAST,
	       "a name for every network lifecycle event");

static int on_domain(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
	struct daemon *d = opaque;
	char why[256];

	if (strcmp(sym_virDomainGetName(dom), d->c->vm))
		return 0;
	snprintf(why, sizeof(why), "domain %s %s", d->c->vm,
		 event >= 0 && (size_t)event < ARRAY_SIZE(lifecycle_names) ? lifecycle_names[event]
									   : "changed");
	reconcile(d, why);
	return 0;
}

static int on_network(virConnectPtr conn, virNetworkPtr net, int event, int detail, void *opaque)
{
	struct daemon *d = opaque;
	char why[256];

	/* libvirt rewrites its chains when a network starts: our exemption goes */
	snprintf(why, sizeof(why), "network %s %s", sym_virNetworkGetName(net),
		 event == VIR_NETWORK_EVENT_STARTED || event == VIR_NETWORK_EVENT_STOPPED
			 ? network_names[event]
			 : "changed");
	reconcile(d, why);
	return 0;
}

static void disconnect(struct daemon *d)
{
	if (!d->conn)
		return;
	if (d->dom_cb >= 0)
		sym_virConnectDomainEventDeregisterAny(d->conn, d->dom_cb);
	if (d->net_cb >= 0)
		sym_virConnectNetworkEventDeregisterAny(d->conn, d->net_cb);
	d->dom_cb = d->net_cb = -1;
	sym_virConnectUnregisterCloseCallback(d->conn, NULL);
	sym_virConnectClose(d->conn);
	d->conn = NULL;
}

static void on_close(virConnectPtr conn, int reason, void *opaque)
{
	struct daemon *d = opaque;

	/* not here: libvirt is inside its own call; the reconnect timer tidies up */
	d->conn_lost = true;
	sym_virEventUpdateTimeout(d->reconnect_timer, 0);
}

/* what the daemon follows; each registration's id lands in its slot of struct daemon */
static const struct {
	int id;
	virConnectDomainEventGenericCallback domain; /* one of the two */
	virConnectNetworkEventGenericCallback network;
	size_t slot;
} subscriptions[] = {
	{ VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK(on_domain), NULL,
	  offsetof(struct daemon, dom_cb) },
	{ VIR_NETWORK_EVENT_ID_LIFECYCLE, NULL, VIR_NETWORK_EVENT_CALLBACK(on_network),
	  offsetof(struct daemon, net_cb) },
};
_Static_assert(VIR_DOMAIN_EVENT_ID_LIFECYCLE < VIR_DOMAIN_EVENT_ID_LAST &&
		       VIR_NETWORK_EVENT_ID_LIFECYCLE < VIR_NETWORK_EVENT_ID_LAST,
	       "the events subscribed to exist");

/* an open connection made the daemon's: keepalive, the close callback, the events */
static int subscribe(struct daemon *d, virConnectPtr conn)
{
	virErrorPtr err;
	bool ok = true;

	d->conn = conn;
	sym_virConnectSetKeepAlive(d->conn, 5, 3);
	sym_virConnectRegisterCloseCallback(d->conn, on_close, d, NULL);
	for (size_t i = 0; i < ARRAY_SIZE(subscriptions); i++) {
		int *slot = (int *)((char *)d + subscriptions[i].slot);

		*slot = subscriptions[i].network ? sym_virConnectNetworkEventRegisterAny(
							   d->conn, NULL, subscriptions[i].id,
							   subscriptions[i].network, d, NULL)
						 : sym_virConnectDomainEventRegisterAny(
							   d->conn, NULL, subscriptions[i].id,
							   subscriptions[i].domain, d, NULL);
		ok &= *slot >= 0;
	}
	if (!ok) {
		err = sym_virGetLastError();
		snprintf(d->last_err, sizeof(d->last_err),
			 "cannot subscribe to libvirt's events: %s",
			 err && err->message ? err->message : "?");
		disconnect(d);
		return -1;
	}
	return 0;
}

static void open_failed(struct daemon *d, const char *msg)
{
	snprintf(d->last_err, sizeof(d->last_err), "cannot connect to %s: %s",
		 d->uri ? d->uri : "libvirt", msg);
}

/* at start: before the loop runs, nothing waits on it */
static int connect_libvirt(struct daemon *d)
{
	virConnectPtr conn = sym_virConnectOpen(d->uri);
	virErrorPtr err;

	if (!conn) {
		err = sym_virGetLastError();
		open_failed(d, err && err->message ? err->message : "?");
		return -1;
	}
	return subscribe(d, conn);
}

/*
 * A reconnect opens the connection in a thread of its own. A libvirtd that
 * is starting takes the connection but answers only once its drivers are
 * up, after it has rewritten its chains: the loop repairs those meanwhile.
 * The thread hands its result back through a pipe, in one write.
 */
struct opened {
	virConnectPtr conn;
	char err[256];
};
_Static_assert(sizeof(struct opened) <= PIPE_BUF, "one write, whole or not at all");

struct opener {
	const char *uri;
	int fd; /* its own copy of the pipe's write end */
};

static void *open_thread(void *arg)
{
	struct opener *o = arg;
	struct opened res = { .conn = sym_virConnectOpen(o->uri) };
	virErrorPtr err;

	if (!res.conn) {
		err = sym_virGetLastError();
		snprintf(res.err, sizeof(res.err), "%s", err && err->message ? err->message : "?");
	}
	if (write(o->fd, &res, sizeof(res)) != (ssize_t)sizeof(res) && res.conn)
		sym_virConnectClose(res.conn); /* the daemon is stopping */
	close(o->fd);
	free(o);
	return NULL;
}

static int open_async(struct daemon *d)
{
	struct opener *o = malloc(sizeof(*o));
	pthread_attr_t attr;
	pthread_t t;
	int r;

	if (!o)
		return -ENOMEM;
	o->uri = d->uri;
	o->fd = fcntl(d->open_pipe[1], F_DUPFD_CLOEXEC, 0);
	if (o->fd < 0) {
		r = -errno;
		goto free_opener;
	}
	if ((r = -pthread_attr_init(&attr)) < 0)
		goto close_fd;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = -pthread_create(&t, &attr, open_thread, o);
	pthread_attr_destroy(&attr);
	if (r < 0)
		goto close_fd;
	d->opening = true;
	return 0;
close_fd:
	close(o->fd);
free_opener:
	free(o);
	return r;
}

static void back_off(struct daemon *d)
{
	d->reconnect_ms = d->reconnect_ms ? d->reconnect_ms * 2 : 250;
	if (d->reconnect_ms > RETRY_MAX_MS)
		d->reconnect_ms = RETRY_MAX_MS;
	log_debug("%s; again in %d ms", d->last_err, d->reconnect_ms);
	sym_virEventUpdateTimeout(d->reconnect_timer, d->reconnect_ms);
}

static void on_opened(int watch, int fd, int events, void *opaque)
{
	struct daemon *d = opaque;
	struct opened res;

	if (read(fd, &res, sizeof(res)) != (ssize_t)sizeof(res))
		return;
	d->opening = false;
	if (!res.conn) {
		open_failed(d, res.err);
	} else if (subscribe(d, res.conn) == 0) {
		log_info("connected to libvirt");
		d->reconnect_ms = 0;
		sym_virEventUpdateTimeout(d->reconnect_timer, -1);
		reconcile(d, "libvirt connected");
		return;
	}
	back_off(d);
}

static void on_reconnect_timer(int timer, void *opaque)
{
	struct daemon *d = opaque;
	int r;

	if (d->conn_lost) {
		d->conn_lost = false;
		log_warn("libvirt connection lost; the rules stay as they are, reconnecting");
		disconnect(d);
		d->reconnect_ms = 0;
	}
	sym_virEventUpdateTimeout(timer, -1);
	if (d->conn || d->opening)
		return; /* the open in flight answers */
	if ((r = open_async(d)) < 0) {
		snprintf(d->last_err, sizeof(d->last_err),
			 "cannot start the thread that connects to libvirt: %s", strerror(-r));
		back_off(d);
	}
}

/* ---- netlink ---- */

struct batch {
	struct daemon *d;
	int ifindex; /* the forward's interface */
	char why[256];
	uint32_t own;
	bool libvirt; /* nft: libvirt wrote its tables or chains */
};

static void on_rtnl_event(const struct nl_event *ev, void *data)
{
	struct batch *b = data;
	char a[64];

	if (b->why[0])
		return;
	if (ev->type == NL_EV_LINK &&
	    (ev->ifindex == b->ifindex || !strcmp(ev->ifname, b->d->c->vnc.interface)))
		snprintf(b->why, sizeof(b->why), "interface %s %s", b->d->c->vnc.interface,
			 ev->removed ? "went away"
			 : ev->up    ? "is up"
				     : "is down");
	else if (ev->type == NL_EV_ADDR && ev->ifindex == b->ifindex)
		snprintf(b->why, sizeof(b->why), "host address %s %s %s",
			 nf_addr_str(&ev->addr, a, sizeof(a)), ev->removed ? "left" : "came to",
			 b->d->c->vnc.interface);
	else if (ev->type == NL_EV_NEIGH && b->d->c->vnc.guest_auto && ev->addr.family == AF_INET &&
		 ev->ifindex != b->ifindex) {
		/*
		 * A neighbour behind a bridge (the guest's side, not the LAN):
		 * a guest that came up or took a new lease talks from an address
		 * the forward does not have yet; the forward's own going away.
		 */
		bool ours = want_is_guest(&b->d->want, &ev->addr);

		nf_addr_str(&ev->addr, a, sizeof(a));
		if (ev->removed && ours)
			snprintf(b->why, sizeof(b->why), "neighbour %s went away", a);
		else if (!ev->removed && !ours) {
			snprintf(b->why, sizeof(b->why), "neighbour %s appeared", a);
			b->d->neigh = ev->addr;
			b->d->neigh_rechecks = NEIGH_RECHECKS;
		}
	} else if (ev->type == NL_EV_NETCONF && ev->ifindex == NETCONFA_IFINDEX_ALL &&
		   ev->forwarding >= 0) {
		/* fwd_path_eval reads these two: the path is judged again */
		snprintf(b->why, sizeof(b->why), "%s = %d",
			 ev->family == AF_INET6 ? "net.ipv6.conf.all.forwarding"
						: "net.ipv4.ip_forward",
			 ev->forwarding);
	}
}

static void on_rtnl(int watch, int fd, int events, void *opaque)
{
	struct daemon *d = opaque;
	struct batch b = { d, rtnl_link_index(d->c->vnc.interface), "", 0, false };
	int n = nl_monitor_read(d->rtnl, on_rtnl_event, &b);

	if (n == -ENOBUFS)
		reconcile(d, "rtnetlink events were lost: full resync");
	else if (b.why[0])
		reconcile(d, b.why);
}

/* libvirt's own tables and chains (iptables: LIBVIRT_FWI and its kin; nftables: libvirt_network) */
static bool by_libvirt(const struct nl_event *ev)
{
	return !strncmp(ev->table, "libvirt", 7) || !strncmp(ev->chain, "LIBVIRT_", 8);
}

static void on_nft_event(const struct nl_event *ev, void *data)
{
	struct batch *b = data;

	/* our own changes come back with our port; the rest only when it concerns us */
	if (ev->portid == b->own || !nf_watch_concerns(b->d->watch, ev))
		return;
	b->libvirt |= by_libvirt(ev);
	if (b->why[0])
		return;
	if (ev->chain[0])
		snprintf(b->why, sizeof(b->why), "%s %s %s %s changed by another program",
			 nf_family_name(ev->nfproto), ev->table, ev->chain,
			 ev->nft_msg == NFT_MSG_NEWRULE || ev->nft_msg == NFT_MSG_DELRULE
				 ? "rules"
				 : "chain");
	else
		snprintf(b->why, sizeof(b->why), "table %s %s changed by another program",
			 nf_family_name(ev->nfproto), ev->table[0] ? ev->table : "(all)");
}

/* the chains the base chains send packets on to: the judge reads them, the watch follows them */
static void reach(struct daemon *d)
{
	struct nf_err e = { 0 };
	int r = nf_watch_reach(d->watch, d->nf, &e);

	if (r < 0)
		log_debug("cannot read where the base chains jump: %s%s%s", strerror(-r),
			  e.msg[0] ? ": " : "", e.msg);
}

/* the monitor's filter keeps up with the base chains the watch knows */
static void follow(struct daemon *d)
{
	int r = nf_watch_follow(d->watch, d->mon);

	if (r < 0)
		log_debug("cannot narrow the nftables monitor: %s; every rule event comes up",
			  strerror(-r));
}

static void on_nft(int watch, int fd, int events, void *opaque)
{
	struct daemon *d = opaque;
	struct batch b = { d, 0, "", nf_sock_portid(d->nf), false };
	struct nf_err e = { 0 };
	int n = nl_monitor_read(d->mon, on_nft_event, &b), r;

	/* what was lost may have made or removed a base chain */
	if (n == -ENOBUFS && (r = nf_watch_resync(d->watch, d->nf, &e)) < 0)
		log_warn("cannot read the ruleset's chains: %s%s%s", strerror(-r),
			 e.msg[0] ? ": " : "", e.msg);
	if (n == -ENOBUFS || b.why[0])
		reach(d);
	follow(d);
	if (n == -ENOBUFS) {
		reconcile(d, "nftables monitor overflowed: full resync");
		b.libvirt = true;
	} else if (b.why[0]) {
		reconcile(d, b.why);
	}
	/*
	 * libvirtd writes its chains as it starts, before it answers: the
	 * repair above came first, and the reconnect starts now, not at the
	 * end of its back-off (in a thread: see open_async).
	 */
	if (!d->conn && !d->opening && b.libvirt) {
		log_debug("libvirt's chains changed: reconnecting now");
		d->reconnect_ms = 0;
		sym_virEventUpdateTimeout(d->reconnect_timer, 0);
	}
}

/* ---- signals, timers ---- */

static void reload(struct daemon *d)
{
	struct config *c = NULL;
	char err[512];
	int r = config_load(d->ctx->config_path, &c, err, sizeof(err));

	if (r < 0) {
		log_error("SIGHUP: %s; the old config and its forward stay in force", err);
		return;
	}
	config_free(d->c);
	d->c = c;
	log_info("SIGHUP: config %s reloaded", c->path);
	reconcile(d, "config reloaded");
}

static void on_signal(int watch, int fd, int events, void *opaque)
{
	struct daemon *d = opaque;
	struct signalfd_siginfo si;

	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			reload(d);
		} else {
			log_info("%s: stopping", strsignal((int)si.ssi_signo));
			d->quit = true;
		}
	}
}

static void on_retry(int timer, void *opaque)
{
	struct daemon *d = opaque;
	char why[sizeof(d->why) + 16];

	sym_virEventUpdateTimeout(timer, -1);
	d->retry_armed = false;
	snprintf(why, sizeof(why), "%s (retry)", d->why[0] ? d->why : "retry");
	reconcile(d, why);
}

static void on_watchdog(int timer, void *opaque)
{
	sym_sd_notify(0, "WATCHDOG=1");
}

/* ---- setup and the loop ---- */

/* without --foreground: detach, and return in the parent once the child is ready */
static int detach(int *ready_fd)
{
	int p[2];
	pid_t pid;
	char c;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(p[1]);
		_exit(read(p[0], &c, 1) == 1 ? EXIT_OK : EXIT_FAILED);
	}
	close(p[0]);
	setsid();
	if (chdir("/") < 0)
		return -errno;
	*ready_fd = p[1];
	return 0;
}

static int setup(struct daemon *d)
{
	struct nf_err e = { 0 };
	sigset_t set;
	int r;
	uint64_t wd_usec;

	if ((r = nl_monitor_open(NL_MON_RTNL, &d->rtnl)) < 0 ||
	    (r = nl_monitor_open(NL_MON_NFT, &d->mon)) < 0) {
		log_error("cannot open the netlink event sockets: %s%s", strerror(-r),
			  r == -EPERM ? " (CAP_NET_ADMIN is needed)" : "");
		return -1;
	}
	if ((r = nf_sock_open(&d->nf)) < 0) {
		log_error("cannot open a netfilter netlink socket: %s", strerror(-r));
		return -1;
	}
	/* after the monitor: a chain made in between is an event, not a gap */
	if ((r = nf_watch_new(d->nf, &d->watch, &e)) < 0) {
		log_error("cannot read the ruleset's chains: %s%s%s", strerror(-r),
			  e.msg[0] ? ": " : "", e.msg);
		return -1;
	}
	reach(d);
	follow(d);
	if (pipe2(d->open_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		log_error("pipe: %s", strerror(errno));
		return -1;
	}
	/* an open that ends after the daemon stopped writes into a closed pipe */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	d->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->sfd < 0) {
		log_error("signalfd: %s", strerror(errno));
		return -1;
	}
	if (sym_virEventAddHandle(nl_monitor_fd(d->rtnl), VIR_EVENT_HANDLE_READABLE, on_rtnl, d,
				  NULL) < 0 ||
	    sym_virEventAddHandle(nl_monitor_fd(d->mon), VIR_EVENT_HANDLE_READABLE, on_nft, d,
				  NULL) < 0 ||
	    sym_virEventAddHandle(d->sfd, VIR_EVENT_HANDLE_READABLE, on_signal, d, NULL) < 0 ||
	    sym_virEventAddHandle(d->open_pipe[0], VIR_EVENT_HANDLE_READABLE, on_opened, d, NULL) <
		    0 ||
	    (d->retry_timer = sym_virEventAddTimeout(-1, on_retry, d, NULL)) < 0 ||
	    (d->reconnect_timer = sym_virEventAddTimeout(-1, on_reconnect_timer, d, NULL)) < 0) {
		log_error("cannot register with libvirt's event loop");
		return -1;
	}
	if (sym_sd_watchdog_enabled(0, &wd_usec) > 0)
		d->watchdog_timer = sym_virEventAddTimeout((int)(wd_usec / 2000), on_watchdog, d,
							   NULL);
	return 0;
}

int daemon_main(struct agent_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "foreground", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct daemon d = {
		.ctx = ctx, .dom_cb = -1, .net_cb = -1, .sfd = -1, .open_pipe = { -1, -1 }
	};
	bool foreground = false;
	int opt, ready_fd = -1, ret = EXIT_FAILED;
	bool removed;
	struct nf_err e = { 0 };

	optind = 1;
	while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			foreground = true;
			break;
		case 'h':
			fputs(daemon_usage, stdout);
			return EXIT_OK;
		default:
			return agent_bad_option("daemon", argv[optind - 1]);
		}
	}
	if (optind < argc) {
		log_error("daemon: unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}
	if ((ret = agent_load_config(ctx, true, &d.c)) != EXIT_OK)
		return ret;
	if (!d.c->vnc.enable)
		log_warn("[vnc] enable = false in %s: the daemon keeps no forward until it is set",
			 d.c->path);
	d.uri = agent_libvirt_uri();
	if (agent_libvirt_setup(d.last_err, sizeof(d.last_err)) < 0 ||
	    dl_libsystemd(d.last_err, sizeof(d.last_err)) < 0) {
		log_error("daemon: %s", d.last_err);
		ret = EXIT_FAILED;
		goto out;
	}
	if (!foreground) {
		log_setup(LOG_TO_SYSLOG, ctx->verbosity);
		if (detach(&ready_fd) < 0) {
			log_error("cannot detach: %s", strerror(errno));
			goto out;
		}
	}
	if (sym_virEventRegisterDefaultImpl() < 0) {
		log_error("cannot set up libvirt's event loop");
		goto out;
	}
	ret = EXIT_FAILED;
	if (setup(&d) < 0)
		goto out;
	if (connect_libvirt(&d) < 0) {
		log_warn("%s; the rules stay as they are, reconnecting", d.last_err);
		sym_virEventUpdateTimeout(d.reconnect_timer, 250);
	} else {
		reconcile(&d, "started");
	}
	sym_sd_notify(0, "READY=1");
	notify_status(&d);
	if (ready_fd >= 0) {
		if (write(ready_fd, "r", 1) != 1)
			log_debug("the parent is gone");
		close(ready_fd);
		ready_fd = -1;
	}
	log_info("daemon ready: following %s%s", d.c->vm,
		 d.conn ? "" : " (libvirt not connected yet)");

	while (!d.quit)
		if (sym_virEventRunDefaultImpl() < 0) {
			log_error("libvirt's event loop failed");
			goto out;
		}

	sym_sd_notify(0, "STOPPING=1");
	ret = EXIT_OK;
	if ((opt = nf_forward_down(d.nf, &removed, &e)) < 0) {
		ret = fwd_report_error("removing the forward", opt, &e);
	} else if (removed) {
		log_info("forward %s removed: the daemon stops", d.c->vm);
	}
out:
	disconnect(&d);
	nl_monitor_close(d.rtnl);
	nl_monitor_close(d.mon);
	nf_watch_free(d.watch);
	nf_sock_close(d.nf);
	if (d.sfd >= 0)
		close(d.sfd);
	for (int i = 0; i < 2; i++)
		if (d.open_pipe[i] >= 0)
			close(d.open_pipe[i]);
	config_free(d.c);
	return ret;
}
