/* SPDX-License-Identifier: GPL-2.0-or-later */
/* systemd units through sd-bus: is it active, stop it, start it, and wait for the job. */
#ifndef VFIO_AGENT_UNITS_H
#define VFIO_AGENT_UNITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sd_bus sd_bus;

#define UNIT_NAME_MAX 255 /* systemd's UNIT_NAME_MAX less its NUL */

/*
 * A unit the handoff may stop and start again: a name as systemd spells
 * them, of a service, socket or scope (never a target: reboot.target).
 */
bool unit_name_valid(const char *name);

/*
 * The system bus; under root, root's /run/dbus/system_bus_socket unless
 * DBUS_SYSTEM_BUS_ADDRESS names one. -errno (ENOENT: no bus, no systemd).
 */
int units_connect(const char *root, sd_bus **bus, char *err, size_t errlen);
void units_disconnect(sd_bus *bus);

/* active, activating or reloading: a unit that was running. Unknown units are not. */
int unit_is_active(sd_bus *bus, const char *unit, bool *active, char *err, size_t errlen);

/*
 * StopUnit/StartUnit with mode "replace", then wait for the job's
 * JobRemoved signal up to timeout_us. -errno; err holds systemd's reason
 * (a refused stop, a failed or timed-out job).
 */
int unit_stop(sd_bus *bus, const char *unit, uint64_t timeout_us, char *err, size_t errlen);
int unit_start(sd_bus *bus, const char *unit, uint64_t timeout_us, char *err, size_t errlen);

#endif
