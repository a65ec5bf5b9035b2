/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * /run/vfio-agent/<vm>.journal: one line per host change, written before
 * the change is made (each undo is safe to run on a change that did not
 * happen), so that release and rollback undo exactly what prepare did.
 */
#ifndef VFIO_AGENT_JOURNAL_H
#define VFIO_AGENT_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>

enum jstep {
	J_UNIT,	  /* unit NAME [user:UID]: in stop-units, was active, stopped */
	J_VTCON,  /* vtcon vtconN: was bound, unbound */
	J_FB,	  /* fb DRIVER DEVICE: platform framebuffer unbound */
	J_MODULE, /* module NAME: unloaded */
	J_UNBIND, /* unbind BDF DRIVER: device unbound, its driver stays */
	J_VFIO,	  /* vfio BDF [OLD]: driver_override set (OLD: what it was), bound to vfio-pci */
	J_LOADED, /* loaded MODULE: we loaded it (vfio-pci) */
	J_HOLDER, /* holder NAME [user:UID]: its process held the GPU, stopped (on-holders = stop) */
	J__N,
};

/* the longest field: a unit name (systemd's 255 bytes) and its NUL */
#define JTOK 256
#define JLINE_MAX (16 + 2 * JTOK)

struct jrec {
	enum jstep step;
	char a[JTOK];
	char b[JTOK]; /* "" when the step has one argument */
};

const char *jstep_name(enum jstep s);

/* is every field of r in the shape its step allows (a BDF, vtconN, a unit, ...)? */
bool jrec_valid(const struct jrec *r);
/* "0000:03:00.0" exactly as the kernel writes it */
bool jbdf_valid(const char *s);

/* root/run/vfio-agent/<vm>.journal */
int journal_path(const char *root, const char *vm, char *buf, size_t len);

/* Create the journal; -EEXIST when one is there already. The fd is O_APPEND. */
int journal_create(const char *root, const char *vm, int *fd);

/* One line in one write(2), then fdatasync: on disk before the step runs. */
int journal_append(int fd, const struct jrec *r);

/*
 * Parse a journal. A last line with no newline was cut off while being
 * written, so its step never ran: it is dropped and *cut set. A bad
 * complete line is -EINVAL with its number in *bad_line.
 */
int journal_parse(const char *buf, size_t len, struct jrec **out, size_t *n, bool *cut,
		  size_t *bad_line);

/* Read and parse <vm>'s journal; -ENOENT when there is none. */
int journal_load(const char *root, const char *vm, struct jrec **out, size_t *n, bool *cut,
		 size_t *bad_line);

/* Replace the journal with recs (rename over it); n == 0 removes it. */
int journal_store(const char *root, const char *vm, const struct jrec *recs, size_t n);

#endif
