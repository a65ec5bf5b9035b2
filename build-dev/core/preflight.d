build-dev/core/preflight.o: core/preflight.c core/checks.h bpf/hold_rec.h \
 core/config.h netfilter/nft.h core/modules.h core/preflight.h \
 core/sysfs.h core/targets.h bpf/scan.h netfilter/rtnl.h shared/macro.h
core/checks.h:
bpf/hold_rec.h:
core/config.h:
netfilter/nft.h:
core/modules.h:
core/preflight.h:
core/sysfs.h:
core/targets.h:
bpf/scan.h:
netfilter/rtnl.h:
shared/macro.h:
