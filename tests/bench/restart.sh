#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The daemon's repairs against libvirt 11.3 as Debian 13 ships it (the trixie
# chroot's libvirtd, tests/libvirt/trixie-root), with each firewall backend,
# RUNS (10) times each, in namespaces made here:
#  1. nft flush ruleset -> our table back (libvirt's chains come back only
#     with libvirtd);
#  2. net-destroy + net-start -> the exemption back at the head of libvirt's
#     new chain;
#  3. libvirtd killed and started -> the exemption back at the head, while
#     libvirtd has not answered yet;
#  4. firewall-cmd --reload, with firewalld (nftables backend) on a private
#     D-Bus that is the chroot's system bus, so libvirtd hears its Reloaded
#     -> the exemption back at the head after libvirt's rewrite, and from
#     firewalld's first change. Without firewalld installed: no such rows.
# Both ends of each are the kernel's own netlink notifications, stamped by
# tests/helpers/nlstamp. 2 and 3 are timed from libvirt's last change to its
# chains before the repair (and, for 3 and 4, from its first: the whole
# rewrite). After the table: what else the reloads changed.
# Prints medians and maxima as a Markdown table for the README. Not a test.
set -u
: "${RUNS:=10}"
NS_PREFIX=${NS_PREFIX:-lv-$$}
. "$(dirname "$0")/../lib.sh"
need_root bench
. "$(dirname "$0")/../libvirt/env.sh"
if [ -z "${VFIO_LIBVIRT_INNER:-}" ]; then
	LV11=$("$(dirname "$0")/../libvirt/trixie-root") || exit 1
	export LV11
fi
libvirt_enter host lan gst

lv11_setup "$LV11" lan gst
DPID=
FWPID=
trap '[ -n "$DPID" ] && kill -9 "$DPID"; [ -n "$FWPID" ] && kill -9 "$FWPID"
	[ -s "$TMP/bus.pid" ] && kill -9 "$(cat "$TMP/bus.pid")"
	stamps_stop; libvirt_daemons_kill; umount "$NSDIR"/*; rm -rf "$TMP"' EXIT
lan_and_guest 52:54:00:00:00:12
printf '%s\n' '[vfio]' 'vm = bench' '[vnc]' 'enable = true' 'interface = lan0' \
	'host.ip = 192.0.2.1' 'guest.ip = 198.51.100.50' >"$TMP/conf"
export LIBVIRT_DEFAULT_URI=$LV_URI
has_table() { nft list table inet vfio_agent >/dev/null 2>&1; }
# the exemption heads libvirt's chain (iptables-nft's comments are not shown by nft)
at_head() {
	case $1 in
	nftables) nft list chain ip libvirt_network guest_input 2>/dev/null | sed -n 3p ;;
	iptables) iptables-nft -S LIBVIRT_FWI 2>/dev/null | sed -n 2p ;;
	esac | grep -q vfio-agent
}
until_ok() { # until_ok TENTHS CMD...
	local n=$1; shift
	while ! "$@"; do n=$((n - 1)); [ "$n" -le 0 ] && return 1; sleep 0.1; done
}
# median FILE COLUMN, max FILE COLUMN: of the figures in ms
median() { awk -v c="$2" '{ print $c }' "$1" | sort -n | awk '{ v[NR] = $1 } END { printf "%.1f", NR ? v[int((NR + 1) / 2)] : 0 }'; }
max() { awk -v c="$2" '{ print $c }' "$1" | sort -n | tail -n 1; }
# until_quiet FILE: until FILE has not grown for half a second (5 s at most)
until_quiet() {
	local n=0 was=-1 now
	for _ in $(seq 50); do
		now=$(wc -c <"$1")
		[ "$now" = "$was" ] && { n=$((n + 1)); [ "$n" -ge 5 ] && return 0; } || n=0
		was=$now
		sleep 0.1
	done
	return 1
}
# reload_times FILE PORTID: a firewalld reload in FILE; prints "FIRST LAST WHOLE
# DROP" in ms: the daemon's (PORTID's) last rule in libvirt's chains since
# libvirt's first and last change there before it (those after firewalld's
# drop table went: firewalld's own flush of iptables' tables comes before),
# since firewalld's first change, and how long its drop table stood
reload_times() {
	awk -v own="$2" '$2 != "nft" { next }
	$4 == "firewalld_policy_drop" && $3 == 0 && !t0 { t0 = $1 }
	$4 == "firewalld_policy_drop" && $3 == 2 && t0 && !gone { gone = $1 }
	gone && ($4 ~ /^libvirt/ || $7 ~ /^LIBVIRT_/) {
		if ($5 != own) { if (!first) first = $1; lv = $1 }
		else if ($3 == 6 && first) { r = $1; rlv = lv }
	}
	END { if (r) printf "%.1f %.1f %.1f %.1f\n", (r - first) / 1000, (r - rlv) / 1000, (r - t0) / 1000, (gone - t0) / 1000 }' "$1"
}

lv11_backend nftables
lv11_start
nat_network lvnet virbr-lv || { echo "bench: libvirt 11 did not start its network" >&2; exit 1; }
domain_xml bench >"$TMP/bench.xml"
V define "$TMP/bench.xml" >/dev/null && V start bench >/dev/null ||
	{ echo "bench: the domain did not start" >&2; exit 1; }

declare -A rows
for b in nftables iptables; do
	V net-destroy lvnet >/dev/null
	lv11_kill
	lv11_backend "$b"
	lv11_start
	V net-start lvnet >/dev/null
	"$VFIO_AGENT" --config "$TMP/conf" daemon --foreground >"$TMP/daemon.log" 2>&1 &
	DPID=$!
	disown "$DPID"
	until_ok 100 at_head "$b" || { echo "bench: the daemon did not set up the forward" >&2; exit 1; }
	port=$(nl_portid "$DPID")
	: >"$TMP/flush" && : >"$TMP/net" && : >"$TMP/restart"
	for _ in $(seq "$RUNS"); do
		stamps_start "$TMP/stamps"
		nft flush ruleset
		until_ok 20 has_table
		sleep 0.2
		stamps_stop
		awk -v own="$port" '$2 == "nft" && $4 == "vfio_agent" && $3 == 2 && !t { t = $1 }
			$2 == "nft" && $4 == "vfio_agent" && $3 == 0 && $5 == own && t { printf "%.1f\n", ($1 - t) / 1000; exit }' \
			"$TMP/stamps" >>"$TMP/flush"
		# libvirt's chains back for the next rounds
		lv11_kill
		lv11_start
		until_ok 50 at_head "$b"
	done
	for _ in $(seq "$RUNS"); do
		stamps_start "$TMP/stamps"
		V net-destroy lvnet >/dev/null
		V net-start lvnet >/dev/null
		until_ok 50 at_head "$b"
		sleep 0.2
		stamps_stop
		repair_times "$TMP/stamps" "$port" >>"$TMP/net"
	done
	for _ in $(seq "$RUNS"); do
		lv11_kill
		until_ok 50 grep -q "connection lost" "$TMP/daemon.log"
		stamps_start "$TMP/stamps"
		lv11_start
		until_ok 50 at_head "$b"
		sleep 0.3
		stamps_stop
		repair_times "$TMP/stamps" "$port" >>"$TMP/restart"
		# the next kill is seen as a loss of its own
		: >"$TMP/daemon.log"
	done
	kill -TERM "$DPID"
	until_ok 50 eval "[ ! -d /proc/$DPID ]"
	DPID=
	rows[$b]="| libvirt 11.3, $b: \`nft flush ruleset\` -> our table back | $(wc -l <"$TMP/flush") | $(median "$TMP/flush" 1) ms | $(max "$TMP/flush" 1) ms | |
| libvirt 11.3, $b: \`net-destroy\` + \`net-start\` -> exemption back at the head | $(wc -l <"$TMP/net") | $(median "$TMP/net" 2) ms | $(max "$TMP/net" 2) ms | $(median "$TMP/net" 1) ms |
| libvirt 11.3, $b: libvirtd restart -> exemption back at the head | $(wc -l <"$TMP/restart") | $(median "$TMP/restart" 2) ms | $(max "$TMP/restart" 2) ms | $(median "$TMP/restart" 1) ms |"
done

# 4: firewalld, last (a flush would take its tables), its bus at the chroot's
# /run/dbus/system_bus_socket; libvirtd started after it, to hear its signals
notes=()
if ! command -v firewalld >/dev/null || ! command -v dbus-daemon >/dev/null; then
	echo "bench: firewalld or dbus-daemon is not installed: no firewalld reload rows" >&2
else
	fwc() { DBUS_SYSTEM_BUS_ADDRESS="unix:path=$LV11_ROOT/run/dbus/system_bus_socket" firewall-cmd "$@"; }
	# its config, with libvirt's zones and policies from the chroot
	cp -a /etc/firewalld "$TMP/fw"
	sed -i 's/^FirewallBackend=.*/FirewallBackend=nftables/' "$TMP/fw/firewalld.conf"
	mkdir -p "$TMP/fw/zones" "$TMP/fw/policies" "$LV11_ROOT/run/dbus"
	cp "$LV11_ROOT"/usr/lib/firewalld/zones/*.xml "$TMP/fw/zones/"
	cp "$LV11_ROOT"/usr/lib/firewalld/policies/*.xml "$TMP/fw/policies/"
	V net-destroy lvnet >/dev/null
	lv11_kill
	unshare -m sh -c 'mount --bind "$0/run" /run &&
		dbus-daemon --system --fork --nopidfile --print-pid=3 3>"$2/bus.pid" &&
		exec firewalld --nofork --nopid --system-config "$1" --log-target console' \
		"$LV11_ROOT" "$TMP/fw" "$TMP" >"$TMP/fw.log" 2>&1 &
	FWPID=$!
	disown "$FWPID"
	fw_up() { fwc --state >/dev/null 2>&1; }
	until_ok 150 fw_up ||
		{ echo "bench: firewalld did not start: $(tail -n 1 "$TMP/fw.log")" >&2; exit 1; }
	fwver=$(fwc --version)
	for b in nftables iptables; do
		lv11_backend "$b"
		lv11_start
		V net-start lvnet >/dev/null
		[ "$(fwc --get-zone-of-interface=virbr-lv 2>/dev/null)" = libvirt ] ||
			{ echo "bench: libvirt did not put its bridge in firewalld's libvirt zone" >&2; exit 1; }
		"$VFIO_AGENT" --config "$TMP/conf" daemon --foreground >"$TMP/daemon.log" 2>&1 &
		DPID=$!
		disown "$DPID"
		until_ok 100 at_head "$b" || { echo "bench: the daemon did not set up the forward" >&2; exit 1; }
		port=$(nl_portid "$DPID")
		: >"$TMP/reload"
		ours=0
		for _ in $(seq "$RUNS"); do
			stamps_start "$TMP/stamps"
			fwc --reload >/dev/null
			# libvirt rewrites its chains on firewalld's Reloaded, after the call returns
			until_quiet "$TMP/stamps"
			until_ok 50 at_head "$b"
			stamps_stop
			reload_times "$TMP/stamps" "$port" >>"$TMP/reload"
			ours=$((ours + $(awk -v own="$port" '$2 == "nft" && $4 == "vfio_agent" && $5 != own' "$TMP/stamps" | wc -l)))
		done
		kill -TERM "$DPID"
		until_ok 50 eval "[ ! -d /proc/$DPID ]"
		DPID=
		V net-destroy lvnet >/dev/null
		lv11_kill
		rows[$b]+="
| libvirt 11.3, $b, firewalld $fwver: \`firewall-cmd --reload\` -> exemption back at the head | $(wc -l <"$TMP/reload") | $(median "$TMP/reload" 2) ms | $(max "$TMP/reload" 2) ms | $(median "$TMP/reload" 1) ms |
| libvirt 11.3, $b, firewalld $fwver: \`firewall-cmd --reload\`, from firewalld's first change -> exemption back at the head | $(wc -l <"$TMP/reload") | $(median "$TMP/reload" 3) ms | $(max "$TMP/reload" 3) ms | |"
		notes+=("firewalld reload, libvirt $b: libvirt rewrote its chains after $(wc -l <"$TMP/reload") of $RUNS reloads; firewalld's drop table (inet firewalld_policy_drop) stood $(median "$TMP/reload" 4) ms (median), $(max "$TMP/reload" 4) ms at most; $ours changes by others to table inet vfio_agent")
	done
fi

echo "| reaction | runs | median | max | median from libvirt's first change |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[nftables]}" "${rows[iptables]}"
[ ${#notes[@]} -eq 0 ] || { echo; printf '%s\n' "${notes[@]}"; }
