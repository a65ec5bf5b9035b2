build-dev/bpf/watch.o: bpf/watch.c bpf/watch.h bpf/scan.h bpf/hold_rec.h \
 build-dev/bpf/watch.skel.h
bpf/watch.h:
bpf/scan.h:
bpf/hold_rec.h:
build-dev/bpf/watch.skel.h:
