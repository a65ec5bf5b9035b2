build-dev/core/journal.o: core/journal.c core/journal.h core/state.h \
 core/targets.h bpf/scan.h bpf/hold_rec.h core/units.h shared/macro.h
core/journal.h:
core/state.h:
core/targets.h:
bpf/scan.h:
bpf/hold_rec.h:
core/units.h:
shared/macro.h:
