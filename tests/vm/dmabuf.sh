#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# A vgem buffer exported as a dma-buf (PRIME) and passed to another process;
# the exporter closes everything and exits. The receiver alone keeps vgem
# in use: diagnose names it as a dmabuf holder with exporter vgem. bochs is
# loaded too, idle, so the /proc backend has two DRM drivers to choose from.
set -u
. "$(dirname "$0")/lib.sh"

modprobe bochs && modprobe vgem || { not_ok "modprobe bochs vgem" "failed"; finish; }
card=$(card_of vgem)
check "vgem is $card" [ -c "$card" ]
start_holder prime prime "$card" || not_ok "holder" "$(cat "$TMP/prime.err")"
pid=$(awk '{ print $1 }' "$TMP/prime")
fd=$(awk '{ print $3 }' "$TMP/prime")
check "the receiver has a dma-buf and no DRM fd" \
	eval "grep -q '^exp_name:' /proc/$pid/fdinfo/$fd && ! ls -l /proc/$pid/fd | grep -q /dev/dri"

diag shared --driver vgem
J=$TMP/shared.json
got=$(jq -r '.holders[] | .pid as $p | .holds[] | "\($p) \(.kind) \(.fd) \(.exporter) \(.module)"' "$J")
check "shared: pid $pid holds fd $fd as a dmabuf of exporter vgem (got: $got)" \
	[ "$got" = "$pid dmabuf $fd vgem vgem" ]
got=$(jq -r '.modules[] | select(.name == "vgem") | "\(.refcnt) \(.dmabufs) \(.unexplained)"' "$J")
check "shared: vgem refcnt 1 = 1 dma-buf, 0 unexplained (got: $got)" [ "$got" = "1 1 0" ]
check "shared: not ready, exit 1" [ "$(cat "$TMP/shared.rc")" = 1 ]
same_backends shared --driver vgem

rmmod vgem 2>/dev/null
check "shared: rmmod vgem fails while the dma-buf lives" [ $? -ne 0 ] && loaded vgem
cleanup_holders
rmmod vgem
check "released: rmmod vgem works" [ $? -eq 0 ] && ! loaded vgem
finish
