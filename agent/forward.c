// SPDX-License-Identifier: GPL-2.0-or-later
/* vfio-agent forward up|down|status [--vm NAME] [--json] */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/netfilter.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "agent/agent.h"
#include "core/config.h"
#include "agent/forward.h"
#include "core/dl.h"
#include "core/fwdpath.h"
#include "core/guest.h"
#include "core/state.h"
#include "agent/log.h"
#include "agent/show.h"
#include "shared/macro.h"
#include "netfilter/rtnl.h"

/* guest.ip = auto: the running domain's address, asked of libvirt; an exit code */
static int guest_addr_fill(struct config *c)
{
	virConnectPtr conn;
	struct nf_addr ip;
	char src[64], a[64], err[320];
	int r;

	if (agent_libvirt_setup(err, sizeof(err)) < 0) {
		log_error("guest.ip = auto: %s", err);
		return EXIT_FAILED;
	}
	if (agent_libvirt_open(true, &conn, err, sizeof(err)) < 0) {
		log_error("guest.ip = auto: cannot ask libvirt for %s's address: %s", c->vm, err);
		return EXIT_FAILED;
	}
	r = guest_addr_lookup(conn, c->vm, &ip, src, sizeof(src));
	sym_virConnectClose(conn);
	if (r == -ESRCH) {
		log_error("guest.ip = auto: domain %s is not running, so it has no address", c->vm);
		return EXIT_FAILED;
	}
	if (r < 0) {
		log_error(
			"guest.ip = auto: %s's address is not known yet (no DHCP lease, no ARP or "
			"neighbour entry for its MAC)",
			c->vm);
		return EXIT_FAILED;
	}
	log_debug("guest %s is %s (%s)", c->vm, nf_addr_str(&ip, a, sizeof(a)), src);
	c->vnc.guest[ip.family == AF_INET ? NF_V4 : NF_V6] = ip;
	c->vnc.guest_auto = false;
	return EXIT_OK;
}

static const char forward_usage[] =
	"Usage: vfio-agent forward up|down|status [--vm NAME] [--json]\n"
	"\n"
	"Install, remove or show the VNC port forward of the configured VM:\n"
	"  up       program table inet vfio_agent in one transaction (idempotent)\n"
	"  down     remove that table and the exemption in libvirt's chain\n"
	"  status   show each forward, the exemption and their counters, and what\n"
	"           stands in the flow's way: BLOCKED (exit 1), WARN\n"
	"\n"
	"  --vm NAME   the VM (must be the config's [vfio] vm)\n"
	"  --json      status as JSON\n";

int fwd_report_error(const char *what, int r, const struct nf_err *e)
{
	const char *obj = e->object[0] ? e->object : NULL;

	if ((r == -EPERM || r == -EACCES) && !obj) {
		/* nfnetlink refuses the first message without CAP_NET_ADMIN */
		log_error("%s: not permitted: CAP_NET_ADMIN is needed (run as root)", what);
	} else if (r == -EPERM && obj) {
		log_error("%s: %s refused: %s (owned by another program?)%s%s; nothing was changed",
			  what, obj, strerror(-r), e->msg[0] ? ": " : "", e->msg);
	} else if ((r == -ENOENT || r == -EOPNOTSUPP) && obj && strstr(obj, "chain nat_")) {
		log_error(
			"%s: the kernel has no nftables NAT support (nf_nat, nft_chain_nat): %s refused: %s%s%s",
			what, obj, strerror(-r), e->msg[0] ? ": " : "", e->msg);
	} else {
		log_error("%s: %s%s%s%s%s%s", what, obj ? obj : "", obj ? " refused: " : "",
			  strerror(-r), e->msg[0] ? ": " : "", e->msg,
			  obj ? "; nothing was changed" : "");
	}
	return EXIT_FAILED;
}

/* The path's findings as log lines; true when one of them blocks the flow. */
static bool path_log(const char *root, struct nf_sock *s, const struct config *c,
		     const struct nf_forward_spec *spec)
{
	struct fwd_path p;
	char err[512];

	if (fwd_path_eval(root, s, spec, &p, err, sizeof(err)) < 0) {
		log_warn("forward %s: the path cannot be judged: %s", c->vm, err);
		return false;
	}
	for (size_t i = 0; i < p.n; i++)
		if (p.f[i].level == FWD_BLOCKED)
			log_error("forward %s: BLOCKED: %s", c->vm, p.f[i].text);
		else
			log_warn("forward %s: WARN: %s", c->vm, p.f[i].text);
	return p.blocked;
}

int forward_up(const struct config *c, const char *root, bool judge)
{
	struct fwd_spec fs = { 0 };
	struct nf_sock *sock = NULL;
	struct nf_err e = { 0 };
	char err[512];
	int r, ret;

	if (fwd_spec_resolve(c, &fs, err, sizeof(err)) < 0) {
		log_error("%s", err);
		ret = EXIT_FAILED;
		goto out;
	}
	ret = EXIT_FAILED;
	if ((r = nf_sock_open(&sock)) < 0) {
		log_error("cannot open a netfilter netlink socket: %s", strerror(-r));
		goto out;
	}
	if ((r = nf_forward_up(sock, &fs.spec, &e)) < 0) {
		ret = fwd_report_error("forward up", r, &e);
		goto out;
	}
	log_info("forward %s %s: %zu port%s on %s", c->vm,
		 r == NF_UP_UNCHANGED ? "already up" : "up", fs.spec.n_ports,
		 fs.spec.n_ports == 1 ? "" : "s", fs.spec.ifname);
	/* in place, and still of no use when the path is blocked: say so, exit 1 */
	ret = judge && path_log(root, sock, c, &fs.spec) ? EXIT_FAILED : EXIT_OK;
out:
	nf_sock_close(sock);
	fwd_spec_free(&fs);
	return ret;
}

int forward_down(void)
{
	struct nf_sock *sock = NULL;
	struct nf_err e = { 0 };
	bool removed;
	int r, ret = EXIT_FAILED;

	if ((r = nf_sock_open(&sock)) < 0) {
		log_error("cannot open a netfilter netlink socket: %s", strerror(-r));
		return EXIT_FAILED;
	}
	if ((r = nf_forward_down(sock, &removed, &e)) < 0) {
		ret = fwd_report_error("forward down", r, &e);
	} else {
		log_info("forward %s", removed ? "down" : "already down");
		ret = EXIT_OK;
	}
	nf_sock_close(sock);
	return ret;
}

static void port_line(FILE *out, const struct nf_forward_spec *s, const struct nf_fwd_status *f,
		      int fam)
{
	char h[INET6_ADDRSTRLEN], g[INET6_ADDRSTRLEN];
	const char *lb = fam == NF_V6 ? "[" : "", *rb = fam == NF_V6 ? "]" : "";

	fprintf(out, "  %s %s%s%s:%u -> %s%s%s:%u  %s  packets %llu bytes %llu\n",
		nf_proto_name(f->port.proto), lb, nf_addr_str(&s->fam[fam].host, h, sizeof(h)), rb,
		f->port.host_port, lb, nf_addr_str(&f->guest, g, sizeof(g)), rb, f->port.guest_port,
		f->present ? "in place" : "MISSING", (unsigned long long)f->packets,
		(unsigned long long)f->bytes);
}

/*
 * an exemption line that says something: one the config asks for or one of
 * ours left over, in a chain that sees a family the forward uses
 */
static bool exempt_shown(const struct nf_forward_spec *s, const struct nf_exempt_status *x)
{
	if (!x->chain_exists || (!x->wanted && !x->n_rules))
		return false;
	if (!s || (x->nfproto != NFPROTO_IPV4 && x->nfproto != NFPROTO_IPV6))
		return true;
	return s->fam[x->nfproto == NFPROTO_IPV4 ? NF_V4 : NF_V6].enabled;
}

static const char *exempt_state(const struct nf_exempt_status *x)
{
	if (!x->n_rules)
		return "ABSENT";
	if (!x->wanted)
		return "NOT WANTED (the config's exempt does not ask for it; forward up removes it)";
	if (!x->at_head)
		return "NOT AT HEAD (the chain's own rules come first; forward up moves it back)";
	return "in place";
}

static const char *const level_name[] = { [FWD_WARN] = "WARN", [FWD_BLOCKED] = "BLOCKED" };

