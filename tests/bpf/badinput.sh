#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Bad input to diagnose: one line on stderr, the documented exit code,
# nothing on stdout. Without BTF or without CAP_BPF the scan falls back to
# /proc, says so in one line, and still finds the holder.
set -u
. "$(dirname "$0")/../lib.sh"
need_root badinput

DEV=$TMP/gpu
mknod "$DEV" c 1 7 || { not_ok setup mknod; finish; }
mkdir "$TMP/empty"

# case NAME WANT_RC STDERR_PATTERN ARGS...
case_() {
	local name=$1 want=$2 pat=$3; shift 3
	"$VFIO_AGENT" "$@" >"$TMP/out" 2>"$TMP/err"
	judge "$name" "$want" "$pat" $?
}

case_ "unknown BDF" 2 "no PCI device 0000:7f:1f.7" diagnose --pci 0000:7f:1f.7
case_ "malformed BDF" 2 "--pci 'zz:00' is not a PCI address" diagnose --pci zz:00
case_ "malformed --device" 2 "--device '1:x': expected a device node path or MAJ:MIN" \
	diagnose --device 1:x
case_ "--device that does not exist" 2 "--device /nonexistent/card0: No such file" \
	diagnose --device /nonexistent/card0
case_ "--device that is not a char device" 2 "not a character device" diagnose --device "$TMP"
case_ "unknown module" 2 "no module 'no_such_gpu': not loaded and not installed" \
	diagnose --driver no_such_gpu
case_ "empty --root" 2 "no GPU found: $TMP/empty/sys/bus/pci/devices does not exist" \
	--root "$TMP/empty" diagnose
case_ "--root ''" 2 "--root needs a directory" --root '' diagnose
case_ "unknown backend" 2 "--backend 'gpu': expected bpf or proc" diagnose --device 1:7 --backend gpu
case_ "stray argument" 2 "diagnose: unexpected argument 'now'" diagnose now
case_ "--vm without a config" 2 "cannot read /nonexistent.conf" --config /nonexistent.conf diagnose --vm win11
printf '[vfio]\nvm = win11\n' >"$TMP/c.conf"
case_ "--vm not in the config" 2 "diagnose: VM 'linux' is not configured in .*c.conf \(it configures 'win11'\)" \
	--config "$TMP/c.conf" diagnose --vm linux

# Fallbacks: the holder is found all the same, by /proc
base=$("$VFIO_AGENT" diagnose --device "$DEV" --json | jq -r '[.holders[].pid] | join(",")')
[ -z "$base" ] || { not_ok baseline "something outside the test holds 1:7: pids $base"; finish; }
start_holder h open "$DEV" || { not_ok setup holder; finish; }
pid=$(cut -d' ' -f1 "$TMP/h")
fallback() {
	local name=$1 pat=$2; shift 2
	"$@" "$VFIO_AGENT" diagnose --device "$DEV" --json >"$TMP/out" 2>"$TMP/err"
	local rc=$? got
	got=$(jq -r '"\(.backend) \([.holders[].pid] | join(","))"' "$TMP/out" 2>/dev/null)
	if [ $rc -ne 1 ] || [ "$got" != "proc $pid" ]; then
		not_ok "$name" "exit $rc, got '$got', want 'proc $pid'; $(cat "$TMP/err")"
	elif [ "$(wc -l <"$TMP/err")" -ne 1 ] || ! grep -Eq -- "$pat" "$TMP/err"; then
		not_ok "$name" "stderr '$(cat "$TMP/err")' does not match '$pat'"
	else
		ok "$name: /proc found pid $pid ($(cat "$TMP/err"))"
	fi
	"$@" "$VFIO_AGENT" diagnose --device "$DEV" --backend bpf >"$TMP/out" 2>"$TMP/err"
	rc=$?
	check "$name, --backend bpf: exit 1, one line: $(cat "$TMP/err")" \
		eval '[ $rc -eq 1 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -Eq -- "$pat" "$TMP/err"'
}
# no BTF: a private mount namespace with /sys/kernel/btf hidden
nobtf() { unshare -m sh -c 'mount -t tmpfs none /sys/kernel/btf && exec "$@"' sh "$@"; }
fallback "no BTF" "the kernel has no BTF" nobtf
# no CAP_BPF (nor CAP_SYS_ADMIN, which would grant it)
nocap() { capsh --drop=cap_bpf,cap_sys_admin,cap_perfmon -- -c 'exec "$@"' sh "$@"; }
fallback "no CAP_BPF" "Operation not permitted \(needs CAP_BPF" nocap
cleanup_holders

finish
