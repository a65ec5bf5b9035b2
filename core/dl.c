// SPDX-License-Identifier: GPL-2.0-or-later
/* Libraries opened when a verb first needs them (see dl.h). */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "core/dl.h"
#include "shared/macro.h"

struct dl_sym {
	const char *name;
	void **fn;
};

struct dl_lib {
	const char *soname;
	const char *package; /* what provides it, for the error */
	const struct dl_sym *syms;
	size_t n_syms;
	int r;	       /* 1 until the first try, then its result */
	char why[256]; /* the first try's failure */
};

/* the first try of each library, and what it found, one thread at a time */
static pthread_mutex_t dl_lock = PTHREAD_MUTEX_INITIALIZER;

static int dl_load(struct dl_lib *l, char *err, size_t errlen)
{
	int r;

	pthread_mutex_lock(&dl_lock);
	if (l->r == 1) {
		/* kept open for the life of the process */
		void *handle = dlopen(l->soname, RTLD_NOW | RTLD_LOCAL);

		l->r = 0;
		if (!handle) {
			snprintf(l->why, sizeof(l->why), "%s", dlerror());
			l->r = -ELIBACC;
		}
		for (size_t i = 0; !l->r && i < l->n_syms; i++) {
			/* POSIX's way to store a function's address from dlsym */
			*l->syms[i].fn = dlsym(handle, l->syms[i].name);
			if (!*l->syms[i].fn) {
				snprintf(l->why, sizeof(l->why), "%s", dlerror());
				dlclose(handle);
				l->r = -ELIBACC;
			}
		}
	}
	if ((r = l->r) < 0)
		snprintf(err, errlen, "cannot load %s (%s): install %s", l->soname, l->why,
			 l->package);
	pthread_mutex_unlock(&dl_lock);
	return r;
}

#define DL_ENTRY(f) { #f, (void **)&sym_##f },

#define DL_LIBRARY(fn, syms_x, so, pkg)                                   \
	syms_x(DL_DEFINE) int fn(char *err, size_t errlen)                \
	{                                                                 \
		static const struct dl_sym syms[] = { syms_x(DL_ENTRY) }; \
		static struct dl_lib lib = { .soname = so,                \
					     .package = pkg,              \
					     .syms = syms,                \
					     .n_syms = ARRAY_SIZE(syms),  \
					     .r = 1 };                    \
		return dl_load(&lib, err, errlen);                        \
	}

DL_LIBRARY(dl_libvirt, LIBVIRT_SYMS, "libvirt.so.0", "libvirt's client library (Debian: libvirt0)")
DL_LIBRARY(dl_libkmod, LIBKMOD_SYMS, "libkmod.so.2", "libkmod (Debian: libkmod2)")
DL_LIBRARY(dl_libxml2, LIBXML2_SYMS, "libxml2.so.2", "libxml2 (Debian: libxml2)")
DL_LIBRARY(dl_libsystemd, LIBSYSTEMD_SYMS, "libsystemd.so.0", "libsystemd (Debian: libsystemd0)")
