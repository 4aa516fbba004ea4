// MicroVMBoot has no C interface: pvh.S only provides the ELF note and `pvh_start`.
#ifndef TORO_MICROVM_BOOT_H
#define TORO_MICROVM_BOOT_H
#endif
