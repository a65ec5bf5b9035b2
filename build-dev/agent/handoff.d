build-dev/agent/handoff.o: agent/handoff.c agent/agent.h agent/handoff.h \
 agent/log.h core/config.h netfilter/nft.h core/handoff.h core/journal.h \
 core/holders.h core/attrib.h bpf/scan.h bpf/hold_rec.h core/state.h \
 core/targets.h shared/macro.h
agent/agent.h:
agent/handoff.h:
agent/log.h:
core/config.h:
netfilter/nft.h:
core/handoff.h:
core/journal.h:
core/holders.h:
core/attrib.h:
bpf/scan.h:
bpf/hold_rec.h:
core/state.h:
core/targets.h:
shared/macro.h:
