/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Module facts through libkmod: dependents, state, refcount. */
#ifndef VFIO_AGENT_MODULES_H
#define VFIO_AGENT_MODULES_H

#include <stdbool.h>
#include <stddef.h>

#include "bpf/holders.h"

struct kmod_ctx;

/* libkmod's context, logging through agent/log.c; NULL with errno set */
struct kmod_ctx *agent_kmod_new(void);

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

int module_state_get(struct kmod_ctx *k, const char *name, struct module_state *st);
void module_state_free(struct module_state *st);

#endif
