// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vfio-agent watch: every open of the GPU's files, and every close and exit
 * of a holder, as it happens, until --duration or a signal.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <json-c/json.h>

#include "agent/agent.h"
#include "core/config.h"
#include "core/holders.h"
#include "agent/log.h"
#include "agent/show.h"
#include "shared/macro.h"
#include "core/targets.h"
#include "bpf/watch.h"

static const char watch_usage[] =
	"Usage: vfio-agent watch [--vm NAME] [--pci BDF]... [--driver MODULE]...\n"
	"                        [--device PATH|MAJ:MIN]... [--json] [--duration S]\n\n"
	"Stream every open of the GPU's files and every close or exit of a holder,\n"
	"with the process, its unit and the file, until --duration seconds pass or\n"
	"Ctrl-C. Current holders are listed first. --json: one object per line.\n"
	"Targets as for diagnose.\n";

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

struct watch_out {
	const struct agent_ctx *ctx;
	const struct target_set *ts;
	bool json;
};

static const char *event_name(uint32_t e)
{
	return e == WATCH_OPEN	  ? "open"
	       : e == WATCH_CLOSE ? "close"
	       : e == WATCH_EXIT  ? "exit"
				  : "holding";
}

static void print_event(const struct watch_out *o, uint32_t event, const struct hold_rec *r,
			const struct proc_info *pi, const char *path)
{
	struct timespec ts;
	struct tm tm;
	char when[64], dev[32] = "";

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	size_t l = strftime(when, sizeof(when), "%H:%M:%S", &tm);
	snprintf(when + l, sizeof(when) - l, ".%03d", (int)(ts.tv_nsec / 1000000) % 1000);
	if (r->rdev)
		snprintf(dev, sizeof(dev), "%u:%u", KDEV_MAJOR(r->rdev), KDEV_MINOR(r->rdev));
	if (o->json) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "time",
				       json_object_new_double(ts.tv_sec + ts.tv_nsec / 1e9));
		json_object_object_add(j, "event", json_str(event_name(event)));
		json_object_object_add(j, "pid", json_object_new_int64(r->pid));
		json_object_object_add(j, "tid", r->tid ? json_object_new_int64(r->tid) : NULL);
		json_object_object_add(j, "comm", json_str(r->comm));
		json_object_object_add(j, "exe", pi ? json_opt(pi->exe) : NULL);
		json_object_object_add(j, "unit", pi ? json_opt(pi->unit) : NULL);
		json_object_object_add(
			j, "kind", event == WATCH_EXIT ? NULL : json_str(hold_kind_name(r->kind)));
		json_object_object_add(j, "fd", r->fd >= 0 ? json_object_new_int(r->fd) : NULL);
		json_object_object_add(j, "device", dev[0] ? json_str(dev) : NULL);
		json_object_object_add(j, "path", json_opt(path));
		json_object_object_add(j, "module", json_opt(r->module));
		puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN |
							       JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(j);
	} else {
		printf("%s %-7s pid %-7u %-15s", when, event_name(event), r->pid, SHOW(r->comm));
		if (event != WATCH_EXIT) {
			if (r->fd >= 0)
				printf(" fd %-4d", r->fd);
			else
				printf(" %-7s", hold_kind_name(r->kind));
			printf(" %-9s %s", dev[0] ? dev : SHOW(r->module),
			       path ? SHOW_N(path, PATH_MAX) : "");
		}
		if (pi && pi->unit[0])
			printf("  [%s]", SHOW(pi->unit));
		putchar('\n');
	}
	fflush(stdout);
}

static int on_event(const struct hold_rec *r, void *arg)
{
	const struct watch_out *o = arg;
	struct proc_info pi;
	char path[4096] = "";
	bool have = false;

	if (r->event != WATCH_EXIT) {
		have = proc_info_get(o->ctx->root, r->pid, &pi) == 0;
		if (r->event == WATCH_OPEN)
			hold_rec_path(o->ctx->root, r, path, sizeof(path));
	}
	/* the fd may be gone already: name the node by its number then */
	for (size_t i = 0; !path[0] && r->event != WATCH_EXIT && i < o->ts->n_nodes; i++)
		if (o->ts->nodes[i].kdev == r->rdev && !o->ts->nodes[i].whole_major)
			snprintf(path, sizeof(path), "%s", o->ts->nodes[i].path);
	print_event(o, r->event, r, have ? &pi : NULL, path);
	return 0;
}

