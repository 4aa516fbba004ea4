// LegacyBoot has no C interface: multiboot.S only provides the header and `multiboot_start`.
#ifndef TORO_LEGACY_BOOT_H
#define TORO_LEGACY_BOOT_H
#endif
