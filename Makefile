# SPDX-License-Identifier: GPL-2.0-or-later
#
# vfio-agent — plain GNU make. Knobs: PREFIX DESTDIR SYSCONFDIR HOOKDIR UNITDIR MANDIR
# BASHCOMPDIR ZSHCOMPDIR QEMU_D=yes|no CC CLANG BPFTOOL PKG_CONFIG V=1
# SANITIZE=1 O=dir FUZZ_SECONDS=30 FUZZ_RUN="fuzz_config ..."

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/sbin
SYSCONFDIR ?= /etc
HOOKDIR ?= $(SYSCONFDIR)/libvirt/hooks/qemu.d
UNITDIR ?= $(PREFIX)/lib/systemd/system
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
# libvirt runs qemu.d/ hooks itself since 6.5; older ones want hooks/qemu
QEMU_D ?= $(shell $(PKG_CONFIG) --atleast-version=6.5.0 libvirt 2>/dev/null && echo yes || echo no)
CC ?= cc
PKG_CONFIG ?= pkg-config
CLANG ?= clang
BPFTOOL ?= bpftool
ARCH ?= $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
SANITIZE ?=

ifeq ($(SANITIZE),1)
O ?= build-asan
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
# ASan finds the real xdr functions behind its interceptors when the process
# starts; libvirt, opened later, calls them from libtirpc, which must
# therefore be loaded from the start in this build (else a call through NULL)
SAN_LIBS := -Wl,--no-as-needed $(shell $(PKG_CONFIG) --libs libtirpc 2>/dev/null) -Wl,--as-needed
else
O ?= build
SAN_FLAGS :=
SAN_LIBS :=
endif

# linked, and opened when a verb needs them (agent/dl.c: their headers are
# used, their libraries not linked); libdrm (the test helper's headers) and,
# in the sanitizer build only, libtirpc (see above) are checked with
# pkg-config so that `make deps` is proven complete
PKGS_LINKED := libnftnl libmnl json-c libbpf
PKGS_OPENED := libvirt libkmod libxml-2.0 libsystemd
PKGS := $(PKGS_LINKED) $(PKGS_OPENED)
PKGS_STACK := libdrm $(if $(filter 1,$(SANITIZE)),libtirpc)
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS_LINKED) 2>/dev/null)
# the test helper's DRM ioctls: the uapi headers only, nothing linked
DRM_CFLAGS := $(shell $(PKG_CONFIG) --cflags libdrm 2>/dev/null)

CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wshadow -Wformat=2 \
	  -Wstrict-prototypes -Wmissing-prototypes -fno-strict-aliasing \
	  -D_GNU_SOURCE -I. -I$(O)/bpf $(PKG_CFLAGS) $(SAN_FLAGS)
LDFLAGS += $(SAN_FLAGS)
LDLIBS += $(PKG_LIBS) $(SAN_LIBS) -ldl -pthread

ifeq ($(V),1)
Q :=
else
Q := @
endif

