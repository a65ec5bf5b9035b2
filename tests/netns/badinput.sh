#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Bad input: each case gives its documented exit code and one line on
# stderr, prints nothing on stdout, and leaves the ruleset as it was.
set -u
. "$(dirname "$0")/../lib.sh"
need_root badinput

mkns host && mkns peer || { not_ok setup "ip netns add"; finish; }
link host lan0 peer eth0
in_ns host ip addr add 198.51.100.1/24 dev lan0
# libvirt 9's chain, so a refused transaction would also have touched it
in_ns host iptables-nft -N LIBVIRT_FWI
in_ns host iptables-nft -A LIBVIRT_FWI -o virbr0 -j REJECT
in_ns host nft add table ip unrelated
in_ns host nft add chain ip unrelated c

ruleset() { in_ns host nft list ruleset 2>/dev/null; }
before=$(ruleset)

good='[vfio]
vm = win11
[vnc]
enable = true
interface = lan0
host.ip = 198.51.100.1
guest.ip = 192.0.2.50
'
# case NAME WANT_RC STDERR_PATTERN [CMD-PREFIX...] -- ARGS...: config text on stdin
case_() {
	local name=$1 want=$2 pat=$3; shift 3
	local pre=()
	while [ "$1" != -- ]; do pre+=("$1"); shift; done
	shift
	cat >"$TMP/c.conf"
	in_ns host "${pre[@]}" "$VFIO_AGENT" --config "$TMP/c.conf" "$@" >"$TMP/out" 2>"$TMP/err"
	judge "$name" "$want" "$pat" $? ruleset_unchanged
}
ruleset_unchanged() { [ "$(ruleset)" = "$before" ] || { echo "the ruleset changed"; return 1; }; }

bad() { printf '%s%s\n' "$good" "$1"; }

bad 'host.port = 0' | sed '/^host.ip/d' |
	case_ "port 0" 2 'c.conf:[0-9]+: \[vnc\] host.port: expected a port 1-65535' -- forward up
bad 'guest.port = 65536' |
	case_ "port 65536" 2 "\[vnc\] guest.port: expected a port 1-65535, got '65536'" -- forward up
printf '%s' "$good" | sed 's/^guest.ip = .*/guest.ip = 192.0.2.500/' |
	case_ "invalid IP" 2 "\[vnc\] guest.ip: '192.0.2.500' is not an IPv4 or IPv6 address" -- forward up
bad 'allow = 198.51.100.0/24x' |
	case_ "invalid CIDR" 2 "\[vnc\] allow: '198.51.100.0/24x' is not an address or CIDR" -- forward up
bad 'allow = 198.51.100.9/24' |
	case_ "CIDR with host bits" 2 "has host bits set" -- forward up
bad 'colour = blue' |
	case_ "unknown key" 2 "\[vnc\] colour: unknown key" -- forward up
bad '[vfio]' | sed '$a user = x' |
	case_ "duplicate section" 2 'c.conf:8: \[vfio\]: section given twice' -- forward up
printf '%s' "$good" | sed 's/^interface = .*/interface = nope0/' |
	case_ "missing interface" 1 'interface nope0 does not exist' -- forward up
printf '%s' "$good" | sed 's/^host.ip = .*/host.ip = 203.0.113.9/' |
	case_ "host.ip not on the interface and no allow" 1 'host.ip 203.0.113.9 is not an address of lan0' -- forward up
printf '%s' "$good" | case_ "unknown subcommand" 2 "unknown subcommand 'sideways'" -- forward sideways
printf '%s' "$good" | case_ "another VM" 2 "VM 'other' is not configured" -- forward up --vm other
printf '%s' "$good" | case_ "unknown verb" 2 "unknown verb 'fly'" -- fly

# unreadable: a file only its owner may read, read by nobody
printf '%s' "$good" >"$TMP/secret.conf"; chmod 600 "$TMP/secret.conf"
chmod 711 "$TMP"
in_ns host setpriv --reuid=65534 --regid=65534 --clear-groups "$VFIO_AGENT" --config "$TMP/secret.conf" forward up >"$TMP/out" 2>"$TMP/err"
rc=$?
if [ $rc -eq 2 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -q 'Permission denied' "$TMP/err" &&
	[ "$(ruleset)" = "$before" ]; then
	ok "unreadable config (exit 2: $(cat "$TMP/err"))"
else
	not_ok "unreadable config" "exit $rc: $(cat "$TMP/err")"
fi
printf '' | case_ "config is a directory" 2 "cannot read /: Is a directory" -- --config / forward up

# without CAP_NET_ADMIN
printf '%s' "$good" | case_ "no CAP_NET_ADMIN" 1 'CAP_NET_ADMIN is needed' \
	setpriv --bounding-set=-net_admin --inh-caps=-net_admin -- forward up
printf '%s' "$good" | case_ "no CAP_NET_ADMIN for down" 1 'CAP_NET_ADMIN is needed' \
	setpriv --bounding-set=-net_admin --inh-caps=-net_admin -- forward down

# A transaction the kernel refuses halfway: our table exists, owned by another
# program (nft -i holds it), so deleting it fails after the exemption was queued.
mkfifo "$TMP/fifo"
spawn host sh -c "nft -i <'$TMP/fifo'"
exec 7>"$TMP/fifo"
echo 'add table inet vfio_agent { flags owner; }' >&7
for _ in $(seq 50); do in_ns host nft list table inet vfio_agent >/dev/null 2>&1 && break; sleep 0.1; done
before=$(ruleset)
printf '%s' "$good" | case_ "a refused transaction changes nothing" 1 \
	'forward up: table inet vfio_agent refused: Operation not permitted .*nothing was changed' -- forward up
check "no exemption was left in LIBVIRT_FWI" test -z "$(in_ns host iptables-nft -S LIBVIRT_FWI 2>/dev/null | grep vfio-agent)"
exec 7>&-

finish
