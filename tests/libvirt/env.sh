# SPDX-License-Identifier: GPL-2.0-or-later
# A libvirtd of the test's own, for the libvirt tier: the calling script
# re-runs itself inside a network namespace it made and a private mount
# namespace (tmpfs /run, /etc/libvirt, /var/lib/libvirt, /var/log/libvirt,
# /var/cache/libvirt), where virtlogd and libvirtd run as root with QEMU
# under TCG. The host's own libvirt is never touched.

for b in libvirtd virtlogd virsh qemu-system-x86_64 unshare nsenter; do
	if ! command -v "$b" >/dev/null; then
		not_ok "libvirt tier" "$b is not installed (make deps installs it)"
		finish
	fi
done

# libvirt_run_inside NS...: in the outer run, make the namespaces (the
# first is where libvirtd runs) and run the script again inside them; its
# exit status. In the inner run: returns 0 at once.
libvirt_run_inside() {
	local ns
	[ -n "${VFIO_LIBVIRT_INNER:-}" ] && return 0
	for ns in "$@"; do
		mkns "$ns" || { not_ok setup "cannot make network namespace $ns"; finish; }
	done
	# the inner run owns the mount namespace; its daemons die with it
	VFIO_LIBVIRT_INNER=1 TMP=$TMP NS_PREFIX=$NS_PREFIX in_ns "$1" \
		unshare --mount --propagation private bash "$0"
}
# libvirt_enter NS...: the same, and the outer run ends with the inner's status
libvirt_enter() {
	libvirt_run_inside "$@"
	local rc=$?
	[ -n "${VFIO_LIBVIRT_INNER:-}" ] && return 0
	exit $rc
}

# in the inner run: the other namespaces by file, since /run/netns is about to go
NSDIR=$TMP/netns
in_net() { local ns=$1; shift; nsenter --net="$NSDIR/$ns" "$@"; }

libvirt_daemons_kill() {
	local p
	for p in /run/libvirtd.pid /run/virtlogd.pid; do
		[ -s "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null
	done
	pkill -9 -f "qemu-system-x86_64 -name guest=" 2>/dev/null
	pkill -9 -f "dnsmasq --conf-file=/var/lib/libvirt/dnsmasq/" 2>/dev/null
}

# libvirt_setup NS...: the private mounts, users and config; libvirtd running
libvirt_setup() {
	local d f g gid=64050 ns
	mkdir -p "$NSDIR"
	for ns in "$@"; do
		: >"$NSDIR/$ns"
		mount --bind "/run/netns/$NS_PREFIX-$ns" "$NSDIR/$ns" ||
			{ not_ok setup "cannot keep a handle on namespace $ns"; exit 1; }
	done
	for d in /run /etc/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt; do
		mkdir -p "$d" && mount -t tmpfs tmpfs "$d" ||
			{ not_ok setup "cannot mount a tmpfs on $d"; exit 1; }
	done
	# Debian's libvirt looks up its qemu and dnsmasq users even when
	# qemu.conf says root; its -system package's scripts would make them.
	# They are made here in this mount namespace's own passwd and group.
	cp /etc/passwd /etc/group "$TMP/"
	for g in kvm libvirt libvirt-qemu libvirt-dnsmasq; do
		getent group "$g" >/dev/null || echo "$g:x:$((gid += 1)):" >>"$TMP/group"
	done
	getent passwd libvirt-qemu >/dev/null ||
		echo "libvirt-qemu:x:64055:$(grep ^kvm: "$TMP/group" | cut -d: -f3)::/var/lib/libvirt:/usr/sbin/nologin" \
			>>"$TMP/passwd"
	getent passwd libvirt-dnsmasq >/dev/null ||
		echo "libvirt-dnsmasq:x:64056:$(grep ^libvirt-dnsmasq: "$TMP/group" | cut -d: -f3)::/var/lib/libvirt/dnsmasq:/usr/sbin/nologin" \
			>>"$TMP/passwd"
	for f in passwd group; do
		mount --bind "$TMP/$f" "/etc/$f" || { not_ok setup "cannot bind a private /etc/$f"; exit 1; }
	done
	mkdir -p /etc/libvirt/hooks /var/lib/libvirt/qemu /var/cache/libvirt/qemu /var/lib/libvirt/dnsmasq
	cat >/etc/libvirt/qemu.conf <<-'EOC'
	user = "root"
	group = "root"
	security_driver = "none"
	dynamic_ownership = 0
	EOC
	: >/etc/libvirt/libvirtd.conf
	: >/etc/libvirt/virtlogd.conf
	: >/etc/libvirt/network.conf
}

libvirt_start() {
	virtlogd -d || { not_ok setup "virtlogd did not start"; exit 1; }
	libvirtd -d || { not_ok setup "libvirtd did not start"; exit 1; }
	for _ in $(seq 100); do virsh -c qemu:///system version >/dev/null 2>&1 && return 0; sleep 0.1; done
	not_ok setup "libvirtd does not answer"
	exit 1
}
V() { virsh -q -c qemu:///system "$@"; }

# domain_xml NAME [DEVICES]: a TCG domain with nothing to boot
domain_xml() {
	cat <<-EOX
	<domain type='qemu'>
	  <name>$1</name>
	  <memory unit='MiB'>64</memory>
	  <os><type arch='x86_64' machine='pc'>hvm</type></os>
	  <devices>
	    <emulator>/usr/bin/qemu-system-x86_64</emulator>
	    <graphics type='vnc' port='5900' listen='127.0.0.1'/>
	    <video><model type='none'/></video>
	    ${2:-}
	  </devices>
	</domain>
	EOX
}

# ---- a LAN, a NAT network and a guest's network side (namespaces lan, gst) ----
# lan_and_guest MAC: lan0 192.0.2.1 here, the client 192.0.2.2 in lan; the
# guest's wire vg0 here, its eth0 with MAC in gst (vg0 joins libvirt's bridge)
lan_and_guest() {
	ip link add lan0 type veth peer name eth0 netns "$NSDIR/lan"
	ip addr add 192.0.2.1/24 dev lan0 && ip link set lan0 up
	in_net lan ip addr add 192.0.2.2/24 dev eth0 && in_net lan ip link set eth0 up
	ip link add vg0 type veth peer name eth0 netns "$NSDIR/gst"
	in_net gst ip link set eth0 address "$1"
	in_net gst ip link set eth0 up && in_net gst ip link set lo up && ip link set vg0 up
}
# nat_network NAME BRIDGE: libvirt's NAT network 198.51.100.0/24 with DHCP,
# running, the guest's wire on its bridge
nat_network() {
	cat >"$TMP/net.xml" <<-EOX
	<network>
	  <name>$1</name>
	  <forward mode='nat'/>
	  <bridge name='$2' stp='off'/>
	  <ip address='198.51.100.1' netmask='255.255.255.0'>
	    <dhcp><range start='198.51.100.100' end='198.51.100.200'/></dhcp>
	  </ip>
	</network>
	EOX
	V net-define "$TMP/net.xml" >/dev/null && V net-start "$1" >/dev/null &&
		ip link set vg0 master "$2"
}
# nat_domain NAME NETWORK MAC: a defined domain whose NIC has MAC (no boot ROM)
nat_domain() {
	domain_xml "$1" "<interface type='network'><source network='$2'/><mac address='$3'/><model type='e1000'/><rom bar='off'/></interface>" >"$TMP/$1.xml"
	V define "$TMP/$1.xml" >/dev/null
}
# guest_dhcp [UDHCPC OPTIONS]: the guest's side asks libvirt's dnsmasq for an address
guest_dhcp() {
	[ -x "$TMP/udhcpc.sh" ] || {
		printf '#!/bin/sh\n[ "$1" = bound ] || exit 0\nip addr flush dev "$interface"\n%s\n%s\n' \
			'ip addr add "$ip/${mask:-24}" dev "$interface"' 'ip route add default via "$router"' \
			>"$TMP/udhcpc.sh"
		chmod +x "$TMP/udhcpc.sh"
	}
	in_net gst busybox udhcpc -i eth0 -n -q -t 5 -T 1 "$@" -s "$TMP/udhcpc.sh" >/dev/null 2>&1
}
guest_ip() { in_net gst ip -4 -o addr show dev eth0 | awk '{ print $4 }' | cut -d/ -f1; }
