build-dev/netfilter/nft_build.o: netfilter/nft_build.c \
 netfilter/nft_priv.h netfilter/nft.h
netfilter/nft_priv.h:
netfilter/nft.h:
