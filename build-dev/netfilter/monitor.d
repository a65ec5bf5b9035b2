build-dev/netfilter/monitor.o: netfilter/monitor.c netfilter/monitor.h \
 netfilter/nft.h
netfilter/monitor.h:
netfilter/nft.h:
