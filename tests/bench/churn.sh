#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The daemon's cost while another program churns a table that is none of
# its business: TRANSACTIONS (20,000) one-element transactions (an add,
# then a delete) on "inet churn", sent by one `nft -i`, each line its own
# transaction, then as many rule changes in that table's input chain, then
# in a regular chain of a table with a base chain on the forward hook. The
# daemon's CPU time (utime + stime from /proc/PID/stat)
# over the flood is compared with the flood process's own (bash's `time`:
# user + sys). Goal: under 5 %. At the end the forward must still be
# correct, and a change that does concern it (our table deleted) repaired.
# Runs against its own libvirtd and a TCG domain (tests/libvirt/env.sh).
# Prints a Markdown table for the README. Not a test: the figures vary.
set -u
: "${TRANSACTIONS:=20000}"
. "$(dirname "$0")/../lib.sh"
need_root bench
. "$(dirname "$0")/../libvirt/env.sh"
libvirt_enter host

libvirt_setup
DPID=
trap '[ -n "$DPID" ] && kill -9 "$DPID"; libvirt_daemons_kill; rm -rf "$TMP"' EXIT
ip link add lan0 type veth peer name lan1
ip link set lan1 up && ip link set lan0 up
ip addr add 192.0.2.1/24 dev lan0
sysctl -qw net.ipv4.ip_forward=1
libvirt_start
domain_xml churn >"$TMP/churn.xml"
V define "$TMP/churn.xml" >/dev/null && V start churn >/dev/null ||
	{ echo "churn: the domain did not start" >&2; exit 1; }
cat >"$TMP/conf" <<'EOC'
[vfio]
vm = churn
[vnc]
enable = true
interface = lan0
host.ip = 192.0.2.1
host.port = 5910
guest.ip = 198.51.100.10
EOC
has_table() { nft list table inet vfio_agent >/dev/null 2>&1; }
wait_table() { for _ in $(seq 400); do has_table && return 0; sleep 0.005; done; return 1; }
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# another program's table: a set of addresses, a chain on no hook of the path
nft -f - <<'NFT'
table inet churn {
	set blocked { type ipv4_addr; }
	chain input { type filter hook input priority 10; policy accept; ip saddr @blocked drop; }
}
NFT
# a table the daemon must follow: a base chain on the forward hook (that
# accepts), and a regular chain beside it
nft -f - <<'NFT'
table inet fwtab {
	chain forward { type filter hook forward priority 10; policy accept; }
	chain sub { }
}
NFT
# three floods: set elements, and rules in the input chain (both dropped by
# the monitor socket's filter in the kernel: elements of another table, rules
# of a table with no base chain on the path); then rules in the followed
# table's regular chain, which reach the daemon and are ignored there,
# without a read of the ruleset
for ((i = 0; i < TRANSACTIONS / 2; i++)); do
	a="10.$((i / 62500)).$((i / 250 % 250)).$((i % 250 + 1))"
	echo "add element inet churn blocked { $a }"
	echo "delete element inet churn blocked { $a }"
done >"$TMP/elements.nft"
for ((i = 0; i < TRANSACTIONS / 2; i++)); do
	echo "add rule inet churn input ip saddr 10.9.$((i / 250 % 250)).$((i % 250 + 1)) counter drop"
	echo "flush chain inet churn input"
done >"$TMP/rules.nft"
for ((i = 0; i < TRANSACTIONS / 2; i++)); do
	echo "add rule inet fwtab sub ip saddr 10.9.$((i / 250 % 250)).$((i % 250 + 1)) counter drop"
	echo "flush chain inet fwtab sub"
done >"$TMP/followed.nft"

"$VFIO_AGENT" --config "$TMP/conf" daemon --foreground >"$TMP/daemon.log" 2>&1 &
DPID=$!
disown "$DPID"
wait_table || { echo "churn: the daemon did not set up the forward" >&2; exit 1; }
sleep 0.5

TIMEFORMAT='%R %U %S'
# flood WHAT FILE: one table row
flood() {
	local d0 d1 t wall fuser fsys dms fms
	d0=$(cpu "$DPID")
	t=$({ time nft -i <"$2" >/dev/null 2>&1; } 2>&1)
	sleep 0.5 # what the daemon still has queued
	d1=$(cpu "$DPID")
	read -r wall fuser fsys <<<"$t"
	dms=$(awk -v c=$((d1 - d0)) -v hz="$hz" 'BEGIN { printf "%.0f", c * 1000 / hz }')
	fms=$(awk -v u="$fuser" -v s="$fsys" 'BEGIN { printf "%.0f", (u + s) * 1000 }')
	printf '| %s: %s transactions in %s s | %s ms | %s ms | %s %% |\n' "$1" "$TRANSACTIONS" \
		"$wall" "$fms" "$dms" \
		"$(awk -v d="$dms" -v f="$fms" 'BEGIN { printf "%.2f", f ? 100 * d / f : 0 }')"
}
rows=$(flood "set elements of inet churn" "$TMP/elements.nft"
	flood "rules in inet churn input" "$TMP/rules.nft"
	flood "rules in inet fwtab sub (a table with a forward chain)" "$TMP/followed.nft")

"$VFIO_AGENT" -q --config "$TMP/conf" forward status --json >"$TMP/status" 2>&1
in_sync=$(tr -d ' \n' <"$TMP/status" | grep -c '"in_sync":true')
nft delete table inet vfio_agent
wait_table && repaired=yes || repaired=no
[ -n "${BENCH_DEBUG:-}" ] && tail -n 20 "$TMP/daemon.log" >&2

echo "| flood (\`nft -i\`, one transaction a line) | its CPU | daemon's CPU | share |"
echo "|---|---|---|---|"
echo "$rows"
echo
echo "Afterwards: forward in sync $([ "$in_sync" = 1 ] && echo yes || echo NO), repaired after our table was deleted: $repaired."
echo "Daemon log lines during the run: $(wc -l <"$TMP/daemon.log") ($(grep -c 'nterrupted' "$TMP/daemon.log") about an interrupted dump)."
