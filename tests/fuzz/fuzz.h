/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer's entry points, as each harness defines them (clang
 * -fsanitize=fuzzer), and the seed writer of the harnesses whose seeds are
 * netlink messages: run with FUZZ_WRITE_SEEDS=DIR, such a harness writes
 * its seeds there and exits, so they are made by the code they feed.
 */
#ifndef VFIO_TESTS_FUZZ_H
#define VFIO_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libmnl/libmnl.h>

#include <stdbool.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/*
 * Is the netlink framing of buf one the kernel could send: each message at
 * least a header long and, padded to 4 bytes, within the buffer? libmnl 1.0.4's mnl_nlmsg_ok()
 * compares the length as an int, so a length of 2^31 or more passes it and
 * mnl_cb_run() walks off the buffer; the kernel never frames so, and
 * replies are only taken from it (portid 0), so the harnesses fuzz what is
 * inside the messages, not that.
 */
static inline bool fuzz_frames_ok(const uint8_t *buf, size_t len)
{
	while (len >= 16) {
		uint32_t l = buf[0] | buf[1] << 8 | buf[2] << 16 | (uint32_t)buf[3] << 24;
		size_t step = ((size_t)l + 3) & ~(size_t)3;

		/* the kernel pads each message to 4 bytes, and libmnl reads up to the padding */
		if (l < 16 || step > len)
			return false;
		if (step >= len)
			break;
		buf += step, len -= step;
	}
	return true;
}

/*
 * A reply through mnl_cb_run(), as a dump reads it: only a framing the kernel
 * could send, copied so that it is aligned as the kernel's are and ASan sees
 * past exactly len bytes. False when it was not run.
 */
static inline bool fuzz_mnl_run(mnl_cb_t cb, void *ctx, const uint8_t *data, size_t len)
{
	void *buf;

	if (!fuzz_frames_ok(data, len) || !(buf = malloc(len ? len : 1)))
		return false;
	memcpy(buf, data, len);
	mnl_cb_run(buf, len, 0, 0, cb, ctx);
	free(buf);
	return true;
}

/* DIR/NAME with len bytes of data */
static inline void fuzz_seed(const char *name, const void *data, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", getenv("FUZZ_WRITE_SEEDS"), name);
	if (!(f = fopen(path, "we")) || fwrite(data, 1, len, f) != len || fclose(f)) {
		perror(path);
		exit(1);
	}
}

#endif
