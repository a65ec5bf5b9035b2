/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The few facts the hook needs from libvirt's domain XML, read with libxml2. */
#ifndef VFIO_AGENT_DOMAIN_H
#define VFIO_AGENT_DOMAIN_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* libvirt's domain XML is kilobytes; anything past this is refused */
#define DOMAIN_XML_MAX (4u << 20)

struct dom_iface {
	uint8_t mac[6];
	char bridge[IFNAMSIZ]; /* "" when the XML does not say */
	char network[64];      /* <source network=...>, "" for bridges */
};

/* what diagnose --vm checks of a PCI hostdev */
struct dom_hostdev {
	bool managed;	  /* managed='yes': libvirt binds and unbinds it itself */
	bool rom_bar_off; /* <rom bar='off'/> */
	bool rom_file;	  /* <rom file=...>: a ROM image of the user's */
};

struct domain {
	char name[64];
	char uuid[37];
	char (*pcis)[16];	      /* <hostdev type='pci'> sources, "0000:03:00.0" */
	struct dom_hostdev *hostdevs; /* n_pcis of them, in pcis' order */
	size_t n_pcis;
	char videos[128];  /* <video><model type=>, space-separated, 'none' left out */
	char graphics[64]; /* <graphics type=>, space-separated */
	bool hyperv;	   /* <features><hyperv> */
	bool vendor_id;	   /* <hyperv><vendor_id state='on' value=.../> */
	bool kvm_hidden;   /* <features><kvm><hidden state='on'/> */
	bool tpm_emulator; /* <tpm><backend type='emulator'>: swtpm runs it */
	char loader[1024]; /* <os><loader>PATH */
	char nvram[1024];  /* <os><nvram>PATH */
	char nvram_template[1024];
	struct dom_iface *ifaces;
	size_t n_ifaces;
	bool agent_connected; /* live XML: the guest agent's channel is connected */
};

/*
 * Parse len bytes of domain XML. 0, or -EINVAL (-ENOMEM, -E2BIG) with one
 * line in err. A DOCTYPE is refused: libvirt never writes one, and an
 * internal subset is how entity expansion attacks arrive.
 */
int domain_parse(const char *xml, size_t len, struct domain *d, char *err, size_t errlen);
void domain_free(struct domain *d);

/* "52:54:00:12:34:56" */
int parse_mac(const char *s, uint8_t mac[6]);

#endif
