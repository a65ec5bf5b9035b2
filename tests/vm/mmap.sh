#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# A dumb buffer mapped, its fd closed: the mapping alone keeps bochs in use.
# diagnose names the process as an mmap holder of bochs.
set -u
. "$(dirname "$0")/lib.sh"

modprobe bochs || { not_ok "modprobe bochs" "failed"; finish; }
bdf=$(bochs_bdf)
card=$(card_of "$bdf")
start_holder dumb dumb "$card" || not_ok "holder" "$(cat "$TMP/dumb.err")"
pid=$(awk '{ print $1 }' "$TMP/dumb")
check "the holder has no fd on $card, only the mapping" \
	eval "! ls -l /proc/$pid/fd | grep -q '$card' && grep -q '$card' /proc/$pid/maps"

diag mapped --pci "$bdf"
J=$TMP/mapped.json
got=$(jq -r '.holders[] | .pid as $p | .holds[] | "\($p) \(.kind) \(.fd) \(.path) \(.module)"' "$J")
check "mapped: pid $pid holds by mmap, module bochs (got: $got)" [ "$got" = "$pid mmap null $card bochs" ]
check "mapped: not ready, exit 1" [ "$(cat "$TMP/mapped.rc")" = 1 ]
got=$(jq -r '.modules[] | select(.name == "bochs") | "\(.refcnt) \(.files) \(.unexplained)"' "$J")
check "mapped: bochs refcnt 1 = 1 file (the mapping's), 0 unexplained (got: $got)" [ "$got" = "1 1 0" ]
same_backends mapped --pci "$bdf"

rmmod bochs 2>/dev/null
check "mapped: rmmod bochs fails while the mapping lives" [ $? -ne 0 ] && loaded bochs
cleanup_holders
rmmod bochs
check "unmapped: rmmod bochs works" [ $? -eq 0 ] && ! loaded bochs
finish
