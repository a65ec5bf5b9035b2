build-dev/netfilter/nft_state.o: netfilter/nft_state.c \
 netfilter/nft_priv.h netfilter/nft.h
netfilter/nft_priv.h:
netfilter/nft.h:
