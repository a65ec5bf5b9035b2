build-dev/agent/check.o: agent/check.c agent/agent.h core/config.h \
 netfilter/nft.h agent/log.h
agent/agent.h:
core/config.h:
netfilter/nft.h:
agent/log.h:
