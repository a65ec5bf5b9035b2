build-dev/netfilter/nft_sock.o: netfilter/nft_sock.c netfilter/nft_priv.h \
 netfilter/nft.h
netfilter/nft_priv.h:
netfilter/nft.h:
