#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# What "the GPU" is, resolved in a fixture tree (tests/hosts/amdgpu: an
# amdgpu card with DRM, fb, i2c and kfd nodes, its HDMI audio, a USB
# controller in the same IOMMU group, a bound framebuffer console and
# efifb) with --root; and the checks and kernel-side holders found there.
set -u
. "$(dirname "$0")/../lib.sh"

FIX=$(cd "$(dirname "$0")/../hosts/amdgpu" && pwd)
run() { "$VFIO_AGENT" --root "$FIX" "$@"; }

run diagnose --json >"$TMP/d.json" 2>"$TMP/d.err"
rc=$?
devs=$(jq -r '.targets.devices[] | "\(.device) \(.path)"' "$TMP/d.json" | sort | tr '\n' ' ')
check "default: every display-class device, only 0000:03:00.0" \
	[ "$(jq -r '[.targets.pci[].bdf] | join(" ")' "$TMP/d.json")" = 0000:03:00.0 ]
check "its nodes: card, render, fb, i2c, kfd ($devs)" [ "$devs" = \
	"226:0 /dev/dri/card0 226:128 /dev/dri/renderD128 240:0 /dev/kfd 29:0 /dev/fb0 89:5 /dev/i2c-5 " ]
check "its module: amdgpu" [ "$(jq -r '.targets.modules | join(" ")' "$TMP/d.json")" = amdgpu ]
check "kernel holders: vtcon1 (fbcon, bound), efifb, the i2c client" [ "$(jq -r \
	'[.kernel_holders[].name] | sort | join(" ")' "$TMP/d.json")" = "5-0050 efi-framebuffer.0 vtcon1" ]
check "--root means the /proc backend, and says why" \
	eval '[ "$(jq -r .backend "$TMP/d.json")" = proc ] && jq -r .backend_note "$TMP/d.json" | grep -q -- --root'
grp=$(jq -r '.checks[] | select(.name == "iommu-group 0000:03:00.0") | "\(.ok) \(.detail)"' "$TMP/d.json")
check "the IOMMU group check names the devices missing from pcis: $grp" \
	eval '[[ "$grp" == "false its IOMMU group also holds 0000:03:00.1;"* ]]'
check "a blocking check failed: not ready, exit 1" \
	eval '[ $rc -eq 1 ] && [ "$(jq -r .ready "$TMP/d.json")" = false ]'

# 0000:03:00.2 (USB, no driver) needs no vfio-pci: the group is whole without it
# the config's pcis name the whole group: ready
cat >"$TMP/c.conf" <<CONF
[vfio]
vm = win11
pcis = pci_0000_03_00_0 pci_0000_03_00_1 pci_0000_03_00_2
CONF
run --config "$TMP/c.conf" diagnose --json >"$TMP/d.json"
rc=$?
check "config pcis: the whole IOMMU group, no blocking check failed, ready, exit 0 (exit $rc)" \
	eval '[ $rc -eq 0 ] && [ "$(jq -r .ready "$TMP/d.json")" = true ] &&
	      [ "$(jq "[.checks[] | select(.blocking and (.ok | not))] | length" "$TMP/d.json")" = 0 ]'
check "config pcis: the audio function's nodes and module are targets too" \
	eval 'jq -e ".targets.devices[] | select(.device == \"116:9\")" "$TMP/d.json" >/dev/null &&
	      jq -e ".targets.modules | index(\"snd_hda_intel\")" "$TMP/d.json" >/dev/null'

got=$(jq -r '[.targets.devices[] | select(.device == "116:9" or .device == "226:0") |
	"\(.device)=\(.pci)"] | sort | join(" ")' "$TMP/d.json")
check "each node names the PCI function it belongs to ($got)" \
	[ "$got" = "116:9=0000:03:00.1 226:0=0000:03:00.0" ]

run diagnose --driver amdgpu --json >"$TMP/d.json"
check "--driver amdgpu: the devices it drives" \
	[ "$(jq -r '[.targets.pci[].bdf] | join(" ")' "$TMP/d.json")" = 0000:03:00.0 ]

run diagnose >"$TMP/d.txt"
check "text report: the verdict first" eval 'head -n1 "$TMP/d.txt" | grep -q "^NOT READY: 1 blocking check failed$"'
check "text report: no colour when not a tty" eval '! grep -q $'"'"'\033'"'"' "$TMP/d.txt"'

# nvidia: the whole majors of nvidia (195) and of nvidia-* in /proc/devices
NV=$(cd "$(dirname "$0")/../hosts/nvidia" && pwd)
"$VFIO_AGENT" --root "$NV" diagnose --json >"$TMP/n.json"
got=$(jq -r '[.targets.devices[].device] | sort | join(" ")' "$TMP/n.json")
check "nvidia: card0 and the majors 195, nvidia-caps*, nvidia-uvm ($got)" \
	[ "$got" = "195:* 226:0 234:* 235:* 510:*" ]

# A whole-major target matches every minor inside the kernel: a copy of the
# fixture whose /proc/devices puts nvidia-uvm at major 1, and a holder of a
# stand-in 1:7, found by the BPF backend on the running kernel.
if [ "$(id -u)" -eq 0 ]; then
	cp -a "$NV" "$TMP/nv"
	sed -i 's/^510 nvidia-uvm$/  1 nvidia-uvm/' "$TMP/nv/proc/devices"
	mknod "$TMP/gpu" c 1 7
	if start_holder nvh open "$TMP/gpu"; then
		pid=$(cut -d' ' -f1 "$TMP/nvh")
		got=$("$VFIO_AGENT" --root "$TMP/nv" diagnose --json --backend bpf |
			jq -r '[.holders[] | select(.pid == '"$pid"') | .holds[].device] | unique | join(" ")')
		# its stdin is /dev/null, 1:3: every minor of the major counts
		check "a whole-major target (1:*) matches every minor in the kernel ($got)" \
			eval '[[ " $got " == *" 1:7 "* && " $got " == *" 1:3 "* ]]'
		bdf=$(ls "$NV/sys/bus/pci/devices" | head -n1)
		got=$("$VFIO_AGENT" --root "$TMP/nv" diagnose --json --backend bpf |
			jq -r '[.holders[] | select(.pid == '"$pid"') | .pci, .holds[].pci] | unique | join(" ")')
		check "the holder and each hold name the PCI function ($got)" [ "$got" = "$bdf" ]
		"$VFIO_AGENT" --root "$TMP/nv" diagnose --backend bpf >"$TMP/nv.txt"
		check "the text holder line names it: (PCI $bdf)" \
			grep -q "^  $pid .*(PCI $bdf)\$" "$TMP/nv.txt"
	else
		not_ok "whole major" "the holder did not start"
	fi
	cleanup_holders
else
	not_ok "whole major" "needs root (mknod, BPF)"
fi

finish
