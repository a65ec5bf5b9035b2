#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# vm: --systemd
#
# The handoff's units under the host's systemd as PID 1, over D-Bus: a
# display-manager stand-in named in stop-units is stopped before bochs is
# unloaded and started again on release. A service that holds the GPU and
# is not in stop-units makes prepare refuse (on-holders = fail), named in
# the error, and the rollback starts the stopped unit again. A unit in
# stop-units that refuses a manual stop is refused before any change.
set -u
. "$(dirname "$0")/lib.sh"

check "systemd is PID 1" [ "$(cat /proc/1/comm)" = systemd ]
modprobe bochs && modprobe vgem || { not_ok "modprobe bochs vgem" "failed"; finish; }
bdf=$(bochs_bdf)
card=$(card_of "$bdf")
render=/dev/dri/renderD128
check "bochs is $card; $render is vgem's (bochs has no render node)" \
	eval '[ -c "$card" ] && [ "$(basename "$(readlink -f /sys/class/drm/renderD128/device)")" = vgem ]'
driver_of() { basename "$(readlink -f "/sys/bus/pci/devices/$1/driver")" 2>/dev/null; }
J=/run/vfio-agent/vmtest.journal
# the display manager stand-in holds the card and the render node, as a
# compositor does; the other holds the card
cat >/run/systemd/system/va-display.service <<EOU
[Unit]
Description=vfio-agent VM tier: holds $card and $render
[Service]
ExecStart=/bin/sh -c 'exec 3<$card 4<$render; exec sleep infinity'
EOU
cat >/run/systemd/system/va-other.service <<EOU
[Unit]
Description=vfio-agent VM tier: holds $card
[Service]
ExecStart=$HOLDER open $card
EOU
systemctl daemon-reload
cat >"$TMP/conf" <<EOC
[vfio]
vm = vmtest
pcis = pci_${bdf//[:.]/_}
passthrough = true
stop-units = va-display.service
on-holders = fail
holder-timeout = 2
EOC
active() { [ "$(systemctl is-active "$1")" = active ]; }
# agent ARGS...: stdout and stderr in $TMP/out and $TMP/err; stdout checked after each
# call, since the hook runs this same handoff and there stdout is libvirt's XML filter
agent() {
	local rc
	"$VFIO_AGENT" --config "$TMP/conf" "$@" >"$TMP/out" 2>"$TMP/err"
	rc=$?
	hook_quiet "$*" "$TMP/out"
	return $rc
}
wait_held() { unit_holds "$1" "$card"; }

# ---- the unit in stop-units: stopped, the GPU handed over, started again ----
systemctl start va-display.service
check "va-display.service holds $card" wait_held va-display.service
check "... and $render" unit_holds va-display.service "$render"
agent handoff prepare
rc=$?
check "prepare exits 0 ($(tr '\n' ' ' <"$TMP/err"))" [ $rc -eq 0 ]
check "prepare: va-display.service is stopped" [ "$(systemctl is-active va-display.service)" = inactive ]
check "prepare: $bdf is on vfio-pci, bochs unloaded" eval '[ "$(driver_of "$bdf")" = vfio-pci ] && ! loaded bochs'
check "prepare: the journal names the unit" grep -qx "unit va-display.service" "$J"
agent handoff release
rc=$?
check "release exits 0 ($(tr '\n' ' ' <"$TMP/err"))" [ $rc -eq 0 ]
check "release: bochs drives $bdf again" [ "$(driver_of "$bdf")" = bochs-drm ]
check "release: va-display.service runs again and holds the new $card" wait_held va-display.service
check "release: ... and $render" unit_holds va-display.service "$render"

# ---- a unit not in stop-units holds the GPU: refused, rolled back ----
systemctl start va-other.service
check "va-other.service holds $card" wait_held va-other.service
agent -q handoff prepare
judge "held by va-other.service: prepare refuses and names the unit" 1 \
	"held by holder \(pid [0-9]+, va-other.service\); on-holders = fail.*rolled back" $?
check "refused: va-display.service was started again by the rollback" wait_held va-display.service
check "refused: va-other.service still runs" active va-other.service
check "refused: bochs still drives $bdf, no journal" eval '[ "$(driver_of "$bdf")" = bochs-drm ] && [ ! -e "$J" ]'
systemctl stop va-other.service

# ---- a unit in stop-units that refuses a manual stop: refused before any change ----
# (real systemd's CanStop; its StopUnit would be refused after va-display.service's stop)
cat >/run/systemd/system/va-stubborn.service <<EOU
[Unit]
Description=vfio-agent VM tier: holds $card, refuses a manual stop
RefuseManualStop=yes
[Service]
ExecStart=$HOLDER open $card
EOU
systemctl daemon-reload
systemctl start va-stubborn.service
check "va-stubborn.service holds $card" wait_held va-stubborn.service
sed -i 's/^stop-units = .*/stop-units = va-display.service va-stubborn.service/' "$TMP/conf"
display_pid=$(systemctl show -P MainPID va-display.service)
agent -q handoff prepare
judge "a unit that refuses a manual stop: prepare refuses before any change, names it and what to do" 1 \
	"stop-units: va-stubborn.service refuses a manual stop \(RefuseManualStop=yes\), so systemd would not stop it for the handoff: take it out of stop-units$" $?
check "refused: va-display.service never stopped (the same process, $display_pid)" \
	eval '[ "${display_pid:-0}" != 0 ] && [ "$(systemctl show -P MainPID va-display.service)" = "$display_pid" ] &&
		wait_held va-display.service'
check "refused: va-stubborn.service still runs" active va-stubborn.service
check "refused: bochs still drives $bdf, no journal" eval '[ "$(driver_of "$bdf")" = bochs-drm ] && [ ! -e "$J" ]'
systemctl stop va-display.service
hook_quiet_all
finish
