build-dev/agent/diagnose.o: agent/diagnose.c agent/agent.h core/checks.h \
 bpf/hold_rec.h core/config.h netfilter/nft.h core/holders.h \
 core/attrib.h bpf/scan.h agent/log.h shared/macro.h core/modules.h \
 core/sysfs.h core/targets.h
agent/agent.h:
core/checks.h:
bpf/hold_rec.h:
core/config.h:
netfilter/nft.h:
core/holders.h:
core/attrib.h:
bpf/scan.h:
agent/log.h:
shared/macro.h:
core/modules.h:
core/sysfs.h:
core/targets.h:
