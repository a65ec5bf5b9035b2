#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The daemon's reaction times and idle cost, against its own libvirtd and a
# running TCG domain (tests/libvirt/env.sh), in namespaces made here:
#  1. nft flush ruleset -> our table back: EVENTS times;
#  2. the host's address on lan0 replaced (host.ip = auto) -> the rules
#     rewritten: EVENTS times;
#  3. CPU time and resident memory of the idle daemon over IDLE_S seconds.
# Both ends of each reaction are the kernel's own netlink notifications,
# stamped by tests/helpers/nlstamp as they arrive. Prints a Markdown table
# for the README. Not a test: nothing here can fail a run.
set -u
: "${EVENTS:=200}"
: "${IDLE_S:=60}"
. "$(dirname "$0")/../lib.sh"
need_root bench
. "$(dirname "$0")/../libvirt/env.sh"
libvirt_enter host

libvirt_setup
DPID= SPID=
trap '[ -n "$DPID" ] && kill -9 "$DPID"; [ -n "$SPID" ] && kill "$SPID"; libvirt_daemons_kill; rm -rf "$TMP"' EXIT
ip link add lan0 type veth peer name lan1
ip link set lan1 up && ip link set lan0 up
ip addr add 192.0.2.1/24 dev lan0
# the new address stays when the old one, its primary, goes
sysctl -qw net.ipv4.conf.lan0.promote_secondaries=1
libvirt_start
domain_xml bench >"$TMP/bench.xml"
V define "$TMP/bench.xml" >/dev/null && V start bench >/dev/null || { echo "bench: the domain did not start" >&2; exit 1; }
cat >"$TMP/conf" <<'EOC'
[vfio]
vm = bench
[vnc]
enable = true
interface = lan0
host.ip = auto
guest.ip = 198.51.100.10
EOC
has_table() { nft list table inet vfio_agent >/dev/null 2>&1; }
wait_table() { for _ in $(seq 400); do has_table && return 0; sleep 0.005; done; return 1; }

"$VFIO_AGENT" --config "$TMP/conf" daemon --foreground >"$TMP/daemon.log" 2>&1 &
DPID=$!
disown "$DPID"
wait_table || { echo "bench: the daemon did not set up the forward" >&2; exit 1; }
# O_APPEND on both sides: the marks this script adds are not overwritten
: >"$TMP/stamps"
"$UNIT_DIR/nlstamp" >>"$TMP/stamps" &
SPID=$!
disown "$SPID"
for _ in $(seq 100); do grep -q ready "$TMP/stamps" && break; sleep 0.02; done

for _ in $(seq "$EVENTS"); do
	nft flush ruleset
	wait_table
	sleep 0.02
done
echo mark >>"$TMP/stamps"
ip=1
for _ in $(seq "$EVENTS"); do
	new=$((ip % 2 + 1))
	ip addr add "192.0.2.$new/24" dev lan0
	sleep 0.02
	ip addr del "192.0.2.$ip/24" dev lan0
	ip=$new
	for _ in $(seq 200); do nft list table inet vfio_agent 2>/dev/null | grep -q "192.0.2.$ip" && break; sleep 0.005; done
	sleep 0.02
done
sleep 0.2
kill "$SPID"
SPID=
[ -n "${BENCH_DEBUG:-}" ] && { tail -n 20 "$TMP/daemon.log"; grep -A5 mark "$TMP/stamps"; ip addr show dev lan0; } >&2

# flush: our table deleted by the flush -> created again by the daemon
# (NFT_MSG_DELTABLE 2, NFT_MSG_NEWTABLE 0); address: its removal -> the
# daemon's first change to our table
awk '/^mark/ { exit } $2 == "nft" && $4 == "vfio_agent" && $3 == 2 { t = $1 }
     $2 == "nft" && $4 == "vfio_agent" && $3 == 0 && t { print $1 - t; t = 0 }' "$TMP/stamps" |
	sort -n >"$TMP/flush"
awk 'f && $2 == "addr" && $3 == "del" { t = $1 }
     f && $2 == "nft" && $4 == "vfio_agent" && t { print $1 - t; t = 0 }
     /^mark/ { f = 1 }' "$TMP/stamps" | sort -n >"$TMP/addr"
pct() { # pct FILE P: the P-th percentile in ms
	awk -v p="$2" '{ v[NR] = $1 } END { i = int((NR - 1) * p / 100) + 1; printf "%.2f", v[i] / 1000 }' "$1"
}

stat_cpu() { awk '{ print $14 + $15 }' "/proc/$DPID/stat"; }
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$DPID/status"; }
c0=$(stat_cpu) r0=$(rss)
sleep "$IDLE_S"
c1=$(stat_cpu) r1=$(rss)
hz=$(getconf CLK_TCK)

echo "| reaction | events | median | p99 | max |"
echo "|---|---|---|---|---|"
echo "| \`nft flush ruleset\` -> table back | $(wc -l <"$TMP/flush") | $(pct "$TMP/flush" 50) ms | $(pct "$TMP/flush" 99) ms | $(pct "$TMP/flush" 100) ms |"
echo "| host address replaced -> rules rewritten | $(wc -l <"$TMP/addr") | $(pct "$TMP/addr" 50) ms | $(pct "$TMP/addr" 99) ms | $(pct "$TMP/addr" 100) ms |"
echo
echo "Idle over ${IDLE_S} s: CPU $(awk -v c=$((c1 - c0)) -v hz="$hz" 'BEGIN { printf "%.2f", c * 1000 / hz }') ms, resident memory ${r0} kB -> ${r1} kB."
