build-dev/core/config.o: core/config.c core/config.h netfilter/nft.h \
 core/units.h shared/macro.h
core/config.h:
netfilter/nft.h:
core/units.h:
shared/macro.h:
