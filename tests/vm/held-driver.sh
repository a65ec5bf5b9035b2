#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# A real DRM driver held by a process: bochs under Debian's kernel. The
# holder is named with its fd and module, the module's refcount is fully
# explained, rmmod fails while it is held and works once it is not.
set -u
. "$(dirname "$0")/lib.sh"

modprobe bochs || { not_ok "modprobe bochs" "failed"; finish; }
bdf=$(bochs_bdf)
card=$(card_of "$bdf")
check "bochs drives $bdf as $card" [ -n "$bdf" ] && [ -c "$card" ]
start_holder card open "$card" || not_ok "holder" "$(cat "$TMP/card.err")"
pid=$(awk '{ print $1 }' "$TMP/card")
fd=$(awk '{ print $3 }' "$TMP/card")

diag held --pci "$bdf"
J=$TMP/held.json
check "held: not ready, exit 1" [ "$(cat "$TMP/held.rc")" = 1 ] && jq -e '.ready == false' "$J" >/dev/null
want="$pid fd $fd $card bochs"
got=$(jq -r '.holders[] | .pid as $p | .holds[] | "\($p) \(.kind) \(.fd) \(.path) \(.module)"' "$J")
check "held: the holder is pid $pid, kind fd, fd $fd, module bochs (got: $got)" [ "$got" = "$want" ]
check "held: the kernel's refcnt of bochs is 1" [ "$(refcnt bochs)" = 1 ]
got=$(jq -r '.modules[] | select(.name == "bochs") | "\(.refcnt) \(.files) \(.unexplained)"' "$J")
check "held: diagnose: bochs refcnt 1 = 1 file, 0 unexplained (got: $got)" [ "$got" = "1 1 0" ]
same_backends held --pci "$bdf"

rmmod bochs 2>"$TMP/rmmod.err"
rc=$?
check "held: rmmod bochs fails ($(cat "$TMP/rmmod.err"))" [ $rc -ne 0 ] && loaded bochs

cleanup_holders
diag free --pci "$bdf"
check "free: ready, exit 0" [ "$(cat "$TMP/free.rc")" = 0 ] && jq -e '.ready and (.holders | length == 0)' "$TMP/free.json" >/dev/null
check "free: bochs refcnt 0, nothing unexplained" \
	[ "$(jq -r '.modules[] | select(.name == "bochs") | "\(.refcnt) \(.unexplained)"' "$TMP/free.json")" = "0 0" ]
rmmod bochs 2>"$TMP/rmmod.err"
check "free: rmmod bochs works ($(cat "$TMP/rmmod.err"))" [ $? -eq 0 ] && ! loaded bochs
finish
