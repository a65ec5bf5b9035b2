# SPDX-License-Identifier: GPL-2.0-or-later
# Shared by the VM tier's scripts, which run inside the guest that
# tests/vm/run boots (Debian's kernel, the host's root under an overlay).
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

if [ ! -e /xfer/env ]; then
	echo "not ok $(basename "$0"): runs inside the VM tier's guest: tests/vm/run $0"
	exit 1
fi

loaded() { [ -e "/sys/module/$1" ]; }
refcnt() { cat "/sys/module/$1/refcnt" 2>/dev/null || echo gone; }
# the PCI address of the bochs-display device
bochs_bdf() {
	local d
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/vendor"):$(cat "$d/device")" = 0x1234:0x1111 ] && basename "$d" && return
	done
}
# the /dev/dri/cardN of the DRM device whose parent is named $1 (vgem) or is PCI $1
card_of() {
	local c
	for c in /sys/class/drm/card[0-9]*; do
		[ "$(basename "$(readlink -f "$c/device")")" = "$1" ] && echo "/dev/dri/$(basename "$c")" && return
	done
}

# unit_holds UNIT PATH: within 5 s, the unit's main process has PATH open
unit_holds() {
	local pid
	for _ in $(seq 50); do
		pid=$(systemctl show -P MainPID "$1")
		[ "${pid:-0}" != 0 ] && ls -l "/proc/$pid/fd" 2>/dev/null | grep -q "$2" && return 0
		sleep 0.1
	done
	return 1
}

# diag NAME ARGS...: diagnose --json into $TMP/NAME.json, its exit status in $TMP/NAME.rc
diag() {
	local name=$1; shift
	"$VFIO_AGENT" diagnose --json "$@" >"$TMP/$name.json" 2>"$TMP/$name.err"
	echo $? >"$TMP/$name.rc"
}
# one line per hold, and one per module's accounting, from a diagnose report
report_lines() {
	jq -r '(.holders[] | .pid as $p | .holds[] |
			"hold \($p) \(.kind) \(.fd // "-") \(.path) module=\(.module) exporter=\(.exporter)"),
		(.modules[] | "module \(.name) refcnt=\(.refcnt) files=\(.files) dmabufs=\(.dmabufs) kernel=\(.kernel) unexplained=\(.unexplained)")' "$1" | sort
}
# same_backends NAME ARGS...: the BPF and /proc backends agree on every hold and every count
same_backends() {
	local name=$1; shift
	diag "$name-bpf" --backend bpf "$@"
	diag "$name-proc" --backend proc "$@"
	if ! jq -e '.backend == "bpf"' "$TMP/$name-bpf.json" >/dev/null; then
		not_ok "$name: bpf and /proc agree" "the BPF backend did not run: $(cat "$TMP/$name-bpf.err")"
	elif diff <(report_lines "$TMP/$name-bpf.json") <(report_lines "$TMP/$name-proc.json") >"$TMP/$name.diff"; then
		ok "$name: bpf and /proc report the same holds and counts ($(report_lines "$TMP/$name-bpf.json" | grep -c '^hold') holds)"
	else
		not_ok "$name: bpf and /proc agree" "$(cat "$TMP/$name.diff")"
	fi
}

# ---- the screen, in a --desktop guest (tests/vm/run answers on the host) ----
PPMDIFF="${PPMDIFF:-$UNIT_DIR/ppmdiff}"
# screenshot NAME: /xfer/shot/NAME.ppm, the screen as the guest shows it now
screenshot() {
	rm -f "/xfer/shot/$1.done"
	touch "/xfer/shot/$1.req"
	for _ in $(seq 150); do
		[ -e "/xfer/shot/$1.done" ] && [ -s "/xfer/shot/$1.ppm" ] && return 0
		sleep 0.1
	done
	return 1
}
# screen_like NAME REF SECONDS [TOLERANCE]: within SECONDS, a screenshot NAME
# matches REF; $SCREEN_DIFF says by how much (ppmdiff's line), the last one
# taken when none matched
screen_like() {
	local end=$((SECONDS + $3))
	SCREEN_DIFF="no screenshot"
	while :; do
		if screenshot "$1"; then
			SCREEN_DIFF=$("$PPMDIFF" "/xfer/shot/$2.ppm" "/xfer/shot/$1.ppm" "${4:-0.001}") &&
				return 0
		fi
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.5
	done
}

# unit_file PATH DESCRIPTION EXECSTART [UNIT-KEY=VALUE...]: a service that runs
# EXECSTART, at PATH (/run/systemd/system/NAME, /run/systemd/user/NAME)
unit_file() {
	local path=$1 desc=$2 exec=$3 l
	shift 3
	{
		echo "[Unit]"
		echo "Description=vfio-agent VM tier: $desc"
		for l in "$@"; do echo "$l"; done
		echo "[Service]"
		echo "ExecStart=$exec"
	} >"$path"
}
