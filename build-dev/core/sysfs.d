build-dev/core/sysfs.o: core/sysfs.c core/sysfs.h
core/sysfs.h:
