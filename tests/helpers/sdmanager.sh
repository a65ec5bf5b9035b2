# SPDX-License-Identifier: GPL-2.0-or-later
# systemd's manager, stood in for on a private bus (tests/helpers/sdmanager.c): a
# dbus-daemon of the test's own with its own config, the stand-in owning
# org.freedesktop.systemd1 on it, and DBUS_SYSTEM_BUS_ADDRESS pointing there, so that
# the agent's sd_bus_open_system reaches it and never the host's systemd. Source it
# after tests/lib.sh; it needs UNIT_DIR (make tests builds the stand-in there).
#
#   manager_start                    start both; exports DBUS_SYSTEM_BUS_ADDRESS; they
#                                    are ended on exit (lib.sh's cleanup). Non-zero and
#                                    a line on stderr when they do not come up.
#   manager_unit UNIT STATE [FLAG...]
#                                    a loaded unit in ActiveState STATE (active,
#                                    inactive, failed, ...); FLAGs: fail-stop, fail-start
#                                    (that job ends "failed"), assert-start (it ends
#                                    "assert", and GetUnit no longer finds the unit;
#                                    LoadUnit does), refuse-stop (StopUnit is
#                                    refused, CanStop false, as for RefuseManualStop=yes),
#                                    slow-stop
#                                    (its stop job takes 2 s; a StartUnit meanwhile
#                                    cancels it, "canceled UNIT" in the calls),
#                                    triggered-by=S.socket (in its TriggeredBy),
#                                    slice=NAME (its Slice), part-of=NAME (in its PartOf),
#                                    cgroup=PATH, alias-of=NAME (see sdmanager.c). A unit
#                                    never named is not loaded (GetUnit: NoSuchUnit).
#   login_user UID [ID TYPE]         logind knows user UID (GetUser answers); with ID,
#                                    its Display is session ID, of Type TYPE (wayland,
#                                    x11, tty); without, it has no session (lingering).
#                                    A uid never named: NoSuchUser
#   manager_state UNIT               its ActiveState now (the jobs change it)
#   manager_calls [METHOD]           the calls received, in order, one "METHOD ARG..."
#                                    a line (GetUnit U, Get U ActiveState, Get U
#                                    CanStop, Get U PartOf, Get U Slice, Get U
#                                    TriggeredBy, Subscribe,
#                                    StopUnit U replace, StartUnit U replace, LoadUnit U);
#                                    with METHOD only that method's
#   manager_sent METHOD [UNIT]       true when such a call came (for UNIT, when given)
#   manager_never METHOD             true when none came; else prints them (a judge
#                                    EXTRA: judge NAME 1 PAT $? manager_never StopUnit)
#   manager_senders                  how many connections (unique names) made the calls
#   manager_forget                   forget the calls so far
#
# e.g. check "no StopUnit was sent" manager_never StopUnit

SDMANAGER="${SDMANAGER:-$UNIT_DIR/sdmanager}"
SDM=$TMP/sdmanager
SDM_PIDS=()

manager_stop() {
	local p
	for p in "${SDM_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${SDM_PIDS[@]}"; do
		for _ in $(seq 50); do [ -d "/proc/$p" ] || break; sleep 0.02; done
	done
	SDM_PIDS=()
}

manager_start() {
	command -v dbus-daemon >/dev/null || { echo "dbus-daemon is not installed (make deps)" >&2; return 1; }
	[ -x "$SDMANAGER" ] || { echo "$SDMANAGER is not built: make tests" >&2; return 1; }
	mkdir -p "$SDM/units"
	: >"$SDM/calls"
	cat >"$SDM/bus.conf" <<-EOC
	<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
	 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
	<busconfig>
	  <type>system</type>
	  <listen>unix:path=$SDM/bus</listen>
	  <auth>EXTERNAL</auth>
	  <policy context="default">
	    <allow user="*"/>
	    <allow own="*"/>
	    <allow send_destination="*"/>
	    <allow receive_sender="*"/>
	  </policy>
	</busconfig>
	EOC
	dbus-daemon --config-file="$SDM/bus.conf" --nofork --nopidfile >"$SDM/bus.log" 2>&1 &
	SDM_PIDS+=($!)
	disown $!
	CLEANUPS+=(manager_stop)
	for _ in $(seq 100); do [ -S "$SDM/bus" ] && break; sleep 0.05; done
	[ -S "$SDM/bus" ] || { echo "dbus-daemon did not start: $(cat "$SDM/bus.log")" >&2; return 1; }
	export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$SDM/bus"
	"$SDMANAGER" "$SDM" >"$SDM/manager.out" 2>"$SDM/manager.err" &
	SDM_PIDS+=($!)
	disown $!
	for _ in $(seq 100); do grep -qx ready "$SDM/manager.out" 2>/dev/null && return 0; sleep 0.05; done
	echo "the stand-in manager did not start: $(cat "$SDM/manager.err")" >&2
	return 1
}

manager_unit() {
	local unit=$1; shift
	echo "$*" >"$SDM/units/$unit"
}
login_user() {
	mkdir -p "$SDM/login/users" "$SDM/login/sessions"
	if [ $# -ge 3 ]; then
		echo "display=$2" >"$SDM/login/users/$1"
		echo "$3" >"$SDM/login/sessions/$2"
	else
		: >"$SDM/login/users/$1"
	fi
}
manager_state() { cut -d' ' -f1 "$SDM/units/$1" 2>/dev/null; }
manager_calls() {
	if [ $# -gt 0 ]; then grep "^$1\( \|$\)" "$SDM/calls"; else cat "$SDM/calls"; fi
}
manager_sent() { manager_calls "$1" | grep -q "^$1${2:+ $2\( \|$\)}"; }
manager_never() {
	local got
	got=$(manager_calls "$1")
	[ -z "$got" ] && return 0
	echo "$1 was sent: $(tr '\n' ';' <<<"$got")"
	return 1
}
manager_senders() { sort -u "$SDM/senders" 2>/dev/null | wc -l; }
manager_forget() { : >"$SDM/calls"; : >"$SDM/senders"; }
