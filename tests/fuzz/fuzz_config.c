// SPDX-License-Identifier: GPL-2.0-or-later
/* The config reader on any bytes: config_parse(), as config_load() calls it. */
#include "core/config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct config *c = NULL;
	char err[512];

	if (config_parse("fuzz.conf", (const char *)data, len, &c, err, sizeof(err)) == 0)
		config_free(c);
	return 0;
}