AGENT_SRC := $(wildcard agent/*.c)
CORE_SRC := $(wildcard core/*.c)
SHARED_SRC := $(wildcard shared/*.c)
NF_SRC := $(wildcard netfilter/*.c)
BPF_PROGS := $(wildcard bpf/*.bpf.c)
BPF_SRC := $(filter-out $(BPF_PROGS),$(wildcard bpf/*.c))
BPF_SKELS := $(patsubst bpf/%.bpf.c,$(O)/bpf/%.skel.h,$(BPF_PROGS))
LIB_OBJ := $(patsubst %.c,$(O)/%.o,$(NF_SRC) $(BPF_SRC) $(CORE_SRC) $(SHARED_SRC)) \
	   $(patsubst %.c,$(O)/%.o,$(filter-out agent/main.c,$(AGENT_SRC)))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(O)/tests/%,$(UNIT_SRC))

.DELETE_ON_ERROR:
.PHONY: format format-check pkgs all clean check check-unit check-netns deps dist bench install uninstall tests sanitize-build demo mutants fuzz fuzz-build fuzz-seeds

all: pkgs $(O)/vfio-agent $(O)/man.lint

# the man pages, checked whenever they change
MANPAGES := man/vfio-agent.8 man/vfio-agent.conf.5
$(O)/man.lint: $(MANPAGES)
	@mkdir -p $(@D)
	@echo "  LINT    $^"
	$(Q)mandoc -Tlint -W warning $^
	@touch $@

pkgs:
	@$(PKG_CONFIG) --exists --print-errors $(PKGS) $(PKGS_STACK) || \
		{ echo "missing libraries: run make deps (as root)" >&2; exit 1; }

$(O)/vfio-agent: $(O)/agent/main.o $(LIB_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# BPF: CO-RE objects (kernel types from bpf/kernel.h, relocated at load time
# against the running kernel's BTF) and their skeletons, generated here.
BPF_CC = $(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -I. \
	-idirafter /usr/include/$(shell $(CC) -print-multiarch 2>/dev/null) \
	-Wall -Wno-unused-function

$(O)/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h)
	@mkdir -p $(@D)
	@echo "  BPF     $@"
	$(Q)$(BPF_CC) -c -o $@ $<

$(O)/bpf/%.skel.h: $(O)/bpf/%.bpf.o
	@echo "  SKEL    $@"
	$(Q)$(BPFTOOL) gen skeleton $< name $*_bpf > $@

# the benchmark's floor: iterators that only count (tests/bench/diagnose.sh)
$(O)/tests/floor.bpf.o: tests/bench/floor.bpf.c bpf/kernel.h
	@mkdir -p $(@D)
	@echo "  BPF     $@"
	$(Q)$(BPF_CC) -c -o $@ $<

$(O)/tests/floor.skel.h: $(O)/tests/floor.bpf.o
	@echo "  SKEL    $@"
	$(Q)$(BPFTOOL) gen skeleton $< name floor_bpf > $@

$(O)/tests/floor: tests/bench/floor.c $(O)/tests/floor.skel.h
	@echo "  CC      $@"
	$(Q)$(CC) $(CFLAGS) -I$(O)/tests -o $@ $< $(LDFLAGS) $(LDLIBS)

$(patsubst %.c,$(O)/%.o,$(BPF_SRC)): $(BPF_SKELS)
.SECONDARY: $(patsubst bpf/%.bpf.c,$(O)/bpf/%.bpf.o,$(BPF_PROGS))

$(O)/%.o: %.c
	@mkdir -p $(@D)
	@echo "  CC      $@"
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(O)/tests/%: tests/unit/%.c $(LIB_OBJ)
	@mkdir -p $(@D)
	@echo "  CC      $@"
	$(Q)$(CC) $(CFLAGS) -Itests/unit -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(O)/tests/holder: tests/helpers/holder.c
	@mkdir -p $(@D)
	@echo "  CC      $@"
	$(Q)$(CC) $(CFLAGS) $(DRM_CFLAGS) -pthread -o $@ $< $(LDFLAGS)

# the fixture tier's kernel stand-in: never instrumented, it is preloaded
# into instrumented binaries too
$(O)/tests/kshim.so: tests/helpers/kshim.c
	@mkdir -p $(@D)
	@echo "  CC      $@"
	$(Q)$(CC) -O2 -g -Wall -Wno-format-truncation -shared -fPIC -o $@ $< -ldl

$(O)/tests/nlstamp: tests/helpers/nlstamp.c $(LIB_OBJ)
	@mkdir -p $(@D)
	@echo "  CC      $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

# several holder scans in one process (tests/bpf/rescan.sh)
$(O)/tests/rescan: tests/helpers/rescan.c $(LIB_OBJ)
	@mkdir -p $(@D)
	@echo "  CC      $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

# the handoff benchmark's floor: the handoff's operations alone (tests/bench/handoff.sh)
$(O)/tests/handoff-floor: tests/bench/handoff-floor.c $(LIB_OBJ)
	@mkdir -p $(@D)
	@echo "  CC      $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

# the VM tier's screenshots compared
$(O)/tests/ppmdiff: tests/helpers/ppmdiff.c
	@mkdir -p $(@D)
	@echo "  CC      $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS)

# the fixture tier's systemd: a stand-in manager on a private bus (tests/helpers/sdmanager.sh)
$(O)/tests/sdmanager: tests/helpers/sdmanager.c
	@mkdir -p $(@D)
	@echo "  CC      $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS) $(shell $(PKG_CONFIG) --libs libsystemd 2>/dev/null)

# the netns tier's BPF program that drops the forwarded port (XDP and tc)
$(O)/tests/xdp_drop.bpf.o: tests/helpers/xdp_drop.bpf.c
	@mkdir -p $(@D)
	@echo "  BPF     $@"
	$(Q)$(CLANG) -g -O2 -target bpf -idirafter /usr/include/$(shell $(CC) -print-multiarch 2>/dev/null) \
		-Wall -c -o $@ $<

tests: $(UNIT_BIN) $(O)/tests/holder $(O)/tests/kshim.so $(O)/tests/nlstamp $(O)/tests/rescan \
	$(O)/tests/floor $(O)/tests/handoff-floor $(O)/tests/sdmanager \
	$(O)/tests/xdp_drop.bpf.o $(O)/tests/ppmdiff

# libFuzzer targets (tests/fuzz/fuzz_*.c, wireguard-tools' src/fuzz/ is the model):
# the code below agent/ built again with clang for coverage and the sanitizers,
# into an archive each harness takes what it needs from. make fuzz runs each
# for FUZZ_SECONDS on its seeds (tests/fuzz/corpus/NAME/); a finding fails it.
FUZZ_SECONDS ?= 30
FUZZ_O := $(O)/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS := -O1 -g -std=gnu11 -Wall -Wno-unused-parameter -D_GNU_SOURCE -I. $(PKG_CFLAGS) $(FUZZ_SAN)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(patsubst tests/fuzz/%.c,$(FUZZ_O)/%,$(FUZZ_SRC))
# what make fuzz and make check run
FUZZ_RUN ?= $(notdir $(FUZZ_BIN))
# bpf/scan.c: the target sets core/targets.c fills (no skeleton needed)
FUZZ_LIB_OBJ := $(patsubst %.c,$(FUZZ_O)/obj/%.o,$(NF_SRC) $(CORE_SRC) $(SHARED_SRC) bpf/scan.c)

$(FUZZ_O)/obj/%.o: %.c
	@mkdir -p $(@D)
	@echo "  CLANG   $@"
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_O)/lib.a: $(FUZZ_LIB_OBJ)
	@echo "  AR      $@"
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(FUZZ_O)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_O)/lib.a
	@mkdir -p $(@D)
	@echo "  FUZZ    $@"
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer -MMD -MP -MF $@.d -o $@ $< $(FUZZ_O)/lib.a \
		$(PKG_LIBS) -ldl -pthread

fuzz-build: pkgs $(FUZZ_BIN)

fuzz: fuzz-build
	$(Q)FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run $(abspath $(FUZZ_O)) $(FUZZ_RUN)

# the netlink harnesses write their seeds from the code they feed
fuzz-seeds: fuzz-build
	$(Q)for t in rtnl nft_state; do mkdir -p tests/fuzz/corpus/$$t && \
		FUZZ_WRITE_SEEDS=tests/fuzz/corpus/$$t $(FUZZ_O)/fuzz_$$t || exit 1; done

# The code in .clang-format's style (Debian 12's clang-format 14): checked by make check
CLANG_FORMAT ?= clang-format
FORMAT_SRC = $(wildcard agent/*.[ch] core/*.[ch] netfilter/*.[ch] bpf/*.[ch] shared/*.[ch] \
		       tests/unit/*.[ch] tests/helpers/*.c tests/fuzz/*.c tests/bench/*.c)

format:
	$(Q)$(CLANG_FORMAT) -i $(FORMAT_SRC)

format-check:
	@echo "  FORMAT  $(words $(FORMAT_SRC)) files"
	$(Q)$(CLANG_FORMAT) --dry-run -Werror $(FORMAT_SRC) || \
		{ echo "make format-check: run make format (clang-format 14, .clang-format)" >&2; exit 1; }

# Every tier that exists, then all of them again under the sanitizers;
# tests/run prints the closing "N passed, N failed, N skipped" line; then the
# fuzz targets, FUZZ_SECONDS each.
check: format-check all tests sanitize-build fuzz-build
	$(Q)VFIO_AGENT=$(abspath $(O)/vfio-agent) UNIT_DIR=$(abspath $(O)/tests) \
		SAN_AGENT=$(abspath build-asan/vfio-agent) SAN_UNIT_DIR=$(abspath build-asan/tests) \
		tests/run $(TIERS)
	$(Q)FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run $(abspath $(FUZZ_O)) $(FUZZ_RUN)

sanitize-build:
	$(Q)$(MAKE) --no-print-directory SANITIZE=1 O=build-asan all tests

# one tier, built once (no sanitizer pass)
check-unit check-netns: check-%: all tests
	$(Q)VFIO_AGENT=$(abspath $(O)/vfio-agent) UNIT_DIR=$(abspath $(O)/tests) tests/run $*

# The mutation round: each tests/mutants/*.patch (or MUTANTS=...) applied to a copy of
# the tree, rebuilt, and run against the test scripts its header names; minutes per
# mutant, so not part of make check. Ends "N killed, N survived"; fails on a survivor.
mutants:
	$(Q)tests/mutants/run $(MUTANTS)

# The package manager there is, with its list beside deps/debian.txt
deps:
	@if command -v apt-get >/dev/null; then \
		set -x; apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends $$(grep -v '^#' deps/debian.txt); \
	elif command -v pacman >/dev/null; then \
		set -x; pacman -Sy --needed --noconfirm $$(grep -v '^#' deps/arch.txt); \
	elif command -v dnf >/dev/null; then \
		set -x; dnf install -y $$(grep -v '^#' deps/fedora.txt); \
	else \
		echo "make deps: no apt-get, pacman or dnf here; install what deps/*.txt name" >&2; exit 1; \
	fi

# The source tarball the Arch and RPM recipes build (packaging/)
VERSION ?= 0.1
dist:
	git archive --prefix=vfio-agent-$(VERSION)/ -o vfio-agent-$(VERSION).tar.gz HEAD

# The README's first command: everything installed and built, then the
# demo (examples/demo.sh) in namespaces of its own. SKIP_DEPS=1: no apt-get.
demo: $(if $(SKIP_DEPS),,deps)
	$(Q)$(MAKE) --no-print-directory all tests
	$(Q)VFIO_AGENT=$(or $(VFIO_AGENT),$(abspath $(O)/vfio-agent)) UNIT_DIR=$(abspath $(O)/tests) examples/demo.sh

bench: all tests
	$(Q)VFIO_AGENT=$(abspath $(O)/vfio-agent) tests/bench/forward.sh
	$(Q)VFIO_AGENT=$(abspath $(O)/vfio-agent) tests/bench/diagnose.sh
	$(Q)VFIO_AGENT=$(abspath $(O)/vfio-agent) UNIT_DIR=$(abspath $(O)/tests) tests/bench/daemon.sh
	$(Q)VFIO_AGENT=$(abspath $(O)/vfio-agent) UNIT_DIR=$(abspath $(O)/tests) tests/bench/churn.sh
	$(Q)VFIO_AGENT=$(abspath $(O)/vfio-agent) UNIT_DIR=$(abspath $(O)/tests) tests/bench/handoff.sh
	$(Q)VFIO_AGENT=$(abspath $(O)/vfio-agent) UNIT_DIR=$(abspath $(O)/tests) tests/bench/restart.sh

# The hook: qemu.d/vfio-agent, or hooks/qemu where libvirt has no qemu.d;
# a file there that is not ours is never overwritten, nor removed.
HOOK_MARK := vfio-agent as one of libvirt's qemu hooks
HOOK_DEST = $(DESTDIR)$(if $(filter yes,$(QEMU_D)),$(HOOKDIR)/vfio-agent,$(dir $(HOOKDIR))qemu)
INSTALLED = $(BINDIR)/vfio-agent $(UNITDIR)/vfio-agent.service \
	$(SYSCONFDIR)/vfio-agent/vfio-agent.conf.example $(MANDIR)/man8/vfio-agent.8 \
	$(MANDIR)/man5/vfio-agent.conf.5 $(BASHCOMPDIR)/vfio-agent $(ZSHCOMPDIR)/_vfio-agent

install: all
	install -D -m 0755 $(O)/vfio-agent $(DESTDIR)$(BINDIR)/vfio-agent
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/vfio-agent
	sed 's|@BINDIR@|$(BINDIR)|' examples/vfio-agent.service >$(DESTDIR)$(UNITDIR)/vfio-agent.service
	install -m 0644 examples/vfio-agent.conf $(DESTDIR)$(SYSCONFDIR)/vfio-agent/vfio-agent.conf.example
	install -D -m 0644 man/vfio-agent.8 $(DESTDIR)$(MANDIR)/man8/vfio-agent.8
	install -D -m 0644 man/vfio-agent.conf.5 $(DESTDIR)$(MANDIR)/man5/vfio-agent.conf.5
	install -D -m 0644 completion/vfio-agent.bash $(DESTDIR)$(BASHCOMPDIR)/vfio-agent
	install -D -m 0644 completion/_vfio-agent $(DESTDIR)$(ZSHCOMPDIR)/_vfio-agent
	@if [ -e "$(HOOK_DEST)" ] && ! grep -qF "$(HOOK_MARK)" "$(HOOK_DEST)"; then \
		echo "make install: $(HOOK_DEST) is someone else's hook: left as it is;" \
			"have it run '$(BINDIR)/vfio-agent hook \"\$$@\"' with the domain XML on stdin" >&2; \
	else \
		echo "install hook $(HOOK_DEST)"; \
		install -d "$(dir $(HOOK_DEST))" && \
		sed 's|@BINDIR@|$(BINDIR)|' examples/libvirt-hook >"$(HOOK_DEST)" && \
		chmod 0755 "$(HOOK_DEST)"; \
	fi

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	@if [ -e "$(HOOK_DEST)" ] && grep -qF "$(HOOK_MARK)" "$(HOOK_DEST)"; then \
		echo "rm -f $(HOOK_DEST)"; rm -f "$(HOOK_DEST)"; fi
	-rmdir $(DESTDIR)$(SYSCONFDIR)/vfio-agent 2>/dev/null
	@# a staging tree is left as it was found: the directories made for us go too
	@if [ -n "$(DESTDIR)" ]; then \
		cd "$(DESTDIR)" && for f in $(INSTALLED) $(patsubst $(DESTDIR)%,%,$(HOOK_DEST)); do \
			rmdir -p --ignore-fail-on-non-empty "$$(dirname "$${f#/}")" 2>/dev/null; done; true; \
	fi

# O=dir cleans that build; plain make clean, both of the defaults
clean:
	rm -rf $(if $(filter command line,$(origin O)),$(O),build build-asan)

-include $(shell find $(O) -name '*.d' 2>/dev/null)
