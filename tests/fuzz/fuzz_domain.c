// SPDX-License-Identifier: GPL-2.0-or-later
/* The domain XML reader, libxml2 and all, on any bytes (the hook's stdin). */
#include "core/dl.h"
#include "core/domain.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];

	/* libxml2 is opened on demand (core/dl.c), as the hook opens it */
	if (dl_libxml2(err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_domain: %s\n", err);
		exit(1);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct domain d = { 0 };
	char err[512];

	domain_parse((const char *)data, len, &d, err, sizeof(err));
	domain_free(&d);
	return 0;
}
