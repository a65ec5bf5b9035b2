// SPDX-License-Identifier: GPL-2.0-or-later
/* Module facts through libkmod. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <libkmod.h>

#include "agent/log.h"
#include "agent/modules.h"

static void kmod_log(void *data, int priority, const char *file, int line, const char *fn,
		     const char *fmt, va_list args)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, args);
	msg[strcspn(msg, "\n")] = '\0';
	if (priority <= LOG_ERR)
		log_warn("libkmod: %s", msg);
	else
		log_debug("libkmod: %s", msg);
}

struct kmod_ctx *agent_kmod_new(void)
{
	struct kmod_ctx *k = kmod_new(NULL, NULL);

	if (!k) {
		errno = ENOMEM;
		return NULL;
	}
	kmod_set_log_fn(k, kmod_log, NULL);
	return k;
}

static void kmod_module_unrefp(struct kmod_module **m)
{
	if (*m)
		kmod_module_unref(*m);
}

static void kmod_list_unrefp(struct kmod_list **l)
{
	if (*l)
		kmod_module_unref_list(*l);
}

#define _cleanup_mod_ __attribute__((cleanup(kmod_module_unrefp)))
#define _cleanup_modlist_ __attribute__((cleanup(kmod_list_unrefp)))

int module_each_dependent(struct kmod_ctx *k, const char *name,
			  int (*fn)(const char *dep, void *arg), void *arg)
{
	_cleanup_mod_ struct kmod_module *mod = NULL;
	_cleanup_modlist_ struct kmod_list *holders = NULL;
	struct kmod_list *l;
	int r;

	if ((r = kmod_module_new_from_name(k, name, &mod)) < 0)
		return r;
	if (kmod_module_get_initstate(mod) < 0)
		return 0; /* not loaded: nothing depends on it now */
	holders = kmod_module_get_holders(mod);
	kmod_list_foreach(l, holders) {
		_cleanup_mod_ struct kmod_module *h = kmod_module_get_module(l);
		const char *hn = kmod_module_get_name(h);

		if ((r = fn(hn, arg)) < 0)
			return r;
		/* r == 1: already seen, do not descend again */
		if (r == 0 && (r = module_each_dependent(k, hn, fn, arg)) < 0)
			return r;
	}
	return 0;
}

bool module_known(struct kmod_ctx *k, const char *name)
{
	_cleanup_modlist_ struct kmod_list *list = NULL;
	struct kmod_list *l;

	if (kmod_module_new_from_lookup(k, name, &list) < 0)
		return false;
	kmod_list_foreach(l, list) {
		_cleanup_mod_ struct kmod_module *m = kmod_module_get_module(l);

		if (kmod_module_get_initstate(m) >= 0 || kmod_module_get_path(m))
			return true;
	}
	return false;
}

int module_state_get(struct kmod_ctx *k, const char *name, struct module_state *st)
{
	_cleanup_mod_ struct kmod_module *mod = NULL;
	_cleanup_modlist_ struct kmod_list *holders = NULL;
	struct kmod_list *l;
	int r, state;

	memset(st, 0, sizeof(*st));
	snprintf(st->name, sizeof(st->name), "%s", name);
	st->refcnt = -1;
	if ((r = kmod_module_new_from_name(k, name, &mod)) < 0)
		return r;
	state = kmod_module_get_initstate(mod);
	snprintf(st->state, sizeof(st->state), "%s",
		 state < 0 ? "not loaded" : kmod_module_initstate_str(state));
	if (state < 0 || state == KMOD_MODULE_BUILTIN)
		return 0;
	st->refcnt = kmod_module_get_refcnt(mod);
	holders = kmod_module_get_holders(mod);
	kmod_list_foreach(l, holders) {
		_cleanup_mod_ struct kmod_module *h = kmod_module_get_module(l);
		void *p = realloc(st->holders, (st->n_holders + 1) * sizeof(*st->holders));

		if (!p)
			return -ENOMEM;
		st->holders = p;
		snprintf(st->holders[st->n_holders++], HOLD_MOD_LEN, "%s", kmod_module_get_name(h));
	}
	return 0;
}

void module_state_free(struct module_state *st)
{
	free(st->holders);
	st->holders = NULL;
	st->n_holders = 0;
}
