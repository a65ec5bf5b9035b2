#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The forward through real nftables in namespaces this test makes:
#
#   c1 (198.51.100.10, .200; 2001:db8:1::10) --lan0-- host --virbr0-- guest (192.0.2.50)
#   c2 (203.0.113.10)                        --lan1--/
#
# host.ip 198.51.100.1:5900 -> guest 192.0.2.50:5901; allow 198.51.100.0/25.
# The guest's service answers with the address it sees.
set -u
. "$(dirname "$0")/../lib.sh"
need_root forward

mkns host && mkns c1 && mkns c2 && mkns guest || { not_ok setup "ip netns add"; finish; }
link host lan0 c1 eth0
link host lan1 c2 eth0
in_ns host ip link add virbr0 type bridge
in_ns host ip link set virbr0 up
link host vnet0 guest eth0
in_ns host ip link set vnet0 master virbr0
in_ns host ip addr add 198.51.100.1/24 dev lan0
in_ns host ip addr add 2001:db8:1::1/64 dev lan0 nodad
in_ns host ip addr add 203.0.113.1/24 dev lan1
in_ns host ip addr add 192.0.2.1/24 dev virbr0
in_ns host ip addr add 2001:db8:2::1/64 dev virbr0 nodad
in_ns host sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
in_ns c1 ip addr add 198.51.100.10/24 dev eth0
in_ns c1 ip addr add 198.51.100.200/24 dev eth0
in_ns c1 ip addr add 2001:db8:1::10/64 dev eth0 nodad
in_ns c2 ip addr add 203.0.113.10/24 dev eth0
in_ns c2 ip route add default via 203.0.113.1
in_ns guest ip addr add 192.0.2.50/24 dev eth0
in_ns guest ip addr add 2001:db8:2::50/64 dev eth0 nodad
in_ns guest ip route add default via 192.0.2.1
in_ns guest ip -6 route add default via 2001:db8:2::1

spawn guest socat TCP4-LISTEN:5901,fork,reuseaddr 'SYSTEM:echo $SOCAT_PEERADDR'
spawn guest socat TCP6-LISTEN:5901,fork,reuseaddr,ipv6only=1 'SYSTEM:echo $SOCAT_PEERADDR'
for _ in $(seq 50); do
	[ "$(in_ns guest ss -Hltn 'sport = :5901' | wc -l)" -ge 2 ] && break
	sleep 0.1
done

cat >"$TMP/agent.conf" <<CONF
[vfio]
vm = win11

[vnc]
enable = true
interface = lan0
host.ip = 198.51.100.1 2001:db8:1::1
host.port = 5900
guest.ip = 192.0.2.50 2001:db8:2::50
guest.port = 5901
allow = 198.51.100.0/25 2001:db8:1::/64
CONF
agent() { in_ns host "$VFIO_AGENT" -q --config "$TMP/agent.conf" "$@"; }
# connect NS ADDR [socat options]: what the guest saw as our address
connect() {
	local ns=$1 addr=$2; shift 2
	in_ns "$ns" timeout 6 socat -t 2 - "TCP:$addr,connect-timeout=4$*" </dev/null 2>/dev/null
}
ruleset() { in_ns host nft list ruleset 2>/dev/null; }
ruleset_stateless() { in_ns host nft -s list ruleset 2>/dev/null; }

# Tables that are not ours, a table named like ours in another family among them.
in_ns host nft -f - <<'NFT'
table ip vfio_agent {
	chain keep { counter; }
}
table inet filter {
	chain input { type filter hook input priority 0; policy accept; tcp dport 22 accept; }
}
NFT

before=$(ruleset_stateless)
check "the unrelated tables are loaded" grep -q 'table ip vfio_agent' <<<"$before"
check "before up the guest is not reachable through host.ip" \
	test -z "$(connect c1 198.51.100.1:5900)"

agent forward up; rc=$?
check "forward up exits 0" test "$rc" -eq 0
up1=$(ruleset)
check "our table is inet vfio_agent" grep -q '^table inet vfio_agent' <<<"$up1"
agent forward up
check "a second up leaves nft list ruleset byte-identical" test "$up1" = "$(ruleset)"

got=$(connect c1 198.51.100.1:5900)
check "LAN client reaches the guest through host.ip:host.port" test -n "$got"
check "the guest sees the LAN client's real address (got '$got')" test "$got" = 198.51.100.10
got=$(connect c1 '[2001:db8:1::1]:5900')
# socat writes IPv6 peers in full, bracketed
check "IPv6: LAN client reaches the guest, real address kept (got '$got')" \
	test "$got" = '[2001:0db8:0001:0000:0000:0000:0000:0010]'
got=$(connect c1 198.51.100.1:5900 ,bind=198.51.100.200)
check "a client outside allow does not get through (got '$got')" test -z "$got"
got=$(connect c2 198.51.100.1:5900)
check "a client on the other interface does not get through (got '$got')" test -z "$got"
got=$(connect host 198.51.100.1:5900)
check "the host itself reaches the guest through host.ip:host.port (got '$got')" test -n "$got"
got=$(connect host 127.0.0.1:5900)
check "loopback is never translated (got '$got')" test -z "$got"

# with traffic counted: a second up leaves every counter and handle, and makes no event
NFT_IN="in_ns host"
up_again() { in_ns host "$VFIO_AGENT" --config "$TMP/agent.conf" forward up 2>"$TMP/up.err"; }
idempotent "a second up, after traffic" "$TMP/up.err" "forward win11 already up" up_again
NFT_IN=

st=$(agent forward status --json)
check "status: in sync with the config" grep -q '"in_sync":true' <<<"$st"
check "status: forward counted packets" \
	grep -Eq '"packets":[1-9]' <<<"$(tr -d ' \n' <<<"$st" | grep -o '"forwards":\[[^]]*')"
check "status: dropped clients counted" grep -Eq '"dropped":\{"packets":[1-9]' <<<"$(tr -d ' \n' <<<"$st")"

agent forward down
check "after down, the guest is not reachable" test -z "$(connect c1 198.51.100.1:5900)"
check "after down the ruleset is the one before up; ip vfio_agent and inet filter kept" \
	test "$before" = "$(ruleset_stateless)"

# byte-identical: a cycle without traffic in between
before=$(ruleset)
agent forward up && agent forward down
check "up then down leaves the ruleset byte-identical" test "$before" = "$(ruleset)"

# libvirt 9: its iptables-nft rules reject new flows into the guest subnet
in_ns host sh -e <<'IPT'
iptables-nft -N LIBVIRT_FWI
iptables-nft -N LIBVIRT_FWO
iptables-nft -N LIBVIRT_FWX
iptables-nft -A FORWARD -j LIBVIRT_FWX
iptables-nft -A FORWARD -j LIBVIRT_FWI
iptables-nft -A FORWARD -j LIBVIRT_FWO
iptables-nft -A LIBVIRT_FWX -i virbr0 -o virbr0 -j ACCEPT
iptables-nft -A LIBVIRT_FWI -d 192.0.2.0/24 -o virbr0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
iptables-nft -A LIBVIRT_FWI -o virbr0 -j REJECT --reject-with icmp-port-unreachable
iptables-nft -A LIBVIRT_FWO -s 192.0.2.0/24 -i virbr0 -j ACCEPT
iptables-nft -A LIBVIRT_FWO -i virbr0 -j REJECT --reject-with icmp-port-unreachable
IPT
before=$(ruleset_stateless)
agent forward up
check "libvirt 9: the exemption heads LIBVIRT_FWI, as iptables-nft lists it" \
	grep -q -- '^-A LIBVIRT_FWI -d 192.0.2.50/32 -i lan0 -p tcp -m tcp --dport 5901 -m conntrack --ctstate DNAT -m comment --comment "vfio-agent win11: tcp 192.0.2.50:5901" -j ACCEPT' \
	<<<"$(in_ns host iptables-nft -S LIBVIRT_FWI 2>/dev/null | sed -n 2p)"
check "libvirt 9: the LAN client gets through libvirt's reject" \
	test "$(connect c1 198.51.100.1:5900)" = 198.51.100.10
check "libvirt 9: status shows the exemption in place" \
	grep -q 'exemption in ip filter LIBVIRT_FWI: in place' <<<"$(agent forward status)"
in_ns host iptables-nft -D LIBVIRT_FWI 1 2>/dev/null
check "libvirt 9: without the exemption libvirt's reject blocks it (control)" \
	test -z "$(connect c1 198.51.100.1:5900)"
check "libvirt 9: status says the exemption is absent" \
	grep -q 'exemption in ip filter LIBVIRT_FWI: ABSENT' <<<"$(agent forward status)"
agent forward up
check "libvirt 9: up puts the exemption back" \
	test "$(connect c1 198.51.100.1:5900)" = 198.51.100.10
agent forward down
check "libvirt 9: down removes the exemption and nothing else" test "$before" = "$(ruleset_stateless)"
check "libvirt 9: no vfio-agent rule left in iptables-nft" \
	test -z "$(in_ns host iptables-nft -S 2>/dev/null | grep vfio-agent)"
in_ns host nft delete table ip filter

# libvirt >= 10.4: its own nftables tables, as libvirt 11.3 writes them
libvirt_nft_tables host virbr0 192.0.2.0/24
before=$(ruleset_stateless)
agent forward up
check "libvirt 10: the exemption heads guest_input" \
	grep -q 'comment "vfio-agent win11: tcp 192.0.2.50:5901"' \
	<<<"$(in_ns host nft list chain ip libvirt_network guest_input | sed -n 3p)"
check "libvirt 10: the LAN client gets through libvirt's reject" \
	test "$(connect c1 198.51.100.1:5900)" = 198.51.100.10
# libvirt re-applies its rules (a libvirtd restart): each one deleted, then
# inserted at the head again, the reject first, so that its accept leads
in_ns host nft -a list chain ip libvirt_network guest_input |
	awk '!/vfio-agent/ && !/chain / && / # handle / { print $NF }' | while read -r h; do
	in_ns host nft delete rule ip libvirt_network guest_input handle "$h"
done
in_ns host nft insert rule ip libvirt_network guest_input oif virbr0 counter reject
in_ns host nft insert rule ip libvirt_network guest_input oif virbr0 ip daddr 192.0.2.0/24 \
	ct state established,related counter accept
check "libvirt 10 re-applied: its reject ahead of the exemption stops the client" \
	test -z "$(connect c1 198.51.100.1:5900)"
check "libvirt 10 re-applied: status says NOT AT HEAD" \
	grep -q 'exemption in ip libvirt_network guest_input: NOT AT HEAD' <<<"$(agent forward status)"
# our table's rules, their handles and counters, before the exemption is put back
ours_now() { in_ns host nft -a list table inet vfio_agent | grep -E 'counter packets [1-9]'; }
kept=$(ours_now)
agent forward up
check "libvirt 10 re-applied: up moves only the exemption; our table keeps its handles and counters" \
	test -n "$kept" -a "$kept" = "$(ours_now)"
check "libvirt 10 re-applied: up puts the exemption back at the head" \
	grep -q 'comment "vfio-agent win11: tcp 192.0.2.50:5901"' \
	<<<"$(in_ns host nft list chain ip libvirt_network guest_input | sed -n 3p)"
check "libvirt 10 re-applied: the client gets through again" \
	test "$(connect c1 198.51.100.1:5900)" = 198.51.100.10
agent forward down
check "libvirt 10: down removes the exemption and nothing else" test "$before" = "$(ruleset_stateless)"
check "libvirt 10: the client is rejected again" test -z "$(connect c1 198.51.100.1:5900)"
in_ns host nft delete table ip libvirt_network
in_ns host nft delete table ip6 libvirt_network

# forward up and down by hand take the lock the hook and the daemon hold
mkdir -p -m 0700 "$TMP/lockroot/run/vfio-agent"
# under --root the forwarding sysctls are the tree's too
mkdir -p "$TMP/lockroot/proc/sys/net/ipv4" "$TMP/lockroot/proc/sys/net/ipv6/conf/all"
echo 1 >"$TMP/lockroot/proc/sys/net/ipv4/ip_forward"
echo 1 >"$TMP/lockroot/proc/sys/net/ipv6/conf/all/forwarding"
flock "$TMP/lockroot/run/vfio-agent/lock" sleep 1 &
LOCKER=$!
sleep 0.2
t0=$(date +%s%N)
in_ns host "$VFIO_AGENT" -q --root "$TMP/lockroot" --config "$TMP/agent.conf" forward up
rc=$?
waited=$((($(date +%s%N) - t0) / 1000000))
wait "$LOCKER"
check "forward up waits for the lock's holder (exit $rc after ${waited} ms)" \
	eval '[ $rc -eq 0 ] && [ $waited -ge 500 ]'
in_ns host "$VFIO_AGENT" -q --root "$TMP/lockroot" --config "$TMP/agent.conf" forward down

finish
