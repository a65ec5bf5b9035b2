#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# vfio-agent init on Debian's real kernel, with bochs as the GPU: the
# config it prints names that device in pcis, and passes the agent's own
# check as written.
set -u
. "$(dirname "$0")/lib.sh"

modprobe bochs || { not_ok "modprobe bochs" "failed"; finish; }
bdf=$(bochs_bdf)
check "bochs drives $bdf" [ -n "$bdf" ]
"$VFIO_AGENT" init >"$TMP/init.conf" 2>"$TMP/init.err"
rc=$?
check "init exits 0 ($(head -c 200 "$TMP/init.err"))" [ $rc -eq 0 ]
got=$(grep -E '^pcis *=' "$TMP/init.conf")
check "init: pcis names the guest's GPU, $bdf ($got)" \
	eval '[[ " ${got#*=} " == *" $bdf "* ]]'
check "init: the device's line says what it is (vendor and device, or their IDs)" \
	grep -q "$bdf" <(grep '^#' "$TMP/init.conf")
"$VFIO_AGENT" --config "$TMP/init.conf" check >"$TMP/check.out" 2>"$TMP/check.err"
rc=$?
check "init's output passes vfio-agent check as it is (exit $rc: $(cat "$TMP/check.err"))" [ $rc -eq 0 ]
diag initcfg --pci "$bdf"
check "diagnose on the same device names the same driver module" \
	eval 'jq -e ".targets.modules | index(\"bochs\")" "$TMP/initcfg.json" >/dev/null'
finish
