#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Whole-process timings of the holder scan. The scene: N processes with 40
# fds each (files, /dev/null, sockets, pipes); four of them hold a stand-in
# device node (a mknod'ed copy of 1:7). In one run:
#  1. diagnose --json --device NODE with each backend, fuser NODE and
#     lsof NODE on 2,000 processes: medians and ratios, after checking that
#     all four report the same holders;
#  2. both backends from 500 to 8,000 processes;
#  3. a desktop-shaped scene (DESKTOP processes, default 400, with ~500
#     mappings and ~50 fds each): diagnose --backend bpf against the floor
#     ($UNIT_DIR/floor: the same two task iterators over the same files and
#     mappings, counting only) and against fuser; diagnose / floor and
#     fuser / diagnose in one run.
# Prints Markdown for the README. Not a test: nothing here can fail a run.
# DESKTOP_ONLY=1 runs part 3 alone.
set -u
: "${VFIO_AGENT:?}"
: "${HOLDER:=$(dirname "$VFIO_AGENT")/tests/holder}"
: "${FLOOR:=$(dirname "$VFIO_AGENT")/tests/floor}"
: "${DESKTOP:=400}"
: "${RUNS:=11}"
: "${SLOW_RUNS:=5}"
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root" >&2; exit 1; }
tmp=$(mktemp -d)
scene_pid=
stop_scene() {
	[ -n "$scene_pid" ] && kill -9 "$scene_pid" 2>/dev/null
	# the scene's children die with it (PR_SET_PDEATHSIG)
	while pgrep -x va-scene >/dev/null; do sleep 0.1; done
	scene_pid=
}
trap 'stop_scene; rm -rf "$tmp"' EXIT
mknod "$tmp/gpu" c 1 7
DEV=$tmp/gpu

scene() { # scene N [FDS [VMAS]]: N processes, 4 holders; their pids in $tmp/want
	stop_scene
	"$HOLDER" scene "$1" "${2:-40}" 4 "$DEV" "${3:-0}" >"$tmp/scene.out" &
	scene_pid=$!
	disown "$scene_pid"
	until grep -qx ready "$tmp/scene.out" 2>/dev/null; do sleep 0.1; done
	grep -vx ready "$tmp/scene.out" | cut -d' ' -f1 | sort -n >"$tmp/want"
}

# the scene's own pids only: other processes of the machine may hold 1:7 too
ours() { grep -xFf <(pgrep -P "$scene_pid"; echo "$scene_pid") | sort -n; }
pids_agent() { "$VFIO_AGENT" diagnose --json --device "$DEV" --backend "$1" | jq -r '.holders[].pid' | ours; }
pids_fuser() { fuser "$DEV" 2>/dev/null | tr -s ' ' '\n' | grep . | ours; }
pids_lsof() { lsof -t "$DEV" 2>/dev/null | ours; }

# median NAME RUNS CMD: hyperfine's median in ms
median() {
	local name=$1 runs=$2; shift 2
	hyperfine -N --warmup 1 --runs "$runs" -i --export-json "$tmp/$name.json" "$*" >/dev/null 2>&1
	jq -r '.results[0].median * 1000' "$tmp/$name.json"
}
fmt() { printf '%.1f' "$1"; }
ratio() { echo "scale=1; $1 / $2" | bc; }

desktop() {
	local d fl fu walk
	scene "$DESKTOP" 50 500
	got=$(pids_agent bpf | tr '\n' ' ')
	if [ "$got" != "$(tr '\n' ' ' <"$tmp/want")" ]; then
		echo "bench: the desktop scene: diagnose reports [$got], want [$(tr '\n' ' ' <"$tmp/want")]" >&2
		exit 1
	fi
	read -r nfiles nvmas walk <<<"$("$FLOOR")"
	d=$(median desk-bpf "$RUNS" "$VFIO_AGENT" diagnose --json --device "$DEV" --backend bpf)
	fl=$(median desk-floor "$RUNS" "$FLOOR")
	fu=$(median desk-fuser "$SLOW_RUNS" fuser "$DEV")
	echo
	echo "### A desktop-shaped host: $DESKTOP processes x ~500 mappings and ~50 fds, 4 holders ($nfiles files and $nvmas mappings walked; $(nproc) cores)"
	echo
	echo "Medians of whole processes (hyperfine; $RUNS runs, fuser $SLOW_RUNS). The floor loads two"
	echo "iterators that only count the same files and mappings (its walk alone: $walk ms)."
	echo
	echo "| command | median ms | |"
	echo "|---|---:|---|"
	printf '| floor (count only) | %s | |\n' "$(fmt "$fl")"
	printf '| vfio-agent diagnose --json --backend bpf | %s | diagnose / floor %sx |\n' "$(fmt "$d")" "$(ratio "$d" "$fl")"
	printf '| fuser NODE | %s | fuser / diagnose %sx; fuser / floor %sx |\n' "$(fmt "$fu")" "$(ratio "$fu" "$d")" "$(ratio "$fu" "$fl")"
	stop_scene
}
if [ -n "${DESKTOP_ONLY:-}" ]; then
	desktop
	exit 0
fi

scene 2000
for tool in "agent bpf" "agent proc" fuser lsof; do
	set -- $tool
	got=$(pids_$1 ${2:-} | tr '\n' ' ')
	if [ "$got" != "$(tr '\n' ' ' <"$tmp/want")" ]; then
		echo "bench: $tool reports [$got], want [$(tr '\n' ' ' <"$tmp/want")]" >&2
		exit 1
	fi
done
procs=$(ls /proc | grep -c '^[0-9]')
fds=$(ls /proc/[0-9]*/fd 2>/dev/null | grep -c '^[0-9]')
b=$(median bpf "$RUNS" "$VFIO_AGENT" diagnose --json --device "$DEV" --backend bpf)
p=$(median proc "$RUNS" "$VFIO_AGENT" diagnose --json --device "$DEV" --backend proc)
f=$(median fuser "$SLOW_RUNS" fuser "$DEV")
l=$(median lsof "$SLOW_RUNS" lsof "$DEV")

echo "### Who holds the device: 2,000 processes x 40 fds, 4 holders ($procs processes, $fds fds on the host; $(nproc) cores)"
echo
echo "All four report the same 4 pids. Medians of whole processes (hyperfine; $RUNS runs, fuser and lsof $SLOW_RUNS)."
echo
echo "| command | median ms | fuser / it | lsof / it |"
echo "|---|---:|---:|---:|"
printf '| vfio-agent diagnose --json --backend bpf | %s | %sx | %sx |\n' "$(fmt "$b")" "$(ratio "$f" "$b")" "$(ratio "$l" "$b")"
printf '| vfio-agent diagnose --json --backend proc | %s | %sx | %sx |\n' "$(fmt "$p")" "$(ratio "$f" "$p")" "$(ratio "$l" "$p")"
printf '| fuser NODE | %s | 1.0x | |\n' "$(fmt "$f")"
printf '| lsof NODE | %s | | 1.0x |\n' "$(fmt "$l")"

echo
echo "### Growth with the number of processes (40 fds each; medians of $RUNS)"
echo
echo "| processes | bpf ms | proc ms |"
echo "|---:|---:|---:|"
for n in 500 1000 2000 4000 8000; do
	scene "$n"
	b=$(median bpf "$RUNS" "$VFIO_AGENT" diagnose --json --device "$DEV" --backend bpf)
	p=$(median proc "$RUNS" "$VFIO_AGENT" diagnose --json --device "$DEV" --backend proc)
	printf '| %d | %s | %s |\n' "$n" "$(fmt "$b")" "$(fmt "$p")"
done
desktop
