build-dev/agent/watch.o: agent/watch.c agent/agent.h core/config.h \
 netfilter/nft.h core/holders.h core/attrib.h bpf/scan.h bpf/hold_rec.h \
 agent/log.h shared/macro.h core/targets.h bpf/watch.h
agent/agent.h:
core/config.h:
netfilter/nft.h:
core/holders.h:
core/attrib.h:
bpf/scan.h:
bpf/hold_rec.h:
agent/log.h:
shared/macro.h:
core/targets.h:
bpf/watch.h:
