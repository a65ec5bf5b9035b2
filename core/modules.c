// SPDX-License-Identifier: GPL-2.0-or-later
/* Module facts through libkmod. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <syslog.h>
#include <unistd.h>

#include <libkmod.h>

#include "core/dl.h"
#include "shared/macro.h"
#include "core/modules.h"

struct kmod_log {
	modules_log_fn fn;
	void *data;
};

static void kmod_log(void *data, int priority, const char *file, int line, const char *fn,
		     const char *fmt, va_list args)
{
	const struct kmod_log *l = data;
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, args);
	msg[strcspn(msg, "\n")] = '\0';
	l->fn(l->data, priority, msg);
}

int modules_open(const char *root, struct kmod_ctx **out, modules_log_fn fn, void *data, char *err,
		 size_t errlen)
{
	char dir[4096];
	struct utsname u;
	struct kmod_log *l;
	int r;

	*out = NULL;
	if ((r = dl_libkmod(err, errlen)) < 0)
		return r;
	/* under --root, the tree's installed modules, where libkmod itself would look */
	if (root && root[0]) {
		uname(&u);
		snprintf(dir, sizeof(dir), "%s/lib/modules/%s", root, u.release);
	}
	if (!(*out = sym_kmod_new(root && root[0] ? dir : NULL, NULL))) {
		snprintf(err, errlen, "libkmod: %s", strerror(ENOMEM));
		return -ENOMEM;
	}
	/* libkmod writes to stderr by itself: never in the hook, whose stderr is one line */
	l = fn ? calloc(1, sizeof(*l)) : NULL;
	if (l) {
		*l = (struct kmod_log){ fn, data };
		sym_kmod_set_log_fn(*out, kmod_log, l);
		sym_kmod_set_userdata(*out, l);
	} else {
		sym_kmod_set_log_priority(*out, LOG_EMERG);
	}
	/*
	 * the indexes mapped once, as modprobe does, not opened again by each
	 * lookup; one that cannot be mapped is read by each lookup, as before
	 */
	sym_kmod_load_resources(*out);
	return 0;
}

void modules_close(struct kmod_ctx *k)
{
	if (!k)
		return;
	free(sym_kmod_get_userdata(k));
	sym_kmod_unref(k);
}

static void kmod_module_unrefp(struct kmod_module **m)
{
	if (*m)
		sym_kmod_module_unref(*m);
}

static void kmod_list_unrefp(struct kmod_list **l)
{
	if (*l)
		sym_kmod_module_unref_list(*l);
}

#define _cleanup_mod_ _cleanup_(kmod_module_unrefp)
#define _cleanup_modlist_ _cleanup_(kmod_list_unrefp)

