#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# forward status, forward up and diagnose judge the path a LAN client's
# packet takes; each cause below makes status exit 1 and name it, and the
# client is really blocked while it lasts:
#
#   c1 (198.51.100.10) --lan0-- host (198.51.100.1) --vnet0-- guest (192.0.2.50)
#
# ip_forward 0, a loopback guest, a guest that is the host's own address,
# host.ip not on lan0, a listener on host.ip:5900, a foreign chain dropping
# the flow on each hook (netdev ingress too), and, as warnings, an XDP
# program and a tc BPF filter on lan0 that drop the port.
set -u
. "$(dirname "$0")/../lib.sh"
need_root path

fwd_scene 5900 || { not_ok setup "ip netns add"; finish; }

conf() { # conf GUEST [HOST]
	cat >"$TMP/agent.conf" <<-CONF
	[vfio]
	vm = win11
	[vnc]
	enable = true
	interface = lan0
	host.ip = ${2:-198.51.100.1}
	guest.ip = $1
	allow = 198.51.100.0/24
	CONF
}
conf 192.0.2.50
agent() { in_ns host "$VFIO_AGENT" -q --config "$TMP/agent.conf" "$@"; }
blocked() { ! reaches; }
reaches() { [ "$(in_ns c1 timeout 5 socat -T 2 - TCP:198.51.100.1:5900,connect-timeout=2 </dev/null 2>/dev/null)" = guest ]; }

agent forward up
check "forward up on a clear path exits 0" test $? -eq 0
out=$(agent forward status); rc=$?
check "status on a clear path exits 0 and says up" test $rc -eq 0 -a -n "$(grep 'up, matches' <<<"$out")"
check "the client reaches the guest" reaches

in_ns host sysctl -qw net.ipv4.ip_forward=0
status_says "ip_forward 0: BLOCKED" "^forward win11: BLOCKED: net.ipv4.ip_forward = 0"
check "ip_forward 0: the client is blocked indeed" blocked
agent forward up 2>"$TMP/err"; rc=$?
check "ip_forward 0: forward up installs and exits 1 naming it" \
	test $rc -eq 1 -a -n "$(grep 'BLOCKED: net.ipv4.ip_forward = 0' "$TMP/err")"
in_ns host "$VFIO_AGENT" --config "$TMP/agent.conf" diagnose --json --device /dev/null --backend proc >"$TMP/diag" 2>/dev/null
check "ip_forward 0: diagnose's vnc-forward check fails with it" python3 -c '
import json, sys
c = [x for x in json.load(open(sys.argv[1]))["checks"] if x["name"] == "vnc-forward"]
sys.exit(not (c and not c[0]["ok"] and c[0]["detail"].startswith("BLOCKED: net.ipv4.ip_forward = 0")))' "$TMP/diag"
in_ns host sysctl -qw net.ipv4.ip_forward=1

conf 127.0.0.1
status_says "loopback guest: BLOCKED" "BLOCKED: guest.ip 127.0.0.1 is a loopback address"
conf 192.0.2.1
status_says "guest.ip a host address: BLOCKED" "BLOCKED: guest.ip 192.0.2.1 is an address of this host"
conf 192.0.2.50 198.51.100.7
status_says "host.ip not on lan0: BLOCKED" "BLOCKED: host.ip 198.51.100.7 is not an address of lan0"
conf 192.0.2.50
agent forward up

spawn host socat TCP4-LISTEN:5900,bind=0.0.0.0,reuseaddr -
for _ in $(seq 50); do in_ns host ss -Hltn 'sport = :5900' | grep -q . && break; sleep 0.1; done
status_says "a listener on 0.0.0.0:5900: BLOCKED, with its process" \
	"BLOCKED: tcp 0.0.0.0:5900 is served by socat \(pid [0-9]+\)"
for p in $(in_ns host ss -Hltnp 'sport = :5900' | grep -o 'pid=[0-9]*' | cut -d= -f2); do kill "$p"; done
sleep 0.2

# foreign chains that drop, one hook at a time
drop_chain() { # NAME FAMILY HOOKSPEC
	in_ns host nft add table "$2" other
	in_ns host nft add chain "$2" other c "{ $3; policy drop; }"
	status_says "$1: BLOCKED, naming the table and chain" "BLOCKED: $2 other c \(hook [a-z]+\) drops the flow: its policy is drop"
	check "$1: the client is blocked indeed" blocked
	in_ns host nft delete table "$2" other
}
drop_chain "ip forward policy drop" ip "type filter hook forward priority 0"
drop_chain "inet prerouting policy drop" inet "type filter hook prerouting priority -300"
drop_chain "ip postrouting policy drop" ip "type filter hook postrouting priority 0"
drop_chain "inet ingress policy drop" inet "type filter hook ingress device lan0 priority 0"
drop_chain "netdev ingress policy drop" netdev "type filter hook ingress device lan0 priority 0"
in_ns host nft -f - <<'NFT'
table ip other {
	chain c { type filter hook forward priority 0; policy accept; ct state established accept; drop; }
}
NFT
status_says "a final drop rule: BLOCKED" "BLOCKED: ip other c \(hook forward\) drops the flow: its last rule drops"
in_ns host nft insert rule ip other c ct status dnat accept
out=$(agent forward status); rc=$?
check "an accept for ct status dnat covers it: status exits 0" test $rc -eq 0
check "... and the client gets through" reaches
in_ns host nft delete table ip other
in_ns host nft add table ip6 other
in_ns host nft add chain ip6 other c '{ type filter hook forward priority 0; policy drop; }'
out=$(agent forward status); rc=$?
check "an ip6 drop chain does not block an IPv4-only forward" test $rc -eq 0
in_ns host nft delete table ip6 other
in_ns host nft add table inet other
in_ns host nft add chain inet other c '{ type filter hook input priority 0; policy drop; }'
out=$(agent forward status); rc=$?
check "a drop chain on input is not on the path" test $rc -eq 0
in_ns host nft delete table inet other

# the accept a chain jumps (or goes) to covers it; a reverse-path fib accept
# covers a chain before DNAT; a chain jumped to that only drops does not
in_ns host nft -f - <<'NFT'
table inet other {
	chain allow { ct status dnat accept; }
	chain c { type filter hook forward priority 0; policy drop; ct state established,related accept; jump allow; }
	chain rpf { type filter hook prerouting priority -140; policy drop; fib saddr . iif oif exists accept; }
}
NFT
out=$(agent forward status); rc=$?
check "a jump to a chain that accepts ct status dnat covers the chain, and a fib accept before DNAT: status exits 0 ($(grep BLOCKED <<<"$out"))" \
	test $rc -eq 0
check "... and the client gets through indeed" reaches
in_ns host nft flush chain inet other c
in_ns host nft add rule inet other c goto allow
out=$(agent forward status); rc=$?
check "a goto to it covers it too" test $rc -eq 0
in_ns host nft flush chain inet other allow
in_ns host nft add rule inet other allow counter drop
status_says "a chain jumped to that drops: BLOCKED names the base chain" \
	"BLOCKED: inet other c \(hook forward\)"
in_ns host nft delete table inet other

# BPF before nftables: warnings, and the client blocked
in_ns host ip link set dev lan0 xdpgeneric obj "$UNIT_DIR/xdp_drop.bpf.o" sec xdp
out=$(agent forward status); rc=$?
check "XDP: status names the program as a warning ($(grep WARN <<<"$out" | sed 's/^ *//'))" \
	grep -Eq "WARN: BPF program id [0-9]+ 'xdp_drop_vnc', xdp \(generic\) on lan0" <<<"$out"
check "XDP: a warning alone does not make status exit 1" test $rc -eq 0
check "XDP: the client is blocked indeed" blocked
in_ns host ip link set dev lan0 xdpgeneric off
check "XDP off: the client gets through" reaches
in_ns host tc qdisc add dev lan0 clsact
in_ns host tc filter add dev lan0 ingress bpf da obj "$UNIT_DIR/xdp_drop.bpf.o" sec tc
out=$(agent forward status); rc=$?
check "tc: status names the filter as a warning ($(grep WARN <<<"$out" | sed 's/^ *//'))" \
	grep -Eq "WARN: BPF program id [0-9]+ 'tc_drop_vnc', tc ingress on lan0" <<<"$out"
check "tc: the client is blocked indeed" blocked
in_ns host tc qdisc del dev lan0 clsact

# libvirt >= 10.4 as libvirt 11.3 writes it: both families' tables exist; the
# forward is IPv4 only
libvirt_nft_tables host vnet0 192.0.2.0/24
agent forward up
out=$(agent forward status); rc=$?
check "libvirt: the exemption in ip is in place, status exits 0" \
	test $rc -eq 0 -a -n "$(grep 'exemption in ip libvirt_network guest_input: in place' <<<"$out")"
check "libvirt: no line for ip6, a family the forward does not use" \
	test -z "$(grep 'ip6 libvirt_network' <<<"$out")"
# libvirt re-applies its rules at the head
in_ns host nft insert rule ip libvirt_network guest_input oif vnet0 counter reject
status_says "libvirt: its reject ahead of the exemption: NOT AT HEAD" \
	"exemption in ip libvirt_network guest_input: NOT AT HEAD"
agent forward up
out=$(agent forward status); rc=$?
check "libvirt: forward up moves it back to the head" test $rc -eq 0
agent forward down
finish
