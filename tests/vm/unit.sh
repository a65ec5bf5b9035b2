#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# vm: --systemd
#
# Under the host's systemd as PID 1: a service holds vgem's render node
# /dev/dri/renderD128. diagnose names that unit as the holder, with either
# backend.
set -u
. "$(dirname "$0")/lib.sh"

check "systemd is PID 1" [ "$(cat /proc/1/comm)" = systemd ]
modprobe vgem || { not_ok "modprobe vgem" "failed"; finish; }
node=/dev/dri/renderD128
check "vgem's render node is $node" [ "$(basename "$(readlink -f /sys/class/drm/renderD128/device)")" = vgem ]
cat >/run/systemd/system/va-render.service <<EOU
[Unit]
Description=vfio-agent VM tier: holds $node
[Service]
ExecStart=$HOLDER open $node
EOU
systemctl daemon-reload
systemctl start va-render.service
unit_holds va-render.service "$node"
pid=$(systemctl show -P MainPID va-render.service)
check "va-render.service runs, pid $pid holds $node" eval "ls -l /proc/$pid/fd | grep -q $node"

for backend in bpf proc; do
	diag "unit-$backend" --device "$node" --backend "$backend"
	got=$(jq -r '.holders[] | "\(.pid) \(.unit) \(.unit_type)"' "$TMP/unit-$backend.json")
	check "$backend: the holder is pid $pid of va-render.service, a system unit (got: $got)" \
		[ "$got" = "$pid va-render.service system" ]
done
"$VFIO_AGENT" diagnose --device "$node" >"$TMP/text" 2>&1
check "the text report names the unit" grep -q "va-render.service" "$TMP/text"
same_backends render --device "$node"
systemctl stop va-render.service
finish
