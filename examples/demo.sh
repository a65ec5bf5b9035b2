#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# make demo: vfio-agent at work on a machine with no GPU and no VM image.
# Everything happens in network namespaces and a libvirt daemon of the
# demo's own, and goes away at the end; the host's network, firewall and
# libvirt are not touched. Exits 0 when what it shows held.
set -u
cd "$(dirname "$0")/.."
: "${VFIO_AGENT:=$PWD/build/vfio-agent}"
: "${UNIT_DIR:=$PWD/build/tests}"
export VFIO_AGENT UNIT_DIR
. tests/lib.sh
need_root demo
. tests/libvirt/env.sh

if [ -t 1 ]; then B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' O=$'\e[0m'; else B= G= R= O=; fi
say() { printf '\n%s%s%s\n' "$B" "$*" "$O"; }
indent() { sed 's/^/    /'; }
FAILED=0
verify() { # verify WHAT CMD...: a check the demo stands by
	local what=$1; shift
	if "$@"; then printf '  %s✓%s %s\n' "$G" "$O" "$what"; else printf '  %s✗%s %s\n' "$R" "$O" "$what"; FAILED=$((FAILED + 1)); fi
}

if [ -z "${VFIO_LIBVIRT_INNER:-}" ]; then
	say "vfio-agent demo: a LAN client reaches a libvirt guest's VNC port through this host"
	echo "Three network namespaces stand in for the machines: a client on the LAN"
	echo "(192.0.2.2), this host (192.0.2.1 on lan0, with libvirt's NAT network"
	echo "198.51.100.0/24 behind it), and the guest's network side on libvirt's bridge."
	libvirt_run_inside host lan gst
	FAILED=$?

	# on the host itself: its cgroups are where systemd's would be
	trap 'cleanup_cgroups; cleanup' EXIT
	say "Who holds the GPU? A stand-in, since this machine has none"
	DEV=$TMP/card0
	mknod "$DEV" c 1 7
	echo "$DEV, a copy of /dev/full, plays the GPU. A process holds it open"
	echo "inside the cgroup systemd gives a service named demo-compositor.service."
	start_holder compositor open "$DEV"
	read -r hpid _ <"$TMP/compositor"
	cgroup_hierarchies && cgroup_place "$hpid" system.slice/demo-compositor.service
	NO_COLOR=1 "$VFIO_AGENT" diagnose --device "$DEV" >"$TMP/diagnose" 2>&1
	sed -n '1,/^Checks/p' "$TMP/diagnose" | grep -v '^Checks' | indent
	verify "diagnose named the holder by its unit, demo-compositor.service" \
		grep -q "demo-compositor.service" "$TMP/diagnose"
	say "Cleaning up: the namespaces, the demo's libvirtd, the guest, the stand-in holder."
	[ "$FAILED" -eq 0 ] && echo "Demo done: every check held." || echo "Demo done: $FAILED check(s) did not hold."
	exit $((FAILED > 0))
fi

# ---- inside the host's namespace ----
libvirt_setup lan gst
DPID=
trap '[ -n "$DPID" ] && kill "$DPID" 2>/dev/null; libvirt_daemons_kill; umount "$NSDIR"/* 2>/dev/null; rm -rf "$TMP"' EXIT
MAC=52:54:00:de:00:01
lan_and_guest "$MAC"

say "Starting a libvirt daemon of the demo's own, a NAT network, and a guest"
libvirt_start
nat_network demo virbr-demo
nat_domain demo demo "$MAC"
echo "libvirt's network 'demo' rejects new connections into the guest from outside,"
echo "as libvirt's NAT networks do. The guest 'demo' is a QEMU machine with no disk;"
echo "its network side is the namespace, which serves a page on port 5900."
in_net gst socat TCP-LISTEN:5900,fork,reuseaddr SYSTEM:'echo hello from the guest' >/dev/null 2>&1 &

cat >"$TMP/vfio-agent.conf" <<'EOC'
[vfio]
vm = demo

[vnc]
enable = true
interface = lan0
host.ip = auto
host.port = 5900
guest.ip = auto
guest.port = 5900
EOC
say "Starting vfio-agent daemon with this config"
indent <"$TMP/vfio-agent.conf"
"$VFIO_AGENT" --config "$TMP/vfio-agent.conf" daemon --foreground >"$TMP/daemon.log" 2>&1 &
DPID=$!
for _ in $(seq 50); do grep -q "daemon ready" "$TMP/daemon.log" && break; sleep 0.1; done

say "The guest starts, and takes an address from libvirt's DHCP"
V start demo >/dev/null
guest_dhcp
in_net gst ping -c 1 -W 1 198.51.100.1 >/dev/null 2>&1
gip=$(guest_ip)
echo "The guest is ${gip:-without an address}. What the daemon did:"
for _ in $(seq 40); do grep -q "forward demo up" "$TMP/daemon.log" && break; sleep 0.05; done
indent <"$TMP/daemon.log"

say "The LAN client connects to 192.0.2.1:5900"
reply=$(in_net lan socat -T 2 - TCP:192.0.2.1:5900,connect-timeout=2 </dev/null 2>/dev/null)
echo "It reads: ${reply:-nothing}"
verify "the client got through to the guest" [ "$reply" = "hello from the guest" ]

say "vfio-agent forward status"
"$VFIO_AGENT" --config "$TMP/vfio-agent.conf" forward status 2>&1 | indent

say "Someone flushes the firewall: nft flush ruleset"
nft flush ruleset
sleep 0.3
reply=$(in_net lan socat -T 2 - TCP:192.0.2.1:5900,connect-timeout=2 </dev/null 2>/dev/null)
tail -n 1 "$TMP/daemon.log" | indent
verify "the daemon put the forward back; the client still gets through" [ "$reply" = "hello from the guest" ]

say "Stopping: SIGTERM to the daemon removes what it made"
kill "$DPID"
for _ in $(seq 50); do [ -d "/proc/$DPID" ] || break; sleep 0.1; done
DPID=
verify "no vfio-agent rules are left" eval '! nft list table inet vfio_agent >/dev/null 2>&1'
exit "$FAILED"
