#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The hook under a real libvirtd: this test starts its own virtlogd and
# libvirtd in a network namespace and a mount namespace it made (private
# /run, /etc/libvirt, /var/lib/libvirt, /var/log/libvirt: the host's own
# libvirt is never touched), installs the hook, and starts and destroys a
# real QEMU (TCG) domain with virsh. The hook hands over the fixture host's
# GPU (tests/fixture/root.sh), so the whole path runs: libvirt's calls, the
# domain XML on stdin, the handoff and its release, the forward's rules.
set -u
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../fixture/root.sh"
need_root libvirt
. "$(dirname "$0")/env.sh"
libvirt_enter host

# ---- inside: our own namespaces ----
libvirt_setup
trap 'libvirt_daemons_kill; cleanup_holders; rm -rf "$TMP"' EXIT

ip link add lan0 type veth peer name lan1 && ip link set lan1 up && ip addr add 192.0.2.1/24 dev lan0 && ip link set lan0 up
ROOT=$TMP/root
make_root "$ROOT" || { not_ok setup "cannot build the fixture root"; exit 1; }
state "$ROOT" >"$TMP/start"
cat >"$TMP/conf" <<EOC
[vfio]
vm = win11
pcis = 0000:03:00.0 0000:03:00.1
passthrough = true
on-holders = fail
holder-timeout = 2

[vnc]
enable = true
interface = lan0
host.ip = 192.0.2.1
host.port = 5900
guest.ip = 198.51.100.10
guest.port = 5900
EOC
: >"$TMP/script"
: >"$TMP/fail"

# the hook: the agent on the fixture host; what it writes to stdout goes on to
# libvirt and is tallied per call (hook_tally_clean), its syslog lines to $TMP/syslog
cat >/etc/libvirt/hooks/qemu <<EOH
#!/bin/sh
KSHIM_ROOT=$ROOT KSHIM_LOG=$TMP/kernel.log KSHIM_SCRIPT=$TMP/script \\
KSHIM_FAIL=\$(cat $TMP/fail) LD_PRELOAD=$KSHIM KSHIM_SYSLOG=$TMP/syslog \\
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \\
UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" \\
	$VFIO_AGENT --root $ROOT --config $TMP/conf hook "\$@" >$TMP/hook.out.\$\$
rc=\$?
echo "\$(wc -c <$TMP/hook.out.\$\$) \$2 \$3" >>$TMP/hook-stdout.tally
cat $TMP/hook.out.\$\$
rm -f $TMP/hook.out.\$\$
echo "\$2 \$3 -> \$rc" >>$TMP/calls
exit \$rc
EOH
chmod +x /etc/libvirt/hooks/qemu
: >"$TMP/hook-stdout.tally"

libvirt_start
check "libvirtd answers" sh -c "virsh -q -c qemu:///system version >/dev/null"

domain_xml win11 >"$TMP/win11.xml"
check "the domain is defined" V define "$TMP/win11.xml"

rules() { nft list table inet vfio_agent 2>/dev/null; }

# ---- a start and a destroy ----
if V start win11 >"$TMP/out" 2>&1; then
	ok "virsh start win11"
else
	not_ok "virsh start win11" "$(cat "$TMP/out")"
fi
check "at start: the GPU is on vfio-pci" [ "$(driver_of 0000:03:00.0)" = vfio-pci ]
check "at start: the journal is there" [ -s "$ROOT/run/vfio-agent/win11.journal" ]
if rules | grep -q "198.51.100.10"; then
	ok "at start: the forward's rules are there"
else
	not_ok "at start: the forward's rules" "$(nft list ruleset | head -30)"
fi
check "the domain runs" sh -c "virsh -q -c qemu:///system domstate win11 | grep -q running"
hook_tally_clean "at start"

# ---- libvirtd restarts under a running domain: reconnect begin leaves the forward be ----
restart_libvirtd() {
	kill -9 "$(cat /run/libvirtd.pid)"
	libvirtd -d || return 1
	for _ in $(seq 100); do grep -q "^reconnect begin" "$TMP/calls" && return 0; sleep 0.1; done
	return 1
}
: >"$TMP/syslog"
before=$(nft -a list table inet vfio_agent 2>&1)
nft_events "$TMP/reconnect.events" restart_libvirtd
check "libvirtd restarted: libvirt called the hook: reconnect begin -> 0" \
	grep -qx "reconnect begin -> 0" "$TMP/calls"
check "reconnect: every rule of ours as it was, handles too" \
	[ "$before" = "$(nft -a list table inet vfio_agent 2>&1)" ]
check "reconnect: nft monitor saw no event of ours ($(grep -c . "$TMP/reconnect.events") in all)" \
	eval '! grep -q -e vfio_agent -e vfio-agent "$TMP/reconnect.events"'
check "reconnect: it said 'already up'" grep -q "forward win11 already up" "$TMP/syslog"
hook_tally_clean "reconnect"
V destroy win11 >/dev/null 2>&1
check "after destroy: the rules are gone" sh -c "! nft list table inet vfio_agent >/dev/null 2>&1"
check "after destroy: no journal" [ ! -e "$ROOT/run/vfio-agent/win11.journal" ]
state "$ROOT" >"$TMP/now"
check "after destroy: the GPU is back where it started" diff -q "$TMP/start" "$TMP/now"
for op in "prepare begin -> 0" "started begin -> 0" "stopped end -> 0" "release end -> 0"; do
	check "libvirt called the hook: $op" grep -qx "$op" "$TMP/calls"
done
hook_tally_clean "after destroy"

# ---- a failure at prepare aborts the start ----
echo /sys/bus/pci/drivers_probe=0000:03:00.0 >"$TMP/fail"
: >"$TMP/calls"
if V start win11 >"$TMP/out" 2>&1; then
	not_ok "a failed prepare aborts the start" "virsh start succeeded"
	V destroy win11 >/dev/null 2>&1
else
	if grep -q "vfio-pci: probe 0000:03:00.0" "$TMP/out"; then
		ok "a failed prepare aborts the start, and virsh says why ($(grep -o 'prepare win11: .*' "$TMP/out" | head -1))"
	else
		not_ok "a failed prepare: virsh's message" "$(cat "$TMP/out")"
	fi
fi
check "after a failed prepare: the domain is not running" \
	sh -c "! virsh -q -c qemu:///system domstate win11 | grep -q running"
check "after a failed prepare: no rules" sh -c "! nft list table inet vfio_agent >/dev/null 2>&1"
check "after a failed prepare: no journal" [ ! -e "$ROOT/run/vfio-agent/win11.journal" ]
state "$ROOT" >"$TMP/now"
check "after a failed prepare: the host is as it started" diff -q "$TMP/start" "$TMP/now"
hook_tally_clean "after a failed prepare"
hook_quiet_all
finish
