// SPDX-License-Identifier: GPL-2.0-or-later
#include <stdlib.h>

#include "agent/show.h"
#include "shared/escape.h"

json_object *json_str(const char *s)
{
	json_object *o;
	char *clean;

	if (!s)
		return NULL;
	if (text_is_plain(s))
		return json_object_new_string(s);
	if (!(clean = utf8_sanitize(s)))
		return NULL;
	o = json_object_new_string(clean);
	free(clean);
	return o;
}

json_object *json_opt(const char *s)
{
	return s && s[0] ? json_str(s) : NULL;
}
