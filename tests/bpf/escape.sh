#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Everything shown is escaped: a holder whose comm and device path carry
# ESC sequences, a newline, quotes, a backslash and bytes that are not
# UTF-8 (any user can name a process or a file so). On both backends, the
# JSON parses with a real parser, is valid UTF-8 and keeps the name (bad
# bytes as U+FFFD); the text has no control byte and no forged line, and
# shows the name as \xNN escapes. watch's lines too, listed and as events.
set -u
. "$(dirname "$0")/../lib.sh"
need_root escape

COMM=$'\e[2J\n"q\\\xffx'    # 10 bytes: the kernel keeps up to 15
NAME=$'gpu\e]0;t\a\n"\\\xfe' # a file name of the same kind
DEV=$TMP/$NAME
mknod "$DEV" c 1 7 || { not_ok setup "mknod"; finish; }
# what the text must show for them, and what JSON must hold (Python's own
# decoding with U+FFFD for each bad byte)
COMM_SHOWN='\x1b[2J\x0a"q\\\xffx'
NAME_SHOWN='gpu\x1b]0;t\x07\x0a"\\\xfe'

# json_ok FILE [LINES]: the file (each line, with LINES) parses as strict
# UTF-8 JSON; prints why not
json_ok() {
	python3 - "$@" <<'PY'
import json, sys
data = open(sys.argv[1], "rb").read()
try:
    text = data.decode("utf-8")  # strict: invalid UTF-8 is an error
    docs = [json.loads(l) for l in text.splitlines()] if len(sys.argv) > 2 else [json.loads(text)]
except Exception as e:
    print(f"{sys.argv[1]}: {e}")
    sys.exit(1)
PY
}
# want_repr S: S as JSON must hold it (U+FFFD for each bad byte), repr'd
want_repr() { python3 -c 'import sys; print(repr(sys.argv[1].encode("utf-8", "surrogateescape").decode("utf-8", "replace")))' "$1"; }
# holder_field FILE PID KEY: that holder's KEY, as Python reads it, repr'd
holder_field() {
	python3 - "$@" <<'PY'
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
for h in d["holders"]:
    if h["pid"] == int(sys.argv[2]):
        print(repr(h[sys.argv[3]]))
PY
}
# text_ok FILE: no control byte but newline, valid UTF-8; prints why not
text_ok() {
	python3 - "$1" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
bad = [b for b in data if (b < 0x20 and b != 0x0a) or b == 0x7f]
try:
    data.decode("utf-8")
except UnicodeDecodeError as e:
    print(f"invalid UTF-8: {e}")
    sys.exit(1)
if bad:
    print(f"control bytes {sorted(set(bad))}")
    sys.exit(1)
PY
}

HOLDER_COMM=$COMM start_holder h open "$DEV" || { not_ok setup "holder: $(cat "$TMP/h.err")"; finish; }
read -r pid _ <"$TMP/h"

check "setup: the holder's comm is the hostile one" [ "$(cat /proc/"$pid"/comm | head -c 4)" = $'\e[2J' ]

for b in bpf proc; do
	"$VFIO_AGENT" diagnose --device "$DEV" --json --backend $b >"$TMP/$b.json" 2>"$TMP/$b.err"
	if why=$(json_ok "$TMP/$b.json"); then
		ok "diagnose --json --backend $b: valid UTF-8 JSON (python3 json)"
	else
		not_ok "diagnose --json --backend $b: valid UTF-8 JSON" "$why"
	fi
	check "diagnose --json --backend $b: jq reads it" jq -e >/dev/null '.holders | length == 1' "$TMP/$b.json"
	got=$(holder_field "$TMP/$b.json" "$pid" comm)
	want=$(want_repr "$COMM")
	check "diagnose --json --backend $b: comm kept, bad byte as U+FFFD ($got)" [ "$got" = "$want" ]
	got=$(holder_field "$TMP/$b.json" "$pid" path)
	want=$(want_repr "$DEV")
	check "diagnose --json --backend $b: path kept, bad byte as U+FFFD ($got)" [ "$got" = "$want" ]

	"$VFIO_AGENT" diagnose --device "$DEV" --backend $b >"$TMP/$b.txt" 2>"$TMP/$b.err"
	if why=$(text_ok "$TMP/$b.txt"); then
		ok "diagnose --backend $b: the text has no control byte and is UTF-8"
	else
		not_ok "diagnose --backend $b: the text has no control byte" "$why"
	fi
	line=$(grep -E "^  $pid " "$TMP/$b.txt")
	check "diagnose --backend $b: the holder is one line" [ "$(grep -cE "^  $pid " "$TMP/$b.txt")" -eq 1 ]
	check "diagnose --backend $b: no line forged by the comm's newline" \
		eval '! grep -q "^\"q" "$TMP/$b.txt"'
	check "diagnose --backend $b: the comm shown escaped" eval 'grep -qF -- "$COMM_SHOWN" <<<"$line"'
	check "diagnose --backend $b: the path shown escaped" eval 'grep -qF -- "$NAME_SHOWN" <<<"$line"'
done

# watch lists the holder first, then streams: text and JSON lines
for mode in text json; do
	args=()
	[ $mode = json ] && args=(--json)
	"$VFIO_AGENT" watch --device "$DEV" "${args[@]}" --duration 3 >"$TMP/w.$mode" 2>"$TMP/w.err" &
	wpid=$!
	sleep 1
	HOLDER_COMM=$COMM start_holder o$mode open "$DEV"
	wait $wpid
	if [ $mode = json ]; then
		if why=$(json_ok "$TMP/w.json" lines); then
			ok "watch --json: every line is valid UTF-8 JSON"
		else
			not_ok "watch --json: every line is valid UTF-8 JSON" "$why"
		fi
		n=$(python3 -c '
import json, sys
want = sys.argv[2].encode("utf-8", "surrogateescape").decode("utf-8", "replace")
print(sum(1 for l in open(sys.argv[1], encoding="utf-8") if json.loads(l)["comm"] == want))
' "$TMP/w.json" "$COMM")
		check "watch --json: the listed holder and the open event keep the comm ($n lines)" \
			[ "$n" -ge 2 ]
		check "watch --json: an open event was seen" grep -q '"event":"open"' "$TMP/w.json"
	else
		if why=$(text_ok "$TMP/w.text"); then
			ok "watch: the text has no control byte and is UTF-8"
		else
			not_ok "watch: the text has no control byte" "$why"
		fi
		check "watch: every line is an event line (no forged one)" \
			eval '[ -s "$TMP/w.text" ] && ! grep -vqE "^[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} " "$TMP/w.text"'
		check "watch: the comm and path shown escaped" \
			eval 'grep " open " "$TMP/w.text" | grep -F -- "$COMM_SHOWN" | grep -qF -- "$NAME_SHOWN"'
	fi
done
finish
