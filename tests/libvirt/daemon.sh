#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The daemon against a real libvirtd (its own, in namespaces it made), a
# real NAT network with libvirt's dnsmasq, and a real QEMU (TCG) domain.
# The guest's network side is a namespace on libvirt's bridge with the
# domain's MAC: it takes its address from libvirt's DHCP and serves TCP on
# 5900. A LAN client namespace reaches it through the forward while the
# test moves the host's address, tampers with the ruleset, restarts
# libvirt's network and libvirtd, stops the domain and the daemon.
set -u
. "$(dirname "$0")/../lib.sh"
need_root libvirt
. "$(dirname "$0")/env.sh"
libvirt_enter host lan gst

# ---- inside: our own namespaces ----
libvirt_setup lan gst
DPID=
stop_daemon() { [ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null; DPID=; }
trap 'stop_daemon; stamps_stop; libvirt_daemons_kill; umount "$NSDIR"/*; rm -rf "$TMP"' EXIT

MAC=52:54:00:00:00:10
lan_and_guest "$MAC"
libvirt_start
nat_network vanet virbr-va
check "libvirt's NAT network vanet runs" sh -c "virsh -q -c qemu:///system net-list | grep -q vanet"
nat_domain win11 vanet "$MAC"
check "the domain is defined" sh -c "virsh -q -c qemu:///system list --all | grep -q win11"

# the guest's service
in_net gst socat TCP-LISTEN:5900,fork,reuseaddr SYSTEM:'echo guest' >/dev/null 2>&1 &
# client HOST: what the LAN client reads from HOST:5900 ("guest" through the forward)
client() { in_net lan socat -T 2 - "TCP:$1:5900,connect-timeout=2" </dev/null 2>/dev/null; }
reaches() { [ "$(client "$1")" = guest ]; }
# until SECS CMD...: CMD succeeds within SECS seconds
until_ok() {
	local end=$((SECONDS + $1)); shift
	while ! "$@"; do [ $SECONDS -ge $end ] && return 1; sleep 0.05; done
}
table() { nft list table inet vfio_agent 2>/dev/null; }
has_table() { nft list table inet vfio_agent >/dev/null 2>&1; }

cat >"$TMP/conf" <<EOC
[vfio]
vm = win11

[vnc]
enable = true
interface = lan0
host.ip = auto
host.port = 5900
guest.ip = auto
guest.port = 5900
EOC
# as examples/vfio-agent.service runs it, as far as this machine allows:
# CAP_NET_ADMIN alone (CapabilityBoundingSet), no new privileges
HARDEN=(setpriv --bounding-set -all,+net_admin --inh-caps=-all --no-new-privs)
# -v: a resync that finds the forward in place says so ("already up")
start_daemon() {
	"${HARDEN[@]}" "$VFIO_AGENT" -v --config "$TMP/conf" daemon --foreground "$@" >>"$TMP/daemon.log" 2>&1 &
	DPID=$!
	disown "$DPID"
	until_ok 5 grep -q "daemon ready" "$TMP/daemon.log"
}
# wait_exit PID: it exited 0 within 5 s (it is not our child: poll)
wait_exit() {
	until_ok 5 eval "[ ! -d /proc/$1 ]" || return 1
	grep -q "forward win11 removed: the daemon stops" "$TMP/daemon.log"
}
log_has() { until_ok "${2:-3}" grep -q -- "$1" "$TMP/daemon.log"; }

nft -s list ruleset >"$TMP/ruleset.before" 2>/dev/null
check "the daemon starts and says it is ready" start_daemon
check "it runs with CAP_NET_ADMIN alone" grep -qx "CapEff:	0000000000001000" "/proc/$DPID/status"
check "no forward while win11 is not running" sh -c "! nft list table inet vfio_agent >/dev/null 2>&1"

# ---- start: the forward within 2 s of the guest's address ----
V start win11 >/dev/null
guest_dhcp
# a guest that has its address talks: the gateway learns its MAC
in_net gst ping -c 1 -W 1 198.51.100.1 >/dev/null 2>&1
t0=$(date +%s%N)
gip=$(guest_ip)
if until_ok 2 reaches 192.0.2.1; then
	ok "start: the LAN client reaches the guest ($gip) through 192.0.2.1:5900, $((($(date +%s%N) - t0) / 1000000)) ms after its address"
else
	not_ok "start: the client through the forward" "guest ip '$gip'; $(tail -n 5 "$TMP/daemon.log")"
fi
check "start: the daemon said why, once" eval "[ \$(grep -c 'forward win11 up' $TMP/daemon.log) -eq 1 ]"
check "start: its own changes did not wake it (the monitor skips our port)" \
	eval "! grep -q 'changed by another program' $TMP/daemon.log"
"$VFIO_AGENT" --config "$TMP/conf" forward status >"$TMP/status" 2>&1
check "forward status with guest.ip = auto asks libvirt: the forward to $gip is in place" \
	eval "grep -q '192.0.2.1\]*:5900 -> $gip:5900  in place' $TMP/status"

# ---- the host's address moves ----
ip addr del 192.0.2.1/24 dev lan0
ip addr add 192.0.2.5/24 dev lan0
if until_ok 2 reaches 192.0.2.5; then
	ok "address change: the client reaches the guest at the host's new address 192.0.2.5"
else
	not_ok "address change" "$(tail -n 3 "$TMP/daemon.log"; table)"
fi
check "address change: logged with the old and new forward" \
	log_has "host address 192.0.2.[15] .* lan0: forward win11 updated: tcp 192.0.2.5:5900 -> .* (was tcp 192.0.2.1:5900"

# ---- the guest takes a new lease: the forward follows ----
# a reservation for its MAC, then a release and a new request, as a
# renumbering on the DHCP server's side plays out
V net-update vanet add ip-dhcp-host "<host mac='$MAC' ip='198.51.100.150'/>" --live >/dev/null
guest_dhcp -R
guest_dhcp
in_net gst ping -c 1 -W 1 198.51.100.1 >/dev/null 2>&1
nip=$(guest_ip)
check "new lease: the guest is now $nip" [ "$nip" = 198.51.100.150 ]
if until_ok 2 reaches 192.0.2.5 && log_has "forward win11 updated: tcp 192.0.2.5:5900 -> 198.51.100.150:5900"; then
	ok "new lease: the forward follows the guest to $nip, and the client reaches it"
else
	not_ok "new lease" "$(tail -n 3 "$TMP/daemon.log"; table | grep 198.51)"
fi
gip=$nip

exempt_line() { iptables-nft -S LIBVIRT_FWI 2>/dev/null | grep -n vfio-agent | cut -d: -f1; }
has_exempt() { [ -n "$(exempt_line)" ]; }
check "the exemption heads libvirt's LIBVIRT_FWI" eval '[ "$(exempt_line)" = 2 ]'

# ---- libvirt restarts its network, then libvirtd itself ----
V net-destroy vanet >/dev/null
V net-start vanet >/dev/null
ip link set vg0 master virbr-va
check "network restart: libvirt rewrote its chains" sh -c "nft list chain ip filter LIBVIRT_FWI >/dev/null 2>&1"
check "network restart: the exemption is back" until_ok 2 has_exempt
check "network restart: the forward works" until_ok 2 reaches 192.0.2.5
kill -9 "$(cat /run/libvirtd.pid)"
check "libvirtd killed: the rules stay" has_table
check "libvirtd killed: the daemon says it lost the connection" log_has "libvirt connection lost"
# libvirtd rewrites its chains as it starts, its reject ahead of our exemption: the
# daemon repairs from the nftables monitor, before libvirt answers (the kernel's
# events, stamped: tests/bench/daemon.sh measures the same)
stamps_start "$TMP/stamps"
libvirtd -d
check "libvirtd back: the daemon reconnects" log_has "connected to libvirt" 10
check "libvirtd back: the forward still works" until_ok 2 reaches 192.0.2.5
sleep 0.3
stamps_stop
repair_judged "libvirtd back" "$TMP/stamps" "$(nl_portid "$DPID")"
check "libvirtd back: the exemption heads LIBVIRT_FWI again" eval '[ "$(exempt_line)" = 2 ]'
check "libvirtd back: the repair came from the nftables monitor, before libvirt answered" \
	repaired_while_away "$TMP/daemon.log"

# ---- tampering: the exemption, our table, the whole ruleset ----
iptables-nft -D LIBVIRT_FWI "$(($(exempt_line) - 1))"
check "tamper: a deleted exemption is put back" until_ok 2 has_exempt
nft delete table inet vfio_agent
check "tamper: a deleted table is put back" until_ok 2 has_table
check "tamper: ... and the forward works" until_ok 2 reaches 192.0.2.5
nft flush ruleset
check "tamper: after nft flush ruleset the table is back" until_ok 2 has_table
check "tamper: ... and the forward works" until_ok 2 reaches 192.0.2.5
check "tamper: the exemption's repair named libvirt's chain" \
	log_has "ip filter LIBVIRT_FWI rules changed by another program: forward win11 repaired"
check "tamper: the table's repair named our table" \
	log_has "inet vfio_agent [a-z_]* rules changed by another program: forward win11 repaired"
# libvirt rebuilds its own chains only when libvirtd starts
connected() { grep -c "connected to libvirt" "$TMP/daemon.log"; }
nconn=$(connected)
kill -9 "$(cat /run/libvirtd.pid)"
libvirtd -d
check "libvirtd restarted after the flush: the exemption joins its new chains" until_ok 10 has_exempt
# (what follows wants a libvirtd that has started: the repair comes before it answers)
check "libvirtd restarted after the flush: the daemon reconnects" \
	until_ok 10 eval '[ "$(connected)" -gt "$nconn" ]'

# ---- the hook holds the lock: the daemon waits its turn ----
mkdir -p -m 0700 /run/vfio-agent
flock /run/vfio-agent/lock sleep 1.5 &
LPID=$!
sleep 0.2
nft delete table inet vfio_agent
sleep 0.5
check "lock: while the hook holds it, the daemon does not write" eval '! has_table'
check "lock: once it is free, the daemon repairs" until_ok 3 has_table
check "lock: the repair came from a retry" log_has "(retry): forward win11 repaired"
wait "$LPID"

# ---- the monitor overflows while the daemon is stopped: a full resync ----
{
	echo "add table inet va_flood"
	echo "add chain inet va_flood c"
	for _ in $(seq 20000); do echo "add rule inet va_flood c counter"; done
} >"$TMP/flood.nft"
kill -STOP "$DPID"
nft delete table inet vfio_agent
nft -f "$TMP/flood.nft" && nft delete table inet va_flood
kill -CONT "$DPID"
check "overflow: 40,000 events while stopped; the daemon says it resyncs" \
	log_has "nftables monitor overflowed: full resync" 5
check "overflow: ... and the table is back" until_ok 3 has_table
check "overflow: ... and the forward works" until_ok 2 reaches 192.0.2.5

# ---- a bad config at SIGHUP: logged, the old one stays ----
cp "$TMP/conf" "$TMP/conf.good"
echo "bogus line" >>"$TMP/conf"
kill -HUP "$DPID"
check "SIGHUP with a bad config: one error line" log_has "SIGHUP: .*the old config and its forward stay in force"
check "SIGHUP with a bad config: the forward stays" reaches 192.0.2.5
ip addr del 192.0.2.5/24 dev lan0
ip addr add 192.0.2.6/24 dev lan0
check "SIGHUP with a bad config: the old config still follows the host" until_ok 2 reaches 192.0.2.6
cp "$TMP/conf.good" "$TMP/conf"
kill -HUP "$DPID"
check "SIGHUP with a good config: reloaded" log_has "config .* reloaded"

# ---- exempt = auto: another firewall's forward chain, its accept kept by the daemon ----
nft add table ip va_fw
nft add chain ip va_fw fw '{ type filter hook forward priority 10; policy drop; }'
check "another firewall's policy-drop forward chain: the daemon logs BLOCKED" \
	log_has "forward win11: BLOCKED: ip va_fw fw (hook forward) drops the flow"
check "... and the client is stopped indeed" eval '! reaches 192.0.2.6'
sed -i '/^\[vnc\]/a exempt = auto' "$TMP/conf"
kill -HUP "$DPID"
auto_rules() { nft -a list chain ip va_fw fw 2>/dev/null | grep 'vfio-agent win11'; }
check "exempt = auto at SIGHUP: the daemon puts its accept in ip va_fw fw" \
	until_ok 3 eval '[ -n "$(auto_rules)" ]'
check "exempt = auto: the client gets through" until_ok 2 reaches 192.0.2.6
nauto=$(auto_rules | wc -l)
nft delete rule ip va_fw fw handle "$(auto_rules | head -1 | sed 's/.*# handle //')"
check "exempt = auto: a deleted accept is put back by the daemon" \
	until_ok 2 eval '[ "$(auto_rules | wc -l)" = "$nauto" ]'
check "exempt = auto: ... and the client gets through" until_ok 2 reaches 192.0.2.6
cp "$TMP/conf.good" "$TMP/conf"
kill -HUP "$DPID"
check "exempt = libvirt again at SIGHUP: the daemon takes its accept out of ip va_fw fw" \
	until_ok 3 eval '[ -z "$(auto_rules)" ]'
nft delete table ip va_fw

# ---- the domain stops: the forward goes ----
V destroy win11 >/dev/null
check "stop: the forward is gone with the domain" until_ok 2 eval '! has_table'
"$VFIO_AGENT" -q --config "$TMP/conf" forward up >"$TMP/out" 2>"$TMP/err"
judge "forward up, guest.ip = auto, domain stopped: exit 1, says why" 1 "domain win11 is not running" $?
check "stop: logged" log_has "domain win11 \(stopped\|shut down\): forward win11 removed"

# ---- SIGTERM: the ruleset as it was before the daemon ----
stop_daemon
V start win11 >/dev/null
nft -s list ruleset >"$TMP/ruleset.before" 2>/dev/null
rm -f "$TMP/notify.sock"
socat -u "UNIX-RECVFROM:$TMP/notify.sock,fork" SYSTEM:'cat; echo' >"$TMP/notify.log" 2>/dev/null &
NPID=$!
until_ok 2 test -S "$TMP/notify.sock"
NOTIFY_SOCKET=$TMP/notify.sock WATCHDOG_USEC=400000 start_daemon
in_net gst ping -c 1 -W 1 198.51.100.1 >/dev/null 2>&1
check "restarted: the forward is up" until_ok 3 reaches 192.0.2.6
# (socat's children may interleave their lines: match anywhere)
# (socat forks a child per datagram: on a loaded machine the first ones come late)
check "systemd: READY=1" until_ok 3 grep -q "READY=1" "$TMP/notify.log"
check "systemd: STATUS names the forward" \
	until_ok 3 grep -q "STATUS=win11: tcp 192.0.2.6:5900 -> $gip:5900 on lan0" "$TMP/notify.log"
sleep 1
check "systemd: WATCHDOG=1 pings at half of WatchdogSec ($(grep -c WATCHDOG=1 "$TMP/notify.log") in about 1.5 s)" \
	eval '[ "$(grep -c WATCHDOG=1 "$TMP/notify.log")" -ge 4 ]'

# ---- ip_forward turned off, then on: the kernel's netconf events, the path judged again ----
last_status() { grep -a 'STATUS=' "$TMP/notify.log" | tail -n 1; }
sysctl -qw net.ipv4.ip_forward=0
check "ip_forward = 0: the daemon logs BLOCKED" log_has "forward win11: BLOCKED: net.ipv4.ip_forward = 0"
check "ip_forward = 0: its STATUS says BLOCKED" \
	until_ok 3 eval 'last_status | grep -q "STATUS=win11: BLOCKED: net.ipv4.ip_forward = 0"'
sysctl -qw net.ipv4.ip_forward=1
check "ip_forward = 1: the daemon logs that the forward is no longer blocked" \
	log_has "forward win11: no longer blocked"
check "ip_forward = 1: its STATUS names the forward again" \
	until_ok 3 eval 'last_status | grep -q "STATUS=win11: tcp 192.0.2.6:5900 -> $gip:5900 on lan0"'
kill -TERM "$DPID"
check "SIGTERM: the daemon exits 0" eval 'wait_exit "$DPID"'
check "systemd: STOPPING=1" until_ok 2 grep -q "STOPPING=1" "$TMP/notify.log"
kill "$NPID" 2>/dev/null
nft -s list ruleset >"$TMP/ruleset.after" 2>/dev/null
if diff -u "$TMP/ruleset.before" "$TMP/ruleset.after" >"$TMP/ruleset.diff"; then
	ok "SIGTERM: the ruleset is byte-identical to before the daemon started"
else
	not_ok "SIGTERM: the ruleset" "$(head -n 30 "$TMP/ruleset.diff")"
fi

# ---- kill -9, restart: the same rules, no duplicates ----
start_daemon
check "kill -9: the forward is up" until_ok 3 reaches 192.0.2.6
nft -s list ruleset >"$TMP/ruleset.up" 2>/dev/null
stop_daemon
start_daemon
until_ok 3 log_has "daemon ready" >/dev/null
sleep 0.3
nft -s list ruleset >"$TMP/ruleset.again" 2>/dev/null
if diff -u "$TMP/ruleset.up" "$TMP/ruleset.again" >"$TMP/ruleset.diff"; then
	ok "kill -9 and a restart: the same ruleset, no duplicate rule ($(grep -c vfio-agent "$TMP/ruleset.again") tagged exemption)"
else
	not_ok "kill -9 and a restart" "$(head -n 30 "$TMP/ruleset.diff")"
fi

# ---- another program changes the ruleset: the resync leaves the forward be ----
# traffic first, so that a rebuilt table would show in its counters
check "unrelated change: the forward carries traffic" until_ok 3 reaches 192.0.2.6
# (a base chain on the forward hook: the daemon looks, since such a chain could drop
# our flow; a table with no base chain on our hooks is not its business at all)
unrelated() {
	nft add table inet va_unrelated &&
		nft add chain inet va_unrelated vafwd '{ type filter hook forward priority 10; policy accept; }' &&
		nft delete table inet va_unrelated &&
		until_ok 3 grep -q "changed by another program: forward win11 already up" "$TMP/daemon.log"
}
: >"$TMP/daemon.log"
IDEM_OWN_EVENTS='va_unrelated' idempotent "a resync on an unrelated ruleset change" \
	"$TMP/daemon.log" "changed by another program: forward win11 already up" unrelated
check "... and the exemption too is untouched" \
	eval '! grep -q -e vfio-agent -e LIBVIRT "$TMP/idem.events"'



# The soak and valgrind run on the plain build only: under the sanitizers
# (tests/run's second pass) ASan's quarantine grows the resident set by
# design, valgrind cannot run an ASan binary, and LeakSanitizer already
# checks this run's exits.
if [ -n "${ASAN_OPTIONS:-}" ]; then
	stop_daemon
	finish
fi

# ---- soak: 1,000 forced reconciles; resident memory stays put ----
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$DPID/status"; }
cycle() {
	nft delete table inet vfio_agent 2>/dev/null
	until_ok 2 has_table
}
# the first unrepaired delete ends the soak: the rest would each wait out its 2 s
if ! repeat 50 cycle; then
	not_ok "soak" "warm-up delete $((REPEATED + 1)) of 50 was not repaired within 2 s; soak stopped"
else
	rss0=$(rss)
	repeat 1000 cycle
	rss1=$(rss)
	check "soak: 1000 deletes of the table, $REPEATED repaired" [ "$REPEATED" -eq 1000 ]
	check "soak: resident memory ${rss0} kB -> ${rss1} kB (at most 1 MiB more)" [ $((rss1 - rss0)) -le 1024 ]
fi
stop_daemon

# ---- under valgrind: no leak, no error ----
if command -v valgrind >/dev/null; then
	: >"$TMP/daemon.log"
	valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 \
		--log-file="$TMP/valgrind.log" "$VFIO_AGENT" --config "$TMP/conf" daemon --foreground \
		>>"$TMP/daemon.log" 2>&1 &
	DPID=$!
	until_ok 30 grep -q "daemon ready" "$TMP/daemon.log"
	until_ok 10 has_table
	vcycle() { nft delete table inet vfio_agent; until_ok 10 has_table; }
	repeat 20 vcycle
	n=$REPEATED
	kill -TERM "$DPID"
	wait "$DPID"
	rc=$?
	DPID=
	check "valgrind: $n of 20 repairs, then SIGTERM: exit $rc, no leak or error reported" \
		eval "[ $n -eq 20 ] && [ $rc -eq 0 ] && [ ! -s $TMP/valgrind.log ]"
	[ -s "$TMP/valgrind.log" ] && head -n 40 "$TMP/valgrind.log" | sed 's/^/# /'
else
	not_ok "valgrind" "not installed (make deps installs it)"
fi
finish
