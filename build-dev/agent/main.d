build-dev/agent/main.o: agent/main.c agent/agent.h core/config.h \
 netfilter/nft.h agent/log.h shared/macro.h
agent/agent.h:
core/config.h:
netfilter/nft.h:
agent/log.h:
shared/macro.h:
