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
	[ -n "${LV11_ROOT:-}" ] && [ -s "$LV11_ROOT/run/libvirtd.pid" ] &&
		kill -9 "$(cat "$LV11_ROOT/run/libvirtd.pid")" 2>/dev/null
	pkill -9 -f "qemu-system-x86_64 -name guest=" 2>/dev/null
	pkill -9 -f "dnsmasq --conf-file=/var/lib/libvirt/dnsmasq/" 2>/dev/null
}

# ns_handles NS...: the namespaces by file under $NSDIR, for in_net
ns_handles() {
	local ns
	mkdir -p "$NSDIR"
	for ns in "$@"; do
		: >"$NSDIR/$ns"
		mount --bind "/run/netns/$NS_PREFIX-$ns" "$NSDIR/$ns" ||
			{ not_ok setup "cannot keep a handle on namespace $ns"; exit 1; }
	done
}

# libvirt_setup NS...: the private mounts, users and config; libvirtd running
libvirt_setup() {
	local d f g gid=64050
	ns_handles "$@"
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
	libvirt_answers
}
libvirt_answers() {
	for _ in $(seq 300); do V version >/dev/null 2>&1 && return 0; sleep 0.1; done
	not_ok setup "libvirtd does not answer"
	exit 1
}
# LV_URI: another libvirtd's socket (the trixie chroot's, below)
V() { virsh -q -c "${LV_URI:-qemu:///system}" "$@"; }

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

# ---- libvirt's chains rewritten, the daemon's repair: timed from the kernel's events ----
# nl_portid PID: the netlink port of PID's nftables socket (not its monitor: no group)
nl_portid() {
	local ino
	for ino in $(ls -l "/proc/$1/fd" 2>/dev/null | sed -n 's/.*socket:\[\([0-9]*\)\]$/\1/p'); do
		awk -v i="$ino" '$2 == 12 && $4 == "00000000" && $NF == i { print $3 }' /proc/net/netlink
	done | head -n 1
}
# stamps_start FILE: tests/helpers/nlstamp writes the kernel's events to FILE, stamped
STAMP_PID=
stamps_start() {
	: >"$1"
	"$UNIT_DIR/nlstamp" >>"$1" 2>/dev/null &
	STAMP_PID=$!
	disown "$STAMP_PID"
	for _ in $(seq 100); do grep -q ready "$1" && return 0; sleep 0.02; done
	return 1
}
stamps_stop() { [ -n "$STAMP_PID" ] && kill "$STAMP_PID" 2>/dev/null; STAMP_PID=; }
# repair_times FILE PORTID: after libvirt's first change to its own chains in FILE
# (table libvirt_network, iptables' LIBVIRT_* chains), the daemon's (PORTID's) last
# rule written there; prints "FIRST LAST" in ms: since libvirt's first change, and
# since its last change before that repair. Nothing when there was no repair.
repair_times() {
	awk -v own="$2" '$2 == "nft" && ($4 ~ /^libvirt/ || $7 ~ /^LIBVIRT_/) {
		if ($5 != own) { if (!first) first = $1; lv = $1 }
		else if ($3 == 6 && first) { r = $1; rlv = lv }
	}
	END { if (r) printf "%.1f %.1f\n", (r - first) / 1000, (r - rlv) / 1000 }' "$1"
}

# repair_judged WHAT FILE PORTID: one check that the daemon (PORTID) repaired
# the exemption in FILE's events within 2 s of libvirt's first rewrite
repair_judged() {
	local rfirst rlast
	read -r rfirst rlast <<<"$(repair_times "$2" "$3")"
	if [ -z "${rfirst:-}" ]; then
		not_ok "$1: the exemption repaired after libvirt's rewrite" \
			"no rewrite by libvirt, or no repair: $(grep -c -e libvirt -e LIBVIRT_ "$2") events in libvirt's chains"
	else
		check "$1: the exemption repaired $rfirst ms after libvirt's first rewrite (under 2 s), $rlast ms after its last" \
			awk -v t="$rfirst" 'BEGIN { exit !(t < 2000) }'
	fi
}

# ---- libvirt 11 as Debian 13 has it: a trixie chroot's libvirtd (tests/libvirt/trixie-root) ----
# lv11_setup ROOT NS...: in the inner run, the chroot bound onto itself (libvirt's
# QEMU mount namespace wants a mount point there), its /proc, /sys (this network
# namespace's), /dev, and tmpfs for libvirt's config and state; libvirtd not started.
# The host's vfio-agent, virsh and nft run outside it, in the same namespaces.
LV11_ROOT=
lv11_setup() {
	local R=$1 d
	shift
	ns_handles "$@"
	mount --bind "$R" "$R" && mount -t proc proc "$R/proc" && mount -t sysfs sysfs "$R/sys" &&
		mount --rbind /dev "$R/dev" || { not_ok setup "cannot mount the chroot $R"; exit 1; }
	[ -d /sys/fs/cgroup ] && mount --rbind /sys/fs/cgroup "$R/sys/fs/cgroup"
	for d in run tmp etc/libvirt var/lib/libvirt var/log/libvirt var/cache/libvirt; do
		mkdir -p "$R/$d" && mount -t tmpfs tmpfs "$R/$d" ||
			{ not_ok setup "cannot mount a tmpfs on $R/$d"; exit 1; }
	done
	LV11_ROOT=$R
	mkdir -p "$R/var/lib/libvirt/qemu" "$R/var/lib/libvirt/dnsmasq" "$R/var/cache/libvirt/qemu"
	# no virtlogd: QEMU's output goes to a file
	cat >"$R/etc/libvirt/qemu.conf" <<-'EOC'
	user = "root"
	group = "root"
	security_driver = "none"
	dynamic_ownership = 0
	stdio_handler = "file"
	EOC
	echo 'log_outputs = "3:file:/var/log/libvirt/libvirtd.log"' >"$R/etc/libvirt/libvirtd.conf"
	: >"$R/etc/libvirt/network.conf"
	LV_URI="qemu+unix:///system?socket=$R/run/libvirt/libvirt-sock"
}
# lv11_backend nftables|iptables: the network driver's firewall backend from the next start
lv11_backend() { echo "firewall_backend = \"$1\"" >"$LV11_ROOT/etc/libvirt/network.conf"; }
# lv11_start: the chroot's libvirtd, the tc wrapper first on its PATH, answering
lv11_start() {
	chroot "$LV11_ROOT" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root libvirtd -d || { not_ok setup "the chroot's libvirtd did not start"; exit 1; }
	libvirt_answers
}
lv11_kill() {
	[ -s "$LV11_ROOT/run/libvirtd.pid" ] && kill -9 "$(cat "$LV11_ROOT/run/libvirtd.pid")" 2>/dev/null
	rm -f "$LV11_ROOT/run/libvirtd.pid"
}
# repaired_while_away LOG: after the last "connection lost" in the daemon's LOG, a
# repair before "connected to libvirt": it came from the nftables monitor alone
repaired_while_away() {
	awk '/libvirt connection lost/ { away = 1; seen = 0 } /connected to libvirt/ { away = 0 }
	     away && /changed by another program: forward .* repaired/ { seen = 1 }
	     END { exit !seen }' "$1"
}
