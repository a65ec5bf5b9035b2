build-dev/core/attrib.o: core/attrib.c core/attrib.h shared/macro.h \
 core/sysfs.h core/targets.h bpf/scan.h bpf/hold_rec.h
core/attrib.h:
shared/macro.h:
core/sysfs.h:
core/targets.h:
bpf/scan.h:
bpf/hold_rec.h:
