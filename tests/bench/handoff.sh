#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# vm: --systemd --desktop --limit=1500
#
# The handoff against the seed's way, in the VM tier's desktop scene
# (tests/vm/scene.sh: weston, HDMI audio held by pipewire in a logind session,
# the session's DRM client, a lactd stand-in), in one boot. ROUNDS rounds
# (default 5), each of:
#  - vfio-agent handoff prepare, then release (on-holders = stop, the default);
#  - tests/bench/seed-hook.sh prepare, then release: the seed's steps, a
#    sleep 1 between them;
#  - the floor: build/tests/handoff-floor (tests/bench/handoff-floor.c), the
#    same operations alone from one process, with vfio-agent's own calls
#    (the units' jobs over sd-bus, the user's through one helper, libkmod,
#    the sysfs writes) and nothing else: no config, preflight, holder scan
#    or journal; what vfio-agent takes above it is its own. It also stamps
#    its operations alone (after its libraries, bus and user helper are
#    ready, until its last operation ended): the "operations alone" column,
#    what systemd and the kernel take, without any process's start;
# and for each release, "desktop back": from its start until weston is DRM
# master again, as /sys/kernel/debug/dri/N/clients shows it, polled every
# 10 ms (seed-hook.sh wait-master). Prints the medians and ratios as a Markdown
# table, then one more vfio-agent round with -v, each line stamped with its
# time since the start, and the costs of its parts alone. The guest runs under
# TCG: only the ratios mean anything. Not a test: it fails only when the scene
# does not come up or a handoff fails.
#
#   tests/bench/handoff.sh             (as root, on the host; ROUNDS=N)
set -u
if [ ! -e /xfer/env ]; then
	cd "$(dirname "$0")/../.." || exit 1
	mkdir -p build/bench
	echo "ROUNDS=${ROUNDS:-5}" >build/bench/handoff.env
	exec tests/vm/run tests/bench/handoff.sh
fi
. "$(dirname "$0")/../vm/lib.sh"
. "$(dirname "$0")/../vm/scene.sh"
. build/bench/handoff.env
SEED=$PWD/tests/bench/seed-hook.sh

scene_up || finish
export SEED_UNITS="display-manager.service va-lactd.service" SEED_UID=$uid
export SEED_USER_UNITS="pipewire.socket pipewire.service wireplumber.service va-gpu-client.service"
export SEED_PCIS="$gpu $audio" SEED_MODULE=bochs SEED_CLIENTS=$clients SEED_DS=weston

us() { local t=${1/./}; echo $((10#$t)); }
ms() { echo $((($(us "$2") - $(us "$1")) / 1000)); }
do_agent() { "$VFIO_AGENT" --config "$TMP/conf" handoff "$1"; }
do_seed() { SEED_SLEEP=1 "$SEED" "$1"; }
do_floor() { "$UNIT_DIR/handoff-floor" "$1"; }
stamp_of() { awk -v w="$1" '$1 == w { print $2; exit }' "$2"; }
# the scene as it was: weston master, every holder back on its node
settled() { display_master && has_holders round "${want[@]}"; }

# round WHO: prepare and release by WHO; "WHO PHASE MS" lines in $TMP/times
round() {
	local who=$1 t0 t1 t2 t3 rc w
	t0=$EPOCHREALTIME
	do_"$who" prepare >"$TMP/$who.out" 2>&1
	rc=$?
	t1=$EPOCHREALTIME
	cp "$TMP/$who.out" "$TMP/$who.prepare"
	if [ $rc -ne 0 ] || loaded bochs; then
		not_ok "$who prepare" "exit $rc: $(tail -n 3 "$TMP/$who.out" | tr '\n' ' ')"
		return 1
	fi
	rm -f "$TMP/back"
	("$SEED" wait-master && echo "$EPOCHREALTIME" >"$TMP/back") &
	w=$!
	t2=$EPOCHREALTIME
	do_"$who" release >"$TMP/$who.out" 2>&1
	rc=$?
	t3=$EPOCHREALTIME
	wait "$w"
	if [ $rc -ne 0 ] || [ ! -s "$TMP/back" ]; then
		not_ok "$who release" "exit $rc: $(tail -n 3 "$TMP/$who.out" | tr '\n' ' ')"
		return 1
	fi
	printf '%s prepare %s\n%s release %s\n%s both %s\n%s back %s\n' \
		"$who" "$(ms "$t0" "$t1")" "$who" "$(ms "$t2" "$t3")" \
		"$who" $(($(ms "$t0" "$t1") + $(ms "$t2" "$t3"))) "$who" "$(ms "$t2" "$(cat "$TMP/back")")" \
		>>"$TMP/times"
	# the floor's operations alone, as it stamped them (its start, connections and exit left out)
	if [ "$who" = floor ]; then
		local p=$(ms "$(stamp_of ops "$TMP/floor.prepare")" "$(stamp_of done "$TMP/floor.prepare")")
		local r=$(ms "$(stamp_of ops "$TMP/floor.out")" "$(stamp_of done "$TMP/floor.out")")
		printf 'ops prepare %s\nops release %s\nops both %s\nops back %s\n' "$p" "$r" $((p + r)) \
			"$(ms "$(stamp_of ops "$TMP/floor.out")" "$(cat "$TMP/back")")" >>"$TMP/times"
	fi
	wait_for 90 settled || { not_ok "$who: the scene came back" "$(cat "$TMP/round.holders")"; return 1; }
	sleep 1
}

: >"$TMP/times"
for r in $(seq "$ROUNDS"); do
	for who in agent seed floor; do
		round "$who" || finish
	done
	echo "# round $r: $(grep -c . "$TMP/times") timings"
done
ok "$ROUNDS rounds of vfio-agent, the seed-style hook and the floor, the desktop back after each"

median() { awk -v w="$1" -v p="$2" '$1 == w && $2 == p { print $3 }' "$TMP/times" | sort -n |
	awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
echo
echo "| phase (median of $ROUNDS, ms) | vfio-agent | seed-style hook | floor | operations alone | seed / vfio-agent | (vfio-agent - floor) / vfio-agent | (vfio-agent - operations) / vfio-agent |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for p in prepare release both back; do
	a=$(median agent $p) s=$(median seed $p) f=$(median floor $p) o=$(median ops $p)
	case $p in
	both) name="prepare + release" ;;
	back) name="desktop back (release start to weston DRM master)" ;;
	*) name=$p ;;
	esac
	awk -v n="$name" -v a="$a" -v s="$s" -v f="$f" -v o="$o" 'BEGIN {
		printf "| %s | %d | %d | %d | %d | %.1fx | %.0f %% | %.0f %% |\n", n, a, s, f, o, s / a,
			100 * (a - f) / a, 100 * (a - o) / a }'
done
# the same ratios taken within each round (vfio-agent against the hook, the
# floor and the operations of its own round), then their median: the host's
# speed drifts between rounds, and a round's three runs share it
echo
echo "| phase (median of the $ROUNDS rounds' own ratios) | seed / vfio-agent | (vfio-agent - floor) / vfio-agent | (vfio-agent - operations) / vfio-agent |"
echo "|---|---:|---:|---:|"
for p in prepare release both back; do
	case $p in
	both) name="prepare + release" ;;
	back) name="desktop back" ;;
	*) name=$p ;;
	esac
	awk -v p="$p" -v n="$name" '
	function med(v, k,   i, j, t) {
		for (i = 2; i <= k; i++)
			for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
		return k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
	}
	$2 == p { x[$1, ++c[$1]] = $3 }
	END {
		for (i = 1; i <= c["agent"]; i++) {
			s[i] = x["seed", i] / x["agent", i]
			f[i] = 100 * (x["agent", i] - x["floor", i]) / x["agent", i]
			o[i] = 100 * (x["agent", i] - x["ops", i]) / x["agent", i]
		}
		k = c["agent"]
		printf "| %s | %.1fx | %.0f %% | %.0f %% |\n", n, med(s, k), med(f, k), med(o, k)
	}' "$TMP/times"
done
echo
echo "# every round (who phase ms):"
sed 's/^/#   /' "$TMP/times"

# where vfio-agent's time goes: one more round with -v, each line stamped
# (the clock read as each line comes, with no fork: a command substitution
# per line would cost 100 ms and more under TCG and stamp a burst late)
stamp() {
	local t0=$1 l
	while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done |
		awk -v t0="$t0" '{ t = $1; sub(/^[^ ]* /, ""); printf "#   +%d ms %s\n", (t - t0) * 1000, $0 }'
}
for v in prepare release; do
	echo "# vfio-agent -v handoff $v:"
	t0=$EPOCHREALTIME
	"$VFIO_AGENT" -v --config "$TMP/conf" handoff $v 2>&1 | stamp "$t0"
	echo "#   +$(ms "$t0" "$EPOCHREALTIME") ms (exit)"
	[ $v = release ] || continue
	wait_for 90 settled
	sleep 1
done
# the parts alone, 5 times each: process start, one holder scan (BPF), a user-bus call
part() {
	local name=$1 t0 all=()
	shift
	for _ in 1 2 3 4 5; do
		t0=$EPOCHREALTIME
		"$@" >/dev/null 2>&1
		all+=("$(ms "$t0" "$EPOCHREALTIME")")
	done
	echo "# $name: $(printf '%s\n' "${all[@]}" | sort -n | sed -n 3p) ms (median of 5: ${all[*]})"
}
part "vfio-agent version (process start)" "$VFIO_AGENT" version
part "vfio-agent diagnose --backend bpf (one holder scan, its BPF loaded)" \
	"$VFIO_AGENT" diagnose --json --backend bpf --pci "$gpu" --pci "$audio"
part "vfio-agent diagnose --backend proc" "$VFIO_AGENT" diagnose --json --backend proc --pci "$gpu" --pci "$audio"
part "systemctl is-active va-lactd.service" systemctl is-active va-lactd.service
finish
