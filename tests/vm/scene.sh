# SPDX-License-Identifier: GPL-2.0-or-later
# The desktop scene, shared by tests/vm/desktop.sh and tests/bench/handoff.sh
# (both "# vm: --systemd --desktop"; source it after tests/vm/lib.sh): the GPU
# and its HDMI audio as two functions of one slot (bochs-display at 00:05.0,
# intel-hda at 00:05.1, one IOMMU group; the board's own HDA at 00:1b.0 keeps
# snd_hda_intel in use), udev, a display server on bochs as
# display-manager.service (weston, or Xorg with the modesetting driver), a
# logind session of a user opened through PAM with pipewire, wireplumber and
# a loopback stream (so pipewire holds the PCM) and a DRM client holding a
# mapped buffer of the card, and a lactd stand-in system unit holding the card.
#
#   scene_up              all of it, with weston; ok/not ok lines; 1 when it did not come up
#   display_server weston|xorg
#                         display-manager.service is that one now (started, DRM master)
#   display_master        the display manager's main process is DRM master of the card
#   settle NAME           diagnose's holders, the same twice a second apart ($TMP/NAME.holders)

gpu=0000:00:05.0 audio=0000:00:05.1
J=/run/vfio-agent/desktop.journal
D=/run/va-desktop
S=/run/systemd/system US=/run/systemd/user
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

# display_master: the display manager's main process is DRM master of the card
display_master() {
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

# the display servers: weston (DRM backend, pixman), Xorg (modesetting, no
# acceleration: bochs has no 3D), each on tty3 with something drawn
display_units() {
	python3 tests/vm/ppm.py pattern "$D/background.png" 320 200
	cat >"$D/weston.ini" <<-EOF
	[core]
	idle-time=0
	[shell]
	background-image=$D/background.png
	background-type=scale-crop
	panel-position=none
	EOF
	cat >$S/va-weston.service <<-EOF
	[Unit]
	Description=vfio-agent VM tier: weston on the GPU, the display manager
	[Service]
	Environment=XDG_RUNTIME_DIR=/run/va-weston
	RuntimeDirectory=va-weston
	RuntimeDirectoryMode=0700
	ExecStart=/usr/bin/weston --backend=drm-backend.so --use-pixman --continue-without-input --tty=3 --config=$D/weston.ini --log=$D/weston.log
	EOF
	cat >"$D/xorg.conf" <<-EOF
	Section "ServerFlags"
	    Option "AutoAddDevices" "false"
	    Option "AutoAddGPU" "false"
	    Option "BlankTime" "0"
	    Option "StandbyTime" "0"
	    Option "SuspendTime" "0"
	    Option "OffTime" "0"
	EndSection
	Section "Device"
	    Identifier "bochs"
	    Driver "modesetting"
	    BusID "PCI:0:5:0"
	    Option "AccelMethod" "none"
	EndSection
	EOF
	# the desktop: X's own weave (-retro), drawn as it starts. What X draws into
	# its front buffer after the first modeset never reaches bochs's VRAM in
	# this guest (xsetroot -solid, xset dpms, xrandr leave the screendump as it
	# was), so the picture is the one of its start, the same every time
	cat >$S/va-xorg.service <<-EOF
	[Unit]
	Description=vfio-agent VM tier: Xorg on the GPU (modesetting), the display manager
	[Service]
	ExecStart=/usr/lib/xorg/Xorg :0 vt3 -retro -nocursor -nolisten tcp -s 0 -dpms -config $D/xorg.conf -logfile $D/Xorg.log
	EOF
}

# display_server weston|xorg: display-manager.service is it, started and DRM master
display_server() {
	systemctl stop display-manager.service 2>/dev/null
	ln -sfn "va-$1.service" $S/display-manager.service
	systemctl daemon-reload
	systemctl start display-manager.service && wait_for 30 display_master
}

scene_up() {
	check "systemd is PID 1" [ "$(cat /proc/1/comm)" = systemd ]
	check "$gpu is the GPU (0x0380), $audio its HDMI audio (0x0403), one IOMMU group" \
		eval '[ "$(cat /sys/bus/pci/devices/$gpu/class)" = 0x038000 ] &&
			[ "$(cat /sys/bus/pci/devices/$audio/class)" = 0x040300 ] &&
			[ "$(group_of $gpu)" = "$(group_of $audio)" ]'
	mkdir -p "$D"
	systemctl start systemd-udevd.service || not_ok "udev" "systemd-udevd did not start"
	modprobe bochs && modprobe snd_hda_intel || { not_ok "modprobe bochs snd_hda_intel" "failed"; return 1; }
	udevadm settle
	card=$(card_of "$gpu")
	pcm=$(ls -d /sys/bus/pci/devices/$audio/sound/card*/pcmC*p 2>/dev/null | head -n 1)
	pcm=/dev/snd/$(basename "$pcm")
	check "bochs drives $gpu ($card), snd_hda_intel $audio ($pcm); udev gave them to video and audio" \
		eval '[ -c "$card" ] && [ -c "$pcm" ] && [ "$(stat -c %G "$card")" = video ] &&
			[ "$(stat -c %G "$pcm")" = audio ]'
	mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug
	clients=/sys/kernel/debug/dri/${card#/dev/dri/card}/clients

	display_units
	unit_file $S/va-lactd.service "a lactd stand-in, holds $card" "$HOLDER open $card"
	unit_file $S/va-stubborn.service "holds $card, refuses a manual stop" "$HOLDER open $card" \
		RefuseManualStop=yes
	# the session's own units: a DRM client with a buffer of the card mapped (as
	# a compositor helper of a Plasma session), and a loopback stream that keeps
	# pipewire's PCM open, bound to pipewire as wireplumber is
	mkdir -p $US/default.target.wants $US/pipewire.service.wants
	unit_file $US/va-gpu-client.service "a session's DRM client, a buffer of $card mapped" \
		"$HOLDER dumb $card"
	unit_file $US/va-loopback.service "a loopback stream through pipewire" \
		"/usr/bin/pw-loopback -C alsa_input.pci-${audio//[:]/_}.analog-stereo -P alsa_output.pci-${audio//[:]/_}.analog-stereo" \
		BindsTo=pipewire.service "After=pipewire.service wireplumber.service"
	ln -sf ../va-gpu-client.service $US/default.target.wants/
	ln -sf ../va-loopback.service $US/pipewire.service.wants/

	check "weston runs as display-manager.service and is DRM master of $card" display_server weston
	systemctl start va-lactd.service
	check "the lactd stand-in holds $card, not as master" \
		eval 'unit_holds va-lactd.service "$card" && display_master'
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
	check_holders "the holders settle (the same twice, a second apart)" before settle before
	cat >"$TMP/conf" <<-EOF
	[vfio]
	vm = desktop
	pcis = pci_${gpu//[:.]/_} pci_${audio//[:.]/_}
	passthrough = true
	holder-timeout = 10
	EOF
}
