/* The few legacy PC ports a guest pokes besides the UART and PCI:
 *   0x60/0x64  i8042 stub: status reads idle; command 0xFE (pulse reset) on
 *              0x64 is a reboot request, which stops the VM (VM_EXIT_REBOOT).
 *   0x600      PM1a status/enable (4 bytes, the FADT's PM1a_EVT_BLK): read 0.
 *   0x604      PM1a control (as QEMU's; the FADT's PM1a_CNT_BLK): a 16-bit
 *              write with SLP_EN (bit 13) set powers the VM off
 *              (VM_EXIT_POWEROFF) -- Linux's ACPI S5; guests without ACPI
 *              use it directly: outw(0x604, 0x2000). Reads SCI_EN set.
 *   0x70/0x71  CMOS RTC: the host's time (UTC, BCD, 24 h), never updating.
 *   0x80       POST code / I/O delay: swallowed without a dispatch miss.
 * Any other unclaimed port reads all-ones (vm.c). */
#ifndef VMM_PLATFORM_H
#define VMM_PLATFORM_H

#include <stdbool.h>
#include <stdint.h>

struct vm;

#define PLATFORM_PM1A_CNT 0x604
#define PLATFORM_PM1_SLP_EN 0x2000
#define PLATFORM_PM1_SCI_EN 0x0001
#define PLATFORM_PM1A_EVT 0x600

int platform_init(struct vm *vm);

/* CMOS register value for the given time (tests). */
uint8_t platform_cmos_read(uint8_t reg, int64_t unix_time);

#endif
