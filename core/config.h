/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The INI config of DESIGN.md, read line by line and validated key by key:
 * "[section]", "key = value", '#' and ';' comments at a line's start or
 * after whitespace. A line is never split, cut or joined.
 */
#ifndef VFIO_AGENT_CONFIG_H
#define VFIO_AGENT_CONFIG_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netfilter/nft.h"

#define CONFIG_DEFAULT_PATH "/etc/vfio-agent/vfio-agent.conf"
/* [forward NAME] sections: the VNC port and these fit one map and one status screen */
#define CONFIG_MAX_FORWARDS 63
/* a line's bytes without its newline: a list of 255-byte unit names fits */
#define CONFIG_MAX_LINE 4095
#define CONFIG_MAX_SIZE (1 << 20)

enum cfg_cpu { CPU_UNSET, CPU_INTEL, CPU_AMD };
enum cfg_gpu { GPU_UNSET, GPU_AMD, GPU_NVIDIA };
enum cfg_on_holders { HOLDERS_WAIT, HOLDERS_KILL, HOLDERS_FAIL, HOLDERS__N };

/* the values of on-holders, as the config spells them */
extern const char *const on_holders_names[HOLDERS__N];
struct config;

/* the values of exempt, as the config spells them */
extern const char *const exempt_names[NF_EXEMPT__N];

/* on-holders as the config would say it: "stop,wait", "kill" */
const char *config_on_holders(const struct config *c, char *buf, size_t len);

struct cfg_forward {
	char name[64];
	uint8_t proto;
	uint16_t host_port;
	uint16_t guest_port;
};

struct cfg_vnc {
	bool enable;
	char interface[IFNAMSIZ];
	bool host_auto;
	struct nf_addr host[NF_NFAM]; /* family 0 where not given */
	uint16_t host_port;
	bool guest_auto;
	struct nf_addr guest[NF_NFAM];
	uint16_t guest_port;
	struct nf_prefix *allow; /* empty: the interface's subnet */
	size_t n_allow;
	bool masquerade;
	enum nf_exempt exempt;
};

struct config {
	char *path;
	char vm[64];
	char user[33];
	enum cfg_cpu cpu;
	enum cfg_gpu gpu;
	char (*pcis)[16]; /* "0000:03:00.0" */
	size_t n_pcis;
	char (*allow_non_gpu)[16]; /* devices that may go although not display class */
	size_t n_allow_non_gpu;
	bool passthrough;
	char **stop_units; /* "gdm.service", or "user:1000:pipewire.service" */
	size_t n_stop_units;
	bool stop_units_set; /* else: display-manager.service, where the host has it */
	bool holders_stop;   /* on-holders = stop[,MODE]: a holder's unit is stopped */
	enum cfg_on_holders on_holders;
	unsigned int holder_timeout;
	struct cfg_vnc vnc;
	struct cfg_forward *fwd; /* [forward NAME] sections */
	size_t n_fwd;
};

/*
 * Load and validate PATH. 0 on success; -errno if it cannot be read, or
 * -EINVAL for bad content; err then holds one line: "FILE:LINE: [section]
 * key: what was expected". Run as root, a file not owned by root or
 * writable by group or others is -EPERM with its line.
 */
int config_load(const char *path, struct config **out, char *err, size_t errlen);
/* The same for len bytes of text, NAME in the lines (the tests and the fuzzer) */
int config_parse(const char *name, const char *buf, size_t len, struct config **out, char *err,
		 size_t errlen);
void config_free(struct config *c);

/* Parsers shared with the command line. */
/* a VM name as the config takes it (and a journal's file name is made of) */
bool config_vm_name_valid(const char *name);
int parse_pci(const char *s, char out[16]);
bool parse_addr(const char *s, struct nf_addr *a);

#endif
