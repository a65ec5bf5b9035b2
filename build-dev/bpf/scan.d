build-dev/bpf/scan.o: bpf/scan.c bpf/scan.h bpf/hold_rec.h shared/array.h
bpf/scan.h:
bpf/hold_rec.h:
shared/array.h:
