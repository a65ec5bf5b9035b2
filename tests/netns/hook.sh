#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The hook's forward with guest.ip = auto: the guest's address learned from
# the domain XML's MAC, through the neighbour table (rtnetlink) or else
# libvirt's dnsmasq lease file; an expired lease is not used; an address
# not known yet leaves the forward to the daemon. stopped end removes it.
set -u
. "$(dirname "$0")/../lib.sh"
need_root hook

mkns host || { not_ok setup "ip netns add"; finish; }
mkns guest || { not_ok setup "ip netns add"; finish; }
link host lan0 guest eth0
link host virbr0 guest eth1
in_ns host ip addr add 192.0.2.1/24 dev lan0
in_ns host ip addr add 198.51.100.1/24 dev virbr0
MAC=52:54:00:6b:3c:58 # examples/win11.xml's interface, on virbr0
ROOT=$TMP/root
mkdir -p "$ROOT/var/lib/libvirt/dnsmasq"
cat >"$TMP/c.conf" <<'EOC'
[vfio]
vm = win11
passthrough = false
[vnc]
enable = true
interface = lan0
host.ip = 192.0.2.1
guest.ip = auto
EOC
# the agent's syslog lines land in $TMP/syslog (tests/helpers/kshim.c); stdout is
# checked after every call
hook() {
	local rc
	in_ns host env LD_PRELOAD="$UNIT_DIR/kshim.so" KSHIM_SYSLOG="$TMP/syslog" \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
		"$VFIO_AGENT" --root "$ROOT" --config "$TMP/c.conf" hook win11 "$@" \
		<examples/win11.xml >"$TMP/out" 2>"$TMP/err"
	rc=$?
	hook_quiet "$*" "$TMP/out"
	return $rc
}
guest_in_rules() { in_ns host nft list table inet vfio_agent 2>/dev/null | grep -qw "$1"; }
no_table() { ! in_ns host nft list table inet vfio_agent >/dev/null 2>&1; }

# nothing known yet: exit 0, no forward (the daemon's job), nothing on stdout
hook started begin -
rc=$?
check "address unknown: exit 0" [ $rc -eq 0 ]
check "address unknown: no forward" no_table
check "address unknown: stdout empty" [ ! -s "$TMP/out" ]

# libvirt's lease file for the bridge the domain XML names
now=$(date +%s)
cat >"$ROOT/var/lib/libvirt/dnsmasq/virbr0.status" <<EOL
[
  { "ip-address": "198.51.100.66", "mac-address": "52:54:00:00:00:01", "expiry-time": $((now + 3600)) },
  { "ip-address": "198.51.100.77", "mac-address": "$MAC", "expiry-time": $((now - 60)) }
]
EOL
hook started begin -
check "an expired lease is not used" no_table
cat >"$ROOT/var/lib/libvirt/dnsmasq/virbr0.status" <<EOL
[ { "ip-address": "198.51.100.50", "mac-address": "$MAC", "hostname": "win11", "expiry-time": $((now + 3600)) } ]
EOL
hook started begin -
rc=$?
check "lease: exit 0" [ $rc -eq 0 ]
if guest_in_rules 198.51.100.50; then ok "lease: the forward goes to the leased address"
else not_ok "lease" "$(in_ns host nft list ruleset | head -40; cat "$TMP/err")"; fi
hook stopped end -
check "stopped end: the forward is gone" no_table

# the neighbour table is current: it wins over the lease
in_ns host ip neigh replace 198.51.100.60 lladdr "$MAC" dev virbr0 nud reachable
hook started begin -
rc=$?
check "neighbour: exit 0" [ $rc -eq 0 ]
if guest_in_rules 198.51.100.60; then ok "neighbour: the forward goes to the MAC's address"
else not_ok "neighbour" "$(in_ns host nft list ruleset | head -40; cat "$TMP/err")"; fi
hook reconnect begin -
check "reconnect: exit 0, the forward kept" guest_in_rules 198.51.100.60

# a reconnect on a forward that has counted traffic (a SYN from the LAN side is enough)
in_ns guest ip addr add 192.0.2.2/24 dev eth0
in_ns host sysctl -qw net.ipv4.ip_forward=1
in_ns guest timeout 3 socat -T 1 /dev/null TCP:192.0.2.1:5900,connect-timeout=1 2>/dev/null
in_ns host ip neigh replace 198.51.100.60 lladdr "$MAC" dev virbr0 nud reachable
: >"$TMP/syslog"
NFT_IN="in_ns host"
idempotent "reconnect begin, after traffic" "$TMP/syslog" "forward win11 already up" \
	hook reconnect begin -
NFT_IN=
hook stopped end -
check "stopped end: gone again" no_table

echo '[{"ip-address": 5, "mac-address": null}, "x", {}]' >"$ROOT/var/lib/libvirt/dnsmasq/virbr0.status"
in_ns host ip neigh flush dev virbr0
hook started begin -
rc=$?
check "a malformed lease file: exit 0, no forward, no crash" sh -c "[ $rc -eq 0 ] && ! ip netns exec $NS_PREFIX-host nft list table inet vfio_agent >/dev/null 2>&1"
hook_quiet_all
finish
