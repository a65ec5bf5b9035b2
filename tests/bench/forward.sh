#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Whole-process timings of the forward, in a namespace made here:
#  1. one up+down cycle of vfio-agent, of the seed's iptables hook sequence,
#     and of nft -f with the same ruleset; medians and ratios;
#  2. the time of "forward up" for 1, 10, 100 and 1000 forwards.
# Prints a Markdown table for the README. Not a test: nothing here can fail a run.
set -u
: "${VFIO_AGENT:?}"
: "${RUNS:=31}"
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root" >&2; exit 1; }
if [ -z "${BENCH_IN_NS:-}" ]; then
	ns="vabench$$"
	trap 'ip netns del "$ns" 2>/dev/null' EXIT
	ip netns add "$ns"
	ip -n "$ns" link add lan0 type veth peer name lan0p
	ip -n "$ns" link set lan0 up
	ip -n "$ns" addr add 198.51.100.1/24 dev lan0
fi
# every process below runs inside the namespace: none pays for entering it
if [ -z "${BENCH_IN_NS:-}" ]; then
	BENCH_IN_NS=1 ip netns exec "$ns" bash "$0"
	exit
fi
X() { "$@"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

conf() { # conf N: the VNC forward plus N-1 extra ones
	printf '[vfio]\nvm = bench\n[vnc]\nenable = true\ninterface = lan0\nhost.ip = 198.51.100.1\n'
	printf 'guest.ip = 192.0.2.50\nallow = 198.51.100.0/24\n'
	for ((i = 1; i < $1; i++)); do
		printf '[forward f%d]\nhost.port = %d\nguest.port = %d\n' "$i" $((10000 + i)) $((10000 + i))
	done
}
conf 1 >"$tmp/1.conf"

# The seed's hook: four iptables calls at start, the matching deletes at stop.
cat >"$tmp/seed.sh" <<'SH'
iptables -A FORWARD -d 192.0.2.50/32 -p tcp --dport 5900 -j ACCEPT
iptables -I FORWARD -m state -d 192.0.2.0/24 --state NEW,RELATED,ESTABLISHED -j ACCEPT
iptables -t nat -I PREROUTING -p tcp -i lan0 -d 198.51.100.1 --dport 5900 -j DNAT --to 192.0.2.50:5900
iptables -D FORWARD -d 192.0.2.50/32 -p tcp --dport 5900 -j ACCEPT
iptables -D FORWARD -m state -d 192.0.2.0/24 --state NEW,RELATED,ESTABLISHED -j ACCEPT
iptables -t nat -D PREROUTING -p tcp -i lan0 -d 198.51.100.1 --dport 5900 -j DNAT --to 192.0.2.50:5900
SH
# nft -f with what vfio-agent programs, then its removal
X "$VFIO_AGENT" -q --config "$tmp/1.conf" forward up
X nft list table inet vfio_agent >"$tmp/up.nft"
X "$VFIO_AGENT" -q --config "$tmp/1.conf" forward down
printf 'delete table inet vfio_agent\n' >"$tmp/down.nft"

ms() { echo "scale=3; $1 / 1000000" | bc; }
# median of RUNS timed runs of "$@", in nanoseconds; $SETUP runs untimed before each
median() {
	local t=() s e
	for ((r = 0; r < RUNS; r++)); do
		[ -z "${SETUP:-}" ] || eval "$SETUP" >/dev/null 2>&1
		s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N)
		t+=($((e - s)))
	done
	printf '%s\n' "${t[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p"
}
agent_cycle() { X "$VFIO_AGENT" -q --config "$tmp/1.conf" forward up; X "$VFIO_AGENT" -q --config "$tmp/1.conf" forward down; }
seed_cycle() { X sh -e "$tmp/seed.sh"; }
nft_cycle() { X nft -f "$tmp/up.nft"; X nft -f "$tmp/down.nft"; }

a=$(median agent_cycle); s=$(median seed_cycle); n=$(median nft_cycle)
e=$(median "$VFIO_AGENT" version)
u=$(SETUP='X "$VFIO_AGENT" -q --config "$tmp/1.conf" forward down' median X "$VFIO_AGENT" -q --config "$tmp/1.conf" forward up)
dd=$(SETUP='X "$VFIO_AGENT" -q --config "$tmp/1.conf" forward up' median X "$VFIO_AGENT" -q --config "$tmp/1.conf" forward down)
echo "### forward up + down, whole processes (median of $RUNS, $(nproc) cores)"
echo
echo "| cycle | processes | median ms | vs vfio-agent |"
echo "|---|---:|---:|---:|"
printf '| vfio-agent forward up; forward down | 2 | %s | 1.0x |\n' "$(ms "$a")"
printf '| seed hook: 3x iptables add, 3x delete | 6 | %s | %sx slower |\n' "$(ms "$s")" "$(echo "scale=1; $s / $a" | bc)"
printf '| nft -f ruleset; nft -f delete | 2 | %s | %sx slower |\n' "$(ms "$n")" "$(echo "scale=1; $n / $a" | bc)"
printf '| of which vfio-agent forward up | 1 | %s | |\n' "$(ms "$u")"
printf '| of which vfio-agent forward down | 1 | %s | |\n' "$(ms "$dd")"
printf '| vfio-agent version (process start alone) | 1 | %s | |\n' "$(ms "$e")"
echo
echo "### forward up with N forwards onto an empty ruleset (median of $RUNS)"
echo
echo "| forwards | up ms | per forward µs |"
echo "|---:|---:|---:|"
for n in 1 10 100 1000; do
	conf "$n" >"$tmp/n.conf"
	t=$(SETUP='X "$VFIO_AGENT" -q --config "$tmp/n.conf" forward down' median X "$VFIO_AGENT" -q --config "$tmp/n.conf" forward up)
	printf '| %d | %s | %s |\n' "$n" "$(ms "$t")" "$(echo "scale=1; $t / 1000 / $n" | bc)"
done
