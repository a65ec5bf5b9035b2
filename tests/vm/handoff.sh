#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The handoff on a real kernel: bochs's device goes to vfio-pci (fbcon
# unbound, bochs unloaded, vfio-pci loaded by libkmod) and comes back on
# release. A holder with on-holders=fail stops it before anything changes;
# with on-holders=kill the holder is ended and the handoff goes on.
set -u
. "$(dirname "$0")/lib.sh"

modprobe bochs || { not_ok "modprobe bochs" "failed"; finish; }
bdf=$(bochs_bdf)
card=$(card_of "$bdf")
group=$(basename "$(readlink -f "/sys/bus/pci/devices/$bdf/iommu_group")")
vt=
for v in /sys/class/vtconsole/vtcon*; do
	grep -q "frame buffer" "$v/name" && [ "$(cat "$v/bind")" = 1 ] && vt=$(basename "$v")
done
check "start: bochs drives $bdf ($card), IOMMU group $group, fbcon bound as ${vt:-nothing}" \
	[ -c "$card" ] && [ -n "$group" ] && [ -n "$vt" ]
driver_of() { basename "$(readlink -f "/sys/bus/pci/devices/$1/driver")" 2>/dev/null; }
J=/run/vfio-agent/vmtest.journal
conf() {
	cat >"$TMP/conf" <<-EOC
	[vfio]
	vm = vmtest
	pcis = pci_${bdf//[:.]/_}
	passthrough = true
	on-holders = $1
	holder-timeout = 2
	EOC
}
# each call's stdout is checked: the hook runs this same handoff, and there stdout is
# libvirt's XML filter
handoff() {
	local q= rc
	[ "$1" = -q ] && { q=-q; shift; }
	"$VFIO_AGENT" --config "$TMP/conf" $q handoff "$@" >"$TMP/out" 2>"$TMP/err"
	rc=$?
	hook_quiet "handoff $*" "$TMP/out"
	return $rc
}
# hook OP SUBOP: the hook as libvirt calls it, the domain XML on stdin
hook() {
	local rc
	printf "<domain type='kvm'><name>vmtest</name><devices/></domain>" |
		"$VFIO_AGENT" --config "$TMP/conf" hook vmtest "$@" - >"$TMP/out" 2>"$TMP/err"
	rc=$?
	hook_quiet "hook vmtest $*" "$TMP/out"
	return $rc
}
as_at_start() {
	[ "$(driver_of "$bdf")" = bochs-drm ] && [ -c "$card" ] && loaded bochs &&
		[ "$(cat "/sys/class/vtconsole/$vt/bind")" = 1 ] && [ ! -e "$J" ]
}

# ---- a holder and on-holders=fail: refused, nothing changed ----
conf fail
start_holder card open "$card" || not_ok "holder" "$(cat "$TMP/card.err")"
pid=$(awk '{ print $1 }' "$TMP/card")
handoff -q prepare
judge "held, on-holders=fail: prepare refuses, names the holder" 1 "holder|$pid" $?
check "held: the host is as it was (driver, card, bochs, fbcon, no journal)" as_at_start
check "held: the holder lives" [ -d "/proc/$pid" ]

# ---- on-holders=kill: the holder is ended, the handoff goes on ----
conf kill
handoff prepare
rc=$?
check "kill: prepare exits 0 ($(tr "\n" " " <"$TMP/err"))" [ $rc -eq 0 ]
for _ in $(seq 20); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
check "kill: the holder is gone" [ ! -d "/proc/$pid" ]
check "kill: a progress line named the holder and the file" \
	grep -q "waiting for holder (pid $pid) to release $card — [0-9] s of 2" "$TMP/err"
check "kill: $bdf is on vfio-pci" [ "$(driver_of "$bdf")" = vfio-pci ]
check "kill: /dev/vfio/$group exists" [ -c "/dev/vfio/$group" ]
check "kill: bochs is unloaded, $card is gone" eval '! loaded bochs && [ ! -e "$card" ]'
# with no framebuffer left, fbcon's vtconsole goes away altogether
check "kill: fbcon is unbound" eval "[ ! -e /sys/class/vtconsole/$vt ] || [ \"\$(cat /sys/class/vtconsole/$vt/bind)\" = 0 ]"
check "kill: the journal names each step" \
	eval "grep -qx 'vtcon $vt' $J && grep -qx 'module bochs' $J && grep -qx 'vfio $bdf' $J"

# ---- release: back as it was ----
handoff release
rc=$?
check "release exits 0 ($(tr "\n" " " <"$TMP/err"))" [ $rc -eq 0 ]
for _ in $(seq 30); do [ -c "$card" ] && break; sleep 0.1; done
check "release: the host is as it was (bochs drives $bdf, $card back, fbcon bound, no journal)" as_at_start
handoff release
check "release again: nothing to do, exit 0" [ $? -eq 0 ]

# ---- prepare without a holder, release: the round trip twice, then through the hook ----
conf fail
for round in 1 2; do
	handoff prepare && [ "$(driver_of "$bdf")" = vfio-pci ] && handoff release &&
		for _ in $(seq 30); do [ -c "$card" ] && break; sleep 0.1; done
	check "round trip $round: vfio-pci and back" as_at_start
done
hook prepare begin && [ "$(driver_of "$bdf")" = vfio-pci ] && hook started begin &&
	hook release end && for _ in $(seq 30); do [ -c "$card" ] && break; sleep 0.1; done
check "round trip through the hook (prepare begin, started begin, release end): vfio-pci and back ($(cat "$TMP/err"))" \
	as_at_start
hook_quiet_all
finish