static int show_status(const struct config *c, const struct fwd_spec *fs,
		       const struct nf_status *st, const struct fwd_path *path, bool json)
{
	const struct nf_forward_spec *s = fs ? &fs->spec : NULL;
	char buf[INET6_ADDRSTRLEN];
	bool not_at_head = false;

	for (size_t i = 0; i < st->n_exempt; i++)
		not_at_head |= exempt_shown(s, &st->exempt[i]) && st->exempt[i].n_rules &&
			       !st->exempt[i].at_head;

	if (json) {
		json_object *o = json_object_new_object(), *arr = json_object_new_array();

		json_object_object_add(o, "vm", json_str(c ? c->vm : ""));
		json_object_object_add(o, "table", json_object_new_boolean(st->table));
		json_object_object_add(o, "in_sync", json_object_new_boolean(st->matches));
		if (s)
			json_object_object_add(o, "interface", json_str(s->ifname));
		for (size_t i = 0; i < st->n_fwd; i++) {
			const struct nf_fwd_status *f = &st->fwd[i];
			int fam = f->guest.family == AF_INET ? NF_V4 : NF_V6;
			json_object *e = json_object_new_object();

			json_object_object_add(e, "proto", json_str(nf_proto_name(f->port.proto)));
			json_object_object_add(
				e, "host",
				json_str(nf_addr_str(&s->fam[fam].host, buf, sizeof(buf))));
			json_object_object_add(e, "host_port",
					       json_object_new_int(f->port.host_port));
			json_object_object_add(e, "guest",
					       json_str(nf_addr_str(&f->guest, buf, sizeof(buf))));
			json_object_object_add(e, "guest_port",
					       json_object_new_int(f->port.guest_port));
			json_object_object_add(e, "present", json_object_new_boolean(f->present));
			json_object_object_add(e, "packets", json_object_new_uint64(f->packets));
			json_object_object_add(e, "bytes", json_object_new_uint64(f->bytes));
			json_object_array_add(arr, e);
		}
		json_object_object_add(o, "forwards", arr);
		arr = json_object_new_array();
		for (size_t i = 0; i < st->n_exempt; i++) {
			const struct nf_exempt_status *x = &st->exempt[i];
			json_object *e;

			if (!exempt_shown(s, x))
				continue;
			e = json_object_new_object();
			json_object_object_add(e, "family", json_str(nf_family_name(x->nfproto)));
			json_object_object_add(e, "table", json_str(x->table));
			json_object_object_add(e, "chain", json_str(x->chain));
			json_object_object_add(e, "libvirt", json_object_new_boolean(x->libvirt));
			json_object_object_add(e, "wanted", json_object_new_boolean(x->wanted));
			json_object_object_add(e, "rules", json_object_new_int((int)x->n_rules));
			json_object_object_add(e, "present",
					       json_object_new_boolean(x->n_rules > 0));
			json_object_object_add(e, "at_head",
					       json_object_new_boolean(x->n_rules && x->at_head));
			json_object_object_add(e, "packets", json_object_new_uint64(x->packets));
			json_object_object_add(e, "bytes", json_object_new_uint64(x->bytes));
			json_object_array_add(arr, e);
		}
		json_object_object_add(o, "exemptions", arr);
		json_object *d = json_object_new_object();
		json_object_object_add(d, "packets", json_object_new_uint64(st->dropped_packets));
		json_object_object_add(d, "bytes", json_object_new_uint64(st->dropped_bytes));
		json_object_object_add(o, "dropped", d);
		arr = json_object_new_array();
		for (size_t i = 0; path && i < path->n; i++) {
			json_object *e = json_object_new_object();

			json_object_object_add(
				e, "level", json_object_new_string(level_name[path->f[i].level]));
			json_object_object_add(e, "what", json_object_new_string(path->f[i].what));
			json_object_object_add(e, "detail",
					       json_object_new_string(path->f[i].text));
			json_object_array_add(arr, e);
		}
		json_object_object_add(o, "path", arr);
		json_object_object_add(o, "blocked",
				       json_object_new_boolean(path && path->blocked));
		json_object_object_add(o, "not_at_head", json_object_new_boolean(not_at_head));
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							       JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
		return (path && path->blocked) || not_at_head ? EXIT_FAILED : EXIT_OK;
	}

	if (!st->table) {
		printf("forward %s: down (no table inet " NF_TABLE_NAME ")\n", c ? c->vm : "");
	} else if (path && path->blocked) {
		/* never "up" for a forward that cannot work */
		printf("forward %s: BLOCKED: %s\n  rules in place%s\n", c ? c->vm : "",
		       fwd_path_blocked(path),
		       st->matches ? ", matching the config" : ", DIFFERING from the config");
	} else {
		printf("forward %s: up%s\n", c ? c->vm : "",
		       !s	     ? ""
		       : st->matches ? ", matches the config"
				     : ", DIFFERS from the config (run forward up)");
	}
	if (s) {
		printf("  interface %s, allow", s->ifname);
		for (int fam = 0; fam < NF_NFAM; fam++)
			for (size_t i = 0; s->fam[fam].enabled && i < s->fam[fam].n_allow; i++)
				printf(" %s/%u",
				       nf_addr_str(&s->fam[fam].allow[i].addr, buf, sizeof(buf)),
				       s->fam[fam].allow[i].plen);
		printf("\n");
		for (size_t i = 0; i < st->n_fwd; i++)
			port_line(stdout, s, &st->fwd[i],
				  st->fwd[i].guest.family == AF_INET ? NF_V4 : NF_V6);
	}
	if (st->table)
		printf("  dropped (outside allow): packets %llu bytes %llu\n",
		       (unsigned long long)st->dropped_packets,
		       (unsigned long long)st->dropped_bytes);
	for (size_t i = 0; i < st->n_exempt; i++) {
		const struct nf_exempt_status *x = &st->exempt[i];

		if (!exempt_shown(s, x))
			continue;
		printf("  exemption in %s %s %s: %s", nf_family_name(x->nfproto), SHOW(x->table),
		       SHOW(x->chain), exempt_state(x));
		if (x->n_rules)
			printf(" (%zu rules, packets %llu bytes %llu)", x->n_rules,
			       (unsigned long long)x->packets, (unsigned long long)x->bytes);
		printf("\n");
	}
	for (size_t i = 0; path && i < path->n; i++)
		printf("  %s: %s\n", level_name[path->f[i].level], path->f[i].text);
	return (path && path->blocked) || not_at_head ? EXIT_FAILED : EXIT_OK;
}

