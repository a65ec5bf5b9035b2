#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The holder scan on the running kernel against stand-in devices: copies of
# 1:7 (full) and 1:5 (zero) made by mknod in a temp dir. Every case asserts
# the exact pids, kinds and fds, and that the BPF and /proc backends agree.
set -u
. "$(dirname "$0")/../lib.sh"
need_root holders

DEV=$TMP/gpu     # stands for /dev/dri/card0
MAPDEV=$TMP/gpum # a mappable one
mknod "$DEV" c 1 7 && mknod "$MAPDEV" c 1 5 || { not_ok setup mknod; finish; }

# scan BACKEND: the holds diagnose reports, one "PID KIND FD" per line
scan() {
	"$VFIO_AGENT" diagnose --device "$DEV" --device "$MAPDEV" --json --backend "$1" \
		>"$TMP/scan.$1.json" 2>"$TMP/scan.$1.err"
	local rc=$?
	if [ "$rc" -gt 1 ]; then
		echo "scan-error exit $rc: $(cat "$TMP/scan.$1.err")"
		return
	fi
	holds_of <"$TMP/scan.$1.json"
}

baseline=$(scan bpf)
if [ -n "$baseline" ]; then
	not_ok baseline "something outside the test holds 1:7 or 1:5: $baseline"
	finish
fi
ok "baseline: nothing holds the stand-ins"

# case NAME HOLDER-ARGS...: both backends report exactly what the holder printed
case_() {
	local name=$1; shift
	if ! start_holder "$name" "$@"; then
		not_ok "$name" "the holder did not start"
		return
	fi
	local want bpf proc
	want=$(cut -d' ' -f1-3 "$TMP/$name" | sort)
	bpf=$(scan bpf)
	proc=$(scan proc)
	if [ "$bpf" != "$want" ]; then
		not_ok "$name" "bpf reports [$(echo $bpf)], want [$(echo $want)]"
	elif [ "$proc" != "$bpf" ]; then
		not_ok "$name" "proc reports [$(echo $proc)], bpf [$(echo $bpf)]"
	else
		ok "$name: bpf = proc = [$(echo $want)]"
	fi
	cleanup_holders
}

case_ "plain open fd" open "$DEV"
case_ "one file shared by fork" fork "$DEV"
case_ "fd passed by SCM_RIGHTS, sender gone" scm "$DEV"
case_ "mapping kept after close" mmap "$MAPDEV"
case_ "64 threads, one entry" threads "$DEV" 64

# the namespace's node is another path: the holder is found by number, and
# its path is the one it sees
mkdir "$TMP/mnt"
case_ "own mount namespace" mntns "$DEV" "$TMP/mnt"
start_holder mntns mntns "$DEV" "$TMP/mnt" && {
	read -r pid _ fd path <"$TMP/mntns"
	for b in bpf proc; do
		got=$("$VFIO_AGENT" diagnose --device "$DEV" --json --backend $b |
			jq -r --argjson p "$pid" '.holders[] | select(.pid == $p) | .path')
		check "mount namespace path ($b): $got" [ "$got" = "$path" ]
	done
}
cleanup_holders

# the mapping: its range in the report is the one in the holder's maps
start_holder m mmap "$MAPDEV" && {
	read -r pid _ <"$TMP/m"
	want=$(awk -v d="$(stat -c %i "$MAPDEV")" '$5 == d { print $1 }' /proc/"$pid"/maps)
	for b in bpf proc; do
		got=$("$VFIO_AGENT" diagnose --device "$MAPDEV" --json --backend $b |
			jq -r '.holders[].holds[] | select(.kind == "mmap") | .mapping')
		check "mapping range ($b): $got" [ -n "$want" -a "$got" = "$want" ]
	done
}
cleanup_holders

# Processes that exit while the scan runs: a steady holder must always be
# there, every other pid must be one of the short-lived ones, and the scan
# must not fail.
start_holder steady open "$DEV" && start_holder churn churn "$DEV" || not_ok churn "holders"
steady=$(cut -d' ' -f1 "$TMP/steady")
bad=0 seen=0
for i in $(seq 15); do
	for b in bpf proc; do
		"$VFIO_AGENT" diagnose --device "$DEV" --json --backend $b >"$TMP/c.json" 2>"$TMP/c.err"
		rc=$?
		if [ $rc -ne 1 ] || ! jq -e --argjson s "$steady" \
			'[.holders[] | select(.pid == $s)] | length == 1' "$TMP/c.json" >/dev/null ||
			jq -e --argjson s "$steady" \
			'[.holders[] | select(.pid != $s and .comm != "va-churn")] | length > 0' \
			"$TMP/c.json" >/dev/null; then
			bad=$((bad + 1))
			echo "scan $i ($b): exit $rc $(cat "$TMP/c.err") $(holds_of <"$TMP/c.json" | tr '\n' ' ')"
		fi
		jq -e '[.holders[] | select(.comm == "va-churn")] | length > 0' "$TMP/c.json" \
			>/dev/null && seen=$((seen + 1))
	done
done
check "30 scans while holders exit: none failed or misreported ($seen caught one)" [ $bad -eq 0 ]
cleanup_holders

finish
