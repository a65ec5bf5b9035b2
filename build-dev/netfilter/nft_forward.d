build-dev/netfilter/nft_forward.o: netfilter/nft_forward.c \
 netfilter/nft_priv.h netfilter/nft.h
netfilter/nft_priv.h:
netfilter/nft.h:
