#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# diagnose --vm against real domains: a libvirtd of the test's own (env.sh)
# holds one defined domain per VM check and state, and diagnose reads each
# through libvirt's API: the name (by case, the closest), hostdevs against
# pcis and the IOMMU group, passthrough, managed, emulated video and
# graphics, the ROM BAR (AMD), vendor_id and kvm hidden (NVIDIA), swtpm for
# an emulated TPM, the firmware files. The devices' sysfs is the fixture
# hosts' (--root): an AMD GPU with its audio, an NVIDIA GPU.
set -u
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../fixture/root.sh"
need_root libvirt
. "$(dirname "$0")/env.sh"
libvirt_enter host

# ---- inside: our own namespaces ----
libvirt_setup
trap 'libvirt_daemons_kill; rm -rf "$TMP"' EXIT
ROOT=$TMP/root
make_root "$ROOT" || { not_ok setup "cannot build the fixture root"; exit 1; }
NV=$TMP/nv
cp -a "$(dirname "$0")/../hosts/nvidia" "$NV"
# libvirt asks swtpm for its capabilities when a domain with an emulated
# TPM is defined: a stand-in on libvirtd's PATH answers for it
mkdir -p "$TMP/swtpm"
for b in swtpm swtpm_setup swtpm_ioctl; do
	printf '#!/bin/sh\necho '"'"'{ "type": "%s", "features": [ "tpm-1.2", "tpm-2.0" ] }'"'"'\n' "$b" \
		>"$TMP/swtpm/$b"
	chmod +x "$TMP/swtpm/$b"
done
PATH=$TMP/swtpm:$PATH libvirt_start

# hostdev BUS SLOT.FN [ATTRS] [INNER]
hostdev() {
	echo "<hostdev mode='subsystem' type='pci' ${3:-managed='no'}><source><address domain='0x0000' bus='0x$1' slot='0x${2%.*}' function='0x${2#*.}'/></source>${4:-}</hostdev>"
}
GPU=$(hostdev 03 00.0 "managed='no'" "<rom bar='off'/>")
AUDIO=$(hostdev 03 00.1)
# define NAME DEVICES [FEATURES] [OS]: a domain without emulated display
define() {
	cat >"$TMP/$1.xml" <<-EOX
	<domain type='qemu'>
	  <name>$1</name>
	  <memory unit='MiB'>64</memory>
	  <os><type arch='x86_64' machine='pc'>hvm</type>${4:-}</os>
	  <features>${3:-}</features>
	  <devices>
	    <emulator>/usr/bin/qemu-system-x86_64</emulator>
	    <video><model type='${VIDEO:-none}'/></video>
	    $2
	  </devices>
	</domain>
	EOX
	V define "$TMP/$1.xml" >"$TMP/define.out" 2>&1 || { not_ok "define $1" "$(cat "$TMP/define.out")"; return 1; }
}
# conf VM [PASSTHROUGH [PCIS]]
conf() {
	printf '[vfio]\nvm = %s\npcis = %s\npassthrough = %s\n' "$1" \
		"${3-0000:03:00.0 0000:03:00.1}" "${2:-true}" >"$TMP/conf"
}
diag() { "$VFIO_AGENT" --root "${DROOT:-$ROOT}" --config "$TMP/conf" diagnose --vm "$1" --json \
	>"$TMP/d.json" 2>"$TMP/d.err"; }
finding() {
	jq -r --arg n "$1" '[.checks[] | select(.name == $n)][0] // empty |
		"\(.level) \(.detail) -> \(.hint // "")"' "$TMP/d.json"
}
# expect WHAT VM CHECK LEVEL PATTERN
expect() {
	local what=$1 vm=$2 name=$3 level=$4 pat=$5 got
	diag "$vm"
	got=$(finding "$name")
	if [[ "$got" == "$level "* ]] && grep -Eq -- "$pat" <<<"$got"; then
		ok "$what ($got)"
	else
		not_ok "$what" "$name is '${got:-missing}', want $level matching '$pat'; stderr: $(head -c 300 "$TMP/d.err")"
	fi
}

# ---- a domain as it should be ----
define win11 "$GPU $AUDIO"
conf win11
expect "the domain is defined: ok" win11 vm ok "domain win11 is defined"
expect "hostdevs cover pcis and the IOMMU group: ok" win11 hostdevs ok "2 PCI hostdevs"
expect "passthrough = true with the GPU: ok" win11 passthrough ok "true, and the domain has the GPU"
expect "managed='no' with the handoff: ok" win11 "managed 0000:03:00.0" ok "the handoff binds it"
expect "AMD with <rom bar='off'/>: ok" win11 "rom bar 0000:03:00.0" ok "bar='off'"
expect "no emulated video: ok" win11 video ok "no emulated video"
expect "no graphics: ok" win11 graphics ok "no emulated graphics"
check "no TPM, no firmware files: neither checked" eval '[ -z "$(finding tpm)$(finding firmware)" ]'
check "a domain that can start: ready, exit 0" eval 'diag win11; [ $? -eq 0 ] && [ "$(jq .ready "$TMP/d.json")" = true ]'
check "--vm text output: the hint under its check" \
	eval '"$VFIO_AGENT" --root "$ROOT" --config "$TMP/conf" diagnose --vm win11 | grep -q "^  ok   hostdevs "'

# ---- the name ----
conf Win11
expect "vm = Win11 for the domain win11: fail, names it" Win11 vm fail \
	"vm = Win11, but the domain is 'win11'.*case-sensitive.*-> set vm = win11"
check "a name that matches only by case: not ready, exit 1" eval 'diag Win11; [ $? -eq 1 ]'
conf win12
expect "vm = win12: fail, the closest name" win12 vm fail "no domain win12 \(the closest name: win11\)"

# ---- hostdevs ----
define audio-missing "$GPU"
conf audio-missing
expect "the GPU's audio function handed over but not in the domain: warn" audio-missing hostdevs warn \
	"^warn 0000:03:00.1: handed over, but the domain does not have it"
conf audio-missing true "0000:03:00.0"
expect "the audio function in neither pcis nor the domain: fail, the group" audio-missing hostdevs fail \
	"0000:03:00.1: in an IOMMU group of the domain's hostdevs.*-> add 0000:03:00.1 to pcis and to the domain"
define gpu-not-planned "$GPU $AUDIO"
conf gpu-not-planned true "0000:03:00.1"
expect "a display hostdev pcis leaves out: fail" gpu-not-planned hostdevs fail \
	"0000:03:00.0: a display device of the domain that pcis leaves out"
check "a hostdev check that fails: exit 1" eval 'diag gpu-not-planned; [ $? -eq 1 ]'
define no-hostdev ""
conf no-hostdev
expect "no PCI hostdev at all: fail" no-hostdev hostdevs fail "no PCI hostdev"
expect "passthrough = true without a GPU in the domain: warn" no-hostdev passthrough warn "no display device"

# ---- passthrough and managed ----
conf win11 false
expect "passthrough = false with the GPU as a hostdev: warn" win11 passthrough warn \
	"passthrough = false \(the default\).*-> set passthrough = true"
expect "managed='no' without passthrough: fail, nothing binds it" win11 "managed 0000:03:00.0" fail \
	"nothing binds it to vfio-pci"
define managed "$(hostdev 03 00.0 "managed='yes'" "<rom bar='off'/>") $(hostdev 03 00.1 "managed='yes'")"
conf managed
expect "managed='yes' with the handoff: warn" managed "managed 0000:03:00.0" warn "libvirt also rebinds it"
conf managed false
expect "managed='yes' without the handoff: warn" managed "managed 0000:03:00.0" warn \
	"libvirt unbinds it while the desktop still holds it"

# ---- emulated display and the seed's advice ----
VIDEO=qxl define emulated "$(hostdev 03 00.0) $AUDIO <graphics type='spice' autoport='yes'/>
	<video><model type='virtio'/></video>"
conf emulated
expect "QXL and virtio video left in the domain: warn" emulated video warn "emulated video left in the domain: qxl virtio"
expect "SPICE graphics: warn" emulated graphics warn "emulated graphics: spice"
expect "AMD without <rom bar='off'/>: warn, the advice" emulated "rom bar 0000:03:00.0" warn "rom bar='off'"
define nvidia "$(hostdev 01 00.0)"
conf nvidia true "0000:01:00.0"
DROOT=$NV expect "NVIDIA without vendor_id: warn, drivers before 465" nvidia "hyperv vendor_id" warn "before 465.*vendor_id state='on'"
DROOT=$NV expect "NVIDIA without kvm hidden: warn" nvidia "kvm hidden" warn "before 465.*hidden state='on'"
define nvidia-hidden "$(hostdev 01 00.0)" \
	"<hyperv mode='custom'><vendor_id state='on' value='0123456789ab'/></hyperv><kvm><hidden state='on'/></kvm>"
conf nvidia-hidden true "0000:01:00.0"
DROOT=$NV expect "NVIDIA with vendor_id: ok" nvidia-hidden "hyperv vendor_id" ok "vendor_id state='on'"
DROOT=$NV expect "NVIDIA with kvm hidden: ok" nvidia-hidden "kvm hidden" ok "hidden state='on'"

# ---- TPM and firmware ----
define tpm "$GPU $AUDIO <tpm model='tpm-tis'><backend type='emulator' version='2.0'/></tpm>"
conf tpm
PATH=/usr/local/bin:/usr/bin:/bin expect "an emulated TPM without swtpm: fail" tpm tpm fail "needs swtpm.*apt install swtpm"
PATH=$TMP/swtpm:/usr/bin:/bin expect "an emulated TPM with swtpm on PATH: ok" tpm tpm ok "swtpm installed"
: >"$TMP/OVMF_CODE.fd"
define firmware "$GPU $AUDIO" "<acpi/>" \
	"<loader readonly='yes' type='pflash'>$TMP/OVMF_CODE.fd</loader><nvram template='$TMP/OVMF_VARS.fd'>$TMP/fw_VARS.fd</nvram>"
conf firmware
expect "an NVRAM template that does not exist: fail" firmware firmware fail "NVRAM template $TMP/OVMF_VARS.fd does not exist"
: >"$TMP/OVMF_VARS.fd"
expect "loader and template there: ok" firmware firmware ok "$TMP/OVMF_CODE.fd and its NVRAM"
rm "$TMP/OVMF_CODE.fd"
expect "a loader that does not exist: fail" firmware firmware fail "loader $TMP/OVMF_CODE.fd does not exist"

# ---- no libvirt ----
libvirt_daemons_kill
sleep 0.3
conf win11
expect "libvirt unreachable: fail, and what to start" win11 libvirt fail "cannot connect.*-> start libvirtd"
finish
