#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# vm: --systemd
#
# examples/vfio-agent.service under real systemd, with every restriction it
# sets: it starts (Type=notify: READY), shows its STATUS, keeps the watchdog
# fed, reloads on systemctl reload, and stops cleanly. No libvirtd runs in
# this guest, so the daemon waits for one, as it does at boot.
set -u
. "$(dirname "$0")/lib.sh"

check "systemd is PID 1" [ "$(cat /proc/1/comm)" = systemd ]
mkdir -p /etc/vfio-agent
cat >/etc/vfio-agent/vfio-agent.conf <<'EOC'
[vfio]
vm = win11

[vnc]
enable = true
interface = lo
host.ip = 127.0.0.1
guest.ip = 198.51.100.10
EOC
# where make install puts it: the unit's PrivateTmp and ProtectHome would
# hide a build under /tmp, /var/tmp or /home (this guest's writes stay in
# its overlay)
install -D -m 0755 "$VFIO_AGENT" /usr/local/sbin/vfio-agent
sed "s|@BINDIR@|/usr/local/sbin|" examples/vfio-agent.service \
	>/run/systemd/system/vfio-agent.service
mkdir -p /run/systemd/system/vfio-agent.service.d
# the watchdog at 2 s, so that a missed ping would show within the test
printf '[Service]\nWatchdogSec=2\n' >/run/systemd/system/vfio-agent.service.d/test.conf
systemctl daemon-reload
# (--man=no: the man page is not installed in this guest)
systemd-analyze verify --man=no /run/systemd/system/vfio-agent.service >"$TMP/verify" 2>&1
check "systemd-analyze verify accepts the unit ($(grep -v '^$' "$TMP/verify" | head -n 2 | tr '\n' ' '))" \
	eval '! grep -qi "vfio-agent.service" "$TMP/verify"'

if systemctl start vfio-agent.service; then
	ok "systemctl start: Type=notify, READY came"
else
	not_ok "systemctl start" "$(journalctl -u vfio-agent.service --no-pager | tail -n 5)"
fi
check "active" [ "$(systemctl is-active vfio-agent.service)" = active ]
status=$(systemctl show -P StatusText vfio-agent.service)
check "its STATUS says what it does ($status)" eval '[ -n "$status" ]'
pid=$(systemctl show -P MainPID vfio-agent.service)
check "it runs with CAP_NET_ADMIN alone" grep -qx "CapEff:	0000000000001000" "/proc/$pid/status"
sleep 5
check "still active after 5 s with WatchdogSec=2" eval '[ "$(systemctl is-active vfio-agent.service)" = active ] && [ "$(systemctl show -P MainPID vfio-agent.service)" = "$pid" ]'
systemctl reload vfio-agent.service
for _ in $(seq 30); do journalctl -u vfio-agent.service --no-pager | grep -q "reloaded" && break; sleep 0.1; done
check "systemctl reload: the config is read again" eval 'journalctl -u vfio-agent.service --no-pager | grep -q "config /etc/vfio-agent/vfio-agent.conf reloaded"'
systemctl stop vfio-agent.service
check "systemctl stop: inactive, not failed" [ "$(systemctl is-active vfio-agent.service)" = inactive ]
check "its log says it waited for libvirt and stopped" \
	eval 'journalctl -u vfio-agent.service --no-pager | grep -q "reconnecting" && journalctl -u vfio-agent.service --no-pager | grep -q "stopping"'
finish
