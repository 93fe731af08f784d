/* Legacy PC ports: i8042 reset, PM1a power-off, CMOS clock, POST port. */
#include "platform.h"

#include <string.h>
#include <time.h>

#include "vm.h"

struct platform {
    struct vm *vm;
    uint8_t cmos_index;
    uint8_t pm1_en[2]; /* PM1a enable: kept, so the guest reads back what it set */
};

static struct platform platform_state;

static void i8042_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len,
                     bool is_write)
{
    struct platform *p = opaque;
    if (!is_write) {
        memset(data, 0, len); /* output buffer empty, input buffer empty */
        return;
    }
    if (offset == 4 && data[0] == 0xfe)
        vm_request_exit(p->vm, VM_EXIT_REBOOT, "i8042 reset command 0xFE");
}

static void pm_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
    struct platform *p = opaque;
    if (!is_write) {
        /* SCI_EN: always in ACPI mode (the FADT has no SMI command port) */
        memset(data, 0, len);
        if (offset == 0)
            data[0] = PLATFORM_PM1_SCI_EN;
        return;
    }
    uint16_t v = data[0] | (len > 1 ? data[1] << 8 : 0);
    if (offset == 0 && len >= 2 && (v & PLATFORM_PM1_SLP_EN))
        vm_request_exit(p->vm, VM_EXIT_POWEROFF, "the guest powered off");
}

/* PM1a status (bytes 0-1, write-one-to-clear; no fixed event ever happens,
 * so always 0) and enable (bytes 2-3, read-write: ACPICA reads back the
 * enable bits it sets -- the global lock, the RTC alarm -- and disables the
 * event, with an error, when they do not stick). */
static void pm_evt_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len,
                      bool is_write)
{
    struct platform *p = opaque;
    for (unsigned i = 0; i < len; i++) {
        uint64_t o = offset + i;
        if (o < 2 || o > 3) {
            if (!is_write)
                data[i] = 0;
        } else if (is_write) {
            p->pm1_en[o - 2] = data[i];
        } else {
            data[i] = p->pm1_en[o - 2];
        }
    }
}

static uint8_t bcd(int v)
{
    return (uint8_t)(((v / 10) << 4) | (v % 10));
}

uint8_t platform_cmos_read(uint8_t reg, int64_t unix_time)
{
    time_t t = (time_t)unix_time;
    struct tm tm;
    gmtime_r(&t, &tm);
    switch (reg) {
    case 0x00: return bcd(tm.tm_sec);
    case 0x02: return bcd(tm.tm_min);
    case 0x04: return bcd(tm.tm_hour);
    case 0x06: return bcd(tm.tm_wday + 1);
    case 0x07: return bcd(tm.tm_mday);
    case 0x08: return bcd(tm.tm_mon + 1);
    case 0x09: return bcd(tm.tm_year % 100);
    case 0x32: return bcd(19 + tm.tm_year / 100);
    case 0x0A: return 0x26;  /* 32.768 kHz, 1024 Hz; no update in progress */
    case 0x0B: return 0x02;  /* 24 hour, BCD */
    case 0x0D: return 0x80;  /* battery good */
    default:   return 0;
    }
}

static void cmos_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len,
                    bool is_write)
{
    struct platform *p = opaque;
    if (offset == 0) {
        if (is_write)
            p->cmos_index = data[0] & 0x7f; /* bit 7: NMI mask */
        else
            memset(data, 0xff, len);
        return;
    }
    if (!is_write) {
        memset(data, 0, len);
        data[0] = platform_cmos_read(p->cmos_index, (int64_t)time(NULL));
    }
}

static void post_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
    if (!is_write)
        memset(data, 0xff, len);
}

int platform_init(struct vm *vm)
{
    struct platform *p = &platform_state;
    p->vm = vm;
    int r;
    /* 0x61 (PIT/speaker) is served in the kernel before dispatch. */
    if ((r = vm_register_pio(vm, 0x60, 5, i8042_io, p)) < 0 ||
        (r = vm_register_pio(vm, PLATFORM_PM1A_CNT, 2, pm_io, p)) < 0 ||
        (r = vm_register_pio(vm, PLATFORM_PM1A_EVT, 4, pm_evt_io, p)) < 0 ||
        (r = vm_register_pio(vm, 0x70, 2, cmos_io, p)) < 0 ||
        (r = vm_register_pio(vm, 0x80, 1, post_io, p)) < 0)
        return r;
    return 0;
}
