#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# vm: --systemd --desktop
#
# The desktop scene: the GPU and its HDMI audio as two functions of one slot
# (bochs-display at 00:05.0, intel-hda at 00:05.1, one IOMMU group; the
# board's own HDA at 00:1b.0 keeps snd_hda_intel in use), udev,
# weston on bochs as display-manager.service, a logind session of a user
# opened through PAM with pipewire, wireplumber and a loopback stream (so
# pipewire holds the PCM) and a DRM client holding a mapped buffer of the
# card, and a lactd stand-in system unit holding the card. handoff prepare
# and release with on-holders = stop, asserted step by step and on the
# screen (QEMU's screendump: before, after prepare, after release); then a
# prepare that a unit refusing to stop rolls back; then the other start order
# (the lactd stand-in in stop-units after the display manager: started first
# in journal order, it would take DRM master from weston).
set -u
. "$(dirname "$0")/lib.sh"

gpu=0000:00:05.0 audio=0000:00:05.1
J=/run/vfio-agent/desktop.journal
D=/run/va-desktop
mkdir -p "$D"
driver_of() { basename "$(readlink -f "/sys/bus/pci/devices/$1/driver")" 2>/dev/null; }
group_of() { basename "$(readlink -f "/sys/bus/pci/devices/$1/iommu_group")"; }
active() { [ "$(systemctl "${@:2}" is-active "$1" 2>/dev/null)" = active ]; }
inactive() { ! active "$@"; }
# wait_for SECONDS CMD...: CMD succeeds within SECONDS
wait_for() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.3
	done
}

check "systemd is PID 1" [ "$(cat /proc/1/comm)" = systemd ]
check "$gpu is the GPU (0x0380), $audio its HDMI audio (0x0403), one IOMMU group" \
	eval '[ "$(cat /sys/bus/pci/devices/$gpu/class)" = 0x038000 ] &&
		[ "$(cat /sys/bus/pci/devices/$audio/class)" = 0x040300 ] &&
		[ "$(group_of $gpu)" = "$(group_of $audio)" ]'
systemctl start systemd-udevd.service || not_ok "udev" "systemd-udevd did not start"
modprobe bochs && modprobe snd_hda_intel || { not_ok "modprobe bochs snd_hda_intel" "failed"; finish; }
udevadm settle
card=$(card_of "$gpu")
pcm=$(ls -d /sys/bus/pci/devices/$audio/sound/card*/pcmC*p 2>/dev/null | head -n 1)
pcm=/dev/snd/$(basename "$pcm")
check "bochs drives $gpu ($card), snd_hda_intel $audio ($pcm); udev gave them to video and audio" \
	eval '[ -c "$card" ] && [ -c "$pcm" ] && [ "$(stat -c %G "$card")" = video ] &&
		[ "$(stat -c %G "$pcm")" = audio ]'
mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug
clients=/sys/kernel/debug/dri/${card#/dev/dri/card}/clients

# ---- the scene ----
python3 tests/vm/ppm.py pattern "$D/background.png" 320 200
cat >"$D/weston.ini" <<EOF
[core]
idle-time=0
[shell]
background-image=$D/background.png
background-type=scale-crop
panel-position=none
EOF
cat >/run/systemd/system/va-weston.service <<EOF
[Unit]
Description=vfio-agent VM tier: weston on the GPU, the display manager
[Service]
Environment=XDG_RUNTIME_DIR=/run/va-weston
RuntimeDirectory=va-weston
RuntimeDirectoryMode=0700
ExecStart=/usr/bin/weston --backend=drm-backend.so --use-pixman --continue-without-input --tty=3 --config=$D/weston.ini --log=$D/weston.log
EOF
ln -sf va-weston.service /run/systemd/system/display-manager.service
S=/run/systemd/system
unit_file $S/va-lactd.service "a lactd stand-in, holds $card" "$HOLDER open $card"
unit_file $S/va-stubborn.service "holds $card, refuses a manual stop" "$HOLDER open $card" \
	RefuseManualStop=yes
# the session's own units: a DRM client with a buffer of the card mapped (as
# a compositor helper of a Plasma session), and a loopback stream that keeps
# pipewire's PCM open, bound to pipewire as wireplumber is
US=/run/systemd/user
mkdir -p $US/default.target.wants $US/pipewire.service.wants
unit_file $US/va-gpu-client.service "a session's DRM client, a buffer of $card mapped" \
	"$HOLDER dumb $card"
unit_file $US/va-loopback.service "a loopback stream through pipewire" \
	"/usr/bin/pw-loopback -C alsa_input.pci-${audio//[:]/_}.analog-stereo -P alsa_output.pci-${audio//[:]/_}.analog-stereo" \
	BindsTo=pipewire.service "After=pipewire.service wireplumber.service"
ln -sf ../va-gpu-client.service $US/default.target.wants/
ln -sf ../va-loopback.service $US/pipewire.service.wants/
systemctl daemon-reload

# weston_master: the display manager's main process is DRM master of the card
weston_master() {
	local pid
	pid=$(systemctl show -P MainPID display-manager.service)
	[ "${pid:-0}" != 0 ] && awk -v p="$pid" '$2 == p && $4 == "y" { f = 1 } END { exit !f }' "$clients"
}
# holders NAME: diagnose's holders as "UNIT PATH" lines (no pids), in $TMP/NAME.holders
holders() {
	diag "$1" --pci "$gpu" --pci "$audio"
	jq -r '.holders[] | .unit as $u | .holds[] | "\($u) \(.path)"' "$TMP/$1.json" |
		sort -u >"$TMP/$1.holders"
}
has_holders() {
	local name=$1 w
	holders "$name"
	shift
	for w in "$@"; do grep -q "^$w" "$TMP/$name.holders" 2>/dev/null || return 1; done
}
# check_holders NAME WHAT CMD...: check NAME CMD, and on failure the holders
# of diagnose WHAT as comment lines
check_holders() {
	local name=$1 what=$2
	shift 2
	if "$@"; then
		ok "$name"
	else
		not_ok "$name" "failed: $*"
		sed "s/^/#   $what: /" "$TMP/$what.holders"
		[ -s "$TMP/$what.diff" ] && sed "s/^/#   diff: /" "$TMP/$what.diff"
	fi
	return 0
}
same_holders() { holders "$1" && diff "$TMP/$2.holders" "$TMP/$1.holders" >"$TMP/$1.diff"; }
# stable NAME: a screenshot NAME that one taken a second later matches
stable() { screenshot "$1-first" && sleep 1 && screen_like "$1" "$1-first" 0 0; }

systemctl start display-manager.service
check "weston runs as display-manager.service and is DRM master of $card" wait_for 30 weston_master
systemctl start va-lactd.service
check "the lactd stand-in holds $card, not as master" \
	eval 'unit_holds va-lactd.service "$card" && weston_master'
useradd -m -G video,audio vauser
uid=$(id -u vauser)
U=(--user -M vauser@)
systemd-run -q -p PAMName=login -p User=vauser --unit=va-session sleep infinity
check "a logind session of vauser (uid $uid), opened through PAM, with its user manager" \
	wait_for 30 eval 'loginctl show-user vauser -P Sessions 2>/dev/null | grep -q . && active user@$uid.service'
want=("va-weston.service /dev/dri/" "va-lactd.service /dev/dri/" "va-gpu-client.service /dev/dri/"
	"pipewire.service /dev/snd/pcm" "wireplumber.service /dev/snd/control")
check_holders "the holders: weston, the lactd stand-in, the session's DRM client, pipewire (the PCM), wireplumber" before \
	wait_for 60 has_holders before "${want[@]}"
# the session's audio comes up in stages (wireplumber opens the controls after pipewire):
# the holders to come back to are the settled ones, the same twice a second apart
settle() {
	local prev
	holders "$1"
	for _ in $(seq 30); do
		prev=$(cat "$TMP/$1.holders")
		sleep 1
		holders "$1"
		[ "$prev" = "$(cat "$TMP/$1.holders")" ] && return 0
	done
	return 1
}
check_holders "the holders settle (the same twice, a second apart)" before settle before
check "the desktop is on the screen (two screenshots a second apart agree)" wait_for 30 stable before
cp "$TMP/before.holders" "$TMP/scene.holders"

cat >"$TMP/conf" <<EOF
[vfio]
vm = desktop
pcis = pci_${gpu//[:.]/_} pci_${audio//[:.]/_}
passthrough = true
holder-timeout = 10
EOF

# ---- the round trip, on-holders = stop (the default) ----
"$VFIO_AGENT" --config "$TMP/conf" handoff prepare >"$TMP/out" 2>"$TMP/err"
rc=$?
check "prepare exits 0 ($(tail -n 1 "$TMP/err"))" [ $rc -eq 0 ]
check "prepare: display-manager.service (weston) stopped" inactive display-manager.service
check "prepare: the lactd stand-in stopped" inactive va-lactd.service
check "prepare: the user's units stopped (pipewire, the DRM client)" \
	eval 'inactive pipewire.service "${U[@]}" && inactive va-gpu-client.service "${U[@]}"'
check "prepare: pipewire.socket stopped too (a client reconnecting would start pipewire again)" \
	eval 'inactive pipewire.socket "${U[@]}" && grep -qx "holder pipewire.socket user:$uid" $J'
check "prepare: the journal names each with its manager" \
	eval 'grep -qx "unit display-manager.service" $J && grep -qx "holder va-lactd.service" $J &&
		grep -qx "holder pipewire.service user:$uid" $J &&
		grep -qx "holder va-gpu-client.service user:$uid" $J'
check "prepare: $audio unbound from snd_hda_intel, which stays loaded" \
	eval 'grep -qx "unbind $audio snd_hda_intel" $J && loaded snd_hda_intel'
check "prepare: bochs unloaded" eval '! loaded bochs'
check "prepare: $gpu and $audio on vfio-pci" \
	eval '[ "$(driver_of $gpu)" = vfio-pci ] && [ "$(driver_of $audio)" = vfio-pci ]'
screenshot after-prepare
"$PPMDIFF" /xfer/shot/before.ppm /xfer/shot/after-prepare.ppm >"$TMP/diff"
rc=$?
check "prepare: the desktop is gone from the screen ($(cat "$TMP/diff"))" [ $rc -eq 1 ]

"$VFIO_AGENT" --config "$TMP/conf" handoff release >"$TMP/out" 2>"$TMP/err"
rc=$?
check "release exits 0 ($(tail -n 1 "$TMP/err"))" [ $rc -eq 0 ]
check "release: bochs drives $gpu, snd_hda_intel $audio" \
	eval '[ "$(driver_of $gpu)" = bochs-drm ] && [ "$(driver_of $audio)" = snd_hda_intel ]'
check "release: weston is DRM master of $card again" wait_for 10 weston_master
check "release: the lactd stand-in and the user's units active, pipewire.socket listening" \
	wait_for 10 eval 'active va-lactd.service && active pipewire.service "${U[@]}" &&
		active va-gpu-client.service "${U[@]}" && active pipewire.socket "${U[@]}"'
check_holders "release: pipewire holds the PCM again" pcm wait_for 30 has_holders pcm "pipewire.service /dev/snd/pcm"
check_holders "release: diagnose shows the holders it showed before prepare" after \
	wait_for 30 same_holders after before
screen_like after-release before 30
check "release: the desktop is back on the screen ($SCREEN_DIFF)" [ $? -eq 0 ]
check "release: no journal left" [ ! -e "$J" ]

# ---- a unit that refuses to stop: the prepare rolls back ----
systemctl start va-stubborn.service
unit_holds va-stubborn.service "$card"
holders stubborn-before
cat >>"$TMP/conf" <<EOF
stop-units = display-manager.service va-stubborn.service
EOF
"$VFIO_AGENT" -q --config "$TMP/conf" handoff prepare >"$TMP/out" 2>"$TMP/err"
judge "a unit in stop-units refuses to stop: prepare fails, names it, rolls back" 1 \
	"va-stubborn.service.*rolled back" $?
check "rolled back: weston is DRM master again" wait_for 10 weston_master
check_holders "rolled back: the holders are those before" stubborn-after \
	wait_for 30 same_holders stubborn-after stubborn-before
screen_like rolled-back before 30
check "rolled back: the desktop is back on the screen ($SCREEN_DIFF)" [ $? -eq 0 ]
check "rolled back: bochs drives $gpu, no journal" \
	eval '[ "$(driver_of $gpu)" = bochs-drm ] && [ ! -e "$J" ]'
systemctl kill va-stubborn.service
wait_for 10 inactive va-stubborn.service

# ---- the other order ----
# the hazard: the stand-in opening the card before weston becomes master
systemctl stop display-manager.service
systemctl restart va-lactd.service
unit_holds va-lactd.service "$card"
systemctl start display-manager.service
sleep 3
check "the hazard is real: weston started after the stand-in opened $card is not master" \
	eval '! weston_master'
systemctl stop display-manager.service va-lactd.service
systemctl start display-manager.service
wait_for 30 weston_master && systemctl start va-lactd.service
check_holders "weston master again, the stand-in after it" order \
	eval 'wait_for 30 has_holders order "${want[@]}" && weston_master'
sed -i 's/^stop-units = .*/stop-units = display-manager.service va-lactd.service/' "$TMP/conf"
"$VFIO_AGENT" --config "$TMP/conf" handoff prepare >"$TMP/out" 2>"$TMP/err"
rc=$?
check "stop-units = display-manager.service va-lactd.service: prepare exits 0 ($(tail -n 1 "$TMP/err"))" [ $rc -eq 0 ]
check "... the stand-in journaled after the display manager" \
	eval 'grep -n "^unit " $J | tr "\n" " " | grep -q "display-manager.service.*va-lactd.service"'
"$VFIO_AGENT" --config "$TMP/conf" handoff release >"$TMP/out" 2>"$TMP/err"
rc=$?
check "... release exits 0 ($(tail -n 1 "$TMP/err"))" [ $rc -eq 0 ]
check "... weston is DRM master, not the stand-in" wait_for 10 weston_master
check "... the stand-in runs and holds $card" unit_holds va-lactd.service "$card"
check_holders "... the holders are those before" order-after wait_for 30 same_holders order-after scene
screen_like order-released before 30
check "... the desktop is back on the screen ($SCREEN_DIFF)" [ $? -eq 0 ]
finish
