#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The preflight on Debian's real kernel: the virtio device that carries the
# guest's own root filesystem (9p), named in pcis, is refused by prepare and
# by its dry run, with one line, exit 1, the device left on its driver and
# no journal. (Before the preflight, the dry run planned "unbind ... from
# virtio-pci" and the real prepare hung the guest.)
set -u
. "$(dirname "$0")/lib.sh"

driver_of() { basename "$(readlink -f "/sys/bus/pci/devices/$1/driver")" 2>/dev/null; }
J=/run/vfio-agent/vmtest.journal
# the virtio device behind the root's 9p transport: the one whose virtioN is mount_tag's
root_bdf=
for d in /sys/bus/pci/devices/*; do
	[ "$(cat "$d/vendor")" = 0x1af4 ] || continue
	for v in "$d"/virtio*; do
		[ -e "$v/mount_tag" ] && grep -qa hostroot "$v/mount_tag" && root_bdf=$(basename "$d")
	done
done
check "the root filesystem's 9p device is found (${root_bdf:-none})" [ -n "$root_bdf" ]
[ -n "$root_bdf" ] || finish
cat >"$TMP/conf" <<EOC
[vfio]
vm = vmtest
pcis = $root_bdf
passthrough = true
on-holders = fail
EOC
drv=$(driver_of "$root_bdf")
for mode in --dry-run ""; do
	"$VFIO_AGENT" --config "$TMP/conf" handoff prepare $mode >"$TMP/out" 2>"$TMP/err"
	judge "pcis = the root's virtio device, prepare ${mode:-(real)}: refused" 1 \
		"$root_bdf is not a display device \(class 0x[0-9a-f]+, driver virtio-pci\)" $?
	check "prepare ${mode:-(real)}: the device is still on $drv, no journal" \
		eval '[ "$(driver_of "$root_bdf")" = "$drv" ] && [ ! -e "$J" ]'
done
finish
