// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "shared/strbuf.h"

static void overflow(struct strbuf *sb)
{
	sb->err = -ENOSPC;
	sb->off = sb->len - 1;
	sb->buf[sb->off] = '\0';
}

void sb_printf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (sb->err)
		return;
	va_start(ap, fmt);
	n = vsnprintf(sb->buf + sb->off, sb->len - sb->off, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sb->len - sb->off)
		overflow(sb);
	else
		sb->off += n;
}

void sb_putc(struct strbuf *sb, char c)
{
	if (sb->err)
		return;
	if (sb->off + 1 >= sb->len) {
		overflow(sb);
		return;
	}
	sb->buf[sb->off++] = c;
	sb->buf[sb->off] = '\0';
}

void sb_put(struct strbuf *sb, const char *s, size_t n)
{
	if (sb->err)
		return;
	if (n >= sb->len - sb->off) {
		/* nothing of it: a cut never splits what must stay whole */
		sb->err = -ENOSPC;
		return;
	}
	memcpy(sb->buf + sb->off, s, n);
	sb->off += n;
	sb->buf[sb->off] = '\0';
}

void sb_hex(struct strbuf *sb, const void *data, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *p = data;

	for (size_t i = 0; i < len && !sb->err; i++) {
		sb_putc(sb, digits[p[i] >> 4]);
		sb_putc(sb, digits[p[i] & 15]);
	}
}