int module_each_dependent(struct kmod_ctx *k, const char *name,
			  int (*fn)(const char *dep, void *arg), void *arg)
{
	_cleanup_mod_ struct kmod_module *mod = NULL;
	_cleanup_modlist_ struct kmod_list *holders = NULL;
	struct kmod_list *l;
	int r;

	if ((r = sym_kmod_module_new_from_name(k, name, &mod)) < 0)
		return r;
	if (sym_kmod_module_get_initstate(mod) < 0)
		return 0; /* not loaded: nothing depends on it now */
	holders = sym_kmod_module_get_holders(mod);
	dl_kmod_list_foreach (l, holders) {
		_cleanup_mod_ struct kmod_module *h = sym_kmod_module_get_module(l);
		const char *hn = sym_kmod_module_get_name(h);

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

	if (sym_kmod_module_new_from_lookup(k, name, &list) < 0)
		return false;
	dl_kmod_list_foreach (l, list) {
		_cleanup_mod_ struct kmod_module *m = sym_kmod_module_get_module(l);

		if (sym_kmod_module_get_initstate(m) >= 0 || sym_kmod_module_get_path(m))
			return true;
	}
	return false;
}

/* kmod spells a module either way: vfio-pci and vfio_pci are one */
static bool same_module(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (*a != *b && !((*a == '-' || *a == '_') && (*b == '-' || *b == '_')))
			return false;
	return *a == *b;
}

bool module_resolves_to(struct kmod_ctx *k, const char *alias, const char *name)
{
	_cleanup_modlist_ struct kmod_list *list = NULL;
	struct kmod_list *l;

	if (!k || sym_kmod_module_new_from_lookup(k, alias, &list) < 0)
		return false;
	dl_kmod_list_foreach (l, list) {
		_cleanup_mod_ struct kmod_module *m = sym_kmod_module_get_module(l);

		if (same_module(sym_kmod_module_get_name(m), name))
			return true;
	}
	return false;
}

static bool depends(struct kmod_ctx *k, const char *mod, const char *on, int depth)
{
	_cleanup_mod_ struct kmod_module *m = NULL;
	_cleanup_modlist_ struct kmod_list *deps = NULL;
	struct kmod_list *l;

	if (same_module(mod, on))
		return true;
	/* the kernel's module graphs are shallow; a loop in a bad modules.dep ends here */
	if (depth > 8 || sym_kmod_module_new_from_name(k, mod, &m) < 0)
		return false;
	deps = sym_kmod_module_get_dependencies(m);
	dl_kmod_list_foreach (l, deps) {
		_cleanup_mod_ struct kmod_module *d = sym_kmod_module_get_module(l);

		if (depends(k, sym_kmod_module_get_name(d), on, depth + 1))
			return true;
	}
	return false;
}

bool module_depends_on(struct kmod_ctx *k, const char *mod, const char *on)
{
	return k && depends(k, mod, on, 0);
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
	if ((r = sym_kmod_module_new_from_name(k, name, &mod)) < 0)
		return r;
	state = sym_kmod_module_get_initstate(mod);
	snprintf(st->state, sizeof(st->state), "%s",
		 state < 0 ? "not loaded" : sym_kmod_module_initstate_str(state));
	if (state < 0 || state == KMOD_MODULE_BUILTIN)
		return 0;
	st->refcnt = sym_kmod_module_get_refcnt(mod);
	holders = sym_kmod_module_get_holders(mod);
	dl_kmod_list_foreach (l, holders) {
		_cleanup_mod_ struct kmod_module *h = sym_kmod_module_get_module(l);
		void *p = realloc(st->holders, (st->n_holders + 1) * sizeof(*st->holders));

		if (!p)
			return -ENOMEM;
		st->holders = p;
		snprintf(st->holders[st->n_holders++], HOLD_MOD_LEN, "%s",
			 sym_kmod_module_get_name(h));
	}
	return 0;
}

void module_state_free(struct module_state *st)
{
	free(st->holders);
	st->holders = NULL;
	st->n_holders = 0;
}

struct order {
	module_holders_fn fn;
	void *arg;
	modname_t *out;
	size_t n_out;
	modname_t *stack;
	size_t depth;
};

static bool in_list(const modname_t *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], name))
			return true;
	return false;
}

static int cmp_desc(const void *a, const void *b)
{
	return -strcmp(a, b);
}

static int order_visit(struct order *o, const char *name)
{
	modname_t *holders = NULL;
	size_t n = 0;
	int r;

	if (in_list(o->out, o->n_out, name))
		return 0;
	/* the kernel keeps this graph acyclic; a fixture or a race may not */
	if (in_list(o->stack, o->depth, name) || o->depth >= MODULE_ORDER_MAX)
		return -ELOOP;
	snprintf(o->stack[o->depth++], HOLD_MOD_LEN, "%s", name);
	if ((r = o->fn(name, &holders, &n, o->arg)) < 0)
		goto out;
	/*
	 * Deterministic, and for nvidia the order its own scripts use:
	 * nvidia_uvm, nvidia_drm, nvidia_modeset, nvidia.
	 */
	if (n > 1)
		qsort(holders, n, sizeof(*holders), cmp_desc);
	for (size_t i = 0; i < n; i++)
		if ((r = order_visit(o, holders[i])) < 0)
			goto out;
	if (o->n_out >= MODULE_ORDER_MAX) {
		r = -E2BIG;
		goto out;
	}
	snprintf(o->out[o->n_out++], HOLD_MOD_LEN, "%s", name);
	r = 0;
out:
	o->depth--;
	free(holders);
	return r;
}

