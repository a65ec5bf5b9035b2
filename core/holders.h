/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The holder scan as the verbs use it: pick a backend (BPF, else /proc),
 * scan, and group the records into one holder per process with its
 * attribution. Shared by diagnose, watch and the handoff.
 */
#ifndef VFIO_AGENT_HOLDERS_H
#define VFIO_AGENT_HOLDERS_H

#include <stdbool.h>

#include "core/attrib.h"
#include "bpf/scan.h"

struct holder {
	struct proc_info pi;
	struct hold_rec *recs; /* into holder_scan.recs */
	size_t n_recs;
	char action[384];
};

struct holder_scan {
	enum scan_backend backend; /* the one that ran */
	char fallback[320];	   /* why BPF did not, when it did not */
	struct hold_vec recs;
	struct holder *holders;
	size_t n_holders;
};

/*
 * SCAN_AUTO: BPF on the running system, /proc when it cannot load or when
 * --root points elsewhere. SCAN_READY: the same once the BPF programs are
 * loaded, else /proc now, never a wait for their load. Logs nothing;
 * -errno and err on failure. The BPF programs load on the first scan and
 * serve the later ones of the process until holders_cleanup().
 */
int holders_scan(const char *root, const struct scan_targets *t, enum scan_backend want,
		 struct holder_scan *out, char *err, size_t errlen);
void holder_scan_free(struct holder_scan *hs);
/*
 * The BPF programs loaded on a thread while the caller does other work,
 * for a SCAN_AUTO scan to come (nothing under --root); the scan waits for
 * the load and falls back as it would have.
 */
void holders_preload(const char *root);
/* what the scans keep between calls (the loaded BPF programs); safe when none ran */
void holders_cleanup(void);

/* the path of a held file as the holder sees it; "" when unknown */
void hold_rec_path(const char *root, const struct hold_rec *r, char *buf, size_t len);

/* distinct open files among the records that match module and why */
size_t holders_count_files(const struct holder_scan *hs, const char *module, uint32_t why);
/* distinct open files on one device node (KDEV) */
size_t holders_count_node_files(const struct holder_scan *hs, uint32_t kdev);

const char *scan_backend_name(enum scan_backend b);

#endif
