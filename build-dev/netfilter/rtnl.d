build-dev/netfilter/rtnl.o: netfilter/rtnl.c netfilter/rtnl.h \
 netfilter/nft.h
netfilter/rtnl.h:
netfilter/nft.h:
