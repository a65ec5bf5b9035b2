#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The forward against libvirt 11 as Debian 13 ships it: the libvirtd of a
# trixie chroot (tests/libvirt/trixie-root builds it once and caches it), run
# in namespaces made here, with its nftables backend and then its iptables
# one. The host's vfio-agent runs outside the chroot, in the same network
# namespace. A LAN client namespace reaches a TCP server in a guest-side
# namespace on libvirt's bridge through the forward and libvirt's own reject;
# forward status says so; the daemon repairs the exemption after
# net-destroy/net-start and after a libvirtd restart. What libvirt wrote is
# kept in $LV11_RULESETS (when set) for the netns tier's replica.
set -u
NS_PREFIX=${NS_PREFIX:-lv-$$}
. "$(dirname "$0")/../lib.sh"
need_root libvirt
. "$(dirname "$0")/env.sh"
if [ -z "${VFIO_LIBVIRT_INNER:-}" ]; then
	# built (once) before the namespaces, so that its download is not in them
	if ! LV11=$("$(dirname "$0")/trixie-root" 2>"$TMP/trixie.err"); then
		not_ok "libvirt 11: a trixie chroot" "$(tail -n 1 "$TMP/trixie.err")"
		finish
	fi
	export LV11
fi
libvirt_enter host lan gst

