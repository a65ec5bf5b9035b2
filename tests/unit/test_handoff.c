// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The hook's pure parts: domain XML (the example guest, and malformed and
 * hostile documents), the journal's write and replay (a line cut off
 * mid-write included), and the module unload order from dependents.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/domain.h"
#include "core/journal.h"
#include "core/units.h"
#include "core/modules.h"
#include "tap.h"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf;

	if (!f)
		return NULL;
	buf = malloc(1 << 20);
	*len = fread(buf, 1, 1 << 20, f);
	fclose(f);
	return buf;
}

static int parse(const char *xml, struct domain *d, char *err)
{
	return domain_parse(xml, strlen(xml), d, err, 512);
}

static void test_example(void)
{
	struct domain d;
	char err[512] = "";
	size_t len;
	char *xml = slurp("examples/win11.xml", &len);
	int r;

	CHECK("xml: examples/win11.xml is there", xml);
	if (!xml)
		return;
	r = domain_parse(xml, len, &d, err, sizeof(err));
	CHECK("xml: win11.xml parses", r == 0);
	if (r) {
		printf("# %s\n", err);
		free(xml);
		return;
	}
	CHECK_STR("xml: name", d.name, "win11");
	CHECK_STR("xml: uuid", d.uuid, "2f0e4c1a-7b3d-4e59-9a61-5c8d2b7e9f10");
	CHECK("xml: two PCI hostdevs (the USB one is not)", d.n_pcis == 2);
	if (d.n_pcis == 2) {
		CHECK_STR("xml: hostdev 1", d.pcis[0], "0000:03:00.0");
		CHECK_STR("xml: hostdev 2", d.pcis[1], "0000:03:00.1");
	}
	CHECK("xml: one interface", d.n_ifaces == 1);
	if (d.n_ifaces == 1) {
		static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x6b, 0x3c, 0x58 };

		CHECK("xml: its MAC", !memcmp(d.ifaces[0].mac, mac, 6));
		CHECK_STR("xml: its bridge", d.ifaces[0].bridge, "virbr0");
		CHECK_STR("xml: its network", d.ifaces[0].network, "default");
	}
	domain_free(&d);

	/* cut off anywhere: an error line, never a crash or a half domain */
	size_t cuts[] = { 0, 1, 40, len / 3, len / 2, len - 12, len - 2 };
	bool all_refused = true;
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		err[0] = '\0';
		r = domain_parse(xml, cuts[i], &d, err, sizeof(err));
		if (r != -EINVAL || !err[0] || d.n_pcis || d.pcis) {
			printf("# cut at %zu: r=%d err='%s'\n", cuts[i], r, err);
			all_refused = false;
		}
		domain_free(&d);
	}
	CHECK("xml: truncated documents are refused with a line", all_refused);
	free(xml);
}

/* the guest agent's channel, as libvirt's live XML shows its state */
static void test_agent(void)
{
	static const char *const xml[] = {
		"<domain><name>g</name><devices><channel type='unix'><target type='virtio' "
		"name='org.qemu.guest_agent.0' state='connected'/></channel></devices></domain>",
		"<domain><name>g</name><devices><channel type='unix'><target type='virtio' "
		"name='org.qemu.guest_agent.0' state='disconnected'/></channel></devices></domain>",
		"<domain><name>g</name><devices><channel type='spicevmc'><target type='virtio' "
		"name='com.redhat.spice.0' state='connected'/></channel></devices></domain>",
	};
	static const bool want[] = { true, false, false };
	static const char *const what[] = { "connected", "disconnected", "another channel" };
	char err[512], name[96];

	for (size_t i = 0; i < 3; i++) {
		struct domain d;
		int r = parse(xml[i], &d, err);

		snprintf(name, sizeof(name), "xml: guest agent channel %s", what[i]);
		CHECK(name, r == 0 && d.agent_connected == want[i]);
		if (!r)
			domain_free(&d);
	}
}

static void test_hostile(void)
{
	struct domain d;
	char err[512];
	int r;

	static const char laughs[] =
		"<?xml version='1.0'?>\n"
		"<!DOCTYPE domain [\n"
		" <!ENTITY a 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'>\n"
		" <!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'>\n"
		" <!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'>\n"
		" <!ENTITY d '&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;'>\n"
		" <!ENTITY e '&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;'>\n"
		" <!ENTITY f '&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;'>\n"
		"]>\n<domain><name>&f;</name></domain>\n";
	r = parse(laughs, &d, err);
	CHECK("xml: entity expansion (billion laughs) is refused", r == -EINVAL);
	CHECK("xml: ... naming the DOCTYPE", strstr(err, "DOCTYPE") != NULL);

	static const char external[] =
		"<!DOCTYPE d [<!ENTITY x SYSTEM 'file:///etc/shadow'>]><domain><name>&x;</name></domain>";
	r = parse(external, &d, err);
	CHECK("xml: an external entity is refused", r == -EINVAL);

	/* ISO-8859-1 bytes where UTF-8 is declared */
	static const char latin1[] = "<?xml version='1.0' encoding='UTF-8'?>"
				     "<domain><name>w\xe9\xe9</name></domain>";
	r = parse(latin1, &d, err);
	CHECK("xml: non-UTF-8 bytes are refused", r == -EINVAL);
	CHECK("xml: ... with libxml2's reason",
	      strstr(err, "UTF-8") != NULL || strstr(err, "encoding") != NULL);
	printf("# %s\n", err);

	char *huge = malloc(DOMAIN_XML_MAX + 64);
	memset(huge, ' ', DOMAIN_XML_MAX + 63);
	memcpy(huge, "<domain><name>big</name>", 24);
	memcpy(huge + DOMAIN_XML_MAX + 50, "</domain>", 9);
	huge[DOMAIN_XML_MAX + 63] = '\0';
	r = domain_parse(huge, DOMAIN_XML_MAX + 63, &d, err, sizeof(err));
	CHECK("xml: more than DOMAIN_XML_MAX is refused before parsing", r == -E2BIG);
	/* a large document within the limit is parsed */
	size_t n = DOMAIN_XML_MAX - 4096;
	memset(huge, ' ', n);
	memcpy(huge, "<domain><name>big</name><description>", 37);
	memcpy(huge + n - 40, "</description></domain>", 23);
	r = domain_parse(huge, n - 17, &d, err, sizeof(err));
	CHECK("xml: a 4 MiB document within the limit parses", r == 0 && !strcmp(d.name, "big"));
	domain_free(&d);
	free(huge);

	static const char not_domain[] = "<network><name>default</name></network>";
	r = parse(not_domain, &d, err);
	CHECK("xml: a <network> is not a domain", r == -EINVAL && strstr(err, "<domain>"));

	static const char no_name[] = "<domain type='kvm'><uuid>x</uuid></domain>";
	r = parse(no_name, &d, err);
	CHECK("xml: a domain without <name> is refused", r == -EINVAL && strstr(err, "<name>"));

	static const char long_name[] =
		"<domain><name>aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"</name></domain>";
	r = parse(long_name, &d, err);
	CHECK("xml: a name longer than 63 bytes is refused", r == -EINVAL);

	static const char bad_addr[] =
		"<domain><name>g</name><devices><hostdev mode='subsystem' type='pci'><source>"
		"<address domain='0x0000' bus='0x300' slot='0x00' function='0x0'/></source>"
		"</hostdev></devices></domain>";
	r = parse(bad_addr, &d, err);
	CHECK("xml: a PCI bus past 0xff is refused", r == -EINVAL && strstr(err, "line 1"));

	static const char bad_fn[] = "<domain><name>g</name><devices><hostdev type='pci'><source>"
				     "<address domain='0' bus='3' slot='0' function='8'/></source>"
				     "</hostdev></devices></domain>";
	r = parse(bad_fn, &d, err);
	CHECK("xml: function 8 is refused", r == -EINVAL);

	static const char bad_mac[] =
		"<domain><name>g</name><devices><interface type='bridge'>"
		"<mac address='52:54:00:zz:00:01'/><source bridge='br0'/></interface>"
		"</devices></domain>";
	r = parse(bad_mac, &d, err);
	CHECK("xml: a bad MAC is refused", r == -EINVAL && strstr(err, "MAC"));

	static const char bridge[] =
		"<domain><name> g </name><devices><interface type='bridge'>"
		"<mac address='52:54:00:00:00:01'/><source bridge='br0'/></interface>"
		"<hostdev type='pci'><source><address domain='0' bus='3' slot='0' function='1'/>"
		"</source></hostdev></devices></domain>";
	r = parse(bridge, &d, err);
	CHECK("xml: a bridge interface and decimal-free hex",
	      r == 0 && d.n_ifaces == 1 && !strcmp(d.ifaces[0].bridge, "br0") && d.n_pcis == 1 &&
		      !strcmp(d.pcis[0], "0000:03:00.1"));
	CHECK_STR("xml: the name is trimmed", d.name, "g");
	domain_free(&d);

	static const char nul[] = "<domain><name>a\0b</name></domain>";
	r = domain_parse(nul, sizeof(nul) - 1, &d, err, sizeof(err));
	CHECK("xml: a NUL byte is refused", r == -EINVAL);
}

static char jdir[] = "/tmp/vfio-journal-XXXXXX";

static void test_journal(void)
{
	struct jrec recs[] = {
		{ J_UNIT, "display-manager.service", "" },
		{ J_VTCON, "vtcon1", "" },
		{ J_FB, "efi-framebuffer", "efi-framebuffer.0" },
		{ J_UNBIND, "0000:03:00.1", "snd_hda_intel" },
		{ J_MODULE, "amdgpu", "" },
		{ J_LOADED, "vfio_pci", "" },
		{ J_VFIO, "0000:03:00.0", "" },
	};
	struct jrec *got = NULL;
	size_t n = 0, bad;
	bool cut;
	char path[256];
	int fd, r;

	CHECK("journal: a temp root", mkdtemp(jdir) != NULL);
	r = journal_create(jdir, "win11", &fd);
	CHECK("journal: created under root/run/vfio-agent", r == 0);
	for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++)
		CHECK("journal: a step appended", journal_append(fd, &recs[i]) == 0);
	struct jrec two_words = { J_UNIT, "a b", "" };
	CHECK("journal: a token with a space is refused",
	      journal_append(fd, &two_words) == -EINVAL);
	struct jrec missing = { J_FB, "efi-framebuffer", "" };
	CHECK("journal: a missing argument is refused", journal_append(fd, &missing) == -EINVAL);
	close(fd);
	CHECK("journal: a second create is EEXIST", journal_create(jdir, "win11", &fd) == -EEXIST);

	r = journal_load(jdir, "win11", &got, &n, &cut, &bad);
	CHECK("journal: read back", r == 0 && n == 7 && !cut);
	bool same = n == 7;
	for (size_t i = 0; same && i < n; i++)
		same = got[i].step == recs[i].step && !strcmp(got[i].a, recs[i].a) &&
		       !strcmp(got[i].b, recs[i].b);
	CHECK("journal: every step as written, in order", same);
	free(got);

	/* a crash mid-write: the last line has no newline, its step never ran */
	snprintf(path, sizeof(path), "%s/run/vfio-agent/win11.journal", jdir);
	fd = open(path, O_WRONLY | O_APPEND);
	CHECK("journal: a cut line appended", write(fd, "module nvid", 11) == 11);
	close(fd);
	r = journal_load(jdir, "win11", &got, &n, &cut, &bad);
	CHECK("journal: cut off mid-line: the whole lines replay", r == 0 && n == 7 && cut);
	free(got);

	static const char garbage[] = "# header\nunit a.service\nrmmod amdgpu\n";
	r = journal_parse(garbage, strlen(garbage), &got, &n, &cut, &bad);
	CHECK("journal: an unknown step is refused with its line", r == -EINVAL && bad == 3);
	static const char extra[] = "module amdgpu drm\n";
	r = journal_parse(extra, strlen(extra), &got, &n, &cut, &bad);
	CHECK("journal: an extra argument is refused", r == -EINVAL && bad == 1);
	static const char empty[] = "";
	r = journal_parse(empty, 0, &got, &n, &cut, &bad);
	CHECK("journal: an empty journal replays nothing", r == 0 && n == 0 && !cut);
	free(got);

	/* release keeps only what it could not undo */
	r = journal_store(jdir, "win11", &recs[4], 1);
	CHECK("journal: rewritten", r == 0);
	r = journal_load(jdir, "win11", &got, &n, &cut, &bad);
	CHECK("journal: ... with the one step left", r == 0 && n == 1 && got[0].step == J_MODULE);
	free(got);
	CHECK("journal: stored empty, it is gone",
	      journal_store(jdir, "win11", NULL, 0) == 0 && access(path, F_OK) < 0);
	r = journal_load(jdir, "win11", &got, &n, &cut, &bad);
	CHECK("journal: none left is ENOENT", r == -ENOENT);
	CHECK("journal: a VM name with a slash names no file",
	      journal_path(jdir, "../etc", path, sizeof(path)) == -EINVAL);
	snprintf(path, sizeof(path), "rm -rf %s", jdir);
	CHECK("journal: cleaned up", system(path) == 0);
}

/* every record type at its longest legal value, and one past it or out of shape */
static void test_journal_shapes(void)
{
	char sdir[] = "/tmp/vfio-test-shapes.XXXXXX", unit[UNIT_NAME_MAX + 2],
	     mod[HOLD_MOD_LEN + 1], dev[70], drv[70], cmd[64];
	struct jrec *got = NULL;
	size_t n = 0, bad;
	bool cut, same;
	int fd, r;

	memset(unit, 'u', sizeof(unit));
	strcpy(unit + UNIT_NAME_MAX - 8, ".service"); /* 255 bytes */
	memset(mod, 'm', sizeof(mod));
	mod[HOLD_MOD_LEN - 1] = '\0'; /* 55 */
	memset(dev, 'p', sizeof(dev));
	dev[63] = '\0';
	memset(drv, 'd', sizeof(drv));
	drv[63] = '\0';
	struct jrec longest[] = {
		{ J_UNIT, "", "" },
		{ J_VTCON, "vtcon999", "" },
		{ J_FB, "simple-framebuffer", "" },
		{ J_MODULE, "", "" },
		{ J_UNBIND, "ffff:ff:1f.7", "" },
		{ J_VFIO, "0000:03:00.0", "" },
		{ J_LOADED, "vfio_pci", "" },
	};
	strcpy(longest[0].a, unit);
	strcpy(longest[2].b, dev);
	strcpy(longest[3].a, mod);
	strcpy(longest[4].b, drv);
	CHECK("shapes: a temp root", mkdtemp(sdir) != NULL);
	CHECK("shapes: created", journal_create(sdir, "win11", &fd) == 0);
	for (size_t i = 0; i < sizeof(longest) / sizeof(longest[0]); i++)
		CHECK("shapes: the longest legal value of each field is written",
		      journal_append(fd, &longest[i]) == 0);
	close(fd);
	r = journal_load(sdir, "win11", &got, &n, &cut, &bad);
	same = r == 0 && n == sizeof(longest) / sizeof(longest[0]);
	for (size_t i = 0; same && i < n; i++)
		same = got[i].step == longest[i].step && !strcmp(got[i].a, longest[i].a) &&
		       !strcmp(got[i].b, longest[i].b);
	CHECK("shapes: each comes back whole (a 255-byte unit included)", same);
	free(got);

	static const char *const hostile[] = {
		"vtcon ../../../../tmp/victim\n",
		"vtcon vtcon1/../../x\n",
		"unit reboot.target\n",
		"unit ../../etc/x.service\n",
		"unit a b.service\n",
		"fb ../../x efi-framebuffer.0\n",
		"fb efi-framebuffer ../../../tmp\n",
		"fb vesafb2 vesafb.0\n",
		"module ../x\n",
		"module a/b\n",
		"unbind 0000:03:00.1 ../../x\n",
		"unbind ../../.. snd_hda_intel\n",
		"vfio 0000:3:00.0\n",
		"vfio 0000:03:00.0/../..\n",
		"vfio 0000:03:20.0\n",
		"vfio 0000:03:00.8\n",
		"vfio 0000:03:00.A\n",
		"loaded ../../../x\n",
		/* (uid_t)-1 to setresuid() is "unchanged": the helper would stay root */
		"unit a.service user:4294967295\n",
		"holder a.service user:2147483647\n",
		"holder a.service user:99999999999\n",
	};
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		char name[96];

		snprintf(name, sizeof(name), "shapes: refused: %.*s", (int)strlen(hostile[i]) - 1,
			 hostile[i]);
		r = journal_parse(hostile[i], strlen(hostile[i]), &got, &n, &cut, &bad);
		CHECK(name, r == -EINVAL && bad == 1);
	}
	static const char users[] = "holder a.service user:0\nunit b.service user:2147483646\n";
	r = journal_parse(users, strlen(users), &got, &n, &cut, &bad);
	CHECK("shapes: a user's manager from uid 0 to 2147483646 is one",
	      r == 0 && n == 2 && !strcmp(got[1].b, "user:2147483646"));
	free(got);
	unit[UNIT_NAME_MAX - 8] = 'u';
	strcpy(unit + UNIT_NAME_MAX - 7, ".service"); /* 256 bytes */
	CHECK("shapes: a unit name of 256 bytes is not one (the config refuses it)",
	      !unit_name_valid(unit));
	snprintf(cmd, sizeof(cmd), "rm -rf %s", sdir);
	CHECK("shapes: cleaned up", system(cmd) == 0);
}

/* a dependency graph as /sys/module/<m>/holders would show it */
static const char *const graph[][4] = {
	{ "nvidia", "nvidia_modeset", "nvidia_uvm", NULL },
	{ "nvidia_modeset", "nvidia_drm", NULL },
	{ "nvidia_drm", NULL },
	{ "nvidia_uvm", NULL },
	{ "amdgpu", NULL },
	{ "loop_a", "loop_b", NULL },
	{ "loop_b", "loop_a", NULL },
};

static int fake_holders(const char *name, modname_t **out, size_t *n, void *arg)
{
	*out = NULL;
	*n = 0;
	for (size_t i = 0; i < sizeof(graph) / sizeof(graph[0]); i++) {
		if (strcmp(graph[i][0], name))
			continue;
		for (size_t j = 1; j < 4 && graph[i][j]; j++) {
			*out = realloc(*out, (*n + 1) * sizeof(**out));
			snprintf((*out)[(*n)++], sizeof(**out), "%s", graph[i][j]);
		}
	}
	return 0;
}

/* word appended to a line of words */
static void add_word(char *line, size_t len, const char *word)
{
	size_t at = strlen(line);

	snprintf(line + at, len - at, "%s%s", at ? " " : "", word);
}

static void test_order(void)
{
	modname_t roots[2] = { "nvidia" }, *out = NULL;
	char line[256] = "";
	size_t n = 0;
	int r = module_order(roots, 1, fake_holders, NULL, &out, &n);

	for (size_t i = 0; i < n; i++)
		add_word(line, sizeof(line), out[i]);
	CHECK("order: nvidia's dependents first", r == 0);
	CHECK_STR("order: uvm, drm, modeset, nvidia", line,
		  "nvidia_uvm nvidia_drm nvidia_modeset nvidia");
	free(out);

	snprintf(roots[0], sizeof(roots[0]), "amdgpu");
	snprintf(roots[1], sizeof(roots[1]), "nvidia_modeset");
	r = module_order(roots, 2, fake_holders, NULL, &out, &n);
	CHECK("order: two roots, each once", r == 0 && n == 3 && !strcmp(out[0], "amdgpu") &&
						     !strcmp(out[1], "nvidia_drm") &&
						     !strcmp(out[2], "nvidia_modeset"));
	free(out);

	snprintf(roots[0], sizeof(roots[0]), "loop_a");
	r = module_order(roots, 1, fake_holders, NULL, &out, &n);
	CHECK("order: a cycle is ELOOP, not a hang", r == -ELOOP);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void put(const char *dir, const char *name, const char *text)
{
	char path[4200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "w"))) {
		fputs(text, f);
		fclose(f);
	}
}

/* release's display wait: a unit's processes from its control group and those below */
static void test_cgroup_pids(void)
{
	char top[] = "/tmp/va-cgroup.XXXXXX", dir[4200], line[16], got[512] = "";
	uint32_t *pids = NULL;
	size_t n = 0;
	int r;

	if (!mkdtemp(top)) {
		CHECK("cgroup: a scratch directory", 0);
		return;
	}
	put(top, "cgroup.procs", "10\n20\n");
	snprintf(dir, sizeof(dir), "%s/sub", top);
	mkdir(dir, 0755);
	put(dir, "cgroup.procs", "30\nnot a pid\n\n");
	/* a chain of groups 12 deep below sub: those past 8 levels are not read */
	for (int i = 1; i <= 12; i++) {
		snprintf(dir + strlen(dir), sizeof(dir) - strlen(dir), "/d%d", i);
		mkdir(dir, 0755);
		snprintf(line, sizeof(line), "%d\n", 100 + i);
		put(dir, "cgroup.procs", line);
	}
	r = cgroup_pids(top, &pids, &n);
	for (size_t i = 0; i < n; i++) {
		snprintf(line, sizeof(line), "%u", pids[i]);
		add_word(got, sizeof(got), line);
	}
	CHECK("cgroup: the group's processes read", r == 0);
	CHECK_STR("cgroup: its own, then those below, 8 levels down, a bad line skipped", got,
		  "10 20 30 101 102 103 104 105 106 107");
	free(pids);
	pids = NULL;
	n = 0;
	snprintf(dir, sizeof(dir), "%s/none", top);
	CHECK("cgroup: a group that is not there is -ENOENT, nothing read",
	      cgroup_pids(dir, &pids, &n) == -ENOENT && n == 0);
	free(pids);
	if (nftw(top, remove_one, 16, FTW_DEPTH | FTW_PHYS))
		printf("# %s: not all removed\n", top);
}

int main(void)
{
	test_example();
	test_agent();
	test_hostile();
	test_journal();
	test_journal_shapes();
	test_order();
	test_cgroup_pids();
	TAP_EXIT();
}
