// SPDX-License-Identifier: GPL-2.0-or-later
/* Config parsing: a good file read field by field, and bad files that each
 * give one line naming the file, the line, the key and what was expected. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "tap.h"

static char dir[] = "/tmp/vfio-config-XXXXXX";

static const char *write_conf(const char *name, const char *text)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static const char good[] = "# the seed's module, as a file\n"
			   "[vfio]\n"
			   "vm = win11\n"
			   "user = nixos\n"
			   "cpu = intel                 # intel | amd\n"
			   "gpu = amd\n"
			   "pcis = pci_0000_03_00_0 0000:03:00.1\n"
			   "passthrough = true\n"
			   "stop-units = display-manager.service lactd.service\n"
			   "on-holders = kill\n"
			   "holder-timeout = 15\n"
			   "\n"
			   "[vnc]\n"
			   "enable = yes\n"
			   "interface = wlp4s0\n"
			   "host.ip = 192.0.2.30 2001:db8::30\n"
			   "host.port = 5900\n"
			   "guest.ip = 198.51.100.50\n"
			   "guest.port = 5901\n"
			   "allow = 192.0.2.0/24 2001:db8::/64 ; a comment after a value\n"
			   "exempt = auto\n"
			   "\n"
			   "[forward rdp]\n"
			   "proto = tcp\n"
			   "host.port = 3389\n"
			   "guest.port = 3389\n"
			   "\n"
			   "[forward sunshine]\n"
			   "proto = udp\n"
			   "host.port = 47998\n"
			   "guest.port = 47998\n";

static void test_good(void)
{
	struct config *c = NULL;
	char err[512];
	char a[64];
	int r = config_load(write_conf("good.conf", good), &c, err, sizeof(err));

	CHECK("config: good file loads", r == 0);
	if (r) {
		printf("# %s\n", err);
		return;
	}
	CHECK_STR("config: vm", c->vm, "win11");
	CHECK_STR("config: user", c->user, "nixos");
	CHECK("config: cpu and gpu", c->cpu == CPU_INTEL && c->gpu == GPU_AMD);
	CHECK("config: two pcis", c->n_pcis == 2);
	CHECK_STR("config: libvirt nodedev name becomes a BDF", c->pcis[0], "0000:03:00.0");
	CHECK_STR("config: BDF kept", c->pcis[1], "0000:03:00.1");
	CHECK("config: passthrough", c->passthrough);
	CHECK("config: stop-units",
	      c->n_stop_units == 2 && !strcmp(c->stop_units[1], "lactd.service"));
	CHECK("config: on-holders kill, timeout 15",
	      c->on_holders == HOLDERS_KILL && c->holder_timeout == 15);
	CHECK("config: vnc enabled on wlp4s0",
	      c->vnc.enable && !strcmp(c->vnc.interface, "wlp4s0"));
	CHECK("config: host.ip has v4 and v6", c->vnc.host[NF_V4].family == AF_INET &&
						       c->vnc.host[NF_V6].family == AF_INET6 &&
						       !c->vnc.host_auto);
	CHECK_STR("config: host v4", nf_addr_str(&c->vnc.host[NF_V4], a, sizeof(a)), "192.0.2.30");
	CHECK_STR("config: guest v4", nf_addr_str(&c->vnc.guest[NF_V4], a, sizeof(a)),
		  "198.51.100.50");
	CHECK("config: ports", c->vnc.host_port == 5900 && c->vnc.guest_port == 5901);
	CHECK("config: allow has two prefixes",
	      c->vnc.n_allow == 2 && c->vnc.allow[0].plen == 24 && c->vnc.allow[1].plen == 64);
	CHECK("config: exempt = auto", c->vnc.exempt == NF_EXEMPT_AUTO);
	CHECK("config: two extra forwards", c->n_fwd == 2);
	CHECK("config: udp forward", c->n_fwd == 2 && c->fwd[1].proto == IPPROTO_UDP &&
					     c->fwd[1].host_port == 47998 &&
					     !strcmp(c->fwd[1].name, "sunshine"));
	config_free(c);
}

static void test_defaults(void)
{
	struct config *c = NULL;
	char err[512];
	int r = config_load(
		write_conf(
			"min.conf",
			"[vfio]\nvm = w\n[vnc]\nenable = true\ninterface = eth0\nguest.ip = auto\n"),
		&c, err, sizeof(err));

	CHECK("config: minimal file loads", r == 0);
	if (r)
		return;
	CHECK("config: defaults", c->vnc.host_auto && c->vnc.guest_auto &&
					  c->vnc.host_port == 5900 && c->vnc.guest_port == 5900 &&
					  c->on_holders == HOLDERS_WAIT &&
					  c->holder_timeout == 10 && !c->passthrough &&
					  !c->vnc.masquerade && c->vnc.exempt == NF_EXEMPT_LIBVIRT);
	config_free(c);
}

struct bad {
	const char *name;
	const char *text;
	const char *want; /* the error after "FILE" */
};

#define HEAD \
	"[vfio]\nvm = win11\n[vnc]\nenable = true\ninterface = eth0\nguest.ip = 198.51.100.50\n"

static const struct bad bad[] = {
	{ "invalid IP", HEAD "host.ip = 192.0.2.300\n",
	  ":7: [vnc] host.ip: '192.0.2.300' is not an IPv4 or IPv6 address, or auto" },
	{ "invalid CIDR", HEAD "allow = 192.0.2.0/33\n",
	  ":7: [vnc] allow: '192.0.2.0/33' is not an address or CIDR (192.168.178.0/24, 2001:db8::/64)" },
	{ "CIDR with host bits", HEAD "allow = 192.0.2.7/24\n",
	  ":7: [vnc] allow: '192.0.2.7/24' has host bits set; write the network, like 192.168.178.0/24" },
	{ "port 0", HEAD "host.port = 0\n",
	  ":7: [vnc] host.port: expected a port 1-65535, got '0'" },
	{ "port 65536", HEAD "guest.port = 65536\n",
	  ":7: [vnc] guest.port: expected a port 1-65535, got '65536'" },
	{ "port with junk", HEAD "host.port = 59a\n",
	  ":7: [vnc] host.port: expected a port 1-65535, got '59a'" },
	{ "unknown key", HEAD "hostip = 192.0.2.1\n",
	  ":7: [vnc] hostip: unknown key (known: enable interface host.ip host.port guest.ip guest.port allow masquerade exempt)" },
	{ "unknown section", HEAD "[vcn]\nenable = true\n",
	  ":7: [vcn]: unknown section (known: [vfio], [vnc], [forward NAME])" },
	{ "duplicate section", HEAD "[vfio]\nuser = a\n", ":7: [vfio]: section given twice" },
	{ "section repeated after an empty one", "[vfio]\nvm = w\n[vnc]\n[vfio]\nuser = a\n",
	  ":4: [vfio]: section given twice" },
	{ "section repeated at once", "[vfio]\n[vfio]\nvm = w\n",
	  ":2: [vfio]: section given twice" },
	{ "empty unknown section", "[vfio]\nvm = w\n[vcn]\n",
	  ":3: [vcn]: unknown section (known: [vfio], [vnc], [forward NAME])" },
	{ "text after a section header", "[vfio] vm = w\n",
	  ":1: syntax error: expected [section] or key = value" },
	{ "unclosed section header", "[vfio\nvm = w\n",
	  ":1: syntax error: expected [section] or key = value" },
	{ "key without a name", "[vfio]\n= w\n",
	  ":2: syntax error: expected [section] or key = value" },
	{ "duplicate key", HEAD "interface = eth1\n", ":7: [vnc] interface: given twice" },
	{ "bad boolean", HEAD "masquerade = maybe\n",
	  ":7: [vnc] masquerade: expected true or false, got 'maybe'" },
	{ "bad exempt", HEAD "exempt = ufw\n",
	  ":7: [vnc] exempt: expected libvirt, auto (any foreign chain that would drop the flow) or none, got 'ufw'" },
	{ "bad enum", "[vfio]\nvm = w\ngpu = intel\n",
	  ":3: [vfio] gpu: expected amd or nvidia, got 'intel'" },
	{ "bad pci", "[vfio]\nvm = w\npcis = 03:00\n",
	  ":3: [vfio] pcis: '03:00' is not a PCI address (pci_0000_03_00_0 or 0000:03:00.0)" },
	{ "interface name too long", "[vfio]\nvm = w\n[vnc]\ninterface = averyveryverylongname\n",
	  ":4: [vnc] interface: 'averyveryverylongname' is not an interface name (1-15 characters, no '/', ':' or spaces)" },
	{ "key outside a section", "vm = w\n",
	  ":1: vm: key outside any section; put it under [vfio] or [vnc]" },
	{ "syntax error", "[vfio]\nvm = w\nthis line has no equals\n",
	  ":3: syntax error: expected [section] or key = value" },
	{ "missing vm", "[vnc]\nenable = false\n",
	  ": [vfio] vm: missing; name the libvirt domain, like vm = win11" },
	{ "missing interface", "[vfio]\nvm = w\n[vnc]\nenable = true\nguest.ip = auto\n",
	  ": [vnc] interface: missing; name the LAN interface, like interface = wlp4s0" },
	{ "forward without port", HEAD "[forward rdp]\nhost.port = 3389\n",
	  ": [forward rdp] guest.port: missing" },
	{ "forward clashes with vnc", HEAD "[forward x]\nhost.port = 5900\nguest.port = 1\n",
	  ": [forward x] host.port: 5900 is the VNC port already" },
	{ "forward without [vnc]", "[vfio]\nvm = w\n[forward rdp]\nhost.port = 1\nguest.port = 1\n",
	  ": [forward rdp]: needs [vnc] enable = true (forwards use its interface and addresses)" },
	{ "pci with 0x", "[vfio]\nvm = w\npcis = pci_0x00_03_00_0\n",
	  ":3: [vfio] pcis: 'pci_0x00_03_00_0' is not a PCI address (pci_0000_03_00_0 or 0000:03:00.0)" },
	{ "bad vm name", "[vfio]\nvm = ../etc\n",
	  ":2: [vfio] vm: '../etc' is not a libvirt domain name (letters, digits, ._+-@)" },
	{ "two IPv4 host addresses", HEAD "host.ip = 192.0.2.1 192.0.2.2\n",
	  ":7: [vnc] host.ip: give at most one IPv4 and one IPv6 address" },
};

static void test_bad(void)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct config *c = NULL;
		char err[512], want[512], name[128];
		const char *path = write_conf("bad.conf", bad[i].text);
		int r = config_load(path, &c, err, sizeof(err));

		snprintf(name, sizeof(name), "config bad: %s is refused", bad[i].name);
		CHECK(name, r == -EINVAL && !c);
		snprintf(want, sizeof(want), "%s%s", path, bad[i].want);
		snprintf(name, sizeof(name), "config bad: %s names line and key", bad[i].name);
		CHECK_STR(name, err, want);
		config_free(c);
	}
}

/* config_parse on len bytes; the error line after the name "t", or "" when it loads */
static const char *parse(const char *text, size_t len, struct config **c)
{
	static char err[512];

	*c = NULL;
	if (config_parse("t", text, len, c, err, sizeof(err)) == 0)
		return "";
	return err[0] == 't' ? err + 1 : err;
}

static void test_lines(void)
{
	static const char head[] = "[vfio]\nvm = w\n";
	char text[8192], unit[256];
	struct config *c;
	size_t l;

	/* a long comment stays one comment: its tail is never a key */
	l = snprintf(text, sizeof(text), "%s# ", head);
	memset(text + l, 'x', 280);
	l += 280;
	l += snprintf(text + l, sizeof(text) - l, " stop-units = sshd.service\n");
	CHECK_STR("config: a 300-byte comment line is one comment", parse(text, l, &c), "");
	CHECK("config: the comment's tail is not a key", c && c->n_stop_units == 0);
	config_free(c);

	/* the longest unit name systemd allows fits on a line */
	memset(unit, 'u', 247);
	strcpy(unit + 247, ".service");
	l = snprintf(text, sizeof(text), "%sstop-units = %s gdm.service\n", head, unit);
	CHECK_STR("config: a 255-byte unit name loads", parse(text, l, &c), "");
	CHECK("config: the 255-byte unit name is whole",
	      c && c->n_stop_units == 2 && strlen(c->stop_units[0]) == 255);
	config_free(c);

	l = snprintf(text, sizeof(text), "%s# ", head);
	memset(text + l, 'x', CONFIG_MAX_LINE);
	l += CONFIG_MAX_LINE;
	text[l++] = '\n';
	CHECK_STR("config: a line over the limit is refused naming it", parse(text, l, &c),
		  ":3: a line longer than 4095 bytes");
	/* the same line, at the very end, with no newline */
	CHECK_STR("config: a last line over the limit is refused", parse(text, l - 1, &c),
		  ":3: a line longer than 4095 bytes");
	l = snprintf(text, sizeof(text), "# ");
	memset(text + l, 'x', CONFIG_MAX_LINE - 2);
	l += CONFIG_MAX_LINE - 2;
	l += snprintf(text + l, sizeof(text) - l, "\n%s", head);
	CHECK_STR("config: a line of exactly the limit loads", parse(text, l, &c), "");
	config_free(c);

	static const char nul[] = "[vfio]\nvm = win\0evil\n";
	CHECK_STR("config: a NUL byte is refused naming its line", parse(nul, sizeof(nul) - 1, &c),
		  ":2: a NUL byte: the config is text");
	static const char crlf[] = "\xef\xbb\xbf[vfio]\r\nvm = w\r\n";
	CHECK_STR("config: a byte order mark and CRLF lines load",
		  parse(crlf, sizeof(crlf) - 1, &c), "");
	CHECK_STR("config: CRLF: the value ends before the CR", c ? c->vm : NULL, "w");
	config_free(c);
	static const char indented[] = "[vfio]\nvm = w\n  stop-units = a.service\n";
	CHECK_STR("config: an indented line is a line of its own",
		  parse(indented, sizeof(indented) - 1, &c), "");
	CHECK("config: an indented key is read", c && c->n_stop_units == 1);
	config_free(c);
}

/* run as root: the config must be root's and no one else's to write */
static void test_owner(void)
{
	struct config *c = NULL;
	char err[512], want[512];
	const char *path = write_conf("owner.conf", "[vfio]\nvm = w\n");

	if (geteuid() != 0) {
		printf("skip config owner: needs root\n");
		return;
	}
	chmod(path, 0644);
	CHECK("config: root's 0644 file loads", config_load(path, &c, err, sizeof(err)) == 0);
	config_free(c);
	c = NULL;
	chmod(path, 0666);
	CHECK("config: a world-writable file is -EPERM",
	      config_load(path, &c, err, sizeof(err)) == -EPERM && !c);
	snprintf(want, sizeof(want), "%s: refused: mode 0666 lets others write it (chmod go-w)",
		 path);
	CHECK_STR("config: a world-writable file's line", err, want);
	chmod(path, 0620);
	CHECK("config: a group-writable file is -EPERM",
	      config_load(path, &c, err, sizeof(err)) == -EPERM);
	chmod(path, 0644);
	if (chown(path, 65534, 0) < 0) {
		printf("not ok config: chown: %s\n", strerror(errno));
		return;
	}
	CHECK("config: a file owned by nobody is -EPERM",
	      config_load(path, &c, err, sizeof(err)) == -EPERM && !c);
	snprintf(want, sizeof(want), "%s: refused: owned by uid 65534, not root", path);
	CHECK_STR("config: a foreign owner's line", err, want);
}

static void test_unreadable(void)
{
	struct config *c = NULL;
	char err[512];

	CHECK("config: missing file is -ENOENT",
	      config_load("/nonexistent/x.conf", &c, err, sizeof(err)) == -ENOENT);
	CHECK("config: a directory is refused", config_load(dir, &c, err, sizeof(err)) == -EISDIR);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		printf("not ok config: mkdtemp\n");
		return 1;
	}
	test_good();
	test_defaults();
	test_bad();
	test_lines();
	test_owner();
	test_unreadable();
	unlink(write_conf("good.conf", ""));
	unlink(write_conf("min.conf", ""));
	unlink(write_conf("bad.conf", ""));
	unlink(write_conf("owner.conf", ""));
	rmdir(dir);
	TAP_EXIT();
}
