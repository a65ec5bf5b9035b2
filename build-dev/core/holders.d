build-dev/core/holders.o: core/holders.c core/holders.h core/attrib.h \
 bpf/scan.h bpf/hold_rec.h
core/holders.h:
core/attrib.h:
bpf/scan.h:
bpf/hold_rec.h:
