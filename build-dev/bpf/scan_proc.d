build-dev/bpf/scan_proc.o: bpf/scan_proc.c bpf/scan.h bpf/hold_rec.h
bpf/scan.h:
bpf/hold_rec.h:
