/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Untrusted text (process names, paths, unit names, XML, journal lines) as
 * it may be shown. Decided once, here:
 *  - text for a terminal or a log: control bytes (C0, and C1 as U+0080-U+009F),
 *    DEL, backslash and bytes that are not valid UTF-8 become \xNN (backslash:
 *    \\), as ls -b does, so no name can move the cursor or forge a line;
 *    valid UTF-8 stays, and a cut never splits a character or an escape;
 *  - text for JSON: valid UTF-8 with every invalid byte as U+FFFD, so the
 *    document is always valid UTF-8 (json-c escapes the control bytes).
 */
#ifndef VFIO_SHARED_ESCAPE_H
#define VFIO_SHARED_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>

struct strbuf;

/* the length of the valid UTF-8 sequence at s (1-4), or 0 when it is not one */
size_t utf8_seq_len(const unsigned char *s, size_t avail);

/* s, escaped for a terminal or log, appended to sb */
void sb_escape(struct strbuf *sb, const char *s);

/* what escape_text may need for n bytes: each one can become \xNN */
#define ESCAPED_SIZE(n) (4 * (n) + 1)

/* s escaped into buf (cut to fit); returns buf, for use inside a printf */
const char *escape_text(const char *s, char *buf, size_t len);

/* is s printable as it is: valid UTF-8, no control bytes, no backslash? */
bool text_is_plain(const char *s);

/* s as valid UTF-8 (U+FFFD for each bad byte), malloc'ed; NULL on ENOMEM */
char *utf8_sanitize(const char *s);

#endif
