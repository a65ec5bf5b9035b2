/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The handoff as the verbs run it: core/handoff.c's engine, its log lines and its plan. */
#ifndef VFIO_AGENT_HANDOFF_H
#define VFIO_AGENT_HANDOFF_H

#include <stddef.h>

struct agent_ctx;
struct config;
struct domain;

enum handoff_mode {
	HANDOFF_RUN,	   /* change the host */
	HANDOFF_PLAN,	   /* print the plan as text on stdout; change nothing */
	HANDOFF_PLAN_JSON, /* the same plan as one JSON object */
};

/*
 * handoff_prepare and handoff_release of core/handoff.h, their lines
 * logged as they happen. An exit code; on failure err holds "STEP: cause"
 * for the caller's one line.
 */
int agent_handoff_prepare(const struct agent_ctx *ctx, const struct config *c,
			  const struct domain *dom, enum handoff_mode mode, char *err,
			  size_t errlen);
int agent_handoff_release(const struct agent_ctx *ctx, const char *vm, const struct config *c,
			  const struct domain *dom, enum handoff_mode mode, char *err,
			  size_t errlen);

#endif
