build-dev/shared/escape.o: shared/escape.c shared/escape.h \
 shared/strbuf.h
shared/escape.h:
shared/strbuf.h:
