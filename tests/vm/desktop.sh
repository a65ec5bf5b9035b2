#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# vm: --systemd --desktop
#
# The desktop scene (tests/vm/scene.sh): weston on bochs as
# display-manager.service, HDMI audio held by pipewire in a logind session,
# the session's DRM client and a lactd stand-in. handoff prepare and release
# with on-holders = stop, asserted step by step and on the screen (QEMU's
# screendump: before, after prepare, after release); then a unit of
# stop-units that refuses a manual stop, refused before any change; then a
# prepare that a holder outliving its unit's stop rolls back; then a session's user unit that refuses a
# manual stop (as GNOME Shell's), left to its session; then one that cannot
# start again outside a graphical session, not kept; then the other start order (the lactd
# stand-in in stop-units after the display manager: started first in journal
# order, it would take DRM master from weston); then the same round trip
# with Xorg (modesetting) as the display manager, in the same boot.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/scene.sh"

scene_up || finish
check "the desktop is on the screen (two screenshots a second apart agree)" wait_for 30 stable before
cp "$TMP/before.holders" "$TMP/scene.holders"

# round_trip DS [P]: prepare and release with on-holders = stop (the default) and
# display server DS as display-manager.service; screenshots P{before,after-prepare,after-release}
round_trip() {
	local ds=$1 p=${2:-} rc
	"$VFIO_AGENT" -v --config "$TMP/conf" handoff prepare >"$TMP/out" 2>"$TMP/err"
	rc=$?
	check "${p}prepare exits 0 ($(tail -n 1 "$TMP/err"))" [ $rc -eq 0 ]
	# the BPF programs' load (a quarter of a second of this guest's CPU) only for a wait
	check "${p}prepare: no holder left once the units stopped, seen by a walk of /proc; no BPF load ($(grep "holders: " "$TMP/err" | tr "\n" " "))" \
		eval 'grep -q "holders: 0 processes, seen by a walk of /proc" "$TMP/err" &&
			! grep -q "BPF iterators" "$TMP/err"'
	check "${p}prepare: display-manager.service ($ds) stopped" inactive display-manager.service
	check "${p}prepare: the lactd stand-in stopped" inactive va-lactd.service
	check "${p}prepare: the user's units stopped (pipewire, the DRM client)" \
		eval 'inactive pipewire.service "${U[@]}" && inactive va-gpu-client.service "${U[@]}"'
	check "${p}prepare: pipewire.socket stopped too (a client reconnecting would start pipewire again)" \
		eval 'inactive pipewire.socket "${U[@]}" && grep -qx "holder pipewire.socket user:$uid" $J'
	check "${p}prepare: the journal names each with its manager" \
		eval 'grep -qx "unit display-manager.service" $J && grep -qx "holder va-lactd.service" $J &&
			grep -qx "holder pipewire.service user:$uid" $J &&
			grep -qx "holder va-gpu-client.service user:$uid" $J'
	check "${p}prepare: $audio unbound from snd_hda_intel, which stays loaded" \
		eval 'grep -qx "unbind $audio snd_hda_intel" $J && loaded snd_hda_intel'
	check "${p}prepare: bochs unloaded" eval '! loaded bochs'
	check "${p}prepare: $gpu and $audio on vfio-pci" \
		eval '[ "$(driver_of $gpu)" = vfio-pci ] && [ "$(driver_of $audio)" = vfio-pci ]'
	screenshot "${p}after-prepare"
	"$PPMDIFF" "/xfer/shot/${p}before.ppm" "/xfer/shot/${p}after-prepare.ppm" >"$TMP/diff"
	rc=$?
	check "${p}prepare: the desktop is gone from the screen ($(cat "$TMP/diff"))" [ $rc -eq 1 ]

	"$VFIO_AGENT" -v --config "$TMP/conf" handoff release >"$TMP/out" 2>"$TMP/err"
	rc=$?
	check "${p}release exits 0 ($(tail -n 1 "$TMP/err"))" [ $rc -eq 0 ]
	# the wait reads the processes of the two control groups, not all of /proc
	check "${p}release: the display wait read display-manager.service's processes and logind's, and $ds held its card within it ($(grep -E "display wait|holds no DRM" "$TMP/err" | tr "\n" " "))" \
		eval 'grep -q "display wait: the processes of display-manager.service and of systemd-logind.service" "$TMP/err" &&
			! grep -q "holds no DRM card" "$TMP/err"'
	check "${p}release: bochs drives $gpu, snd_hda_intel $audio" \
		eval '[ "$(driver_of $gpu)" = bochs-drm ] && [ "$(driver_of $audio)" = snd_hda_intel ]'
	check "${p}release: $ds is DRM master of $card again" wait_for 10 display_master
	check "${p}release: the lactd stand-in and the user's units active, pipewire.socket listening" \
		wait_for 10 eval 'active va-lactd.service && active pipewire.service "${U[@]}" &&
			active va-gpu-client.service "${U[@]}" && active pipewire.socket "${U[@]}"'
	check_holders "${p}release: pipewire holds the PCM again" "${p}pcm" \
		wait_for 30 has_holders "${p}pcm" "pipewire.service /dev/snd/pcm"
	check_holders "${p}release: diagnose shows the holders it showed before prepare" "${p}after" \
		wait_for 30 same_holders "${p}after" "${p}before"
	screen_like "${p}after-release" "${p}before" 30
	check "${p}release: the desktop is back on the screen ($SCREEN_DIFF)" [ $? -eq 0 ]
	check "${p}release: no journal left" [ ! -e "$J" ]
}
round_trip weston

# ---- a unit in stop-units that refuses a manual stop: refused before any change ----
# its StopUnit would be refused after weston's stop; real systemd's CanStop says so first
systemctl start va-stubborn.service
unit_holds va-stubborn.service "$card"
weston_pid=$(systemctl show -P MainPID display-manager.service)
cat >>"$TMP/conf" <<EOF
stop-units = display-manager.service va-stubborn.service
EOF
"$VFIO_AGENT" -q --config "$TMP/conf" handoff prepare >"$TMP/out" 2>"$TMP/err"
judge "a unit in stop-units refuses a manual stop: prepare refuses before any change, names it and what to do" 1 \
	"stop-units: va-stubborn.service refuses a manual stop \(RefuseManualStop=yes\).*take it out of stop-units$" $?
check "refused: weston never stopped (the same process, $weston_pid) and DRM master; bochs drives $gpu; no journal" \
	eval '[ "${weston_pid:-0}" != 0 ] && [ "$(systemctl show -P MainPID display-manager.service)" = "$weston_pid" ] && display_master &&
		[ "$(driver_of $gpu)" = bochs-drm ] && [ ! -e "$J" ]'
sed -i 's/^stop-units = .*/stop-units = display-manager.service/' "$TMP/conf"
systemctl kill va-stubborn.service
wait_for 10 inactive va-stubborn.service

# ---- a holder that outlives its unit's stop: the prepare rolls back ----
# va-leaky.service's stop ends its main process only (KillMode=process), and the holder a
# subshell of it started keeps the card (the holder dies with its parent, which is not the
# main process). on-holders = stop (its second word: wait) waits holder-timeout for it,
# then fails naming it, and the rollback brings weston and every unit back
unit_file $S/va-leaky.service "its child holds $card and outlives its stop" \
	"/bin/sh -c '($HOLDER open $card; :) & exec sleep infinity'"
echo KillMode=process >>$S/va-leaky.service # [Service]
systemctl daemon-reload
systemctl start va-leaky.service
check_holders "va-leaky.service's child holds $card" leaky-before \
	wait_for 30 has_holders leaky-before "va-leaky.service /dev/dri/"
sed -i 's/^holder-timeout = .*/holder-timeout = 2/' "$TMP/conf"
"$VFIO_AGENT" -q --config "$TMP/conf" handoff prepare >"$TMP/out" 2>"$TMP/err"
judge "a holder outlives its unit's stop: prepare waits, fails naming it, rolls back" 1 \
	"holders: va-leaky.service stopped, but left pid [0-9]+ running \\(its KillMode spares it\\): end it, then try again; still held after [0-9]+ s by .*va-leaky.service.*rolled back, the host is as it was$" $?
check "rolled back: weston is DRM master again" wait_for 10 display_master
check_holders "rolled back: the holders are those before" leaky-after \
	wait_for 30 same_holders leaky-after leaky-before
screen_like rolled-back before 30
check "rolled back: the desktop is back on the screen ($SCREEN_DIFF)" [ $? -eq 0 ]
check "rolled back: bochs drives $gpu, no journal" \
	eval '[ "$(driver_of $gpu)" = bochs-drm ] && [ ! -e "$J" ]'
sed -i 's/^holder-timeout = .*/holder-timeout = 10/' "$TMP/conf"
# if the checks above failed: the desktop back for the phases after this one
[ -e "$J" ] && "$VFIO_AGENT" -q --config "$TMP/conf" handoff release >/dev/null 2>&1
systemctl kill va-leaky.service
wait_for 10 inactive va-leaky.service
rm $S/va-leaky.service
systemctl daemon-reload

