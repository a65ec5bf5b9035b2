build-dev/core/forward.o: core/forward.c core/config.h netfilter/nft.h \
 core/forward.h netfilter/rtnl.h
core/config.h:
netfilter/nft.h:
core/forward.h:
netfilter/rtnl.h:
