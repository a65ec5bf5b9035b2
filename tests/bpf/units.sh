#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Unit attribution: holders placed by the test in the cgroups systemd would
# give lactd.service and a user's x.service are reported with those units
# and the action that frees the GPU. The cgroups are the test's own and go
# away with it.
set -u
. "$(dirname "$0")/../lib.sh"
need_root units

DEV=$TMP/gpu
mknod "$DEV" c 1 7 || { not_ok setup mknod; finish; }

cgroup_hierarchies || { not_ok setup "no cgroup hierarchy found under /sys/fs/cgroup"; finish; }
trap 'cleanup_cgroups; cleanup' EXIT

start_holder lactd open "$DEV" && start_holder app open "$DEV" && start_holder shell open "$DEV" ||
	{ not_ok setup "holders did not start"; finish; }
read -r lactd _ <"$TMP/lactd"
read -r app _ <"$TMP/app"
read -r shell _ <"$TMP/shell"
um=user.slice/user-1000.slice/user@1000.service
cgroup_place "$lactd" system.slice/lactd.service &&
	cgroup_place "$app" $um/app.slice/x.service &&
	cgroup_place "$shell" $um/session.slice/org.gnome.Shell@wayland.service ||
	{ not_ok setup "cannot create cgroups in ${HIER[*]}"; finish; }

for b in bpf proc; do
	"$VFIO_AGENT" diagnose --device "$DEV" --json --backend $b >"$TMP/u.json"
	got=$(jq -r '.holders[] | "\(.pid) \(.unit) \(.unit_type)"' "$TMP/u.json" | sort)
	want=$(printf '%s\n' "$lactd lactd.service system" "$app x.service user" \
		"$shell org.gnome.Shell@wayland.service user" | sort)
	check "units ($b): $(echo $got)" [ "$got" = "$want" ]
	act=$(jq -r --argjson p "$lactd" '.holders[] | select(.pid == $p) | .action' "$TMP/u.json")
	check "action for lactd ($b): $act" [ "$act" = "stop lactd.service (systemctl stop lactd.service)" ]
	act=$(jq -r --argjson p "$app" '.holders[] | select(.pid == $p) | .action' "$TMP/u.json")
	check "action for the user unit ($b): $act" \
		[ "$act" = "stop x.service of user 1000 (systemctl --user -M 1000@ stop x.service)" ]
	# GNOME Shell's unit refuses systemctl's stop: its session's end is what frees the GPU
	act=$(jq -r --argjson p "$shell" '.holders[] | select(.pid == $p) | .action' "$TMP/u.json")
	check "action for the session's unit ($b): $act" \
		[ "$act" = "org.gnome.Shell@wayland.service of user 1000 is their graphical session's (session.slice) and ends with it: log out of that session (or stop the display manager)" ]
done

# the text report names them too
"$VFIO_AGENT" diagnose --device "$DEV" >"$TMP/u.txt"
rc=$?
check "text report: exit 1, names lactd.service and x.service" \
	eval '[ $rc -eq 1 ] && grep -q "lactd.service" "$TMP/u.txt" && grep -q "x.service" "$TMP/u.txt"'

finish
