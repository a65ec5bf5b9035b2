#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# watch on the running kernel: a holder that was there first is listed; an
# open of the stand-in device appears with pid and comm within one second;
# a close and an exit appear too; SIGINT ends it with exit 0.
set -u
. "$(dirname "$0")/../lib.sh"
need_root watch

DEV=$TMP/gpu
mknod "$DEV" c 1 7 || { not_ok setup mknod; finish; }
start_holder early open "$DEV" || { not_ok setup "holder"; finish; }
read -r early _ early_fd <"$TMP/early"

"$VFIO_AGENT" watch --device "$DEV" --json >"$TMP/w.out" 2>"$TMP/w.err" &
WPID=$!
HOLDER_PIDS+=("$WPID")
for _ in $(seq 100); do grep -q watching "$TMP/w.err" && break; sleep 0.05; done
if ! grep -q watching "$TMP/w.err"; then
	not_ok watch "did not start: $(cat "$TMP/w.err")"
	finish
fi
ok "watch started: $(cat "$TMP/w.err")"
# has JQ-CONDITION: some line of the stream meets it
has() { jq -s -e "any(.[]; $1)" "$TMP/w.out" >/dev/null 2>&1; }
check "the holder that was there first is listed" \
	has ".event == \"holding\" and .pid == $early and .fd == $early_fd"

# wait_for JQ-CONDITION: up to 1 s for a line of the stream to meet it
wait_for() {
	local t0 t1
	t0=$(date +%s%N)
	while :; do
		has "$1" && break
		t1=$(date +%s%N)
		[ $(((t1 - t0) / 1000000)) -ge 1000 ] && return 1
		sleep 0.02
	done
	echo "$(((($(date +%s%N) - t0)) / 1000000)) ms"
}

t0=$(date +%s%N)
start_holder late open "$DEV" || not_ok open "holder"
read -r late _ late_fd <"$TMP/late"
if got=$(wait_for ".event == \"open\" and .pid == $late and .comm == \"holder\" and
		.fd == $late_fd and .device == \"1:7\""); then
	ok "open by pid $late (holder, fd $late_fd) seen within one second ($(( ($(date +%s%N) - t0) / 1000000 )) ms after the holder started)"
else
	not_ok "open" "no open event for pid $late within 1 s: $(cat "$TMP/w.out")"
fi
check "the open names the node's path" has ".event == \"open\" and .pid == $late and .path == \"$DEV\""

bash -c 'exec 9<"$1"; exec 9<&-' sh "$DEV" &
closer=$!
wait $closer
if got=$(wait_for ".event == \"close\" and .pid == $closer and .fd == 9"); then
	ok "close of fd 9 by pid $closer seen ($got)"
else
	not_ok "close" "no close event for pid $closer: $(cat "$TMP/w.out")"
fi

kill -9 "$early"
if got=$(wait_for ".event == \"exit\" and .pid == $early"); then
	ok "exit of the first holder, pid $early, seen ($got)"
else
	not_ok "exit" "no exit event for pid $early: $(cat "$TMP/w.out")"
fi

kill -INT "$WPID"
for _ in $(seq 50); do [ -d /proc/$WPID ] || break; sleep 0.05; done
wait "$WPID" 2>/dev/null
rc=$?
check "SIGINT ends watch with exit 0 (exit $rc)" [ "$rc" -eq 0 ]
check "every line is one JSON object" eval '[ "$(jq -c type "$TMP/w.out" | sort -u)" = "\"object\"" ] &&
	[ "$(jq -c . "$TMP/w.out" | wc -l)" -eq "$(wc -l <"$TMP/w.out")" ]' 

# --duration ends it by itself
"$VFIO_AGENT" watch --device "$DEV" --duration 0.3 >/dev/null 2>&1
check "--duration 0.3 ends it with exit 0" [ $? -eq 0 ]
"$VFIO_AGENT" watch --device "$DEV" --duration x 2>"$TMP/e"
rc=$?
check "--duration x: exit 2, $(cat "$TMP/e")" [ $rc -eq 2 ]

finish
