#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The nftables monitor as the daemon reads it, in a namespace of its own
# (tests/helpers/nlstamp prints each event that reaches it): another
# table's set elements and every NEWGEN are dropped by the socket's filter
# in the kernel; elements of our table, rules and chains come up, with
# their table, chain and hook; a transaction that mixes another table's
# elements with ours comes up. Then forward up and status while another
# program floods the ruleset: an interrupted dump is read again, never an
# error.
set -u
. "$(dirname "$0")/../lib.sh"
need_root monitor

mkns host || { not_ok setup "ip netns add"; finish; }
in_ns host nft -f - <<'NFT'
table inet churn {
	set blocked { type ipv4_addr; }
	chain input { type filter hook input priority 10; policy accept; }
	chain sub { }
}
table inet vfio_agent {
	set s { type ipv4_addr; }
}
NFT
in_ns host "$UNIT_DIR/nlstamp" >"$TMP/ev" 2>&1 &
SPID=$!
for _ in $(seq 100); do grep -q ready "$TMP/ev" && break; sleep 0.02; done
check "nlstamp listens" grep -q ready "$TMP/ev"

n() { in_ns host nft "$@"; }
n add element inet churn blocked '{ 10.0.0.1 }'
n delete element inet churn blocked '{ 10.0.0.1 }'
n add element inet vfio_agent s '{ 10.0.0.2 }'
n add rule inet churn sub counter
n add table ip filter2
n add chain ip filter2 FORWARD '{ type filter hook forward priority 0; }'
n -f - <<'NFT'
add element inet churn blocked { 10.0.0.3 }
add element inet vfio_agent s { 10.0.0.4 }
NFT
n add element inet churn blocked '{ 10.0.0.5 }'
n add table inet last
sleep 0.3
kill "$SPID"; wait "$SPID" 2>/dev/null
# fields: T nft MSG TABLE PORTID FAMILY CHAIN HOOK (NEWSETELEM 12, NEWGEN 16, NEWRULE 6, NEWCHAIN 3)
ev() { awk -v m="$1" -v t="$2" '$2 == "nft" && $3 == m && $4 == t' "$TMP/ev"; }
check "the last change came up (the monitor saw the run through)" test -n "$(ev 0 last)"
# the kernel coalesces one transaction's notifications: the mixed one comes up whole
check "another table's elements come up only with ours (the mixed transaction)" \
	test "$(ev 12 churn | wc -l)" -eq 1 -a -z "$(ev 13 churn)"
check "NEWGEN never comes up" test -z "$(ev 16 churn)$(ev 16 vfio_agent)$(awk '$3 == 16' "$TMP/ev")"
check "our table's elements come up, one each time" test "$(ev 12 vfio_agent | wc -l)" -eq 2
check "a rule in another table comes up with its chain" \
	test "$(ev 6 churn | awk '{ print $7 }')" = sub
check "a base chain comes up with its family and hook (ip 2, forward 2)" \
	test "$(ev 3 filter2 | awk '{ print $6, $7, $8 }')" = "2 FORWARD 2"

# ---- the filter follows the tables with base chains on the path ----
# `nlstamp follow` narrows the monitor as the daemon does: rules come up only
# from our table, libvirt's exemption chains and base chains on the path,
# also one made later; once it goes away, its rules no longer do
in_ns host nft add chain inet vfio_agent c
in_ns host nft add chain ip filter2 sub
in_ns host nft add table ip filter
in_ns host nft add chain ip filter LIBVIRT_FWI
in_ns host "$UNIT_DIR/nlstamp" follow >"$TMP/fev" 2>&1 &
SPID=$!
for _ in $(seq 100); do grep -q ready "$TMP/fev" && break; sleep 0.02; done
check "nlstamp follows" grep -q ready "$TMP/fev"
long=$(printf 't%.0s' $(seq 70))
n add rule inet churn sub counter comment '"x1"'
n add rule inet churn input counter comment '"x2"'
n add rule ip filter2 FORWARD counter comment '"y1"'
n add rule inet vfio_agent c counter comment '"y2"'
n add rule ip filter2 sub counter comment '"x5"'
n add rule ip filter LIBVIRT_FWI counter comment '"y5"'
n add rule ip filter2 FORWARD jump sub
n add rule ip filter2 sub counter comment '"y6"'
n add table ip late
n add chain ip late fw '{ type filter hook forward priority 0; }'
n add rule ip late fw counter drop comment '"y3"'
n flush chain ip late fw
n delete chain ip late fw
n add chain ip late sub
n add rule ip late sub counter comment '"x3"'
n add table ip "$long"
n add chain ip "$long" fw '{ type filter hook forward priority 0; }'
n add rule inet churn sub counter comment '"y4"'
n delete table ip "$long"
n add rule inet churn sub counter comment '"x4"'
n add table inet last2
sleep 0.3
kill "$SPID"; wait "$SPID" 2>/dev/null
fev() { awk -v m="$1" -v t="$2" -v c="$3" '$2 == "nft" && $3 == m && $4 == t && $7 == c' "$TMP/fev"; }
check "following: the run came through" test -n "$(awk '$4 == "last2"' "$TMP/fev")"
check "following: another table's rules are dropped in the kernel (an input chain's)" \
	test -z "$(fev 6 churn input)"
# of inet churn sub's three, only the one made while a 70-byte name (cut in
# the events) had every table followed
check "following: another table's rules are dropped, except while a name may be cut" \
	test "$(fev 6 churn sub | wc -l)" -eq 1
check "following: a rule in a base chain on the path comes up and concerns the forward" \
	test -n "$(fev 6 filter2 FORWARD | grep ' concerns$')"
check "following: a rule in our table comes up" test -n "$(fev 6 vfio_agent c)"
check "following: a regular chain beside a base chain on the path is not followed, until it jumps there" \
	test "$(fev 6 filter2 sub | wc -l)" -eq 1
check "following: a rule in a chain a base chain jumps to comes up and concerns the forward" \
	test -n "$(fev 6 filter2 sub | grep ' concerns$')"
check "following: a rule in libvirt's chain that carries the exemption comes up" \
	test -n "$(fev 6 filter LIBVIRT_FWI | grep ' concerns$')"
check "following: a forward chain made later makes its table followed (its rule came up)" \
	test -n "$(fev 6 late fw | grep ' concerns$')"
check "following: once that chain is gone its table's rules are dropped again" \
	test -z "$(fev 6 late sub)"
check "following: chains of any table still come up" test -n "$(fev 3 late sub)"

# ---- dumps interrupted by another program's changes ----
in_ns host ip link add lan0 type veth peer name lan1
in_ns host ip link set lan0 up
in_ns host ip addr add 192.0.2.1/24 dev lan0
in_ns host sysctl -qw net.ipv4.ip_forward=1
cat >"$TMP/agent.conf" <<'CONF'
[vfio]
vm = win11
[vnc]
enable = true
interface = lan0
host.ip = 192.0.2.1
guest.ip = 198.51.100.10
CONF
for ((i = 0; i < 30000; i++)); do
	echo "add rule inet churn input ip saddr 10.9.$((i / 250 % 250)).$((i % 250 + 1)) counter"
	[ $((i % 50)) -eq 49 ] && echo "flush chain inet churn input"
done >"$TMP/flood.nft"
in_ns host nft -i <"$TMP/flood.nft" >/dev/null 2>&1 &
FPID=$!
fails=0 runs=0
while kill -0 "$FPID" 2>/dev/null && [ $runs -lt 300 ]; do
	in_ns host "$VFIO_AGENT" -q --config "$TMP/agent.conf" forward status >/dev/null 2>>"$TMP/status.err" ||
		fails=$((fails + 1))
	runs=$((runs + 1))
done
kill "$FPID" 2>/dev/null; wait "$FPID" 2>/dev/null
check "forward status never fails during a flood ($fails of $runs failed: $(sort -u "$TMP/status.err" | head -c 200))" \
	test "$fails" -eq 0 -a "$runs" -ge 20
finish
