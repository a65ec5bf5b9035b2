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

for b in libvirtd virtlogd virsh qemu-system-x86_64 unshare; do
	if ! command -v "$b" >/dev/null; then
		not_ok "libvirt tier" "$b is not installed (make deps installs it)"
		finish
	fi
done

if [ -z "${VFIO_LIBVIRT_INNER:-}" ]; then
	mkns host || { not_ok setup "cannot make a network namespace"; finish; }
	# the inner run owns the mount namespace; its daemons die with it
	VFIO_LIBVIRT_INNER=1 TMP=$TMP in_ns host unshare --mount --propagation private \
		bash "$0"
	exit $?
fi

# ---- inside: our own namespaces ----
for d in /run /etc/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt; do
	mkdir -p "$d" && mount -t tmpfs tmpfs "$d" || { not_ok setup "cannot mount a tmpfs on $d"; exit 1; }
done
# Debian's libvirt looks up its qemu user and groups even when qemu.conf
# says root; its -system package's scripts would make them. They are made
# here in this mount namespace's own copy of passwd and group.
cp /etc/passwd /etc/group "$TMP/"
gid=64050
for g in kvm libvirt libvirt-qemu; do
	getent group "$g" >/dev/null || echo "$g:x:$((gid += 1)):" >>"$TMP/group"
done
getent passwd libvirt-qemu >/dev/null ||
	echo "libvirt-qemu:x:64055:$(grep ^kvm: "$TMP/group" | cut -d: -f3)::/var/lib/libvirt:/usr/sbin/nologin" \
		>>"$TMP/passwd"
for f in passwd group; do
	mount --bind "$TMP/$f" "/etc/$f" || { not_ok setup "cannot bind a private /etc/$f"; exit 1; }
done
daemons() {
	local p
	for p in /run/libvirtd.pid /run/virtlogd.pid; do
		[ -s "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null
	done
	pkill -9 -f "qemu-system-x86_64 -name guest=win11" 2>/dev/null
}
trap 'daemons; cleanup_holders; rm -rf "$TMP"' EXIT

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

mkdir -p /etc/libvirt/hooks /var/lib/libvirt/qemu /var/cache/libvirt/qemu
cat >/etc/libvirt/qemu.conf <<'EOC'
user = "root"
group = "root"
security_driver = "none"
dynamic_ownership = 0
EOC
: >/etc/libvirt/libvirtd.conf
: >/etc/libvirt/virtlogd.conf
# the hook: the agent on the fixture host; what it writes to stdout is kept
cat >/etc/libvirt/hooks/qemu <<EOH
#!/bin/sh
KSHIM_ROOT=$ROOT KSHIM_LOG=$TMP/kernel.log KSHIM_SCRIPT=$TMP/script \\
KSHIM_FAIL=\$(cat $TMP/fail) LD_PRELOAD=$KSHIM \\
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \\
UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" \\
	$VFIO_AGENT --root $ROOT --config $TMP/conf hook "\$@" >$TMP/hook.out.\$\$
rc=\$?
cat $TMP/hook.out.\$\$ >>$TMP/hook.stdout
cat $TMP/hook.out.\$\$
rm -f $TMP/hook.out.\$\$
echo "\$2 \$3 -> \$rc" >>$TMP/calls
exit \$rc
EOH
chmod +x /etc/libvirt/hooks/qemu
: >"$TMP/hook.stdout"

virtlogd -d || { not_ok setup "virtlogd did not start"; exit 1; }
libvirtd -d || { not_ok setup "libvirtd did not start"; exit 1; }
for _ in $(seq 100); do virsh -c qemu:///system version >/dev/null 2>&1 && break; sleep 0.1; done
V() { virsh -q -c qemu:///system "$@"; }
check "libvirtd answers" sh -c "virsh -q -c qemu:///system version >/dev/null"

cat >"$TMP/win11.xml" <<'EOX'
<domain type='qemu'>
  <name>win11</name>
  <memory unit='MiB'>64</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <graphics type='vnc' port='5900' listen='127.0.0.1'/>
    <video><model type='none'/></video>
  </devices>
</domain>
EOX
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
V destroy win11 >/dev/null 2>&1
check "after destroy: the rules are gone" sh -c "! nft list table inet vfio_agent >/dev/null 2>&1"
check "after destroy: no journal" [ ! -e "$ROOT/run/vfio-agent/win11.journal" ]
state "$ROOT" >"$TMP/now"
check "after destroy: the GPU is back where it started" diff -q "$TMP/start" "$TMP/now"
for op in "prepare begin -> 0" "started begin -> 0" "stopped end -> 0" "release end -> 0"; do
	check "libvirt called the hook: $op" grep -qx "$op" "$TMP/calls"
done

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
check "the hook never wrote to stdout" [ ! -s "$TMP/hook.stdout" ]
finish
