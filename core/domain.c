// SPDX-License-Identifier: GPL-2.0-or-later
/* Domain XML: name, uuid, PCI hostdevs, interface MACs and bridges. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "core/dl.h"
#include "core/domain.h"
#include "shared/macro.h"

int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int b[6];
	char end;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &end) != 6 ||
	    strlen(s) != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = b[i];
	return 0;
}

static bool is(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && !sym_xmlStrcmp(n->name, BAD_CAST name);
}

static const xmlNode *child(const xmlNode *n, const char *name)
{
	for (const xmlNode *c = n->children; c; c = c->next)
		if (is(c, name))
			return c;
	return NULL;
}

/*
 * An element's text, from its text children only: entity references are
 * not followed (xmlNodeGetContent would expand them).
 */
static int text_of(const xmlNode *n, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (const xmlNode *c = n->children; c; c = c->next) {
		size_t l;

		if (c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE)
			continue;
		l = strlen((const char *)c->content);
		if (used + l >= len)
			return -E2BIG;
		memcpy(buf + used, c->content, l + 1);
		used += l;
	}
	/* libvirt writes these bare; trim what a hand edit may add */
	char *s = buf + strspn(buf, " \t\r\n");
	memmove(buf, s, strlen(s) + 1);
	for (used = strlen(buf); used && strchr(" \t\r\n", buf[used - 1]); used--)
		buf[used - 1] = '\0';
	return 0;
}

static int attr(const xmlNode *n, const char *name, char *buf, size_t len)
{
	xmlChar *v = sym_xmlGetNoNsProp(n, BAD_CAST name);
	int r = 0;

	buf[0] = '\0';
	if (!v)
		return -ENOENT;
	if (strlen((const char *)v) >= len)
		r = -E2BIG;
	else
		strcpy(buf, (const char *)v);
	(*sym_xmlFree)(v);
	return r;
}

static int hex_attr(const xmlNode *n, const char *name, unsigned long max, unsigned long *out)
{
	char buf[16], *end;

	if (attr(n, name, buf, sizeof(buf)) || !buf[0])
		return -EINVAL;
	errno = 0;
	*out = strtoul(buf, &end, 0);
	return errno || *end || *out > max ? -EINVAL : 0;
}

static int add_hostdev(struct domain *d, const xmlNode *hd, char *err, size_t errlen)
{
	const xmlNode *src = child(hd, "source"), *a = src ? child(src, "address") : NULL;
	unsigned long dom, bus, slot, fn;
	char type[16];

	if (attr(hd, "type", type, sizeof(type)) || strcmp(type, "pci"))
		return 0; /* usb, scsi, mdev: not ours */
	if (!a || hex_attr(a, "domain", 0xffff, &dom) || hex_attr(a, "bus", 0xff, &bus) ||
	    hex_attr(a, "slot", 0x1f, &slot) || hex_attr(a, "function", 7, &fn)) {
		snprintf(err, errlen,
			 "domain XML line %d: a PCI <hostdev> without a valid "
			 "<source><address domain= bus= slot= function=/>",
			 hd->line);
		return -EINVAL;
	}
	void *p = realloc(d->pcis, (d->n_pcis + 1) * sizeof(*d->pcis));
	if (!p)
		return -ENOMEM;
	d->pcis = p;
	if (!(p = realloc(d->hostdevs, (d->n_pcis + 1) * sizeof(*d->hostdevs))))
		return -ENOMEM;
	d->hostdevs = p;
	struct dom_hostdev *h = &d->hostdevs[d->n_pcis];
	const xmlNode *rom = child(hd, "rom");
	char v[16];

	memset(h, 0, sizeof(*h));
	/* absent means no (formatdomain: the user then binds it to vfio-pci) */
	h->managed = !attr(hd, "managed", v, sizeof(v)) && !strcmp(v, "yes");
	if (rom) {
		h->rom_bar_off = !attr(rom, "bar", v, sizeof(v)) && !strcmp(v, "off");
		h->rom_file = attr(rom, "file", v, sizeof(v)) != -ENOENT;
	}
	snprintf(d->pcis[d->n_pcis++], sizeof(*d->pcis), "%04lx:%02lx:%02lx.%lx", dom, bus, slot,
		 fn);
	return 0;
}

/* "word" appended to a space-separated list, cut where it would not fit */
static void list_add(char *list, size_t len, const char *word)
{
	size_t used = strlen(list);

	if (word[0] && used + strlen(word) + 2 <= len)
		snprintf(list + used, len - used, "%s%s", used ? " " : "", word);
}

static bool state_on(const xmlNode *n)
{
	char v[8];

	return n && !attr(n, "state", v, sizeof(v)) && !strcmp(v, "on");
}

/* <features>: what NVIDIA's older drivers look for, and Hyper-V's enlightenments */
static void features(struct domain *d, const xmlNode *f)
{
	const xmlNode *hv = child(f, "hyperv"), *kvm = child(f, "kvm");

	d->hyperv = hv != NULL;
	d->vendor_id = hv && state_on(child(hv, "vendor_id"));
	d->kvm_hidden = kvm && state_on(child(kvm, "hidden"));
}

/* <os>: the firmware files libvirt hands QEMU */
static int os_files(struct domain *d, const xmlNode *os)
{
	const xmlNode *l = child(os, "loader"), *nv = child(os, "nvram");

	if ((l && text_of(l, d->loader, sizeof(d->loader))) ||
	    (nv && (text_of(nv, d->nvram, sizeof(d->nvram)) ||
		    attr(nv, "template", d->nvram_template, sizeof(d->nvram_template)) == -E2BIG)))
		return -E2BIG;
	return 0;
}

/* <video>, <graphics>, <tpm>: the devices diagnose --vm warns about */
static void other_device(struct domain *d, const xmlNode *c)
{
	char type[16];

	if (is(c, "video")) {
		const xmlNode *m = child(c, "model");

		if (m && !attr(m, "type", type, sizeof(type)) && strcmp(type, "none"))
			list_add(d->videos, sizeof(d->videos), type);
	} else if (is(c, "graphics")) {
		if (!attr(c, "type", type, sizeof(type)))
			list_add(d->graphics, sizeof(d->graphics), type);
	} else if (is(c, "tpm")) {
		const xmlNode *b = child(c, "backend");

		d->tpm_emulator |= b && !attr(b, "type", type, sizeof(type)) &&
				   !strcmp(type, "emulator");
	}
}

static int add_iface(struct domain *d, const xmlNode *in, char *err, size_t errlen)
{
	const xmlNode *m = child(in, "mac"), *src = child(in, "source");
	struct dom_iface f = { 0 };
	char mac[32];

	/* without a MAC the guest's address cannot be learned; libvirt always adds one */
	if (!m)
		return 0;
	if (attr(m, "address", mac, sizeof(mac)) || parse_mac(mac, f.mac)) {
		snprintf(err, errlen, "domain XML line %d: <mac address=...> is not a MAC address",
			 m->line);
		return -EINVAL;
	}
	if (src) {
		/* live XML of a network interface names the bridge as well */
		if (attr(src, "bridge", f.bridge, sizeof(f.bridge)) == -E2BIG ||
		    attr(src, "network", f.network, sizeof(f.network)) == -E2BIG) {
			snprintf(err, errlen,
				 "domain XML line %d: <source> bridge or network name too long",
				 src->line);
			return -EINVAL;
		}
	}
	void *p = realloc(d->ifaces, (d->n_ifaces + 1) * sizeof(*d->ifaces));
	if (!p)
		return -ENOMEM;
	d->ifaces = p;
	d->ifaces[d->n_ifaces++] = f;
	return 0;
}

/* <channel><target type='virtio' name='org.qemu.guest_agent.0' state='connected'/> */
static int agent_channel(struct domain *d, const xmlNode *ch)
{
	const xmlNode *t = child(ch, "target");
	char name[64] = "", state[32] = "";

	if (t && !attr(t, "name", name, sizeof(name)) && !strcmp(name, "org.qemu.guest_agent.0") &&
	    !attr(t, "state", state, sizeof(state)))
		d->agent_connected = !strcmp(state, "connected");
	return 0;
}

static void xml_doc_freep(xmlDoc **doc)
{
	if (*doc)
		sym_xmlFreeDoc(*doc);
}

static void xml_ctxt_freep(xmlParserCtxt **c)
{
	if (*c)
		sym_xmlFreeParserCtxt(*c);
}

int domain_parse(const char *xml, size_t len, struct domain *d, char *err, size_t errlen)
{
	_cleanup_(xml_ctxt_freep) xmlParserCtxt *ctxt = NULL;
	_cleanup_(xml_doc_freep) xmlDoc *doc = NULL;
	const xmlNode *root, *n;
	int r;

	memset(d, 0, sizeof(*d));
	if (len > DOMAIN_XML_MAX) {
		snprintf(err, errlen, "domain XML is %zu bytes, more than the %u a domain can need",
			 len, DOMAIN_XML_MAX);
		return -E2BIG;
	}
	/* refused before parsing: no entity is ever declared, so none can expand */
	if (memmem(xml, len, "<!DOCTYPE", 9) || memmem(xml, len, "<!ENTITY", 8)) {
		snprintf(err, errlen,
			 "domain XML has a DOCTYPE or ENTITY declaration; libvirt writes none");
		return -EINVAL;
	}
	if ((r = dl_libxml2(err, errlen)) < 0)
		return r;
	sym_xmlInitParser();
	ctxt = sym_xmlNewParserCtxt();
	if (!ctxt)
		return -ENOMEM;
	doc = sym_xmlCtxtReadMemory(ctxt, xml, (int)len, "domain.xml", NULL,
				    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc) {
		const xmlError *e = sym_xmlCtxtGetLastError(ctxt);
		char msg[256] = "not well-formed";

		if (e && e->message) {
			snprintf(msg, sizeof(msg), "%s", e->message);
			msg[strcspn(msg, "\n")] = '\0';
		}
		snprintf(err, errlen, "domain XML line %d: %s", e ? e->line : 0, msg);
		return -EINVAL;
	}
	root = sym_xmlDocGetRootElement(doc);
	if (doc->intSubset || !root || !is(root, "domain")) {
		snprintf(err, errlen, "domain XML: the root element is not <domain>");
		return -EINVAL;
	}
	n = child(root, "name");
	if (!n || (r = text_of(n, d->name, sizeof(d->name))) || !d->name[0]) {
		snprintf(err, errlen, "domain XML: no <name> of 1 to %zu bytes",
			 sizeof(d->name) - 1);
		return -EINVAL;
	}
	n = child(root, "uuid");
	if (n && (text_of(n, d->uuid, sizeof(d->uuid)) || strlen(d->uuid) != 36)) {
		snprintf(err, errlen, "domain XML: <uuid> is not a UUID");
		r = -EINVAL;
		goto fail;
	}
	if ((n = child(root, "features")))
		features(d, n);
	if ((n = child(root, "os")) && os_files(d, n)) {
		snprintf(err, errlen, "domain XML line %d: a firmware path longer than %zu bytes",
			 n->line, sizeof(d->loader) - 1);
		r = -EINVAL;
		goto fail;
	}
	n = child(root, "devices");
	for (const xmlNode *c = n ? n->children : NULL; c; c = c->next) {
		if (is(c, "hostdev"))
			r = add_hostdev(d, c, err, errlen);
		else if (is(c, "interface"))
			r = add_iface(d, c, err, errlen);
		else if (is(c, "channel"))
			r = agent_channel(d, c);
		else
			other_device(d, c), r = 0;
		if (r == -ENOMEM)
			snprintf(err, errlen, "out of memory");
		if (r)
			goto fail;
	}
	return 0;
fail:
	domain_free(d);
	return r;
}

void domain_free(struct domain *d)
{
	if (!d)
		return;
	free(d->pcis);
	free(d->hostdevs);
	free(d->ifaces);
	d->pcis = NULL;
	d->hostdevs = NULL;
	d->ifaces = NULL;
	d->n_pcis = d->n_ifaces = 0;
}
