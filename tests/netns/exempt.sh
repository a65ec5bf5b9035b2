#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# exempt = libvirt | auto | none: where the forward puts its tagged accept.
#
#   c1 (198.51.100.10) --lan0-- host (198.51.100.1) --vnet0-- guest (192.0.2.50)
#
# host.port 5900 goes to guest.port 5901, so that an exemption matching the
# wrong side of the translation lets nothing through. The host's firewall,
# one at a time: a chain with policy drop on each hook of the path, a real
# ufw (iptables-nft; its config copied into a mount namespace of the
# test's own), a real firewalld on a private D-Bus, and the table the NixOS
# firewall generates with forward filtering. With exempt = libvirt, status
# says BLOCKED and the client is stopped; with auto, forward up puts a narrow
# accept at the head of each chain that drops the flow, the client gets
# through, status is not BLOCKED, and forward down leaves the firewall's
# rules as they were (nft -s -a: no counters, with handles, so a rule taken
# out and put back would show). A firewall that accepts DNATed flows
# already (firewalld) gets nothing. exempt = none next to libvirt >= 10.4's
# reject: BLOCKED, exit 1, nothing of ours in libvirt's chain.
set -u
. "$(dirname "$0")/../lib.sh"
need_root exempt

fwd_scene 5901 || { not_ok setup "ip netns add"; finish; }

conf() { # conf EXEMPT
	cat >"$TMP/agent.conf" <<-CONF
	[vfio]
	vm = win11
	[vnc]
	enable = true
	interface = lan0
	host.ip = 198.51.100.1
	host.port = 5900
	guest.ip = 192.0.2.50
	guest.port = 5901
	allow = 198.51.100.0/24
	exempt = $1
	CONF
}
agent() { in_ns host "$VFIO_AGENT" -q --config "$TMP/agent.conf" "$@"; }
reaches() { [ "$(in_ns c1 timeout 5 socat -T 2 - TCP:198.51.100.1:5900,connect-timeout=2 </dev/null 2>/dev/null)" = guest ]; }
blocked() { ! reaches; }
# the ruleset without counters, with handles, less our own table
snap() { in_ns host nft -s -a list ruleset 2>/dev/null | awk '/^table inet vfio_agent /{skip=1} !skip; skip && /^}/{skip=0}'; }
# the same without handles: what the rules say
rules_of() { sed 's/ # handle [0-9]*$//' "$1"; }
# ours TABLESPEC: how many rules of ours the table holds
ours() { in_ns host nft list table $1 2>/dev/null | grep -c 'vfio-agent win11'; }
# a firewall's helper may leave the ruleset: each part starts from an empty one

# libvirt_blocks NAME PATTERN: with exempt = libvirt, up installs and exits 1
# with the BLOCKED line, status says it, and the client is stopped indeed
libvirt_blocks() {
	local rc
	conf libvirt
	agent forward up 2>"$TMP/err"; rc=$?
	check "$1: exempt = libvirt: forward up exits 1, BLOCKED" \
		test $rc -eq 1 -a -n "$(grep -E -- "BLOCKED: $2" "$TMP/err")"
	status_says "$1: exempt = libvirt: status BLOCKED" "^forward win11: BLOCKED: $2"
	check "$1: exempt = libvirt: the client is stopped indeed" blocked
}
# auto_up NAME: the ruleset before, then up with exempt = auto: exit 0, the
# client through, status exit 0 and not BLOCKED
auto_up() {
	local out rc
	conf auto
	agent forward down
	snap >"$TMP/before"
	agent forward up 2>"$TMP/err"; rc=$?
	check "$1: exempt = auto: forward up exits 0" test $rc -eq 0
	[ $rc -eq 0 ] || echo "# $(cat "$TMP/err")"
	check "$1: exempt = auto: the client gets through" reaches
	out=$(agent forward status); rc=$?
	check "$1: exempt = auto: status exits 0 and is not BLOCKED" \
		test $rc -eq 0 -a -z "$(grep BLOCKED <<<"$out")"
	[ $rc -eq 0 ] || echo "# $out"
}
# auto_down NAME: down leaves the ruleset as it was before up
auto_down() {
	agent forward down
	snap >"$TMP/after"
	if cmp -s "$TMP/before" "$TMP/after"; then
		ok "$1: forward down leaves the ruleset as it was ($(wc -l <"$TMP/after") lines of nft -s -a)"
	else
		not_ok "$1: forward down leaves the ruleset as it was" \
			"$(diff "$TMP/before" "$TMP/after" | head -20 | tr '\n' '|')"
	fi
}

# ---- a chain with policy drop on each hook of the path ----
# c1 resolves the host without ARP, which a netdev ingress chain drops too
in_ns c1 ip neigh replace 198.51.100.1 lladdr "$(in_ns host cat /sys/class/net/lan0/address)" dev eth0 nud permanent
in_ns host ip neigh replace 198.51.100.10 lladdr "$(in_ns c1 cat /sys/class/net/eth0/address)" dev lan0 nud permanent
hook_case() { # NAME FAMILY HOOKSPEC
	local name=$1 fam=$2 out
	in_ns host nft add table "$fam" other
	in_ns host nft add chain "$fam" other c "{ $3; policy drop; }"
	libvirt_blocks "$name" "$fam other c \(hook [a-z]+\) drops the flow: its policy is drop"
	auto_up "$name"
	out=$(agent forward status)
	check "$name: status lists the exemption in place" \
		grep -q "exemption in $fam other c: in place" <<<"$out"
	auto_down "$name"
	in_ns host nft delete table "$fam" other
}
hook_case "ip forward" ip "type filter hook forward priority 0"
hook_case "inet prerouting before conntrack" inet "type filter hook prerouting priority -300"
hook_case "inet prerouting before DNAT" inet "type filter hook prerouting priority -150"
hook_case "ip prerouting after DNAT" ip "type filter hook prerouting priority 0"
hook_case "ip postrouting before SNAT" ip "type filter hook postrouting priority 0"
hook_case "inet postrouting after SNAT" inet "type filter hook postrouting priority 200"
hook_case "inet ingress" inet "type filter hook ingress device lan0 priority 0"
hook_case "netdev ingress" netdev "type filter hook ingress device lan0 priority 0"
in_ns c1 ip neigh del 198.51.100.1 dev eth0
in_ns host ip neigh del 198.51.100.10 dev lan0

# what status and forward up do with an exemption of auto's gone, behind the
# chain's own rules, or no longer wanted: the repair the daemon runs is forward up's
in_ns host nft -f - <<'NFT'
table ip other {
	chain c { type filter hook forward priority 0; policy accept; ct state established,related accept; counter drop; }
}
NFT
auto_up "a final drop rule"
out=$(agent forward status --json)
check "status --json: the exemption, with its chain and at the head" python3 -c '
import json, sys
e = [x for x in json.loads(sys.argv[1])["exemptions"] if x["table"] == "other"]
sys.exit(not (len(e) == 1 and e[0]["family"] == "ip" and e[0]["chain"] == "c" and e[0]["present"]
              and e[0]["at_head"] and e[0]["wanted"] and not e[0]["libvirt"] and e[0]["rules"] == 2))' "$out"
check "the exemption is two rules, the flow's way and the guest's answer" test "$(ours "ip other")" -eq 2
in_ns host nft insert rule ip other c counter
status_says "a rule ahead of auto's exemption: NOT AT HEAD" "exemption in ip other c: NOT AT HEAD"
agent forward up
out=$(agent forward status); rc=$?
check "forward up moves it back to the head" test $rc -eq 0 -a -n "$(grep 'exemption in ip other c: in place' <<<"$out")"
for h in $(in_ns host nft -a list chain ip other c | grep 'vfio-agent' | sed 's/.*# handle //'); do
	in_ns host nft delete rule ip other c handle "$h"
done
status_says "auto's exemption taken away: ABSENT and BLOCKED" "exemption in ip other c: ABSENT"
agent forward up
check "forward up puts it back, and the client gets through" reaches
conf libvirt
agent forward up 2>/dev/null
check "exempt = libvirt again: forward up takes auto's exemption away" test "$(ours "ip other")" -eq 0
in_ns host nft delete rule ip other c handle "$(in_ns host nft -a list chain ip other c | grep -m1 'counter packets' | sed 's/.*# handle //')"
conf auto
auto_down "a final drop rule"
in_ns host nft delete table ip other

# ---- ufw: iptables-nft, FORWARD with policy DROP ----
if ! command -v ufw >/dev/null; then
	not_ok ufw "ufw is not installed (make deps installs it)"
else
	# its config, copied: ufw enable writes ENABLED=yes, and it must not be the host's
	mkdir -p "$TMP/ufw"
	cp -a /etc/ufw "$TMP/ufw/etc" && cp -a /lib/ufw "$TMP/ufw/lib" && cp /etc/default/ufw "$TMP/ufw/default"
	sed -i 's/^DEFAULT_FORWARD_POLICY=.*/DEFAULT_FORWARD_POLICY="DROP"/' "$TMP/ufw/default"
	host_ufw() { find /etc/ufw /lib/ufw /etc/default/ufw -type f -exec md5sum {} + | sort; }
	host_ufw >"$TMP/ufw.host"
	ufw_in() {
		in_ns host unshare -m sh -c 'mount --bind "$0/etc" /etc/ufw && mount --bind "$0/lib" /lib/ufw &&
			mount --bind "$0/default" /etc/default/ufw && mount -t tmpfs tmpfs /run && exec "$@"' \
			"$TMP/ufw" "$@"
	}
	ufw_in ufw --force enable >"$TMP/ufw.log" 2>&1
	check "ufw: enabled in the host namespace ($(tail -1 "$TMP/ufw.log"))" \
		grep -q 'policy drop' <<<"$(in_ns host nft list chain ip filter FORWARD 2>/dev/null)"
	libvirt_blocks ufw "ip filter FORWARD \(hook forward\) drops the flow: its policy is drop"
	auto_up ufw
	line=$(in_ns host iptables-nft -S FORWARD | sed -n 2p)
	check "ufw: iptables-nft reads the exemption as the chain's first rule ($line)" \
		grep -Eq -- '-i lan0 .*--dport 5901 .*--ctstate DNAT .*vfio-agent win11.* -j ACCEPT' <<<"$line"
	check "ufw: nothing of ours in ip6 filter, a family the forward does not use" test "$(ours "ip6 filter")" -eq 0
	auto_down ufw
	check "ufw: nothing of ours left in its tables" test "$(ours "ip filter")" -eq 0
	# ufw reload writes its rules anew: the daemon's repair (forward up) puts ours back.
	# ufw's first reload after enable adds two rules to its ip6 chains: the
	# reference is the ruleset after one reload of its own
	ufw_in ufw reload >/dev/null 2>&1
	snap >"$TMP/before"
	agent forward up
	ufw_in ufw reload >"$TMP/ufw.log" 2>&1; rc=$?
	n=$(ours "ip filter")
	check "ufw: ufw reload works with the exemption there ($(tail -1 "$TMP/ufw.log"); $n rules of ours left)" test $rc -eq 0
	agent forward up
	out=$(agent forward status); rc=$?
	check "ufw: after its reload, forward up has the exemption in place" \
		test $rc -eq 0 -a -n "$(grep 'exemption in ip filter FORWARD: in place' <<<"$out")"
	check "ufw: ... and the client gets through" reaches
	agent forward down
	snap >"$TMP/after"
	if cmp -s <(rules_of "$TMP/before") <(rules_of "$TMP/after"); then
		ok "ufw: down after its reload: ufw's rules as a reload without us leaves them (handles aside: ufw made them anew)"
	else
		not_ok "ufw: down after its reload: ufw's rules as they were" \
			"$(diff <(rules_of "$TMP/before") <(rules_of "$TMP/after") | head -20 | tr '\n' '|')"
	fi
	ufw_in ufw --force disable >/dev/null 2>&1
	in_ns host nft flush ruleset
	check "ufw: the host's own /etc/ufw, /lib/ufw, /etc/default/ufw are untouched" \
		cmp -s "$TMP/ufw.host" <(host_ufw)
fi

# ---- firewalld: nftables backend, a private D-Bus ----
if ! command -v firewalld >/dev/null; then
	not_ok firewalld "firewalld is not installed (make deps installs it)"
else
	# its system bus and its config, the test's own: /run in a mount namespace
	mkdir -p "$TMP/fw/run/dbus"
	cp -a /etc/firewalld "$TMP/fw/etc"
	export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$TMP/fw/run/dbus/system_bus_socket"
	( in_ns host unshare -m sh -c 'mount --bind "$0/run" /run && dbus-daemon --system --fork --nopidfile &&
		exec firewalld --nofork --nopid --system-config "$0/etc" --log-target console' "$TMP/fw" \
		>"$TMP/fw.log" 2>&1 & )
	for _ in $(seq 100); do in_ns host firewall-cmd --state >/dev/null 2>&1 && break; sleep 0.1; done
	check "firewalld: running in the host namespace (default zone $(in_ns host firewall-cmd --get-default-zone 2>/dev/null))" \
		eval 'in_ns host firewall-cmd --state >/dev/null'
	check "firewalld: its filter_FORWARD accepts ct status dnat" \
		grep -q 'ct status dnat accept' <<<"$(in_ns host nft list chain inet firewalld filter_FORWARD)"
	conf libvirt
	agent forward up; rc=$?
	out=$(agent forward status)
	check "firewalld: exempt = libvirt: up and status exit 0, not BLOCKED" \
		test $rc -eq 0 -a -z "$(grep BLOCKED <<<"$out")"
	check "firewalld: exempt = libvirt: the client gets through indeed" reaches
	auto_up firewalld
	check "firewalld: exempt = auto adds nothing to firewalld's table" test "$(ours "inet firewalld")" -eq 0
	check "firewalld: ... and lists no exemption" test -z "$(agent forward status | grep exemption)"
	auto_down firewalld
	in_ns host firewall-cmd --reload >/dev/null 2>&1
	auto_up "firewalld after --reload"
	auto_down "firewalld after --reload"
	for p in $(ip netns pids "$NS_PREFIX-host"); do kill "$p" 2>/dev/null; done
	for _ in $(seq 50); do [ -z "$(ip netns pids "$NS_PREFIX-host")" ] && break; sleep 0.1; done
	in_ns host nft flush ruleset
fi

# ---- the NixOS firewall (networking.nftables.enable, firewall.filterForward = true) ----
# the shape nixos/modules/services/networking/firewall-nftables.nix generates:
# a reverse-path filter before DNAT and a forward chain, both policy drop,
# whose accepts live in chains they jump to
in_ns host nft -f - <<'NFT'
table inet nixos-fw {
	set temp-ports {
		type inet_proto . inet_service
		flags interval
		auto-merge
	}
	chain rpfilter {
		type filter hook prerouting priority mangle + 10; policy drop;
		meta nfproto ipv4 udp sport . udp dport { 67 . 68, 68 . 67 } accept
		fib saddr . mark . iif oif exists accept
		jump rpfilter-allow
	}
	chain rpfilter-allow {
	}
	chain input {
		type filter hook input priority filter; policy drop;
		iifname { "lo" } accept
		ct state vmap { invalid : drop, established : accept, related : accept, new : jump input-allow, untracked : jump input-allow }
	}
	chain input-allow {
		tcp dport { 22 } accept
		meta l4proto . th dport @temp-ports accept
		icmp type echo-request accept
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state vmap { invalid : drop, established : accept, related : accept, new : jump forward-allow, untracked : jump forward-allow }
	}
	chain forward-allow {
		icmpv6 type != { router-renumbering, 139 } accept
		ct status dnat accept comment "allow port forward"
	}
}
NFT
conf libvirt
agent forward up 2>"$TMP/err"; rc=$?
out=$(agent forward status)
check "nixos: exempt = libvirt: forward up exits 0 and status is not BLOCKED: the verdict map jumps to forward-allow, whose ct status dnat accepts, and rpfilter's fib accepts ($(cat "$TMP/err") $(grep BLOCKED <<<"$out"))" \
	test $rc -eq 0 -a -z "$(grep BLOCKED <<<"$out")"
check "nixos: exempt = libvirt: the client gets through indeed" reaches
auto_up nixos
check "nixos: exempt = auto adds nothing to nixos-fw" test "$(ours "inet nixos-fw")" -eq 0
auto_down nixos
# without the accept it jumps to, the forward chain drops the flow, and says so
in_ns host nft flush chain inet nixos-fw forward-allow
conf libvirt
agent forward up 2>"$TMP/err"; rc=$?
check "nixos without forward-allow's accept: BLOCKED names inet nixos-fw forward ($(head -c 200 "$TMP/err"))" \
	test $rc -eq 1 -a -n "$(grep 'BLOCKED: inet nixos-fw forward' "$TMP/err")"
check "nixos without forward-allow's accept: the client is stopped indeed" blocked
agent forward down
in_ns host nft delete table inet nixos-fw

# ---- exempt = none, next to libvirt >= 10.4 ----
# its forward chain jumps to guest_input, which rejects new flows to its guests
for f in ip ip6; do
	in_ns host nft -f - <<NFT
table $f libvirt_network {
	chain guest_output { }
	chain guest_input {
		oifname "vnet0" ct state established,related counter accept
		oifname "vnet0" counter reject
	}
	chain guest_cross { }
	chain forward {
		type filter hook forward priority filter; policy accept;
		counter jump guest_cross
		counter jump guest_input
		counter jump guest_output
	}
}
NFT
done
conf none
agent forward up 2>"$TMP/err"; rc=$?
check "none: forward up exits 1, BLOCKED by libvirt's reject" \
	test $rc -eq 1 -a -n "$(grep 'BLOCKED: ip libvirt_network guest_input (libvirt.s) rejects' "$TMP/err")"
status_says "none: status BLOCKED, naming libvirt's chain and exempt = none" \
	"^forward win11: BLOCKED: ip libvirt_network guest_input \(libvirt's\) rejects new flows into its guests.*exempt = none"
check "none: nothing of ours in libvirt's chain" test "$(ours "ip libvirt_network")" -eq 0
check "none: no exemption line (none is wanted)" test -z "$(agent forward status 2>&1 | grep 'exemption in')"
check "none: the client is stopped indeed" blocked
conf libvirt
agent forward up
out=$(agent forward status); rc=$?
check "libvirt: the exemption in place, status exits 0" \
	test $rc -eq 0 -a -n "$(grep 'exemption in ip libvirt_network guest_input: in place' <<<"$out")"
check "libvirt: the client gets through" reaches
conf none
agent forward up 2>/dev/null
check "none again: forward up takes libvirt's exemption away" test "$(ours "ip libvirt_network")" -eq 0
agent forward down
finish
