build-dev/netfilter/nft_text.o: netfilter/nft_text.c netfilter/nft_priv.h \
 netfilter/nft.h shared/strbuf.h
netfilter/nft_priv.h:
netfilter/nft.h:
shared/strbuf.h:
