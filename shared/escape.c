// SPDX-License-Identifier: GPL-2.0-or-later
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/escape.h"
#include "shared/strbuf.h"

size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (avail < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* overlong forms, UTF-16 surrogates and what lies past U+10FFFF are not UTF-8 */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/*
 * Is the sequence of n bytes at p shown as it is? Not a C0 or C1 control,
 * DEL or a backslash: U+0080-U+009F are controls too (0x9b is CSI to a
 * terminal that reads 8-bit controls).
 */
static bool plain_seq(const unsigned char *p, size_t n)
{
	if (n == 1)
		return *p >= 0x20 && *p != 0x7f && *p != '\\';
	return n > 1 && !(p[0] == 0xc2 && p[1] < 0xa0);
}

void sb_escape(struct strbuf *sb, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t left = strlen(s);

	while (left && !sb->err) {
		size_t n = utf8_seq_len(p, left);
		char esc[16];

		if (plain_seq(p, n)) {
			/* a character is shown whole or not at all */
			sb_put(sb, (const char *)p, n);
		} else if (n == 1 && *p == '\\') {
			sb_put(sb, "\\\\", 2);
		} else {
			/* a control, DEL, or a byte that is not UTF-8: each byte as \xNN */
			if (!n)
				n = 1;
			for (size_t i = 0; i < n; i++)
				snprintf(esc + 4 * i, sizeof(esc) - 4 * i, "\\x%02x", p[i]);
			sb_put(sb, esc, 4 * n);
		}
		p += n;
		left -= n;
	}
}

const char *escape_text(const char *s, char *buf, size_t len)
{
	struct strbuf sb = strbuf_on(buf, len);

	sb_escape(&sb, s);
	return buf;
}

bool text_is_plain(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t left = strlen(s);

	while (left) {
		size_t n = utf8_seq_len(p, left);

		if (!plain_seq(p, n))
			return false;
		p += n;
		left -= n;
	}
	return true;
}

char *utf8_sanitize(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t left = strlen(s), o = 0;
	char *out = malloc(left * 3 + 1); /* each bad byte becomes three */

	if (!out)
		return NULL;
	while (left) {
		size_t n = utf8_seq_len(p, left);

		if (!n) {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			n = 1;
		} else {
			memcpy(out + o, p, n);
			o += n;
		}
		p += n;
		left -= n;
	}
	out[o] = '\0';
	return out;
}