# ---- inside: our own namespaces ----
lv11_setup "$LV11" lan gst
DPID=
stop_daemon() { [ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null; DPID=; }
trap 'stop_daemon; stamps_stop; libvirt_daemons_kill; umount "$NSDIR"/*; rm -rf "$TMP"' EXIT

MAC=52:54:00:00:00:11
lan_and_guest "$MAC"
in_net gst ip addr add 198.51.100.50/24 dev eth0
in_net gst ip route add default via 198.51.100.1
in_net gst socat TCP-LISTEN:5900,fork,reuseaddr SYSTEM:'echo guest' >/dev/null 2>&1 &
client() { in_net lan socat -T 2 - "TCP:192.0.2.1:5900,connect-timeout=2" </dev/null 2>/dev/null; }
reaches() { [ "$(client)" = guest ]; }
until_ok() {
	local end=$((SECONDS + $1)); shift
	while ! "$@"; do [ $SECONDS -ge $end ] && return 1; sleep 0.05; done
}
stateless() { nft -s list ruleset 2>/dev/null; }
agent() { "$VFIO_AGENT" -q --config "$TMP/conf" "$@"; }
cat >"$TMP/conf" <<'EOC'
[vfio]
vm = win11

[vnc]
enable = true
interface = lan0
host.ip = 192.0.2.1
host.port = 5900
guest.ip = 198.51.100.50
guest.port = 5900
EOC
export LIBVIRT_DEFAULT_URI=$LV_URI

# backend nftables|iptables: one round against libvirt 11 with that firewall backend
backend() {
	local b=$1 chain what rfirst rlast t
	what="libvirt 11, $b backend"
	case $b in
	nftables) chain="ip libvirt_network guest_input" ;;
	iptables) chain="ip filter LIBVIRT_FWI" ;;
	esac
	# the chain's rules in order, as the program that wrote them shows them (nft
	# does not show iptables-nft's comments); the exemption is the first
	rules() {
		case $b in
		nftables) nft list chain $chain 2>/dev/null | sed '1,2d; /^\t*}/d' ;;
		iptables) iptables-nft -S LIBVIRT_FWI 2>/dev/null | sed 1d ;;
		esac
	}
	at_head() { rules | head -n 1 | grep -q 'vfio-agent win11'; }
	del_exempt() {
		local n
		case $b in
		nftables)
			nft -a list chain $chain 2>/dev/null | awk '/vfio-agent win11/ { print $NF }' |
				while read -r n; do nft delete rule $chain handle "$n"; done ;;
		iptables)
			n=$(rules | grep -n 'vfio-agent win11' | cut -d: -f1 | head -n 1)
			[ -n "$n" ] && iptables-nft -D LIBVIRT_FWI "$n" ;;
		esac
	}

	lv11_backend "$b"
	lv11_start
	check "$what: libvirtd $(V version --daemon 2>/dev/null | sed -n 's/^Running against daemon: //p') runs" \
		eval 'V version --daemon | grep -q "daemon: 11\."'
	V net-start lvnet >/dev/null && ip link set vg0 master virbr-lv
	check "$what: its NAT network lvnet runs" eval 'V net-list | grep -q lvnet'
	nft list ruleset >"$TMP/ruleset.$b" 2>&1
	[ -n "${LV11_RULESETS:-}" ] && cp "$TMP/ruleset.$b" "$LV11_RULESETS/libvirt-11.3-$b.nft"
	check "$what: libvirt's chain $chain exists" eval "nft list chain $chain >/dev/null 2>&1"
	before=$(stateless)

	# ---- forward up and status, by hand ----
	agent forward up >"$TMP/out" 2>&1
	rc=$?
	check "$what: forward up exits 0" eval '[ $rc -eq 0 ] || { cat "$TMP/out"; false; }'
	check "$what: the exemption heads $chain" at_head
	check "$what: the LAN client reaches the guest's server through libvirt's reject" reaches
	"$VFIO_AGENT" --config "$TMP/conf" forward status >"$TMP/status" 2>&1
	rc=$?
	check "$what: forward status exits 0 and says the exemption is in place" \
		eval "[ $rc -eq 0 ] && grep -q 'exemption in $chain: in place' $TMP/status"
	check "$what: forward status says nothing is NOT AT HEAD, ABSENT or BLOCKED" \
		eval "! grep -e 'NOT AT HEAD' -e ABSENT -e BLOCKED $TMP/status"
	del_exempt
	if reaches; then
		not_ok "$what: without the exemption libvirt's reject stops the client (control)" \
			"the client reaches the guest: $(rules | tr '\n\t' '  ')"
	else
		ok "$what: without the exemption libvirt's reject stops the client (control)"
	fi
	agent forward down
	check "$what: forward down leaves libvirt's rules as they were" \
		eval '[ "$before" = "$(stateless)" ]'

	# ---- the daemon ----
	: >"$TMP/daemon.log"
	"$VFIO_AGENT" -v --config "$TMP/conf" daemon --foreground >>"$TMP/daemon.log" 2>&1 &
	DPID=$!
	disown "$DPID"
	check "$what: the daemon puts the forward up" until_ok 10 reaches
	port=$(nl_portid "$DPID")

	stamps_start "$TMP/stamps"
	V net-destroy lvnet >/dev/null
	V net-start lvnet >/dev/null
	ip link set vg0 master virbr-lv
	check "$what: net-destroy, net-start: the exemption is back at the head" until_ok 2 at_head
	check "$what: net-destroy, net-start: the client reaches the guest" until_ok 2 reaches
	sleep 0.3
	stamps_stop
	read -r rfirst rlast <<<"$(repair_times "$TMP/stamps" "$port")"
	check "$what: net-destroy, net-start: repaired ${rfirst:-?} ms after libvirt's first rewrite, ${rlast:-?} ms after its last" \
		[ -n "${rfirst:-}" ]

	lv11_kill
	check "$what: libvirtd killed: the daemon says it lost the connection" \
		until_ok 5 grep -q "libvirt connection lost" "$TMP/daemon.log"
	stamps_start "$TMP/stamps"
	lv11_start
	check "$what: libvirtd back: the daemon reconnects" \
		until_ok 10 grep -q "connected to libvirt" "$TMP/daemon.log"
	sleep 0.3
	stamps_stop
	[ -n "${LV11_RULESETS:-}" ] && cp "$TMP/stamps" "$LV11_RULESETS/restart-$b.stamps" &&
		cp "$TMP/daemon.log" "$LV11_RULESETS/restart-$b.log"
	repair_judged "$what: libvirtd back" "$TMP/stamps" "$port"
	check "$what: libvirtd back: the exemption heads $chain" at_head
	check "$what: libvirtd back: the repair came from the nftables monitor, before libvirt answered" \
		repaired_while_away "$TMP/daemon.log"
	check "$what: libvirtd back: the client reaches the guest" until_ok 2 reaches
	"$VFIO_AGENT" --config "$TMP/conf" forward status >"$TMP/status" 2>&1
	rc=$?
	check "$what: libvirtd back: forward status exits 0, in place" \
		eval "[ $rc -eq 0 ] && grep -q 'exemption in $chain: in place' $TMP/status"

	kill -TERM "$DPID"
	until_ok 5 eval "[ ! -d /proc/$DPID ]"
	DPID=
	check "$what: SIGTERM: the daemon leaves libvirt's rules as they were" \
		eval '[ "$before" = "$(stateless)" ]'
	if [ "$TESTS_FAILED" -gt 0 ]; then
		echo "# $what: the daemon's log:"; tail -n 15 "$TMP/daemon.log" | sed 's/^/# /'
		echo "# libvirtd's log:"; tail -n 10 "$LV11_ROOT/var/log/libvirt/libvirtd.log" | sed 's/^/# /'
	fi
	V net-destroy lvnet >/dev/null
	lv11_kill
	until_ok 5 eval '! V version >/dev/null 2>&1'
}

# the first start as the nftables round's: what it records is libvirt's alone
lv11_backend nftables
lv11_start
nat_network lvnet virbr-lv || { not_ok setup "libvirt 11 did not start network lvnet: $(tail -n 3 "$LV11_ROOT/var/log/libvirt/libvirtd.log")"; finish; }
domain_xml win11 >"$TMP/win11.xml"
V define "$TMP/win11.xml" >/dev/null && V start win11 >/dev/null ||
	{ not_ok setup "libvirt 11 did not start domain win11: $(tail -n 3 "$LV11_ROOT/var/log/libvirt/libvirtd.log")"; finish; }
V net-destroy lvnet >/dev/null
lv11_kill
until_ok 5 eval '! V version >/dev/null 2>&1'

backend nftables
backend iptables
finish
