#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Several scans in one process, as a handoff makes them: the BPF programs
# load once and serve every later scan, whose answer must still be its own.
# Holders appear and exit between the scans and the targets change from one
# scan to the next (the release's display wait scans for other devices than
# the prepare); each answer is compared with what the holders hold and with
# the /proc backend in the same process, and the target maps must hold only
# the scan's own targets.
set -u
. "$(dirname "$0")/../lib.sh"
need_root rescan

RESCAN=$UNIT_DIR/rescan
DEV=$TMP/gpu
MAPDEV=$TMP/gpum
mknod "$DEV" c 1 7 && mknod "$MAPDEV" c 1 5 || { not_ok setup mknod; finish; }

# the helper on two fifos (fds 3 and 4, which subshells keep); it ends when 3 closes
# in every process, the holders started after it too
mkfifo "$TMP/in" "$TMP/out" || { not_ok setup mkfifo; finish; }
"$RESCAN" <"$TMP/in" >"$TMP/out" 2>"$TMP/rescan.err" &
rescan=$!
exec 3>"$TMP/in" 4<"$TMP/out"
# ask COMMAND: the helper's answer, without its closing "end"
ask() {
	local line
	echo "$*" >&3
	while read -r -t 30 line <&4 && [ "$line" != end ]; do echo "$line"; done
}
# scan BACKEND PATH...: the holds, one "PID KIND FD" a line; the backend that ran last
scan() { ask scan "$@"; }
# the holds the named holders printed, sorted, and the backend line
want() {
	local n
	for n in "$@"; do cut -d' ' -f1-3 "$TMP/$n"; done | sort
	echo "backend bpf"
}
# stop NAME: end one holder and wait until it is gone
stop() {
	local pid
	read -r pid _ <"$TMP/$1"
	kill -9 "$pid"
	for _ in $(seq 100); do [ -d /proc/"$pid" ] || break; sleep 0.02; done
}
# same NAME GOT WANT [+files] PATH...: the answer, and the /proc backend's in the same process
same() {
	local proc
	if [ "$4" = +files ]; then
		proc=$(scan proc+files "${@:5}")
	else
		proc=$(scan proc "${@:4}")
	fi
	proc=$(echo "$proc" | sed 's/^backend proc$/backend bpf/')
	if [ "$2" != "$3" ]; then
		not_ok "$1" "bpf: [$(echo $2)], want [$(echo $3)]"
	elif [ "$proc" != "$3" ]; then
		not_ok "$1" "proc: [$(echo $proc)], bpf [$(echo $2)]"
	else
		ok "$1: bpf = proc = [$(echo $3)]"
	fi
}

got=$(scan bpf "$DEV" "$MAPDEV")
if [ "$got" != "backend bpf" ]; then
	not_ok baseline "first scan: [$(echo $got)] $(cat "$TMP/rescan.err")"
	finish
fi
ok "first scan: nothing holds the stand-ins"
check "the programs stay loaded after the scan: $(ask fds)" \
	[ "$(ask fds)" = "progs 2 links 0 iters 0" ]

start_holder a open "$DEV" || not_ok setup "holder a"
same "second scan: the holder that came since" "$(scan bpf "$DEV" "$MAPDEV")" "$(want a)" \
	"$DEV" "$MAPDEV"

start_holder m mmap "$MAPDEV" || not_ok setup "holder m"
stop a
same "third scan: the holder that exited is gone, the new mapping there" \
	"$(scan bpf "$DEV" "$MAPDEV")" "$(want m)" "$DEV" "$MAPDEV"

# fewer targets, then others: the previous scan's must not linger in the maps
# (the kernel would keep matching them), the new ones must be there
start_holder b open "$DEV" || not_ok setup "holder b"
same "the mappable node only: b is not a holder of it" "$(scan bpf "$MAPDEV")" "$(want m)" \
	"$MAPDEV"
check "the maps hold that scan's one target: $(ask maps)" \
	[ "$(ask maps)" = "target_devs 1 target_majors 0 target_mods 0" ]
same "the other node only: m is not a holder of it" "$(scan bpf "$DEV")" "$(want b)" "$DEV"

# open files only (the display wait's scans): m's mapping is no hold of that kind
same "open files only: b's fd, not m's mapping" "$(scan bpf+files "$DEV" "$MAPDEV")" "$(want b)" \
	+files "$DEV" "$MAPDEV"
same "... and all holds again in the next scan" "$(scan bpf "$DEV" "$MAPDEV")" "$(want b m)" \
	"$DEV" "$MAPDEV"

# processes named (the display wait names its unit's and logind's): the /proc
# walk reads those alone; BPF's iterators see every process still
start_holder c open "$DEV" || not_ok setup "holder c"
read -r bpid _ <"$TMP/b"
got=$(scan proc+files "pid:$bpid" "$DEV")
check "processes named: the /proc walk reads b alone, not c ([$(echo $got)])" \
	[ "$got" = "$(want b | sed 's/^backend bpf$/backend proc/')" ]
check "... and BPF sees c too" [ "$(scan bpf+files "pid:$bpid" "$DEV")" = "$(want b c)" ]
stop c

for i in $(seq 20); do scan bpf "$DEV" "$MAPDEV" >/dev/null; done
check "after 25 scans: loaded once, no link or iterator left open: $(ask fds)" \
	[ "$(ask fds)" = "progs 2 links 0 iters 0" ]
ask cleanup >/dev/null
check "holders_cleanup() gives them back: $(ask fds)" [ "$(ask fds)" = "progs 0 links 0 iters 0" ]
same "a scan after the cleanup loads them again" "$(scan bpf "$DEV" "$MAPDEV")" "$(want b m)" \
	"$DEV" "$MAPDEV"

# the handoff's preload: nothing under --root; else the programs load on a
# thread and the next scan uses them
ask cleanup >/dev/null
ask preload "$TMP" >/dev/null
sleep 0.5
check "no preload under --root: $(ask fds)" [ "$(ask fds)" = "progs 0 links 0 iters 0" ]
ask preload - >/dev/null
same "a scan after the preload" "$(scan bpf "$DEV" "$MAPDEV")" "$(want b m)" "$DEV" "$MAPDEV"
check "the preload's programs serve it: $(ask fds)" [ "$(ask fds)" = "progs 2 links 0 iters 0" ]

# SCAN_READY (the handoff's first look, the release's display wait): /proc at
# once while nothing is loaded, and no load of its own; BPF once loaded
ask cleanup >/dev/null
got=$(scan ready "$DEV" "$MAPDEV")
check "a ready scan with nothing loaded: /proc's answer, the same holders ($(echo $got))" \
	[ "$got" = "$(want b m | sed 's/^backend bpf$/backend proc/')" ]
check "... and it loaded nothing: $(ask fds)" [ "$(ask fds)" = "progs 0 links 0 iters 0" ]
ask preload - >/dev/null
for _ in $(seq 200); do [ "$(ask loaded)" = "loaded yes" ] && break; sleep 0.05; done
got=$(scan ready "$DEV" "$MAPDEV")
check "a ready scan once the preload has loaded them: BPF's answer ($(echo $got))" \
	[ "$got" = "$(want b m)" ]

cleanup_holders
exec 3>&- 4<&-
wait "$rescan"
rc=$?
check "the helper exits cleanly: exit $rc $(cat "$TMP/rescan.err")" [ $rc -eq 0 ]
finish
