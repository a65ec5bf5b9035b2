// SPDX-License-Identifier: GPL-2.0-or-later
/* The journal reader on any bytes: what release trusts from /run. */
#include "core/journal.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct jrec *recs = NULL;
	size_t n = 0, bad = 0;
	bool cut;

	if (journal_parse((const char *)data, len, &recs, &n, &cut, &bad) == 0)
		free(recs);
	return 0;
}
