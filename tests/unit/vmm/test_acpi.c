/* acpi.c: the RSDP -> XSDT -> FADT/MADT, FADT -> FACS/DSDT chain, checksums,
 * the FADT fields a Linux guest acts on (no 8042, PM1 blocks, reset register,
 * not hardware-reduced), the MADT's CPUs/IOAPIC/overrides, and the DSDT's
 * PCI host bridge whose _PRT routes INTA# exactly as the MP table does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "acpi.h"
#include "mptable.h"
#include "pci.h"
#include "platform.h"
#include "vm.h"

#define MEM (1u << 20)

static uint64_t get(const uint8_t *p, unsigned len)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < len; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint8_t *mem;

static int setup(void **state)
{
    mem = calloc(1, MEM);
    return mem ? 0 : -1;
}

static int teardown(void **state)
{
    free(mem);
    return 0;
}

static const uint8_t *write_tables(unsigned ncpus)
{
    struct acpi_config cfg = {.ncpus = ncpus, .mmio_start = PCI_MMIO_HOLE_START,
                              .mmio_end = PCI_MMIO_HOLE_END};
    int n = acpi_write_tables(mem, MEM, ACPI_TABLES_ADDR, ACPI_TABLES_MAX, &cfg);
    assert_true(n > 0 && (uint64_t)n <= ACPI_TABLES_MAX);
    return mem + ACPI_TABLES_ADDR;
}

/* The table at gpa, checked: signature, inside the area, checksum. */
static const uint8_t *table(uint64_t gpa, const char *sig)
{
    assert_true(gpa >= ACPI_TABLES_ADDR && gpa < ACPI_TABLES_ADDR + ACPI_TABLES_MAX);
    const uint8_t *t = mem + gpa;
    assert_memory_equal(t, sig, 4);
    uint32_t len = (uint32_t)get(t + 4, 4);
    assert_true(len >= 36 && gpa + len <= ACPI_TABLES_ADDR + ACPI_TABLES_MAX);
    assert_int_equal(acpi_sum(t, len), 0);
    return t;
}

static const uint8_t *xsdt_find(const uint8_t *xsdt, const char *sig)
{
    uint32_t len = (uint32_t)get(xsdt + 4, 4);
    for (uint32_t o = 36; o + 8 <= len; o += 8) {
        const uint8_t *t = mem + get(xsdt + o, 8);
        if (!memcmp(t, sig, 4))
            return table(get(xsdt + o, 8), sig);
    }
    fail_msg("no %s in the XSDT", sig);
    return NULL;
}

static void test_rsdp_xsdt(void **state)
{
    const uint8_t *rsdp = write_tables(2);
    /* where Linux scans for it (0xE0000-0xFFFFF, 16-byte aligned) */
    assert_memory_equal(rsdp, "RSD PTR ", 8);
    assert_int_equal(ACPI_TABLES_ADDR % 16, 0);
    assert_int_equal(acpi_sum(rsdp, 20), 0);
    assert_int_equal(rsdp[15], 2);
    assert_int_equal(get(rsdp + 20, 4), 36);
    assert_int_equal(acpi_sum(rsdp, 36), 0);
    const uint8_t *xsdt = table(get(rsdp + 24, 8), "XSDT");
    assert_int_equal(get(xsdt + 4, 4), 36 + 2 * 8);
    xsdt_find(xsdt, "FACP");
    xsdt_find(xsdt, "APIC");
    /* below the MP table */
    assert_true(ACPI_TABLES_ADDR + ACPI_TABLES_MAX <= 0xF0000);
}

static void test_fadt(void **state)
{
    const uint8_t *rsdp = write_tables(1);
    const uint8_t *f = xsdt_find(table(get(rsdp + 24, 8), "XSDT"), "FACP");
    assert_int_equal(get(f + 4, 4), 276);
    assert_int_equal(f[8], 6);
    uint32_t flags = (uint32_t)get(f + 112, 4);
    assert_int_equal(flags & (1u << 20), 0);    /* not hardware-reduced */
    assert_int_not_equal(flags & (1u << 10), 0); /* reset register supported */
    uint16_t boot_arch = (uint16_t)get(f + 109, 2);
    assert_int_equal(boot_arch & 0x2, 0);       /* no 8042: Linux does not probe it */
    assert_int_equal(boot_arch & 0x8, 0);       /* MSI allowed */
    assert_int_equal(get(f + 46, 2), ACPI_SCI_IRQ);
    assert_int_equal(get(f + 48, 4), 0);        /* no SMI command: ACPI mode already */
    assert_int_equal(get(f + 56, 4), PLATFORM_PM1A_EVT);
    assert_int_equal(f[88], 4);
    assert_int_equal(get(f + 64, 4), PLATFORM_PM1A_CNT);
    assert_int_equal(f[89], 2);
    assert_int_equal(get(f + 76, 4), 0);        /* no PM timer */
    /* RESET_REG: system I/O, 8 bits, port 0x64, value 0xFE */
    assert_int_equal(f[116], 1);
    assert_int_equal(f[117], 8);
    assert_int_equal(get(f + 120, 8), ACPI_RESET_PORT);
    assert_int_equal(f[128], ACPI_RESET_VALUE);
    /* X_PM1a blocks agree */
    assert_int_equal(get(f + 148 + 4, 8), PLATFORM_PM1A_EVT);
    assert_int_equal(get(f + 172 + 4, 8), PLATFORM_PM1A_CNT);
    /* FACS and DSDT, 32- and 64-bit pointers alike */
    assert_int_equal(get(f + 36, 4), get(f + 132, 8));
    assert_int_equal(get(f + 40, 4), get(f + 140, 8));
    const uint8_t *facs = mem + get(f + 36, 4);
    assert_memory_equal(facs, "FACS", 4);
    assert_int_equal(get(facs + 4, 4), 64);
    assert_int_equal((facs - mem) % 64, 0);
    table(get(f + 140, 8), "DSDT");
}

static void test_madt(void **state)
{
    const unsigned ncpus = 4;
    const uint8_t *rsdp = write_tables(ncpus);
    const uint8_t *m = xsdt_find(table(get(rsdp + 24, 8), "XSDT"), "APIC");
    assert_int_equal(get(m + 36, 4), VM_LAPIC_ADDR);
    assert_int_equal(get(m + 40, 4) & 1, 1);
    uint32_t len = (uint32_t)get(m + 4, 4);
    unsigned lapics = 0, ioapics = 0, nmis = 0;
    bool irq0 = false;
    for (uint32_t o = 44; o < len; o += m[o + 1]) {
        const uint8_t *e = m + o;
        assert_true(e[1] >= 2 && o + e[1] <= len);
        switch (e[0]) {
        case 0:
            assert_int_equal(e[3], lapics); /* APIC ids 0..n-1, as cpuid.c sets */
            assert_int_equal(get(e + 4, 4) & 1, 1);
            lapics++;
            break;
        case 1:
            assert_int_equal(e[2], ncpus);
            assert_int_equal(get(e + 4, 4), VM_IOAPIC_ADDR);
            assert_int_equal(get(e + 8, 4), 0);
            ioapics++;
            break;
        case 2:
            if (e[3] == 0) {
                assert_int_equal(get(e + 4, 4), 2);
                irq0 = true;
            }
            break;
        case 4:
            assert_int_equal(e[5], 1);
            nmis++;
            break;
        }
    }
    assert_int_equal(lapics, ncpus);
    assert_int_equal(ioapics, 1);
    assert_int_equal(nmis, 1);
    assert_true(irq0);
}

static const uint8_t *find(const uint8_t *h, size_t hl, const void *n, size_t nl)
{
    return memmem(h, hl, n, nl);
}

static void test_dsdt_pci(void **state)
{
    const uint8_t *rsdp = write_tables(2);
    const uint8_t *f = xsdt_find(table(get(rsdp + 24, 8), "XSDT"), "FACP");
    const uint8_t *d = table(get(f + 140, 8), "DSDT");
    size_t len = (size_t)get(d + 4, 4);
    assert_int_equal(d[8], 2); /* 64-bit integers */
    /* \_SB.PCI0 with _HID EisaId("PNP0A03") */
    assert_non_null(find(d, len, "\\_SB_", 5));
    assert_non_null(find(d, len, "PCI0", 4));
    static const uint8_t hid[] = {0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03};
    assert_non_null(find(d, len, hid, sizeof(hid)));
    /* _CRS covers the MMIO hole where pci.c puts BARs */
    uint8_t mmio[12];
    memcpy(mmio, (uint8_t[]){0x87, 23, 0, 0, 0x0c, 0x01, 0, 0, 0, 0}, 10);
    const uint8_t *r = find(d, len, mmio, 10);
    assert_non_null(r);
    assert_int_equal(get(r + 10, 4), PCI_MMIO_HOLE_START);
    assert_int_equal(get(r + 14, 4), PCI_MMIO_HOLE_END - 1);
    /* _PRT: Package {0xDDDDFFFF, 0 (INTA#), 0, GSI} for every slot, with the
     * GSI the MP table gives INTA# of that slot */
    assert_non_null(find(d, len, "_PRT", 4));
    for (unsigned dev = 1; dev < 32; dev++) {
        uint8_t e[] = {0x12, 11, 4, 0x0c, 0xff, 0xff, (uint8_t)dev, 0, 0, 0, 0x0a,
                       (uint8_t)mptable_pci_gsi(dev)};
        assert_non_null(find(d, len, e, sizeof(e)));
    }
    /* \_S5 = Package {5, 5, 0, 0}: Linux powers off through PM1a_CNT */
    static const uint8_t s5[] = {0x08, '\\', '_', 'S', '5', '_', 0x12, 8, 4,
                                 0x0a, 5, 0x0a, 5, 0, 0};
    assert_non_null(find(d, len, s5, sizeof(s5)));
}

static void test_too_small(void **state)
{
    struct acpi_config cfg = {.ncpus = 2, .mmio_start = PCI_MMIO_HOLE_START,
                              .mmio_end = PCI_MMIO_HOLE_END};
    assert_int_equal(acpi_write_tables(mem, MEM, ACPI_TABLES_ADDR, 64, &cfg), -1);
    assert_int_equal(acpi_write_tables(mem, 0xE0010, ACPI_TABLES_ADDR, ACPI_TABLES_MAX,
                                       &cfg), -1);
    cfg.ncpus = 0;
    assert_int_equal(acpi_write_tables(mem, MEM, ACPI_TABLES_ADDR, ACPI_TABLES_MAX, &cfg),
                     -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rsdp_xsdt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fadt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_madt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dsdt_pci, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_small, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
