#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# fbcon on bochs's framebuffer (DRM's fbdev emulation). diagnose names the
# vtconsole as a kernel-side holder and accounts for the reference it takes:
# on drm_kms_helper, which unbinding the console gives back. bochs itself
# is not pinned by it (the kernel unloads bochs with fbcon bound).
set -u
. "$(dirname "$0")/lib.sh"

modprobe bochs || { not_ok "modprobe bochs" "failed"; finish; }
bdf=$(bochs_bdf)
vt=
for v in /sys/class/vtconsole/vtcon*; do
	grep -q "frame buffer" "$v/name" && [ "$(cat "$v/bind")" = 1 ] && vt=$(basename "$v")
done
check "fbcon is bound as ${vt:-nothing}" [ -n "$vt" ]

diag bound --pci "$bdf"
J=$TMP/bound.json
detail=$(jq -r --arg vt "$vt" '.kernel_holders[] | select(.name == $vt) | .detail' "$J")
check "bound: $vt is a kernel holder ($detail)" eval '[[ "$detail" == *fb0*drm_kms_helper* ]]'
helper_bound=$(refcnt drm_kms_helper)
got=$(jq -r '.modules[] | select(.name == "drm_kms_helper") |
	"\(.refcnt) \(.holders | length) \(.kernel) \(.unexplained)"' "$J")
deps=$(ls /sys/module/drm_kms_helper/holders | wc -l)
check "bound: drm_kms_helper refcnt $helper_bound = $deps dependents + 2 kernel (fbdev emulation, fbcon), 0 unexplained (got: $got)" \
	[ "$got" = "$helper_bound $deps 2 0" ]
check "bound: bochs itself: refcnt 0, fully explained" \
	[ "$(jq -r '.modules[] | select(.name == "bochs") | "\(.refcnt) \(.unexplained)"' "$J")" = "0 0" ]
check "bound: not a blocker: ready, exit 0" [ "$(cat "$TMP/bound.rc")" = 0 ]

# an open of /dev/fb0 takes bochs (DRM's fbdev emulation) and drm_kms_helper
# (fbmem's): one file shared by two processes counts once on each
start_holder fb fork /dev/fb0 || not_ok "holder" "$(cat "$TMP/fb.err")"
for b in bpf proc; do
	diag "fb-$b" --pci "$bdf" --backend "$b"
	got=$(jq -r '[.modules[] | select(.name == "bochs" or .name == "drm_kms_helper") |
		"\(.name) \(.refcnt) files=\(.files) unexplained=\(.unexplained)"] | join(", ")' "$TMP/fb-$b.json")
	check "/dev/fb0 held by two processes ($b): $got" \
		[ "$got" = "bochs 1 files=1 unexplained=0, drm_kms_helper $((helper_bound + 1)) files=1 unexplained=0" ]
done
cleanup_holders

echo 0 >"/sys/class/vtconsole/$vt/bind"
diag unbound --pci "$bdf"
J=$TMP/unbound.json
check "unbound: the kernel gave back one reference on drm_kms_helper" \
	[ "$(refcnt drm_kms_helper)" = $((helper_bound - 1)) ]
got=$(jq -r '.modules[] | select(.name == "drm_kms_helper") | "\(.refcnt) \(.kernel) \(.unexplained)"' "$J")
check "unbound: diagnose follows: $((helper_bound - 1)) = deps + 1 kernel (the emulation), 0 unexplained (got: $got)" \
	[ "$got" = "$((helper_bound - 1)) 1 0" ]
check "unbound: $vt is no longer a kernel holder" \
	[ -z "$(jq -r --arg vt "$vt" '.kernel_holders[] | select(.name == $vt) | .name' "$J")" ]
echo 1 >"/sys/class/vtconsole/$vt/bind"
rmmod bochs
check "bochs unloads with fbcon bound again" [ $? -eq 0 ] && ! loaded bochs
finish
