build-dev/core/state.o: core/state.c core/state.h shared/macro.h
core/state.h:
shared/macro.h:
