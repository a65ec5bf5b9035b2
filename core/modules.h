/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Module facts through libkmod: dependents, state, refcount. */
#ifndef VFIO_AGENT_MODULES_H
#define VFIO_AGENT_MODULES_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bpf/hold_rec.h"

struct kmod_ctx;

/* libkmod's messages, one line each, with their syslog priority */
typedef void (*modules_log_fn)(void *data, int priority, const char *line);

/*
 * libkmod's context for this host, or for root's installed modules (its
 * /lib/modules; libkmod still reads /sys/module and /proc/modules), its
 * messages to fn (NULL: none). 0 or -errno, err's line. Freed with
 * modules_close (NULL-safe).
 */
int modules_open(const char *root, struct kmod_ctx **out, modules_log_fn fn, void *data, char *err,
		 size_t errlen);
void modules_close(struct kmod_ctx *k);

/* Calls fn for every module that depends on name, transitively. */
int module_each_dependent(struct kmod_ctx *k, const char *name,
			  int (*fn)(const char *dep, void *arg), void *arg);

/* Is the module loaded, built in, or installed for this kernel? */
bool module_known(struct kmod_ctx *k, const char *name);

struct module_state {
	char name[HOLD_MOD_LEN];
	char state[16]; /* live coming going builtin, or "not loaded" */
	int refcnt;	/* -1 when unknown */
	char (*holders)[HOLD_MOD_LEN];
	size_t n_holders;
};

typedef char modname_t[HOLD_MOD_LEN];

/* does alias (a modalias, or a name) resolve to module name, as modprobe would? */
bool module_resolves_to(struct kmod_ctx *k, const char *alias, const char *name);
/* is mod on, or does it need on through its dependencies (modules.dep)? */
bool module_depends_on(struct kmod_ctx *k, const char *mod, const char *on);

int module_state_get(struct kmod_ctx *k, const char *name, struct module_state *st);
void module_state_free(struct module_state *st);

#define MODULE_ORDER_MAX 256

/* the modules that depend on name right now (a malloc'd list); -errno */
typedef int (*module_holders_fn)(const char *name, modname_t **out, size_t *n, void *arg);

/*
 * The unload order of roots and everything that depends on them: each
 * module after every module that uses it. -ELOOP on a cycle.
 */
int module_order(const modname_t *roots, size_t n_roots, module_holders_fn fn, void *arg,
		 modname_t **out, size_t *n_out);
int module_unload_order(struct kmod_ctx *k, const modname_t *roots, size_t n_roots, modname_t **out,
			size_t *n_out);

/*
 * Unload one module, retrying while it is busy (EAGAIN, EBUSY) until
 * timeout_us. 0 when it is gone, also when it was not loaded.
 */
int module_unload(struct kmod_ctx *k, const char *name, uint64_t timeout_us,
		  const volatile sig_atomic_t *stop, char *err, size_t errlen);

/* Load a module with its dependencies (as modprobe would, without install commands). */
int module_load(struct kmod_ctx *k, const char *name, char *err, size_t errlen);

/* KMOD_MODULE_LIVE, _BUILTIN, ...; -ENOENT when not loaded */
int module_initstate(struct kmod_ctx *k, const char *name);

#endif