int module_order(const modname_t *roots, size_t n_roots, module_holders_fn fn, void *arg,
		 modname_t **out, size_t *n_out)
{
	struct order o = { .fn = fn, .arg = arg };
	int r = 0;

	o.out = calloc(MODULE_ORDER_MAX, sizeof(*o.out));
	o.stack = calloc(MODULE_ORDER_MAX, sizeof(*o.stack));
	if (!o.out || !o.stack)
		r = -ENOMEM;
	for (size_t i = 0; i < n_roots && !r; i++)
		r = order_visit(&o, roots[i]);
	free(o.stack);
	if (r) {
		free(o.out);
		return r;
	}
	*out = o.out;
	*n_out = o.n_out;
	return 0;
}

static int kmod_holders(const char *name, modname_t **out, size_t *n, void *arg)
{
	struct module_state st;
	int r = module_state_get(arg, name, &st);

	if (r < 0) {
		module_state_free(&st);
		return r;
	}
	*out = st.holders;
	*n = st.n_holders;
	return 0;
}

int module_unload_order(struct kmod_ctx *k, const modname_t *roots, size_t n_roots, modname_t **out,
			size_t *n_out)
{
	return module_order(roots, n_roots, kmod_holders, k, out, n_out);
}

int module_unload(struct kmod_ctx *k, const char *name, uint64_t timeout_us,
		  const volatile sig_atomic_t *stop, char *err, size_t errlen)
{
	_cleanup_mod_ struct kmod_module *mod = NULL;
	uint64_t deadline = now_us() + timeout_us, pause_us = 1000;
	int prio = sym_kmod_get_log_priority(k), r;

	if ((r = sym_kmod_module_new_from_name(k, name, &mod)) < 0) {
		snprintf(err, errlen, "%s", strerror(-r));
		return r;
	}
	/* each busy try would log an error; the last one is reported here */
	sym_kmod_set_log_priority(k, LOG_CRIT);
	for (;;) {
		r = sym_kmod_module_remove_module(mod, KMOD_REMOVE_NOWAIT);
		if (r == 0 || (r != -EAGAIN && r != -EBUSY) || now_us() >= deadline ||
		    (stop && *stop))
			break;
		/*
		 * the last holder's close is usually a moment away (a compositor
		 * that just exited): tried again soon, then less often, at most
		 * every 100 ms
		 */
		usleep(pause_us);
		pause_us = pause_us * 2 > 100 * 1000 ? 100 * 1000 : pause_us * 2;
	}
	sym_kmod_set_log_priority(k, prio);
	if (r == -ENOENT)
		return 0; /* gone already */
	if (r < 0) {
		struct module_state st;
		int state = module_state_get(k, name, &st);

		if (!state && st.refcnt >= 0)
			snprintf(err, errlen, "%s (refcount %d%s%s)", strerror(-r), st.refcnt,
				 st.n_holders ? ", used by " : "",
				 st.n_holders ? st.holders[0] : "");
		else
			snprintf(err, errlen, "%s", strerror(-r));
		module_state_free(&st);
	}
	return r;
}

int module_load(struct kmod_ctx *k, const char *name, char *err, size_t errlen)
{
	_cleanup_modlist_ struct kmod_list *list = NULL;
	struct kmod_list *l;
	int r;

	if ((r = sym_kmod_module_new_from_lookup(k, name, &list)) < 0 || !list) {
		snprintf(err, errlen, "no module %s for this kernel", name);
		return r < 0 ? r : -ENOENT;
	}
	dl_kmod_list_foreach (l, list) {
		_cleanup_mod_ struct kmod_module *m = sym_kmod_module_get_module(l);

		/*
		 * modprobe's dependencies, options and blacklist, but never
		 * its install commands: they would run a shell.
		 */
		r = sym_kmod_module_probe_insert_module(m, KMOD_PROBE_IGNORE_COMMAND, NULL, NULL,
							NULL, NULL);
		if (r < 0) {
			snprintf(err, errlen, "%s", strerror(-r));
			return r;
		}
	}
	return 0;
}

int module_initstate(struct kmod_ctx *k, const char *name)
{
	_cleanup_mod_ struct kmod_module *mod = NULL;
	int r;

	if ((r = sym_kmod_module_new_from_name(k, name, &mod)) < 0)
		return r;
	return sym_kmod_module_get_initstate(mod);
}