# ---- a session's unit that refuses a manual stop (as GNOME Shell's): left to its session ----
# its StopUnit would be refused after the display manager's stop, and roll the run back;
# prepare leaves it to its session's end, unjournaled. Nothing ends this session with the
# display manager, so on-holders = stop,kill ends its process in the holder wait; release
# does not start it (the session's next login would)
unit_file $US/va-shell.service "a session's shell: holds $card, refuses a manual stop" \
	"$HOLDER open $card" RefuseManualStop=yes
echo Slice=session.slice >>$US/va-shell.service # [Service], as GNOME Shell's
systemctl "${U[@]}" daemon-reload
systemctl "${U[@]}" start va-shell.service
shell_holds() {
	local pid=$(systemctl "${U[@]}" show -P MainPID va-shell.service)
	[ "${pid:-0}" != 0 ] && ls -l "/proc/$pid/fd" 2>/dev/null | grep -q "$card"
}
check "va-shell.service of vauser holds $card, and its manager says CanStop=no" \
	eval 'wait_for 10 shell_holds && [ "$(systemctl "${U[@]}" show -P CanStop va-shell.service)" = no ]'
# diagnose's advice for it is the session's end, not a stop that systemd refuses
diag shell --pci "$gpu"
act=$(jq -r '.holders[] | select(.unit == "va-shell.service") | .action' "$TMP/shell.json")
check "diagnose: va-shell.service in session.slice, its advice is to log out ($act)" \
	[ "$act" = "va-shell.service of user $uid is their graphical session's (session.slice) and ends with it: log out of that session (or stop the display manager)" ]
echo "on-holders = stop,kill" >>"$TMP/conf"
"$VFIO_AGENT" -v --config "$TMP/conf" handoff prepare >"$TMP/out" 2>"$TMP/err"
rc=$?
check "a session's unit refuses a manual stop: prepare exits 0, leaves it to its session's end, the holder wait ends it ($(tail -n 1 "$TMP/err"))" \
	eval '[ $rc -eq 0 ] && grep -q "leaving va-shell.service of user $uid to its session.s end" "$TMP/err" &&
		grep -q "sent SIGTERM to" "$TMP/err" && inactive va-shell.service "${U[@]}"'
check "... it is not journaled, the other holders' units are; bochs unloaded" \
	eval '! grep -q va-shell $J && grep -qx "holder va-lactd.service" $J &&
		grep -qx "holder va-gpu-client.service user:$uid" $J && ! loaded bochs'
"$VFIO_AGENT" --config "$TMP/conf" handoff release >"$TMP/out" 2>"$TMP/err"
rc=$?
check "... release exits 0, weston is DRM master again, va-shell.service not started, no journal ($(tail -n 1 "$TMP/err"))" \
	eval '[ $rc -eq 0 ] && wait_for 10 display_master && inactive va-shell.service "${U[@]}" && [ ! -e "$J" ]'
check_holders "... the holders are the scene's" shell-after wait_for 30 same_holders shell-after scene
sed -i '/^on-holders/d' "$TMP/conf"
systemctl "${U[@]}" kill va-shell.service 2>/dev/null # if the checks above failed
wait_for 10 inactive va-shell.service "${U[@]}"
rm $US/va-shell.service
systemctl "${U[@]}" daemon-reload

# ---- a session's unit that cannot start again outside a graphical session ----
# (as plasma-kwin_wayland.service for a lingering user): va-kwin.service, PartOf
# graphical-session.target as a session's units are, starts only while /run/va-kwin-ok
# exists (AssertPathExists fails its start job otherwise).
# vauser's session is not graphical (PAM's, no Display), as real logind says:
# release does not keep the unit, which a next release could not start either
unit_file $US/va-kwin.service "a session's compositor helper: holds $card" \
	"$HOLDER open $card" AssertPathExists=/run/va-kwin-ok PartOf=graphical-session.target
systemctl "${U[@]}" daemon-reload
touch /run/va-kwin-ok
systemctl "${U[@]}" start va-kwin.service
display=$(loginctl show-user vauser -P Display)
check "va-kwin.service of vauser runs, PartOf graphical-session.target; logind knows vauser, with no graphical session (its Display: ${display:-none}$([ -n "$display" ] && echo ", of Type $(loginctl show-session "$display" -P Type)"))" \
	eval 'active va-kwin.service "${U[@]}" && loginctl show-user vauser >/dev/null &&
		systemctl "${U[@]}" show -P PartOf va-kwin.service | grep -qw graphical-session.target &&
		{ [ -z "$display" ] || ! loginctl show-session "$display" -P Type | grep -qxE "x11|wayland|mir"; }'
"$VFIO_AGENT" --config "$TMP/conf" handoff prepare >"$TMP/out" 2>"$TMP/err"
rc=$?
check "... prepare exits 0, va-kwin.service stopped and journaled ($(tail -n 1 "$TMP/err"))" \
	eval '[ $rc -eq 0 ] && inactive va-kwin.service "${U[@]}" && grep -qx "holder va-kwin.service user:$uid" $J'
rm /run/va-kwin-ok
"$VFIO_AGENT" -v --config "$TMP/conf" handoff release >"$TMP/out" 2>"$TMP/err"
rc=$?
check "... release: va-kwin.service does not start, and logind says vauser has no graphical session: exit 0, said so, no journal (exit $rc: $(grep va-kwin "$TMP/err" | grep -v starting | head -n 3 | tr "\n" " "))" \
	eval '[ $rc -eq 0 ] && [ ! -e "$J" ] && inactive va-kwin.service "${U[@]}" &&
		grep -q "not keeping va-kwin.service of user $uid: it did not start (.*), it is a graphical session.s, and the user has none now" "$TMP/err"'
check "... weston is DRM master again" wait_for 10 display_master
systemctl "${U[@]}" stop va-kwin.service 2>/dev/null
rm -f "$J" # if the checks above failed, the next phases start without its line
rm -f $US/va-kwin.service /run/va-kwin-ok
systemctl "${U[@]}" daemon-reload
systemctl "${U[@]}" reset-failed 2>/dev/null
check_holders "... the holders are the scene's" kwin-after wait_for 30 same_holders kwin-after scene

# ---- the other order ----
# the hazard: the stand-in opening the card before weston becomes master
systemctl stop display-manager.service
systemctl restart va-lactd.service
unit_holds va-lactd.service "$card"
systemctl start display-manager.service
sleep 3
check "the hazard is real: weston started after the stand-in opened $card is not master" \
	eval '! display_master'
systemctl stop display-manager.service va-lactd.service
systemctl start display-manager.service
wait_for 30 display_master && systemctl start va-lactd.service
check_holders "weston master again, the stand-in after it" order \
	eval 'wait_for 30 has_holders order "${want[@]}" && display_master'
sed -i 's/^stop-units = .*/stop-units = display-manager.service va-lactd.service/' "$TMP/conf"
"$VFIO_AGENT" --config "$TMP/conf" handoff prepare >"$TMP/out" 2>"$TMP/err"
rc=$?
check "stop-units = display-manager.service va-lactd.service: prepare exits 0 ($(tail -n 1 "$TMP/err"))" [ $rc -eq 0 ]
check "... the stand-in journaled after the display manager" \
	eval 'grep -n "^unit " $J | tr "\n" " " | grep -q "display-manager.service.*va-lactd.service"'
"$VFIO_AGENT" --config "$TMP/conf" handoff release >"$TMP/out" 2>"$TMP/err"
rc=$?
check "... release exits 0 ($(tail -n 1 "$TMP/err"))" [ $rc -eq 0 ]
check "... weston is DRM master, not the stand-in" wait_for 10 display_master
check "... the stand-in runs and holds $card" unit_holds va-lactd.service "$card"
check_holders "... the holders are those before" order-after wait_for 30 same_holders order-after scene
screen_like order-released before 30
check "... the desktop is back on the screen ($SCREEN_DIFF)" [ $? -eq 0 ]

# ---- Xorg as the display manager, in the same boot ----
sed -i '/^stop-units/d' "$TMP/conf"
check "Xorg (modesetting) runs as display-manager.service and is DRM master of $card" \
	display_server xorg
check_holders "xorg: the holders: Xorg, the lactd stand-in, the session's DRM client, pipewire (the PCM), wireplumber" xorg-before \
	eval 'wait_for 60 has_holders xorg-before "va-xorg.service /dev/dri/" "${want[@]:1}" && settle xorg-before'
check "xorg: the desktop is on the screen, not black (two screenshots a second apart agree)" \
	eval 'wait_for 30 stable xorg-before && ! "$PPMDIFF" /xfer/shot/after-prepare.ppm /xfer/shot/xorg-before.ppm >/dev/null'
round_trip Xorg xorg-
finish
