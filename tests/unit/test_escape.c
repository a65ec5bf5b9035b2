// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Untrusted text as it is shown (shared/escape.c): what a terminal or a log
 * gets is printable UTF-8 that decodes back to the bytes given; what JSON
 * gets is valid UTF-8; a cut never splits a character or an escape.
 */
#include <stdbool.h>
#include <stdlib.h>

#include "shared/escape.h"
#include "shared/strbuf.h"
#include "tap.h"

static const char *esc(const char *s)
{
	static char buf[1024];

	return escape_text(s, buf, sizeof(buf));
}

/* valid UTF-8 with no control byte, no C1 control and no DEL */
static bool printable(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t left = strlen(s);

	while (left) {
		size_t n = utf8_seq_len(p, left);

		if (!n || (n == 1 && (*p < 0x20 || *p == 0x7f)) ||
		    (n == 2 && p[0] == 0xc2 && p[1] < 0xa0))
			return false;
		p += n;
		left -= n;
	}
	return true;
}

static bool valid_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t left = strlen(s), n;

	for (; left; p += n, left -= n)
		if (!(n = utf8_seq_len(p, left)))
			return false;
	return true;
}

/* the bytes an escaped text stands for: \\ and \xNN undone */
static size_t unescape(const char *s, char *out)
{
	size_t o = 0;

	while (*s) {
		if (s[0] == '\\' && s[1] == '\\') {
			out[o++] = '\\';
			s += 2;
		} else if (s[0] == '\\' && s[1] == 'x') {
			char hex[3] = { s[2], s[3], 0 };

			out[o++] = (char)strtoul(hex, NULL, 16);
			s += 4;
		} else {
			out[o++] = *s++;
		}
	}
	out[o] = '\0';
	return o;
}

static void test_text(void)
{
	static const struct {
		const char *name, *in, *want;
	} cases[] = {
		{ "plain ASCII stays", "Xorg -nolisten tcp", "Xorg -nolisten tcp" },
		{ "quotes stay", "a\"b'c", "a\"b'c" },
		{ "valid UTF-8 stays", "gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x98\x80",
		  "gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x98\x80" },
		{ "ESC", "\x1b[2Jx", "\\x1b[2Jx" },
		{ "newline", "a\nb", "a\\x0ab" },
		{ "carriage return and tab", "\r\t", "\\x0d\\x09" },
		{ "DEL", "a\x7f", "a\\x7f" },
		{ "backslash", "a\\x1b", "a\\\\x1b" },
		{ "a C1 control (CSI)",
		  "a\xc2\x9b"
		  "2J",
		  "a\\xc2\\x9b2J" },
		{ "U+00A0 is not a control", "\xc2\xa0", "\xc2\xa0" },
		{ "a stray continuation byte", "a\x80", "a\\x80" },
		{ "0xff", "\xff\xfe", "\\xff\\xfe" },
		{ "a cut-off sequence at the end", "ab\xc3", "ab\\xc3" },
		{ "a cut-off sequence inside", "\xe2\x82x", "\\xe2\\x82x" },
		{ "an overlong slash", "\xc0\xaf", "\\xc0\\xaf" },
		{ "an overlong three-byte form", "\xe0\x80\xaf", "\\xe0\\x80\\xaf" },
		{ "a UTF-16 surrogate", "\xed\xa0\x80", "\\xed\\xa0\\x80" },
		{ "past U+10FFFF", "\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80" },
		{ "empty", "", "" },
	};
	char name[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(name, sizeof(name), "escape: %s", cases[i].name);
		CHECK_STR(name, esc(cases[i].in), cases[i].want);
		snprintf(name, sizeof(name), "escape: %s: text_is_plain agrees", cases[i].name);
		CHECK(name, text_is_plain(cases[i].in) == !strcmp(cases[i].in, cases[i].want));
	}
}

/* every string of up to two bytes, and three with a lead byte: printable, reversible */
static void test_all_short(void)
{
	char in[4], out[64], back[64];
	size_t bad_print = 0, bad_back = 0, bad_san = 0;

	for (unsigned int a = 1; a < 256; a++) {
		for (unsigned int b = 0; b < 256; b++) {
			for (unsigned int c = 0; c < (a >= 0xe0 ? 256u : 1u); c += (b ? 1 : 256)) {
				in[0] = (char)a, in[1] = (char)b, in[2] = (char)c, in[3] = 0;
				escape_text(in, out, sizeof(out));
				bad_print += !printable(out);
				bad_back += unescape(out, back) != strlen(in) || strcmp(back, in);
				char *s = utf8_sanitize(in);
				bad_san += !s || !valid_utf8(s);
				free(s);
			}
		}
	}
	CHECK("escape: every short string comes out printable", bad_print == 0);
	CHECK("escape: every short string decodes back to its bytes", bad_back == 0);
	CHECK("utf8_sanitize: every short string comes out valid UTF-8", bad_san == 0);
}

static void test_cut(void)
{
	char buf[16];

	CHECK_STR("escape: a cut keeps characters whole", escape_text("\xc3\xa9\xc3\xa9", buf, 4),
		  "\xc3\xa9");
	CHECK_STR("escape: a cut keeps escapes whole", escape_text("\x1b\x1b", buf, 7), "\\x1b");
	CHECK_STR("escape: a cut keeps a bad sequence's escapes whole",
		  escape_text("a\xed\xa0\x80", buf, 10), "a\\xed\\xa0");
	CHECK_STR("escape: a buffer of one byte is empty", escape_text("abc", buf, 1), "");

	struct strbuf sb = strbuf_on(buf, 6);
	sb_escape(&sb, "ab\ncd");
	CHECK("escape: a cut is reported once as -ENOSPC", sb.err == -ENOSPC);
	CHECK_STR("escape: and the text stays what fitted", buf, "ab");
	sb_put(&sb, "x", 1);
	CHECK_STR("escape: nothing is added after the cut", buf, "ab");
}

static void test_sanitize(void)
{
	char *s;

	s = utf8_sanitize("a\xff"
			  "b\xc3");
	CHECK_STR("utf8_sanitize: each bad byte becomes U+FFFD", s,
		  "a\xef\xbf\xbd"
		  "b\xef\xbf\xbd");
	free(s);
	s = utf8_sanitize("\xed\xa0\x80");
	CHECK_STR("utf8_sanitize: a surrogate is three bad bytes", s,
		  "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	free(s);
	s = utf8_sanitize("gr\xc3\xbc\xc3\x9f\n\"\\");
	CHECK_STR("utf8_sanitize: valid text and controls stay (JSON escapes those)", s,
		  "gr\xc3\xbc\xc3\x9f\n\"\\");
	free(s);
}

static void test_seq_len(void)
{
	const unsigned char e[] = { 0xe2, 0x82, 0xac };

	CHECK("utf8_seq_len: a three-byte sequence", utf8_seq_len(e, 3) == 3);
	CHECK("utf8_seq_len: short of its bytes is not one", utf8_seq_len(e, 2) == 0);
	CHECK("utf8_seq_len: a lead byte alone is not one", utf8_seq_len(e, 1) == 0);
}

int main(void)
{
	test_text();
	test_all_short();
	test_cut();
	test_sanitize();
	test_seq_len();
	TAP_EXIT();
}
