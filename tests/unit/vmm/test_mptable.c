/* mptable.c: floating pointer and configuration table layout and
 * checksums; platform.c's CMOS clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mptable.h"
#include "platform.h"
#include "vm.h"

static uint8_t sum(const uint8_t *p, size_t n)
{
    uint8_t s = 0;
    while (n--)
        s = (uint8_t)(s + *p++);
    return s;
}

static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

static void test_layout(void **state)
{
    size_t size = 1 << 20;
    uint8_t *mem = calloc(1, size);
    int n = mptable_write(mem, size, 0xF0000, 2);
    assert_true(n > 0);
    const uint8_t *fp = mem + 0xF0000;
    assert_memory_equal(fp, "_MP_", 4);
    assert_int_equal(fp[8], 1);
    assert_int_equal(fp[9], 4);
    assert_int_equal(sum(fp, 16), 0);
    assert_int_equal(fp[11], 0); /* a configuration table follows, no default config */
    const uint8_t *ct = mem + get32(fp + 4);
    assert_memory_equal(ct, "PCMP", 4);
    uint16_t len = get16(ct + 4), count = get16(ct + 34);
    assert_int_equal(16 + len, n);
    assert_int_equal(sum(ct, len), 0);
    assert_int_equal(get32(ct + 36), VM_LAPIC_ADDR);

    unsigned cpus = 0, bsp = 0, ioapics = 0, isa_irqs = 0, pci_irqs = 0, lints = 0;
    int pit_pin = -1;
    const uint8_t *e = ct + 44;
    for (unsigned i = 0; i < count; i++) {
        switch (e[0]) {
        case 0:
            assert_int_equal(e[1], cpus);
            if (e[3] & 2)
                bsp++;
            assert_true(e[3] & 1);
            cpus++;
            e += 20;
            continue;
        case 2:
            ioapics++;
            assert_int_equal(e[1], 2); /* id after the LAPIC ids */
            assert_int_equal(get32(e + 4), VM_IOAPIC_ADDR);
            break;
        case 3:
            if (e[4] == 1) {
                isa_irqs++;
                if (e[5] == 0)
                    pit_pin = e[7];
                else
                    assert_int_equal(e[7], e[5]);
            } else {
                pci_irqs++;
                assert_int_equal(e[7], mptable_pci_gsi(e[5] >> 2));
                assert_int_equal(get16(e + 2), 0x0f); /* level, active low */
            }
            break;
        case 4:
            lints++;
            break;
        }
        e += 8;
    }
    assert_int_equal(e - ct, len);
    assert_int_equal(cpus, 2);
    assert_int_equal(bsp, 1);
    assert_int_equal(ioapics, 1);
    assert_int_equal(isa_irqs, 15);
    assert_int_equal(pit_pin, 2);
    assert_int_equal(pci_irqs, 31);
    assert_int_equal(lints, 2);

    assert_int_equal(mptable_write(mem, 0xF0000 + 100, 0xF0000, 2), -1);
    assert_int_equal(mptable_write(mem, size, 0xF0000, 0), -1);
    free(mem);
}

static void test_cmos(void **state)
{
    int64_t t = 1700000000; /* 2023-11-14 22:13:20 UTC, a Tuesday */
    assert_int_equal(platform_cmos_read(0x00, t), 0x20);
    assert_int_equal(platform_cmos_read(0x02, t), 0x13);
    assert_int_equal(platform_cmos_read(0x04, t), 0x22);
    assert_int_equal(platform_cmos_read(0x07, t), 0x14);
    assert_int_equal(platform_cmos_read(0x08, t), 0x11);
    assert_int_equal(platform_cmos_read(0x09, t), 0x23);
    assert_int_equal(platform_cmos_read(0x32, t), 0x20);
    assert_int_equal(platform_cmos_read(0x0A, t) & 0x80, 0); /* no update in progress */
    assert_int_equal(platform_cmos_read(0x0B, t), 0x02);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_cmos),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
