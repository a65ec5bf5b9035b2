build-dev/shared/strbuf.o: shared/strbuf.c shared/strbuf.h
shared/strbuf.h:
