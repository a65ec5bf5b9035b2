// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vfio-agent handoff prepare|release: the engine of core/handoff.c, its
 * lines logged as they happen, and a dry run's plan printed as text or as
 * one JSON object.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "agent/agent.h"
#include "agent/handoff.h"
#include "agent/log.h"
#include "agent/show.h"
#include "core/config.h"
#include "core/handoff.h"
#include "core/holders.h"
#include "core/state.h"
#include "core/targets.h"
#include "shared/macro.h"

/* what a plan line may show of a name or a step's text: more than any holds */
#define PLAN_TEXT_MAX 1024

struct printer {
	enum handoff_mode mode;
	json_object *j; /* the plan as JSON, once it has begun */
};

static void on_log(void *data, enum handoff_level level, const char *line)
{
	switch (level) {
	case HANDOFF_DEBUG:
		log_debug("%s", line);
		break;
	case HANDOFF_INFO:
		log_info("%s", line);
		break;
	case HANDOFF_WARN:
		log_warn("%s", line);
		break;
	case HANDOFF_PROGRESS:
		log_progress("%s", line);
		break;
	case HANDOFF_PROGRESS_END:
		log_progress_end();
		break;
	}
}

/* the JSON plan's array KEY, made on first use */
static json_object *plan_array(json_object *j, const char *key)
{
	json_object *a;

	if (!json_object_object_get_ex(j, key, &a)) {
		a = json_object_new_array();
		json_object_object_add(j, key, a);
	}
	return a;
}

static void print_text(const struct plan_item *it)
{
	switch (it->kind) {
	case PLAN_BEGIN:
		printf("handoff %s %s: the plan (--dry-run: nothing is changed)\n", it->verb,
		       SHOW_N(it->vm, PLAN_TEXT_MAX));
		break;
	case PLAN_NO_JOURNAL:
		printf("handoff %s %s: no journal (%s), nothing to undo\n", it->verb,
		       SHOW_N(it->vm, PLAN_TEXT_MAX), SHOW_N(it->path, PATH_MAX));
		break;
	case PLAN_DEVICE:
		printf("  device %s on %s\n", it->pci->bdf,
		       it->pci->driver[0] ? SHOW(it->pci->driver) : "no driver");
		break;
	case PLAN_NOTE:
	case PLAN_HOLDERS:
		printf("  %s\n", SHOW_N(it->text, PLAN_TEXT_MAX));
		break;
	case PLAN_STEP:
	case PLAN_UNDO:
		printf("  %s%s\n", it->kind == PLAN_UNDO ? "undo: " : "",
		       SHOW_N(it->text, PLAN_TEXT_MAX));
		break;
	}
}

static json_object *json_begin(const struct plan_item *it)
{
	json_object *j = json_object_new_object();

	json_object_object_add(j, "verb", json_str(it->verb));
	json_object_object_add(j, "vm", json_str(it->vm));
	json_object_object_add(j, "dry_run", json_object_new_boolean(true));
	json_object_object_add(j, "journal", json_str(it->path));
	json_object_object_add(j, "journal_exists",
			       json_object_new_boolean(!access(it->path, F_OK)));
	plan_array(j, "steps");
	return j;
}

/* who holds the GPU now and what prepare would do about it */
static json_object *json_holders(const struct plan_item *it)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();

	for (size_t i = 0; i < it->hs->n_holders; i++) {
		const struct proc_info *pi = &it->hs->holders[i].pi;
		json_object *p = json_object_new_object();

		json_object_object_add(p, "pid", json_object_new_int64(pi->pid));
		json_object_object_add(p, "comm", json_str(pi->comm));
		if (pi->unit[0])
			json_object_object_add(p, "unit", json_str(pi->unit));
		json_object_array_add(a, p);
	}
	json_object_object_add(o, "processes", a);
	json_object_object_add(o, "on_holders", json_str(it->on_holders));
	json_object_object_add(o, "timeout_s", json_object_new_int64(it->timeout_s));
	return o;
}

static void print_json(struct printer *p, const struct plan_item *it)
{
	json_object *o;

	switch (it->kind) {
	case PLAN_BEGIN:
	case PLAN_NO_JOURNAL:
		p->j = json_begin(it);
		break;
	case PLAN_DEVICE:
		o = json_object_new_object();
		json_object_object_add(o, "pci", json_str(it->pci->bdf));
		json_object_object_add(o, "driver", json_opt(it->pci->driver));
		json_object_array_add(plan_array(p->j, "devices"), o);
		break;
	case PLAN_NOTE:
		json_object_array_add(plan_array(p->j, "notes"), json_str(it->text));
		break;
	case PLAN_HOLDERS:
		json_object_object_add(p->j, "holders", json_holders(it));
		break;
	case PLAN_STEP:
	case PLAN_UNDO:
		o = json_object_new_object();
		json_object_object_add(o, "step", json_str(jstep_name(it->rec->step)));
		json_object_object_add(o, "undo", json_object_new_boolean(it->kind == PLAN_UNDO));
		json_object_object_add(o, "object", json_str(it->rec->a));
		if (it->rec->b[0])
			json_object_object_add(o, "from", json_str(it->rec->b));
		json_object_object_add(o, "text", json_str(it->text));
		json_object_array_add(plan_array(p->j, "steps"), o);
		break;
	}
}

static void on_plan(void *data, const struct plan_item *it)
{
	struct printer *p = data;

	if (p->mode == HANDOFF_PLAN_JSON)
		print_json(p, it);
	else
		print_text(it);
}

/* the JSON plan, printed once it is whole */
static void plan_end(struct printer *p, int r)
{
	if (p->j && r >= 0)
		puts(json_object_to_json_string_ext(p->j, JSON_C_TO_STRING_PRETTY |
								  JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(p->j);
}

static int exit_code(int r)
{
	return r == -EINVAL ? EXIT_USAGE : r < 0 ? EXIT_FAILED : EXIT_OK;
}

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
	stop_signal = sig;
}

/*
 * SIGTERM and SIGINT end a handoff the safe way: prepare rolls back,
 * release finishes the undo at hand. No SA_RESTART: a wait returns early.
 */
static void catch_stop(bool on, struct sigaction old[2])
{
	static const int sigs[] = { SIGTERM, SIGINT };
	struct sigaction sa = { .sa_handler = on_stop };

	sigemptyset(&sa.sa_mask);
	if (on)
		stop_signal = 0;
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], on ? &sa : &old[i], on ? &old[i] : NULL);
}

int agent_handoff_prepare(const struct agent_ctx *ctx, const struct config *c,
			  const struct domain *dom, enum handoff_mode mode, char *err,
			  size_t errlen)
{
	struct printer p = { .mode = mode };
	struct handoff_io io = { on_log, mode == HANDOFF_RUN ? NULL : on_plan, &p, &stop_signal };
	struct sigaction old[2];
	int r;

	catch_stop(true, old);
	/* libkmod is the handoff's to load, beside its first look at the holders */
	r = handoff_prepare(ctx->root, c, dom, NULL, &io, err, errlen);
	catch_stop(false, old);
	plan_end(&p, r);
	return exit_code(r);
}

int agent_handoff_release(const struct agent_ctx *ctx, const char *vm, const struct config *c,
			  const struct domain *dom, enum handoff_mode mode, char *err,
			  size_t errlen)
{
	struct printer p = { .mode = mode };
	struct handoff_io io = { on_log, mode == HANDOFF_RUN ? NULL : on_plan, &p, &stop_signal };
	struct sigaction old[2];
	int r;

	catch_stop(true, old);
	r = handoff_release(ctx->root, vm, c, dom, NULL, &io, err, errlen);
	catch_stop(false, old);
	plan_end(&p, r);
	return exit_code(r);
}

static const char handoff_usage[] =
	"Usage: vfio-agent handoff prepare|release [--vm NAME] [--dry-run [--json]]\n"
	"\n"
	"Hand the GPU to vfio-pci (prepare) or take it back (release), as the hook\n"
	"does at a guest's start and end. prepare journals each step in\n"
	"/run/vfio-agent/NAME.journal and rolls back if one fails; release undoes the\n"
	"journal.\n"
	"\n"
	"  --vm NAME   the VM (default: the config's vm)\n"
	"  --dry-run   print the plan and change nothing\n"
	"  --json      the plan as JSON (with --dry-run)\n";

int handoff_main(struct agent_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vm", required_argument, NULL, 'm' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static const char *const subs[] = { "prepare", "release", NULL };
	struct config *c = NULL;
	const char *vm = NULL, *sub;
	bool dry = false, json = false, prepare;
	enum handoff_mode mode;
	char err[768];
	int opt, ret, lock = -1;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			vm = optarg;
			break;
		case 'n':
			dry = true;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			fputs(handoff_usage, stdout);
			return EXIT_OK;
		default:
			return agent_bad_option("handoff", argv[optind - 1]);
		}
	}
	if (!(sub = agent_subcommand("handoff", argc, argv, optind, subs)))
		return EXIT_USAGE;
	prepare = !strcmp(sub, "prepare");
	if (json && !dry) {
		log_error(
			"handoff %s: --json prints the plan: add --dry-run (what a real run did is "
			"in /run/vfio-agent/NAME.journal)",
			sub);
		return EXIT_USAGE;
	}
	mode = !dry ? HANDOFF_RUN : json ? HANDOFF_PLAN_JSON : HANDOFF_PLAN;
	/* release needs only the journal: with --vm it works with the config gone or changed */
	if ((prepare || !vm) &&
	    (ret = agent_load_config_vm(ctx, "handoff", vm, prepare, &c)) != EXIT_OK)
		return ret;
	if (!vm && !c) {
		log_error("handoff release: no config at %s; name the VM with --vm",
			  ctx->config_path);
		return EXIT_USAGE;
	}
	if (vm && !config_vm_name_valid(vm)) {
		log_error(
			"handoff %s: --vm '%s' is not a libvirt domain name (letters, digits, ._+-@)",
			sub, vm);
		ret = EXIT_USAGE;
		goto out;
	}
	/* the config of this VM, when there is one, says which devices its journal may name */
	if (!prepare && vm && !c && config_load(ctx->config_path, &c, err, sizeof(err)) == 0 &&
	    strcmp(c->vm, vm)) {
		config_free(c);
		c = NULL;
	}
	if (!vm)
		vm = c->vm;
	if (prepare && !c->passthrough && !dry) {
		log_error("handoff prepare: passthrough = false in %s; nothing to hand over",
			  c->path);
		ret = EXIT_USAGE;
		goto out;
	}
	if (!dry && state_lock(ctx->root, true, &lock, err, sizeof(err)) < 0) {
		log_error("handoff %s: %s", sub, err);
		ret = EXIT_FAILED;
		goto out;
	}
	if (prepare)
		ret = agent_handoff_prepare(ctx, c, NULL, mode, err, sizeof(err));
	else
		ret = agent_handoff_release(ctx, vm, c, NULL, mode, err, sizeof(err));
	if (ret != EXIT_OK && err[0])
		log_error("%s %s: %s", sub, vm, err);
out:
	if (lock >= 0)
		close(lock);
	config_free(c);
	return ret;
}