int watch_main(struct agent_ctx *ctx, int argc, char **argv)
{
	/* clang-format off */
	static const struct option opts[] = {
		{ "vm", required_argument, NULL, 'm' },
		TARGET_OPTIONS,
		{ "json", no_argument, NULL, 'j' },
		{ "duration", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	/* clang-format on */
	struct target_req req = { 0 };
	struct target_set ts = { 0 };
	struct holder_scan hs = { 0 };
	struct watch_out o = { .ctx = ctx, .ts = &ts };
	struct watch *w = NULL;
	struct config *c = NULL;
	const char *vm = NULL;
	double duration = 0;
	struct timespec start, now;
	char err[512], *end;
	int opt, r, ret = EXIT_USAGE;

	if (target_req_init(&req, argc) < 0) {
		log_error("out of memory");
		ret = EXIT_FAILED;
		goto out;
	}
	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if ((r = agent_target_opt(&req, "watch", opt, optarg)) < 0)
			goto out;
		if (r)
			continue;
		switch (opt) {
		case 'm':
			vm = optarg;
			break;
		case 'j':
			o.json = true;
			break;
		case 't':
			errno = 0;
			duration = strtod(optarg, &end);
			if (errno || *end || !(duration > 0) || !isfinite(duration)) {
				log_error("watch: --duration '%s': expected seconds > 0", optarg);
				goto out;
			}
			break;
		case 'h':
			fputs(watch_usage, stdout);
			ret = EXIT_OK;
			goto out;
		default:
			agent_bad_option("watch", argv[optind - 1]);
			goto out;
		}
	}
	ret = agent_targets_setup(ctx, "watch", vm, argc - optind, argv + optind, &req, &c, &ts);
	if (ret != EXIT_OK)
		goto out;
	ret = EXIT_FAILED;
	if (ctx->root[0]) {
		log_error("watch: streams the running kernel's events; --root does not apply");
		ret = EXIT_USAGE;
		goto out;
	}

	/* attach first, then list the current holders: nothing falls between */
	r = watch_open(&ts.scan, &w, err, sizeof(err));
	if (r < 0) {
		log_error("watch: %s", err);
		goto out;
	}
	r = holders_scan(ctx->root, &ts.scan, SCAN_AUTO, &hs, err, sizeof(err));
	if (r < 0) {
		log_error("watch: %s", err);
		goto out;
	}
	for (size_t i = 0; i < hs.n_holders; i++) {
		const struct holder *h = &hs.holders[i];

		watch_add_holder(w, h->pi.pid);
		for (size_t j = 0; j < h->n_recs; j++) {
			char path[4096];

			hold_rec_path(ctx->root, &h->recs[j], path, sizeof(path));
			print_event(&o, 0, &h->recs[j], &h->pi, path);
		}
	}
	log_info("watching %zu device number%s and %zu module%s%s", ts.n_nodes,
		 ts.n_nodes == 1 ? "" : "s", ts.scan.n_mods, ts.scan.n_mods == 1 ? "" : "s",
		 duration > 0 ? "" : "; Ctrl-C stops");

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (!stop) {
		int timeout = 500;

		if (duration > 0) {
			double left;

			clock_gettime(CLOCK_MONOTONIC, &now);
			left = duration - (now.tv_sec - start.tv_sec) -
			       (now.tv_nsec - start.tv_nsec) / 1e9;
			if (left <= 0)
				break;
			if (left * 1000 < timeout)
				timeout = (int)(left * 1000) + 1;
		}
		r = watch_poll(w, timeout, on_event, &o);
		if (r < 0 && r != -EINTR) {
			log_error("watch: reading events: %s", strerror(-r));
			goto out;
		}
	}
	ret = EXIT_OK;
out:
	watch_close(w);
	holder_scan_free(&hs);
	target_set_free(&ts);
	config_free(c);
	target_req_free(&req);
	return ret;
}
