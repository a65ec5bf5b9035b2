/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The GPU handoff: stop units, unbind consoles and boot framebuffers, wait
 * out (or end) the holders, unload the driver modules, bind vfio-pci; each
 * step journaled first, undone in reverse by rollback and release.
 *
 * It never logs: what a person should see goes to io->log, and a dry run's
 * plan to io->plan, item by item, for the caller to print.
 */
#ifndef VFIO_CORE_HANDOFF_H
#define VFIO_CORE_HANDOFF_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/journal.h"

struct config;
struct domain;
struct holder_scan;
struct kmod_ctx;
struct target_pci;

enum handoff_level {
	HANDOFF_DEBUG,
	HANDOFF_INFO,
	HANDOFF_WARN,
	HANDOFF_PROGRESS,     /* a line that replaces the previous progress line */
	HANDOFF_PROGRESS_END, /* the progress is over (line is "") */
};

enum plan_kind {
	PLAN_BEGIN,	 /* verb, vm, path (the journal): the plan starts */
	PLAN_NO_JOURNAL, /* release: path does not exist, nothing to undo */
	PLAN_DEVICE,	 /* pci: a device to hand over */
	PLAN_NOTE,	 /* text */
	PLAN_STEP,	 /* rec, text: a step prepare would take */
	PLAN_UNDO,	 /* rec, text: a step release or a rollback would take back */
	PLAN_HOLDERS,	 /* hs, text: who holds the GPU now, and what prepare would do */
};

struct plan_item {
	enum plan_kind kind;
	const char *verb, *vm, *path;
	const char *text;
	const struct jrec *rec;
	const struct target_pci *pci;
	const struct holder_scan *hs;
	const char *on_holders;
	unsigned int timeout_s;
};

struct handoff_io {
	void (*log)(void *data, enum handoff_level level, const char *line);
	/* NULL: a real run that changes the host; else a dry run that only plans */
	void (*plan)(void *data, const struct plan_item *it);
	void *data;
	/* set to a signal's number (SIGTERM, SIGINT) by the caller's handler; may be NULL */
	const volatile sig_atomic_t *stop;
};

/*
 * Prepare c->vm: the config's pcis, else the domain's PCI hostdevs. k is
 * taken over (may be NULL). 0; -EINVAL when the request itself is wrong (no
 * devices, no such device: a usage error); another -errno when the job
 * could not be done, everything done rolled back. err holds the one line.
 */
int handoff_prepare(const char *root, const struct config *c, const struct domain *dom,
		    struct kmod_ctx *k, const struct handoff_io *io, char *err, size_t errlen);

/*
 * Undo vm's journal in reverse; no journal is success. A journal that is
 * not vfio-agent's (a link, another owner, writable by others) or holds a
 * line it could not have written (a device not in c's pcis or dom's
 * hostdevs, a module those devices do not need; c and dom may be NULL) is
 * refused whole, nothing undone. Codes as above; k taken over.
 */
int handoff_release(const char *root, const char *vm, const struct config *c,
		    const struct domain *dom, struct kmod_ctx *k, const struct handoff_io *io,
		    char *err, size_t errlen);

/* "stop unit gdm.service": what a step does, as the plan shows it */
void jrec_describe(const struct jrec *r, char *buf, size_t len);

#endif
