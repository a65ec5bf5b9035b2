build-dev/bpf/scan_bpf.o: bpf/scan_bpf.c bpf/scan.h bpf/hold_rec.h \
 shared/macro.h build-dev/bpf/holders.skel.h
bpf/scan.h:
bpf/hold_rec.h:
shared/macro.h:
build-dev/bpf/holders.skel.h:
