/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A string built into a caller's fixed buffer. The first overflow sticks
 * (-ENOSPC) and is reported once by whoever reads err; the text stays
 * NUL-terminated and cut where it overflowed.
 */
#ifndef VFIO_SHARED_STRBUF_H
#define VFIO_SHARED_STRBUF_H

#include <stddef.h>
#include <errno.h>
#include <stdint.h>

struct strbuf {
	char *buf;
	size_t len, off;
	int err;
};

static inline struct strbuf strbuf_on(char *buf, size_t len)
{
	if (len)
		buf[0] = '\0';
	return (struct strbuf){ .buf = buf, .len = len, .err = len ? 0 : -ENOSPC };
}

void sb_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_putc(struct strbuf *sb, char c);
/* n bytes of s, all of them or (-ENOSPC) none */
void sb_put(struct strbuf *sb, const char *s, size_t n);
void sb_hex(struct strbuf *sb, const void *data, size_t len);

#endif
