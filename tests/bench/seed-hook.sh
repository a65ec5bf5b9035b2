#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The handoff as a shell hook does it, following the seed's steps (and the
# wiki's single-GPU hooks): systemctl stop of the units, the consoles unbound
# through /sys/class/vtconsole/vtcon*/bind, modprobe -r of the GPU's driver,
# vfio-pci bound through driver_override and drivers_probe, with a sleep 1
# between the steps; release the same backwards, the display manager started
# before the other units. Written for tests/bench/handoff.sh, as a stand-in for
# what those hooks do; not a tool.
#
#   seed-hook.sh prepare|release
#   seed-hook.sh wait-master    until the display server is DRM master (the harness's probe)
#
# From the environment: SEED_SLEEP (the pause between steps, default 1; 0 for
# none), SEED_UNITS (system
# units, the display manager first), SEED_UID and SEED_USER_UNITS (a user's
# units, reached on its own bus as that user), SEED_PCIS (the BDFs),
# SEED_MODULE (the GPU's driver), SEED_CLIENTS (the card's
# /sys/kernel/debug/dri/N/clients) and SEED_DS (the display server's command
# name there): release waits until it is DRM master before it starts the other
# units, as any order that keeps the desktop must.
set -u
: "${SEED_SLEEP:=1}" "${SEED_UNITS:?}" "${SEED_UID:?}" "${SEED_USER_UNITS:?}"
: "${SEED_PCIS:?}" "${SEED_MODULE:?}" "${SEED_CLIENTS:?}" "${SEED_DS:?}"
pause() { [ "$SEED_SLEEP" = 0 ] || sleep "$SEED_SLEEP"; }
# the display server's file is master: read with bash alone, every 10 ms (a
# read that times out on a pipe of our own: no process started per look)
wait_master() {
	local c p d m rest z
	exec {z}<> <(:)
	for _ in $(seq 6000); do
		if [ -r "$SEED_CLIENTS" ]; then
			while read -r c p d m rest; do
				[ "$c" = "$SEED_DS" ] && [ "$m" = y ] && return 0
			done 2>/dev/null <"$SEED_CLIENTS"
		fi
		read -rt 0.01 -u "$z"
	done
	return 1
}
user() {
	setpriv --reuid="$SEED_UID" --regid="$SEED_UID" --clear-groups \
		env XDG_RUNTIME_DIR="/run/user/$SEED_UID" \
		DBUS_SESSION_BUS_ADDRESS="unix:path=/run/user/$SEED_UID/bus" "$@"
}
vtcons() {
	local v
	for v in /sys/class/vtconsole/vtcon*; do
		grep -q "frame buffer" "$v/name" && echo "$1" >"$v/bind"
	done
}
read -ra units <<<"$SEED_UNITS"
read -ra user_units <<<"$SEED_USER_UNITS"
read -ra pcis <<<"$SEED_PCIS"

case $1 in
prepare)
	systemctl stop "${units[@]}"
	user systemctl --user stop "${user_units[@]}"
	pause
	vtcons 0
	pause
	modprobe -r "$SEED_MODULE"
	pause
	modprobe vfio-pci
	for d in "${pcis[@]}"; do
		[ -e "/sys/bus/pci/devices/$d/driver" ] && echo "$d" >"/sys/bus/pci/devices/$d/driver/unbind"
		echo vfio-pci >"/sys/bus/pci/devices/$d/driver_override"
		echo "$d" >/sys/bus/pci/drivers_probe
	done
	;;
release)
	for d in "${pcis[@]}"; do
		echo "$d" >/sys/bus/pci/drivers/vfio-pci/unbind
		echo >"/sys/bus/pci/devices/$d/driver_override"
	done
	modprobe -r vfio-pci
	pause
	modprobe "$SEED_MODULE"
	for d in "${pcis[@]}"; do echo "$d" >/sys/bus/pci/drivers_probe; done
	pause
	vtcons 1
	pause
	systemctl start "${units[0]}"
	pause
	wait_master
	systemctl start "${units[@]:1}"
	user systemctl --user start "${user_units[@]}"
	;;
wait-master) wait_master ;;
*)
	echo "usage: seed-hook.sh prepare|release|wait-master" >&2
	exit 2
	;;
esac
