/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Libraries that only some verbs need, opened when one of them first does,
 * so that the others (forward, the hook) start without mapping them.
 * A library's functions are listed once, in an X-macro, and called through
 * pointers named sym_<function>, typed from the library's own header.
 */
#ifndef VFIO_AGENT_DL_H
#define VFIO_AGENT_DL_H

#include <stddef.h>

#include <libkmod.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>

#define DL_DECLARE(f) extern typeof(f) *sym_##f;
#define DL_DEFINE(f) typeof(f) *sym_##f;

/* one symbol list per library, packed by hand */
/* clang-format off */
/* libvirt's client library: the daemon and guest.ip = auto */
#define LIBVIRT_SYMS(X)                                                                  \
	X(virConnectClose) X(virConnectDomainEventDeregisterAny) X(virConnectListAllDomains)                         \
	X(virConnectDomainEventRegisterAny) X(virConnectNetworkEventDeregisterAny)       \
	X(virConnectNetworkEventRegisterAny) X(virConnectOpen) X(virConnectOpenReadOnly) \
	X(virConnectRegisterCloseCallback) X(virConnectSetKeepAlive)                     \
	X(virConnectUnregisterCloseCallback) X(virDomainFree) X(virDomainGetName)        \
	X(virDomainGetXMLDesc) X(virDomainInterfaceAddresses) X(virDomainInterfaceFree)  \
	X(virDomainIsActive) X(virDomainLookupByName) X(virEventAddHandle)               \
	X(virEventAddTimeout) X(virEventRegisterDefaultImpl) X(virEventRunDefaultImpl)   \
	X(virEventUpdateTimeout) X(virGetLastError) X(virNetworkGetName) X(virSetErrorFunc)

/* libkmod: the module steps of diagnose and the handoff */
#define LIBKMOD_SYMS(X)                                                                      \
	X(kmod_get_log_priority) X(kmod_list_next) X(kmod_module_get_holders)               \
	X(kmod_module_get_initstate) X(kmod_module_get_module) X(kmod_module_get_name)      \
	X(kmod_module_get_path) X(kmod_module_get_refcnt) X(kmod_module_initstate_str)      \
	X(kmod_module_new_from_lookup) X(kmod_module_new_from_name)                         \
	X(kmod_module_probe_insert_module) X(kmod_module_remove_module) X(kmod_module_unref) \
	X(kmod_module_unref_list) X(kmod_new) X(kmod_set_log_fn) X(kmod_set_log_priority)   \
	X(kmod_unref) X(kmod_get_userdata) X(kmod_set_userdata)                              \
	X(kmod_module_get_dependencies) X(kmod_load_resources)

/* libkmod's own kmod_list_foreach calls kmod_list_next directly */
#define dl_kmod_list_foreach(entry, first) \
	for (entry = first; entry; entry = sym_kmod_list_next(first, entry))

/* libxml2: the domain XML the hook reads. xmlFree is a variable: call (*sym_xmlFree)(p) */
#define LIBXML2_SYMS(X)                                                                 \
	X(xmlCtxtGetLastError) X(xmlCtxtReadMemory) X(xmlDocGetRootElement) X(xmlFree) \
	X(xmlFreeDoc) X(xmlFreeParserCtxt) X(xmlGetNoNsProp) X(xmlInitParser)          \
	X(xmlNewParserCtxt) X(xmlStrcmp)

/* libsystemd: units over D-Bus, the daemon's readiness and watchdog */
#define LIBSYSTEMD_SYMS(X)                                                                 \
	X(sd_bus_call_method) X(sd_bus_call_method_async) X(sd_bus_error_free)              \
	X(sd_bus_error_has_name) X(sd_bus_flush_close_unref) X(sd_bus_match_signal)         \
	X(sd_bus_message_enter_container) X(sd_bus_message_get_errno)                       \
	X(sd_bus_message_get_error) X(sd_bus_message_read) X(sd_bus_message_read_strv)      \
	X(sd_bus_message_unref) X(sd_bus_open_system) X(sd_bus_new) X(sd_bus_path_encode)   \
	X(sd_bus_set_address) X(sd_bus_set_bus_client) X(sd_bus_start)              \
	X(sd_bus_process) X(sd_bus_slot_unref) X(sd_bus_wait) X(sd_notify) X(sd_notifyf) \
	X(sd_watchdog_enabled)

/* clang-format on */

LIBVIRT_SYMS(DL_DECLARE)
LIBKMOD_SYMS(DL_DECLARE)
LIBXML2_SYMS(DL_DECLARE)
LIBSYSTEMD_SYMS(DL_DECLARE)

/*
 * Open the library and find every function above, once per process. 0, or
 * -errno with err's line saying what is missing and what to install.
 */
int dl_libvirt(char *err, size_t errlen);
int dl_libkmod(char *err, size_t errlen);
int dl_libxml2(char *err, size_t errlen);
int dl_libsystemd(char *err, size_t errlen);

#endif
