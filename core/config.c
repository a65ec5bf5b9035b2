// SPDX-License-Identifier: GPL-2.0-or-later
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/units.h"
#include "shared/macro.h"

struct parse {
	struct config *c;
	char err[256];
	char section[80]; /* the section of the last header: "forward " and a name */
	char (*seen)[80]; /* every section header so far */
	size_t n_seen;
	char (*keys)[96]; /* "section\nkey" given so far */
	size_t n_keys;
	struct cfg_forward *cur_fwd;
};

static int fail(struct parse *p, const char *section, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(struct parse *p, const char *section, const char *key, const char *fmt, ...)
{
	char what[200];
	va_list ap;

	if (p->err[0])
		return 0;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (key && !section[0])
		snprintf(p->err, sizeof(p->err), "%s: %s", key, what);
	else if (key)
		snprintf(p->err, sizeof(p->err), "[%s] %s: %s", section, key, what);
	else if (!section[0])
		snprintf(p->err, sizeof(p->err), "%s", what);
	else
		snprintf(p->err, sizeof(p->err), "[%s]: %s", section, what);
	return 0; /* the reader then names the line */
}

static bool parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (!strcasecmp(v, yes[i]))
			return *out = true;
		if (!strcasecmp(v, no[i])) {
			*out = false;
			return true;
		}
	}
	return false;
}

static bool parse_uint(const char *v, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long n;

	if (!isdigit((unsigned char)v[0]))
		return false;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || *end || n < min || n > max)
		return false;
	*out = n;
	return true;
}

static bool parse_port(const char *v, uint16_t *out)
{
	unsigned long n;

	if (!parse_uint(v, 1, 65535, &n))
		return false;
	*out = (uint16_t)n;
	return true;
}

bool parse_addr(const char *v, struct nf_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, v, a->bytes) == 1) {
		a->family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, v, a->bytes) == 1) {
		a->family = AF_INET6;
		return true;
	}
	return false;
}

/* "ADDR/LEN" with no host bits set; a bare address is a /32 or /128. */
static bool parse_prefix(const char *v, struct nf_prefix *p, bool *host_bits)
{
	char buf[INET6_ADDRSTRLEN + 8];
	char *slash;
	unsigned long plen;
	unsigned int max;

	*host_bits = false;
	if (strlen(v) >= sizeof(buf))
		return false;
	strcpy(buf, v);
	slash = strchr(buf, '/');
	if (slash)
		*slash = 0;
	if (!parse_addr(buf, &p->addr))
		return false;
	max = p->addr.family == AF_INET ? 32 : 128;
	if (!slash)
		plen = max;
	else if (!parse_uint(slash + 1, 0, max, &plen))
		return false;
	p->plen = (uint8_t)plen;
	for (unsigned int bit = plen; bit < max; bit++)
		if (p->addr.bytes[bit / 8] & (0x80 >> (bit % 8)))
			*host_bits = true;
	return !*host_bits;
}

/* The kernel's dev_valid_name(): 1-15 bytes, not "." or "..", no '/', ':' or space. */
static bool valid_ifname(const char *v)
{
	size_t n = strlen(v);

	if (!n || n >= IFNAMSIZ || !strcmp(v, ".") || !strcmp(v, ".."))
		return false;
	for (const char *s = v; *s; s++)
		if (*s == '/' || *s == ':' || isspace((unsigned char)*s) ||
		    !isprint((unsigned char)*s))
			return false;
	return true;
}

/* libvirt domain names end up in file names (the journal): keep them plain. */
static bool valid_name(const char *v, size_t max)
{
	size_t n = strlen(v);

	if (!n || n >= max || v[0] == '.' || v[0] == '-')
		return false;
	for (const char *s = v; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("._+-@", *s))
			return false;
	return true;
}

bool config_vm_name_valid(const char *name)
{
	return valid_name(name, sizeof(((struct config *)0)->vm));
}

/* s has the shape of tmpl, where each 'x' stands for one hex digit */
static bool shaped(const char *s, const char *tmpl)
{
	for (; *tmpl; s++, tmpl++)
		if (*tmpl == 'x' ? !isxdigit((unsigned char)*s) : *s != *tmpl)
			return false;
	return !*s;
}

int parse_pci(const char *s, char out[16])
{
	unsigned int dom = 0, bus, dev, fn;

	/*
	 * libvirt's nodedev name, "pci_0000_03_00_0", or a BDF, digit for digit
	 * (sscanf alone would take signs, spaces and 0x: the NixOS module's type
	 * matches exactly these shapes)
	 */
	if (shaped(s, "pci_xxxx_xx_xx_x") &&
	    sscanf(s, "pci_%4x_%2x_%2x_%1x", &dom, &bus, &dev, &fn) == 4)
		goto ok;
	if (shaped(s, "xxxx:xx:xx.x") && sscanf(s, "%4x:%2x:%2x.%1x", &dom, &bus, &dev, &fn) == 4)
		goto ok;
	dom = 0;
	if (shaped(s, "xx:xx.x") && sscanf(s, "%2x:%2x.%1x", &bus, &dev, &fn) == 3)
		goto ok;
	return -EINVAL;
ok:
	if (dev > 0x1f || fn > 7)
		return -EINVAL;
	snprintf(out, 16, "%04x:%02x:%02x.%x", dom, bus, dev, fn);
	return 0;
}

/* Split a space-separated list into words; each word goes to fn. */
static bool each_word(const char *v, bool (*fn)(struct parse *, const char *, void *),
		      struct parse *p, void *arg)
{
	char *copy = strdup(v), *save = NULL, *w;
	bool ok = true;

	if (!copy)
		return false;
	for (w = strtok_r(copy, " \t,", &save); w && ok; w = strtok_r(NULL, " \t,", &save))
		ok = fn(p, w, arg);
	free(copy);
	return ok;
}

/* a BDF list: pcis, allow-non-gpu */
struct bdf_list {
	const char *key;
	char (**v)[16];
	size_t *n;
};

static bool add_pci(struct parse *p, const char *w, void *arg)
{
	const struct bdf_list *l = arg;
	char bdf[16];
	void *n;

	if (parse_pci(w, bdf) < 0) {
		fail(p, "vfio", l->key,
		     "'%s' is not a PCI address (pci_0000_03_00_0 or 0000:03:00.0)", w);
		return false;
	}
	n = realloc(*l->v, (*l->n + 1) * sizeof(**l->v));
	if (!n)
		return false;
	*l->v = n;
	memcpy((*l->v)[(*l->n)++], bdf, 16);
	return true;
}

static bool add_unit(struct parse *p, const char *w, void *arg)
{
	struct config *c = p->c;
	char **n;

	uid_t uid;
	const char *name;

	if (unit_spec_parse(w, &uid, &name) < 0) {
		fail(p, "vfio", "stop-units",
		     "'%s' is not a service, socket or scope name (like display-manager.service, "
		     "or user:1000:pipewire.service for a user's own)",
		     w);
		return false;
	}
	n = realloc(c->stop_units, (c->n_stop_units + 1) * sizeof(*n));
	if (!n)
		return false;
	c->stop_units = n;
	if (!(n[c->n_stop_units] = strdup(w)))
		return false;
	c->n_stop_units++;
	return true;
}

static bool add_allow(struct parse *p, const char *w, void *arg)
{
	struct cfg_vnc *v = &p->c->vnc;
	struct nf_prefix pfx;
	bool host_bits;
	void *n;

	if (!parse_prefix(w, &pfx, &host_bits)) {
		if (host_bits)
			fail(p, "vnc", "allow",
			     "'%s' has host bits set; write the network, like 192.168.178.0/24", w);
		else
			fail(p, "vnc", "allow",
			     "'%s' is not an address or CIDR (192.168.178.0/24, 2001:db8::/64)", w);
		return false;
	}
	n = realloc(v->allow, (v->n_allow + 1) * sizeof(*v->allow));
	if (!n)
		return false;
	v->allow = n;
	v->allow[v->n_allow++] = pfx;
	return true;
}

struct addr_arg {
	struct nf_addr *addrs;
	const char *key;
};

static bool add_ip(struct parse *p, const char *w, void *arg)
{
	struct addr_arg *a = arg;
	struct nf_addr addr;
	int fam;

	if (!parse_addr(w, &addr)) {
		fail(p, "vnc", a->key, "'%s' is not an IPv4 or IPv6 address, or auto", w);
		return false;
	}
	fam = addr.family == AF_INET ? NF_V4 : NF_V6;
	if (a->addrs[fam].family) {
		fail(p, "vnc", a->key, "give at most one IPv4 and one IPv6 address");
		return false;
	}
	a->addrs[fam] = addr;
	return true;
}

static bool enum_of(const char *v, const char *const *names, size_t n, int *out)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v, names[i])) {
			*out = (int)i;
			return true;
		}
	return false;
}

const char *const on_holders_names[HOLDERS__N] = { "wait", "kill", "fail" };
const char *const exempt_names[NF_EXEMPT__N] = {
	[NF_EXEMPT_LIBVIRT] = "libvirt",
	[NF_EXEMPT_AUTO] = "auto",
	[NF_EXEMPT_NONE] = "none",
};

const char *config_on_holders(const struct config *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s", c->holders_stop ? "stop," : "", on_holders_names[c->on_holders]);
	return buf;
}

static int key_vfio(struct parse *p, const char *k, const char *v)
{
	struct config *c = p->c;
	static const char *const cpus[] = { "", "intel", "amd" };
	static const char *const gpus[] = { "", "amd", "nvidia" };
	unsigned long n;
	int e;

	if (!strcmp(k, "vm")) {
		if (!config_vm_name_valid(v))
			return fail(p, "vfio", k,
				    "'%s' is not a libvirt domain name (letters, digits, ._+-@)",
				    v);
		strcpy(c->vm, v);
	} else if (!strcmp(k, "user")) {
		if (!valid_name(v, sizeof(c->user)))
			return fail(p, "vfio", k, "'%s' is not a user name", v);
		strcpy(c->user, v);
	} else if (!strcmp(k, "cpu")) {
		if (!enum_of(v, cpus + 1, 2, &e))
			return fail(p, "vfio", k, "expected intel or amd, got '%s'", v);
		c->cpu = e + 1;
	} else if (!strcmp(k, "gpu")) {
		if (!enum_of(v, gpus + 1, 2, &e))
			return fail(p, "vfio", k, "expected amd or nvidia, got '%s'", v);
		c->gpu = e + 1;
	} else if (!strcmp(k, "pcis")) {
		if (!each_word(v, add_pci, p, &(struct bdf_list){ k, &c->pcis, &c->n_pcis }))
			return fail(p, "vfio", k, "out of memory");
	} else if (!strcmp(k, "allow-non-gpu")) {
		if (!each_word(v, add_pci, p,
			       &(struct bdf_list){ k, &c->allow_non_gpu, &c->n_allow_non_gpu }))
			return fail(p, "vfio", k, "out of memory");
	} else if (!strcmp(k, "passthrough")) {
		if (!parse_bool(v, &c->passthrough))
			return fail(p, "vfio", k, "expected true or false, got '%s'", v);
	} else if (!strcmp(k, "stop-units")) {
		c->stop_units_set = true;
		if (!each_word(v, add_unit, p, NULL))
			return fail(p, "vfio", k, "out of memory");
	} else if (!strcmp(k, "on-holders")) {
		/* stop, or one of wait kill fail, or stop,ONE: what bare processes get */
		char mode[16];
		const char *rest = v;

		c->holders_stop = !strncmp(v, "stop", 4) && (!v[4] || v[4] == ',');
		if (c->holders_stop)
			rest = v[4] ? v + 5 : "wait";
		if (strlen(rest) >= sizeof(mode) || !enum_of(memcpy(mode, rest, strlen(rest) + 1),
							     on_holders_names, HOLDERS__N, &e))
			return fail(
				p, "vfio", k,
				"expected stop, wait, kill or fail (or stop,kill: a holder's unit "
				"is stopped, a bare process killed), got '%s'",
				v);
		c->on_holders = e;
	} else if (!strcmp(k, "holder-timeout")) {
		if (!parse_uint(v, 0, 3600, &n))
			return fail(p, "vfio", k, "expected seconds 0-3600, got '%s'", v);
		c->holder_timeout = (unsigned int)n;
	} else {
		return fail(
			p, "vfio", k,
			"unknown key (known: vm user cpu gpu pcis passthrough stop-units on-holders holder-timeout allow-non-gpu)");
	}
	return 1;
}

static int key_vnc(struct parse *p, const char *k, const char *v)
{
	struct cfg_vnc *vnc = &p->c->vnc;

	if (!strcmp(k, "enable")) {
		if (!parse_bool(v, &vnc->enable))
			return fail(p, "vnc", k, "expected true or false, got '%s'", v);
	} else if (!strcmp(k, "interface")) {
		if (!valid_ifname(v))
			return fail(
				p, "vnc", k,
				"'%s' is not an interface name (1-15 characters, no '/', ':' or spaces)",
				v);
		strcpy(vnc->interface, v);
	} else if (!strcmp(k, "host.ip") || !strcmp(k, "guest.ip")) {
		bool host = k[0] == 'h';
		struct addr_arg a = { host ? vnc->host : vnc->guest, k };

		memset(a.addrs, 0, sizeof(vnc->host));
		if (!strcmp(v, "auto")) {
			*(host ? &vnc->host_auto : &vnc->guest_auto) = true;
			return 1;
		}
		*(host ? &vnc->host_auto : &vnc->guest_auto) = false;
		if (!each_word(v, add_ip, p, &a))
			return fail(p, "vnc", k, "out of memory");
	} else if (!strcmp(k, "host.port")) {
		if (!parse_port(v, &vnc->host_port))
			return fail(p, "vnc", k, "expected a port 1-65535, got '%s'", v);
	} else if (!strcmp(k, "guest.port")) {
		if (!parse_port(v, &vnc->guest_port))
			return fail(p, "vnc", k, "expected a port 1-65535, got '%s'", v);
	} else if (!strcmp(k, "allow")) {
		vnc->n_allow = 0;
		if (!each_word(v, add_allow, p, NULL))
			return fail(p, "vnc", k, "out of memory");
	} else if (!strcmp(k, "masquerade")) {
		if (!parse_bool(v, &vnc->masquerade))
			return fail(p, "vnc", k, "expected true or false, got '%s'", v);
	} else if (!strcmp(k, "exempt")) {
		int e;

		if (!enum_of(v, exempt_names, NF_EXEMPT__N, &e))
			return fail(p, "vnc", k,
				    "expected libvirt, auto (any foreign chain that would drop the "
				    "flow) or none, got '%s'",
				    v);
		vnc->exempt = e;
	} else {
		return fail(
			p, "vnc", k,
			"unknown key (known: enable interface host.ip host.port guest.ip guest.port allow masquerade exempt)");
	}
	return 1;
}

static int key_forward(struct parse *p, const char *section, const char *k, const char *v)
{
	struct cfg_forward *f = p->cur_fwd;

	if (!strcmp(k, "proto")) {
		if (!strcmp(v, "tcp"))
			f->proto = IPPROTO_TCP;
		else if (!strcmp(v, "udp"))
			f->proto = IPPROTO_UDP;
		else
			return fail(p, section, k, "expected tcp or udp, got '%s'", v);
	} else if (!strcmp(k, "host.port")) {
		if (!parse_port(v, &f->host_port))
			return fail(p, section, k, "expected a port 1-65535, got '%s'", v);
	} else if (!strcmp(k, "guest.port")) {
		if (!parse_port(v, &f->guest_port))
			return fail(p, section, k, "expected a port 1-65535, got '%s'", v);
	} else {
		return fail(p, section, k, "unknown key (known: proto host.port guest.port)");
	}
	return 1;
}

/* A section header: every name once, an empty section too. */
static int enter_section(struct parse *p, const char *section)
{
	void *n;

	if (strlen(section) >= sizeof(p->section))
		return fail(p, "", NULL, "a section name longer than %zu bytes",
			    sizeof(p->section) - 1);
	for (size_t i = 0; i < p->n_seen; i++)
		if (!strcmp(p->seen[i], section))
			return fail(p, section, NULL, "section given twice");
	n = realloc(p->seen, (p->n_seen + 1) * sizeof(*p->seen));
	if (!n)
		return fail(p, section, NULL, "out of memory");
	p->seen = n;
	strcpy(p->seen[p->n_seen++], section);
	strcpy(p->section, section);

	p->cur_fwd = NULL;
	if (!strncmp(section, "forward ", 8)) {
		struct config *c = p->c;
		const char *name = section + 8;

		if (!valid_name(name, sizeof(c->fwd->name)))
			return fail(p, section, NULL,
				    "'%s' is not a forward name (letters, digits, ._+-@)", name);
		if (c->n_fwd >= CONFIG_MAX_FORWARDS)
			return fail(p, section, NULL, "more than %d [forward NAME] sections",
				    CONFIG_MAX_FORWARDS);
		n = realloc(c->fwd, (c->n_fwd + 1) * sizeof(*c->fwd));
		if (!n)
			return fail(p, section, NULL, "out of memory");
		c->fwd = n;
		p->cur_fwd = &c->fwd[c->n_fwd++];
		memset(p->cur_fwd, 0, sizeof(*p->cur_fwd));
		strcpy(p->cur_fwd->name, name);
		p->cur_fwd->proto = IPPROTO_TCP;
	} else if (strcmp(section, "vfio") && strcmp(section, "vnc")) {
		return fail(p, section, NULL,
			    "unknown section (known: [vfio], [vnc], [forward NAME])");
	}
	return 1;
}

static int on_key(struct parse *p, const char *key, const char *v)
{
	const char *section = p->section;
	void *n;

	if (!section[0])
		return fail(p, "", key, "key outside any section; put it under [vfio] or [vnc]");
	for (size_t i = 0; i < p->n_keys; i++)
		if (!strcmp(p->keys[i], key) && !strcmp(p->keys[i] + strlen(key) + 1, section))
			return fail(p, section, key, "given twice");
	if (strlen(key) + strlen(section) + 2 <= sizeof(*p->keys)) {
		n = realloc(p->keys, (p->n_keys + 1) * sizeof(*p->keys));
		if (!n)
			return fail(p, section, key, "out of memory");
		p->keys = n;
		snprintf(p->keys[p->n_keys], sizeof(*p->keys), "%s%c%s", key, 0, section);
		p->n_keys++;
	}
	if (!v[0])
		return fail(p, section, key, "no value given");
	if (!strcmp(section, "vfio"))
		return key_vfio(p, key, v);
	if (!strcmp(section, "vnc"))
		return key_vnc(p, key, v);
	return key_forward(p, section, key, v);
}

static char *trim(char *s, char *end)
{
	while (s < end && isspace((unsigned char)*s))
		s++;
	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	*end = '\0';
	return s;
}

/* a comment begins a line, or follows whitespace: "value   # comment" */
static char *comment_at(char *s)
{
	for (char *c = s; *c; c++)
		if ((*c == '#' || *c == ';') && (c == s || isspace((unsigned char)c[-1])))
			return c;
	return s + strlen(s);
}

/*
 * One line, NUL-terminated in place: blank, a comment, "[section]" or
 * "key = value". 1, or 0 with p->err set.
 */
static int parse_line(struct parse *p, char *line)
{
	char *s = trim(line, line + strlen(line)), *eq, *end;

	if (!s[0] || s[0] == '#' || s[0] == ';')
		return 1;
	if (s[0] == '[') {
		end = strchr(s, ']');
		if (!end || *trim(end + 1, comment_at(end + 1)))
			return fail(p, "", NULL, "syntax error: expected [section] or key = value");
		*end = '\0';
		return enter_section(p, s + 1);
	}
	eq = strchr(s, '=');
	if (!eq || eq == s)
		return fail(p, "", NULL, "syntax error: expected [section] or key = value");
	*eq = '\0';
	trim(s, eq);
	return on_key(p, s, trim(eq + 1, comment_at(eq + 1)));
}

/*
 * The reader: every line is whole, or the file is refused naming the line;
 * a NUL byte is never read as an end.
 */
static int parse_text(struct parse *p, char *text, size_t len, size_t *line_no)
{
	char *s = text, *end = text + len;

	/* a UTF-8 byte order mark, as some editors write */
	if (len >= 3 && !memcmp(s, "\xef\xbb\xbf", 3))
		s += 3;
	for (*line_no = 1; s < end; (*line_no)++) {
		char *nl = memchr(s, '\n', end - s), *eol = nl ? nl : end;

		if (memchr(s, '\0', eol - s))
			return fail(p, "", NULL, "a NUL byte: the config is text");
		if (eol - s > CONFIG_MAX_LINE)
			return fail(p, "", NULL, "a line longer than %d bytes", CONFIG_MAX_LINE);
		*eol = '\0';
		if (!parse_line(p, s))
			return 0;
		s = eol + 1;
	}
	return 1;
}

static void config_defaults(struct config *c)
{
	/*
	 * Handing the only GPU over blanks the host's screen: only when asked.
	 * The seed's NixOS module had the same default, and the module, the man
	 * page and the example config say false too.
	 */
	c->passthrough = false;
	/* a holder's unit is stopped (and started again at release); a bare process waited for */
	c->holders_stop = true;
	c->on_holders = HOLDERS_WAIT;
	c->holder_timeout = 10;
	c->vnc.host_auto = true;
	c->vnc.host_port = 5900;
	c->vnc.guest_port = 5900;
	c->vnc.exempt = NF_EXEMPT_LIBVIRT;
}

/* Checks that need the whole file. */
static int config_check(struct config *c, char *err, size_t errlen)
{
	struct cfg_vnc *v = &c->vnc;

	if (!c->vm[0]) {
		snprintf(err, errlen,
			 "[vfio] vm: missing; name the libvirt domain, like vm = win11");
		return -EINVAL;
	}
	if (!v->enable) {
		/* they would render, and silently forward nothing */
		if (c->n_fwd) {
			snprintf(
				err, errlen,
				"[forward %s]: needs [vnc] enable = true (forwards use its interface "
				"and addresses)",
				c->fwd[0].name);
			return -EINVAL;
		}
		return 0;
	}
	if (!v->interface[0]) {
		snprintf(
			err, errlen,
			"[vnc] interface: missing; name the LAN interface, like interface = wlp4s0");
		return -EINVAL;
	}
	if (!v->guest_auto && !v->guest[NF_V4].family && !v->guest[NF_V6].family) {
		snprintf(err, errlen, "[vnc] guest.ip: missing; give the guest's address or auto");
		return -EINVAL;
	}
	for (size_t i = 0; i < c->n_fwd; i++) {
		struct cfg_forward *f = &c->fwd[i];

		if (!f->host_port || !f->guest_port) {
			snprintf(err, errlen, "[forward %s] %s: missing", f->name,
				 f->host_port ? "guest.port" : "host.port");
			return -EINVAL;
		}
		if (f->proto == IPPROTO_TCP && f->host_port == v->host_port) {
			snprintf(err, errlen, "[forward %s] host.port: %u is the VNC port already",
				 f->name, f->host_port);
			return -EINVAL;
		}
		for (size_t j = 0; j < i; j++)
			if (c->fwd[j].proto == f->proto && c->fwd[j].host_port == f->host_port) {
				snprintf(err, errlen,
					 "[forward %s] host.port: %u is taken by [forward %s]",
					 f->name, f->host_port, c->fwd[j].name);
				return -EINVAL;
			}
	}
	return 0;
}

int config_parse(const char *name, const char *buf, size_t len, struct config **out, char *err,
		 size_t errlen)
{
	struct parse p = { 0 };
	char what[200], *text;
	size_t line;
	int r;

	err[0] = 0;
	if (!(text = malloc(len + 1)))
		return -ENOMEM;
	memcpy(text, buf, len);
	p.c = calloc(1, sizeof(*p.c));
	if (!p.c) {
		free(text);
		return -ENOMEM;
	}
	config_defaults(p.c);
	r = parse_text(&p, text, len, &line) ? 0 : -EINVAL;
	free(text);
	free(p.seen);
	free(p.keys);
	if (r < 0) {
		snprintf(err, errlen, "%s:%zu: %s", name, line, p.err);
		goto err;
	}
	if (!(p.c->path = strdup(name))) {
		r = -ENOMEM;
		goto err;
	}
	if ((r = config_check(p.c, what, sizeof(what))) < 0) {
		snprintf(err, errlen, "%s: %s", name, what);
		goto err;
	}
	*out = p.c;
	return 0;
err:
	config_free(p.c);
	return r;
}

/*
 * What root reads must be root's alone, as sshd's StrictModes has it: a
 * file another user could write would choose the units root stops and the
 * devices it hands over. Checked on the open fd, so it is the file read.
 */
static int check_owner(int fd, const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	/* a directory opens fine and reads as an empty file */
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		return -EINVAL;
	}
	if (geteuid() != 0)
		return 0;
	if (st.st_uid != 0) {
		snprintf(err, errlen, "%s: refused: owned by uid %u, not root", path,
			 (unsigned int)st.st_uid);
		return -EPERM;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, errlen, "%s: refused: mode %04o lets others write it (chmod go-w)",
			 path, (unsigned int)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

int config_load(const char *path, struct config **out, char *err, size_t errlen)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap = 0;
	int r;

	err[0] = 0;
	/* symlinks are followed: NixOS links /etc into the store */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if ((r = check_owner(fd, path, err, errlen)) < 0)
		return r;
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *grown;

			if (cap >= CONFIG_MAX_SIZE) {
				snprintf(err, errlen, "%s: larger than %d bytes", path,
					 CONFIG_MAX_SIZE);
				return -EINVAL;
			}
			cap = cap ? cap * 2 : 4096;
			if (!(grown = realloc(buf, cap + 1)))
				return -ENOMEM;
			buf = grown;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += n;
	}
	return config_parse(path, buf ? buf : "", len, out, err, errlen);
}

void config_free(struct config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_stop_units; i++)
		free(c->stop_units[i]);
	free(c->stop_units);
	free(c->pcis);
	free(c->allow_non_gpu);
	free(c->vnc.allow);
	free(c->fwd);
	free(c->path);
	free(c);
}