int forward_main(struct agent_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vm", required_argument, NULL, 'm' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static const char *const subs[] = { "up", "down", "status", NULL };
	struct config *c = NULL;
	struct fwd_spec fs = { 0 };
	struct nf_sock *sock = NULL;
	struct nf_err e = { 0 };
	struct nf_status st;
	struct fwd_path path;
	const char *vm = NULL, *sub;
	bool json = false, have_spec = false;
	int opt, r, ret = EXIT_FAILED, lock = -1;

	/*
	 * GNU getopt permutes: options may come before or after the subcommand.
	 * optind 0 re-initialises it after main's "+" scan.
	 */
	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			vm = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			fputs(forward_usage, stdout);
			return EXIT_OK;
		default:
			return agent_bad_option("forward", argv[optind - 1]);
		}
	}
	if (!(sub = agent_subcommand("forward", argc, argv, optind, subs)))
		return EXIT_USAGE;
	if (json && strcmp(sub, "status")) {
		log_error("forward %s: --json applies to status only", sub);
		return EXIT_USAGE;
	}

	/* down must work even when the config is gone: it removes only what is ours */
	ret = agent_load_config_vm(ctx, "forward", vm, strcmp(sub, "down") != 0, &c);
	if (ret != EXIT_OK)
		return ret;
	ret = EXIT_FAILED;

	if (!strcmp(sub, "up") && !c->vnc.enable) {
		log_error("forward up: [vnc] enable is false in %s; nothing to forward", c->path);
		ret = EXIT_USAGE;
		goto out;
	}
	/* auto: the running domain's address, from libvirt (the verb may ask it; the hook may not) */
	if (strcmp(sub, "down") && c->vnc.enable && c->vnc.guest_auto &&
	    (ret = guest_addr_fill(c)) != EXIT_OK)
		goto out;
	ret = EXIT_FAILED;
	/* one writer at a time: the hook and the daemon take the same lock */
	if (strcmp(sub, "status")) {
		char err[512];

		if (state_lock(ctx->root, true, &lock, err, sizeof(err)) < 0) {
			log_error("forward %s: %s", sub, err);
			goto out;
		}
	}
	if (!strcmp(sub, "up")) {
		ret = forward_up(c, ctx->root, true);
		goto out;
	}
	if (!strcmp(sub, "down")) {
		ret = forward_down();
		goto out;
	}
	if (c->vnc.enable) {
		char err[512];

		if (fwd_spec_resolve(c, &fs, err, sizeof(err)) < 0) {
			log_error("%s", err);
			goto out;
		}
		have_spec = true;
		ret = EXIT_FAILED;
	}

	r = nf_sock_open(&sock);
	if (r < 0) {
		log_error("cannot open a netfilter netlink socket: %s", strerror(-r));
		goto out;
	}
	r = nf_forward_status(sock, have_spec ? &fs.spec : NULL, &st, &e);
	if (r < 0) {
		ret = fwd_report_error("forward status", r, &e);
		goto out;
	}
	if (have_spec) {
		char err[512];

		if (fwd_path_eval(ctx->root, sock, &fs.spec, &path, err, sizeof(err)) < 0) {
			log_error("forward status: %s", err);
			nf_status_free(&st);
			goto out;
		}
	}
	ret = show_status(c, have_spec ? &fs : NULL, &st, have_spec ? &path : NULL, json);
	nf_status_free(&st);
out:
	if (lock >= 0)
		close(lock);
	nf_sock_close(sock);
	fwd_spec_free(&fs);
	config_free(c);
	return ret;
}
