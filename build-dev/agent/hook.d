build-dev/agent/hook.o: agent/hook.c agent/agent.h core/config.h \
 netfilter/nft.h core/domain.h core/guest.h agent/forward.h \
 core/forward.h agent/handoff.h core/state.h core/journal.h agent/log.h \
 shared/macro.h netfilter/rtnl.h
agent/agent.h:
core/config.h:
netfilter/nft.h:
core/domain.h:
core/guest.h:
agent/forward.h:
core/forward.h:
agent/handoff.h:
core/state.h:
core/journal.h:
agent/log.h:
shared/macro.h:
netfilter/rtnl.h:
