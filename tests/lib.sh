# SPDX-License-Identifier: GPL-2.0-or-later
# Shared by the shell tests: result lines for tests/run, and namespaces that
# are removed on exit whatever happens.

: "${VFIO_AGENT:?set VFIO_AGENT to the binary under test}"
TESTS_FAILED=0

ok() { echo "ok $1"; }
not_ok() { echo "not ok $1: $2"; TESTS_FAILED=$((TESTS_FAILED + 1)); }
# check NAME CMD...: ok if CMD succeeds. `check NAME eval '[ $? ...'` could
# not fail on the command before it: $? there is check's own shift's, always
# 0, so such a check fails and says to keep rc=$? after the command instead.
CHECK_STALE_STATUS='^[[:space:]]*(![[:space:]]*)?(\[|\[\[|test|\(\()[[:space:]]*"?\$\?'
check() {
	local name=$1; shift
	if [ "${1:-}" = eval ] && [[ ${2:-} =~ $CHECK_STALE_STATUS ]]; then
		not_ok "$name" "its eval tests \$? first, which is check's own (0): keep rc=\$? after the command"
		return 0
	fi
	if "$@"; then ok "$name"; else not_ok "$name" "failed: $*"; fi
}

# judge NAME WANT_RC PATTERN RC [EXTRA...]: a refused command's verdict. It
# exited WANT_RC, wrote one line matching PATTERN to $TMP/err and nothing to
# $TMP/out; EXTRA, when given, must succeed too (it prints why not).
judge() {
	local name=$1 want=$2 pat=$3 rc=$4 lines why; shift 4
	lines=$(wc -l <"$TMP/err")
	if [ "$rc" -ne "$want" ]; then
		not_ok "$name" "exit $rc, want $want; stderr: $(head -c 300 "$TMP/err")"
	elif [ "$lines" -ne 1 ]; then
		not_ok "$name" "stderr has $lines lines, want one: $(cat "$TMP/err")"
	elif ! grep -Eq -- "$pat" "$TMP/err"; then
		not_ok "$name" "stderr '$(cat "$TMP/err")' does not match '$pat'"
	elif [ -s "$TMP/out" ]; then
		not_ok "$name" "stdout not empty: $(head -c 200 "$TMP/out")"
	elif [ $# -gt 0 ] && ! why=$("$@"); then
		not_ok "$name" "$why"
	else
		ok "$name (exit $rc: $(cat "$TMP/err"))"
	fi
}

need_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "not ok ${1:-setup}: needs root (network namespaces, nftables)"
		exit 1
	fi
}

# Namespaces made here carry this run's prefix and go away on exit.
NS_PREFIX="${NS_PREFIX:-va$$}"
NS_LIST=()
TMP=$(mktemp -d)
# what a helper started and must end on exit, whatever trap the test sets: each
# test's trap ends in cleanup (or calls run_cleanups itself)
CLEANUPS=()
run_cleanups() {
	local f
	for f in "${CLEANUPS[@]}"; do "$f"; done
	CLEANUPS=()
}
cleanup() {
	local ns pid
	run_cleanups
	for ns in "${NS_LIST[@]}"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf "$TMP"
}
trap cleanup EXIT

mkns() {
	local ns="$NS_PREFIX-$1"
	ip netns add "$ns" || return 1
	NS_LIST+=("$ns")
	ip -n "$ns" link set lo up
}
# spawn NS CMD...: a server in NS, not a job of ours; cleanup kills it with the namespace
spawn() { local ns=$1; shift; ( in_ns "$ns" "$@" >/dev/null 2>&1 & ); }
in_ns() { local ns="$NS_PREFIX-$1"; shift; ip netns exec "$ns" "$@"; }

# veth A:IFA <-> B:IFB
link() { ip link add "$2" netns "$NS_PREFIX-$1" type veth peer name "$4" netns "$NS_PREFIX-$3"; \
	ip -n "$NS_PREFIX-$1" link set "$2" up; ip -n "$NS_PREFIX-$3" link set "$4" up; }

# libvirt_nft_tables NS BRIDGE SUBNET: libvirt's own nftables tables in NS as
# libvirt 11.3 (Debian 13) writes them for a NAT network on BRIDGE (recorded from
# the real one, tests/libvirt/libvirt11.sh): both families' tables, the ip6 one
# empty for an IPv4-only network, guest_nat's two returns and its port-range
# masquerades
libvirt_nft_tables() {
	in_ns "$1" nft -f - <<-NFT
	table ip libvirt_network {
		chain forward {
			type filter hook forward priority filter; policy accept;
			counter jump guest_cross
			counter jump guest_input
			counter jump guest_output
		}
		chain guest_output {
			ip saddr $3 iif "$2" counter accept
			iif "$2" counter reject
		}
		chain guest_input {
			oif "$2" ip daddr $3 ct state established,related counter accept
			oif "$2" counter reject
		}
		chain guest_cross {
			iif "$2" oif "$2" counter accept
		}
		chain guest_nat {
			type nat hook postrouting priority srcnat; policy accept;
			ip saddr $3 ip daddr 224.0.0.0/24 counter return
			ip saddr $3 ip daddr 255.255.255.255 counter return
			meta l4proto tcp ip saddr $3 ip daddr != $3 counter masquerade to :1024-65535
			meta l4proto udp ip saddr $3 ip daddr != $3 counter masquerade to :1024-65535
			ip saddr $3 ip daddr != $3 counter masquerade
		}
	}
	table ip6 libvirt_network {
		chain forward {
			type filter hook forward priority filter; policy accept;
			counter jump guest_cross
			counter jump guest_input
			counter jump guest_output
		}
		chain guest_output {
		}
		chain guest_input {
		}
		chain guest_cross {
		}
		chain guest_nat {
			type nat hook postrouting priority srcnat; policy accept;
		}
	}
	NFT
}

finish() {
	exit $((TESTS_FAILED > 0))
}

# repeat N CMD...: CMD up to N times, stopping at the first failure, so that a loop
# whose first rounds fail ends at once; REPEATED is how many succeeded
REPEATED=0
repeat() {
	local n=$1; shift
	REPEATED=0
	while [ "$REPEATED" -lt "$n" ]; do
		"$@" || return 1
		REPEATED=$((REPEATED + 1))
	done
}

# ---- holders: stand-in devices and the processes that hold them ----
HOLDER="${HOLDER:-$UNIT_DIR/holder}"
HOLDER_PIDS=()
cleanup_holders() {
	local p
	for p in "${HOLDER_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	# their children die with them (PR_SET_PDEATHSIG); give the kernel a moment
	for p in "${HOLDER_PIDS[@]}"; do
		for _ in $(seq 50); do [ -d /proc/"$p" ] || break; sleep 0.02; done
	done
	HOLDER_PIDS=()
}
trap 'cleanup_holders; cleanup' EXIT

# start_holder NAME ARGS...: run the helper; its hold lines land in $TMP/NAME.
# Returns once it printed "ready" (5 s at most).
start_holder() {
	local name=$1; shift
	"$HOLDER" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
	HOLDER_PIDS+=($!)
	disown $!
	for _ in $(seq 100); do
		grep -qx ready "$TMP/$name.out" 2>/dev/null && break
		sleep 0.05
	done
	grep -qx ready "$TMP/$name.out" || { echo "holder $*: $(cat "$TMP/$name.err")" >&2; return 1; }
	grep -vx ready "$TMP/$name.out" >"$TMP/$name" || true
}

# "PID KIND FD" per hold from diagnose --json on stdin, sorted
holds_of() {
	jq -r '.holders[] | .pid as $p | .holds[] | "\($p) \(.kind) \(.fd // "-")"' | sort
}

# ---- cgroups as systemd would make them, for unit attribution ----
# cgroup v2, plus the named systemd hierarchy on a hybrid host: a process
# goes into the same path in each, as systemd itself would put it
CG_HIER=()
CG_CREATED=()
cgroup_hierarchies() {
	if [ -d /sys/fs/cgroup/unified ]; then
		CG_HIER=(/sys/fs/cgroup/unified)
		[ -d /sys/fs/cgroup/systemd ] && CG_HIER+=(/sys/fs/cgroup/systemd)
	elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then
		CG_HIER=(/sys/fs/cgroup)
	else
		return 1
	fi
}
# cgroup_make CGPATH: mkdir -p in every hierarchy, remembering what was made
cgroup_make() {
	local path=$1 h d sub
	for h in "${CG_HIER[@]}"; do
		d=$h
		for sub in ${path//\// }; do
			d=$d/$sub
			if [ ! -d "$d" ]; then
				mkdir "$d" || return 1
				CG_CREATED+=("$d")
			fi
		done
	done
}
# cgroup_place PID CGPATH: the process moved into CGPATH, made where it is not
cgroup_place() {
	local h
	cgroup_make "$2" || return 1
	for h in "${CG_HIER[@]}"; do
		echo "$1" >"$h/$2/cgroup.procs" || return 1
	done
}
# the holders end, then the cgroups made go, deepest first
cleanup_cgroups() {
	local d p i
	cleanup_holders
	for ((i = ${#CG_CREATED[@]} - 1; i >= 0; i--)); do
		d=${CG_CREATED[i]}
		for p in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
		rmdir "$d" 2>/dev/null
	done
}

# ---- nftables events: what a command changed, as `nft monitor` saw it ----
# NFT_IN: the command prefix that reaches the ruleset under test (e.g. "in_ns host"); empty
# for the one the test runs in. A marker table, added and deleted, brackets the window.
NFT_IN=
nft_mark() {
	local log=$1 name=$2
	for _ in $(seq 50); do
		$NFT_IN nft add table inet "$name" && $NFT_IN nft delete table inet "$name"
		grep -q "delete table inet $name" "$log" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
# nft_events FILE CMD...: run CMD while `nft monitor` watches; the events that came
# between CMD's start and its end (and anything it left running did by then) go to
# FILE. Returns CMD's exit status, 125 when the monitor did not start.
nft_events() {
	local out=$1 log=$TMP/nft-monitor.$BASHPID pid rc; shift
	$NFT_IN nft monitor >"$log" 2>&1 &
	pid=$!
	nft_mark "$log" va_mark_begin || { kill "$pid"; echo "nft monitor did not start" >"$out"; return 125; }
	"$@"
	rc=$?
	nft_mark "$log" va_mark_end
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	sed -n '/delete table inet va_mark_begin/,/add table inet va_mark_end/p' "$log" |
		sed -e '1d' -e '$d' | grep -v '^# ' >"$out"
	rm -f "$log"
	return $rc
}

# idempotent NAME SAID PATTERN CMD...: CMD, run on a forward that is up and has counted
# traffic, changes nothing: every counter keeps its packets and bytes, every rule its
# handle (nft -a list table inet vfio_agent), nft monitor sees no event but those
# matching IDEM_OWN_EVENTS (the trigger's own, where CMD makes one), and the file SAID
# then holds a line matching PATTERN ("already up").
idempotent() {
	local name=$1 said=$2 pat=$3 before after ev; shift 3
	before=$($NFT_IN nft -a list table inet vfio_agent 2>&1)
	if ! grep -Eq 'counter packets [1-9]' <<<"$before"; then
		not_ok "$name" "no counter has counted a packet: the test could not tell a rebuilt table"
		return
	fi
	nft_events "$TMP/idem.events" "$@"
	after=$($NFT_IN nft -a list table inet vfio_agent 2>&1)
	counters() { grep -o 'counter packets [0-9]* bytes [0-9]*' <<<"$1" | tr '\n' ' '; }
	handles() { grep -o '# handle [0-9]*' <<<"$1" | tr -d '#' | tr '\n' ' '; }
	if [ "$(counters "$before")" = "$(counters "$after")" ]; then
		ok "$name: the counters keep their packets and bytes ($(counters "$after" | cut -c 1-60)...)"
	else
		not_ok "$name: counters" "before: $(counters "$before"); after: $(counters "$after")"
	fi
	if [ "$(handles "$before")" = "$(handles "$after")" ]; then
		ok "$name: every rule keeps its handle"
	else
		not_ok "$name: handles" "before:$(handles "$before"); after:$(handles "$after")"
	fi
	ev=$(grep -Ev "${IDEM_OWN_EVENTS:-^$}" "$TMP/idem.events")
	if [ -z "$ev" ]; then
		ok "$name: nft monitor saw no event"
	else
		not_ok "$name: nft monitor saw" "$(head -c 400 <<<"$ev")"
	fi
	if grep -Eq -- "$pat" "$said"; then
		ok "$name: it said so ($(grep -Eo -- "$pat.*" "$said" | head -1))"
	else
		not_ok "$name: '$pat'" "not said: $(tail -c 300 "$said")"
	fi
}

# ---- the forward's path: a LAN client, the host and a guest in namespaces ----
#   c1 (198.51.100.10) --lan0-- host (198.51.100.1) --vnet0-- guest (192.0.2.50)
# fwd_scene PORT: the guest serves "guest" on TCP PORT; returns once it listens
fwd_scene() {
	mkns host && mkns c1 && mkns guest || return 1
	link host lan0 c1 eth0
	link host vnet0 guest eth0
	in_ns host ip addr add 198.51.100.1/24 dev lan0
	in_ns host ip addr add 192.0.2.1/24 dev vnet0
	in_ns host sysctl -qw net.ipv4.ip_forward=1
	in_ns c1 ip addr add 198.51.100.10/24 dev eth0
	in_ns guest ip addr add 192.0.2.50/24 dev eth0
	in_ns guest ip route add default via 192.0.2.1
	spawn guest socat "TCP4-LISTEN:$1,fork,reuseaddr" 'SYSTEM:echo guest'
	for _ in $(seq 50); do in_ns guest ss -Hltn "sport = :$1" | grep -q . && break; sleep 0.1; done
}
# status_says NAME PATTERN: the script's `agent forward status` exits 1, and its text says PATTERN
status_says() {
	local out rc
	out=$(agent forward status 2>&1); rc=$?
	if [ $rc -ne 1 ]; then not_ok "$1" "status exited $rc, want 1: $out"
	elif ! grep -Eq -- "$2" <<<"$out"; then not_ok "$1" "status does not say '$2': $out"
	else ok "$1 ($(grep -E -- "$2" <<<"$out" | head -1 | sed 's/^ *//'))"; fi
}

# ---- the hook's stdout: an XML filter for some of libvirt's calls, so never a byte ----
# hook_quiet CALL FILE: after each hook call, FILE (its stdout) must be empty. The
# tally is a file, so that calls made in a pipeline's subshell count too.
hook_quiet() {
	local n
	n=$(wc -c <"$2" 2>/dev/null || echo 0)
	echo "$n $1" >>"$TMP/hook-stdout.tally"
	[ "$n" -eq 0 ] ||
		not_ok "hook $1: stdout" "$n bytes: $(head -c 60 "$2" | od -An -c | head -2 | tr -s ' ')"
}
# hook_tally_clean STAGE: where the calls are tallied by another program (a hook script
# libvirtd runs writes "BYTES OP SUBOP" lines to $TMP/hook-stdout.tally): none so far wrote
hook_tally_clean() {
	local bad
	bad=$(grep -v '^0 ' "$TMP/hook-stdout.tally" 2>/dev/null)
	[ -z "$bad" ] || not_ok "$1: the hook's stdout" "calls that wrote to it (bytes, call): $bad"
}
# hook_quiet_all: one line for all the calls hook_quiet saw
hook_quiet_all() {
	local calls noisy
	calls=$(wc -l <"$TMP/hook-stdout.tally" 2>/dev/null || echo 0)
	noisy=$(grep -vc '^0 ' "$TMP/hook-stdout.tally" 2>/dev/null)
	if [ "$calls" -eq 0 ]; then
		not_ok "the hook's stdout" "no hook call was checked"
	elif [ "${noisy:-0}" -eq 0 ]; then
		ok "the hook wrote nothing to stdout, in each of its $calls calls"
	else
		not_ok "the hook's stdout" "$noisy of $calls calls wrote to it"
	fi
}
