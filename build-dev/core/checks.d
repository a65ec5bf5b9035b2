build-dev/core/checks.o: core/checks.c core/checks.h bpf/hold_rec.h \
 core/config.h netfilter/nft.h core/forward.h core/modules.h \
 core/preflight.h core/sysfs.h core/targets.h bpf/scan.h shared/macro.h \
 shared/strbuf.h
core/checks.h:
bpf/hold_rec.h:
core/config.h:
netfilter/nft.h:
core/forward.h:
core/modules.h:
core/preflight.h:
core/sysfs.h:
core/targets.h:
bpf/scan.h:
shared/macro.h:
shared/strbuf.h:
