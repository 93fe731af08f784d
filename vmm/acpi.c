/* ACPI tables (RSDP, XSDT, FADT, FACS, MADT, DSDT) and the few AML bytes
 * the DSDT needs. See acpi.h. */
#include "acpi.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mptable.h"
#include "pci.h"
#include "platform.h"
#include "vm.h"

#define OEM_ID "VSWTCH"
#define OEM_TABLE_ID "VMM     "
#define HDR_LEN 36

/* ---------------------------------------------------------------- bytes */

struct buf {
    uint8_t *p;
    size_t n, cap;
    bool oom;
};

static void put(struct buf *b, const void *data, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}

static void put8(struct buf *b, uint8_t v)
{
    put(b, &v, 1);
}

static void putle(struct buf *b, uint64_t v, unsigned len) /* len <= 8 */
{
    uint8_t t[8];
    for (unsigned i = 0; i < len; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    put(b, t, len);
}

static void wrle(uint8_t *p, uint64_t v, unsigned len)
{
    for (unsigned i = 0; i < len; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

uint8_t acpi_sum(const uint8_t *p, size_t n)
{
    uint8_t s = 0;
    for (size_t i = 0; i < n; i++)
        s = (uint8_t)(s + p[i]);
    return s;
}

/* ---------------------------------------------------------------- AML */

/* PkgLength (ACPI 6.4 §20.2.4) of a body of n bytes: the length counts itself. */
static void aml_pkglen(struct buf *b, size_t n)
{
    if (n + 1 < 0x40) {
        put8(b, (uint8_t)(n + 1));
        return;
    }
    unsigned extra = n + 2 < (1u << 12) ? 1 : n + 3 < (1u << 20) ? 2 : 3;
    size_t total = n + 1 + extra;
    put8(b, (uint8_t)((extra << 6) | (total & 0xf)));
    for (unsigned i = 0; i < extra; i++)
        put8(b, (uint8_t)(total >> (4 + 8 * i)));
}

/* op [ext] PkgLength body */
static void aml_wrap(struct buf *b, const uint8_t *op, size_t oplen, struct buf *body)
{
    put(b, op, oplen);
    aml_pkglen(b, body->n);
    put(b, body->p, body->n);
    b->oom |= body->oom;
    free(body->p);
    *body = (struct buf){0};
}

static void aml_int(struct buf *b, uint64_t v)
{
    if (v == 0)
        put8(b, 0x00); /* ZeroOp */
    else if (v == 1)
        put8(b, 0x01); /* OneOp */
    else if (v <= 0xff)
        put8(b, 0x0a), putle(b, v, 1);
    else if (v <= 0xffff)
        put8(b, 0x0b), putle(b, v, 2);
    else if (v <= 0xffffffffu)
        put8(b, 0x0c), putle(b, v, 4);
    else
        put8(b, 0x0e), putle(b, v, 8);
}

/* Name(seg, ...) where the value follows. seg is a 4-char NameSeg, optionally
 * preceded by '\' (root). */
static void aml_name(struct buf *b, const char *seg)
{
    put8(b, 0x08); /* NameOp */
    put(b, seg, strlen(seg));
}

/* EisaId("PNP0A03") as an integer. */
static uint32_t eisa_id(const char *id)
{
    uint32_t v = (uint32_t)((id[0] - 0x40) << 10 | (id[1] - 0x40) << 5 | (id[2] - 0x40));
    uint32_t prod = (uint32_t)strtoul(id + 3, NULL, 16);
    /* bytes: vendor big-endian, then product big-endian */
    return (v >> 8 & 0xff) | (v & 0xff) << 8 | (prod >> 8 & 0xff) << 16 | (prod & 0xff) << 24;
}

/* Word/DWord address space descriptors (§6.4.3.5): a producer with fixed
 * minimum and maximum. */
static void res_word(struct buf *b, uint8_t type, uint8_t tflags, uint16_t min, uint16_t max)
{
    put8(b, 0x88);
    putle(b, 13, 2);
    put8(b, type);
    put8(b, 0x0c); /* MinFixed, MaxFixed, producer, positive decode */
    put8(b, tflags);
    putle(b, 0, 2); /* granularity */
    putle(b, min, 2);
    putle(b, max, 2);
    putle(b, 0, 2); /* translation */
    putle(b, (uint32_t)max - min + 1, 2);
}

static void res_dword_mem(struct buf *b, uint32_t min, uint32_t max)
{
    put8(b, 0x87);
    putle(b, 23, 2);
    put8(b, 0);    /* memory */
    put8(b, 0x0c);
    put8(b, 0x01); /* read-write, non-cacheable */
    putle(b, 0, 4);
    putle(b, min, 4);
    putle(b, max, 4);
    putle(b, 0, 4);
    putle(b, max - min + 1, 4);
}

static void pci0_crs(struct buf *b, const struct acpi_config *cfg)
{
    struct buf t = {0};
    res_word(&t, 2, 0, 0, 0);                  /* bus 0 */
    put8(&t, 0x47);                            /* IO: the conf1 ports, consumed */
    put8(&t, 1);
    putle(&t, PCI_CONFIG_ADDR_PORT, 2);
    putle(&t, PCI_CONFIG_ADDR_PORT, 2);
    put8(&t, 1);
    put8(&t, 8);
    res_word(&t, 1, 3, 0x0000, 0x0cf7);        /* I/O, entire range */
    res_word(&t, 1, 3, 0x0d00, 0xffff);
    res_dword_mem(&t, (uint32_t)cfg->mmio_start, (uint32_t)(cfg->mmio_end - 1));
    put8(&t, 0x79);                            /* end tag, no checksum */
    put8(&t, 0);

    struct buf body = {0};
    aml_int(&body, t.n);                       /* BufferSize */
    put(&body, t.p, t.n);
    free(t.p);
    aml_name(b, "_CRS");
    static const uint8_t buffer_op = 0x11;
    aml_wrap(b, &buffer_op, 1, &body);
}

static void pci0_prt(struct buf *b)
{
    static const uint8_t package_op = 0x12;
    struct buf list = {0};
    put8(&list, PCI_MAX_SLOTS - 1); /* NumElements */
    for (unsigned d = 1; d < PCI_MAX_SLOTS; d++) {
        struct buf e = {0};
        put8(&e, 4);
        aml_int(&e, (uint64_t)d << 16 | 0xffff); /* any function of device d */
        aml_int(&e, 0);                          /* INTA# */
        aml_int(&e, 0);                          /* Source: a GSI, not a link device */
        aml_int(&e, mptable_pci_gsi(d));
        aml_wrap(&list, &package_op, 1, &e);
    }
    aml_name(b, "_PRT");
    aml_wrap(b, &package_op, 1, &list);
}

static void dsdt_body(struct buf *b, const struct acpi_config *cfg)
{
    static const uint8_t package_op = 0x12, scope_op = 0x10, device_op[2] = {0x5b, 0x82};

    struct buf s5 = {0};
    put8(&s5, 4);
    aml_int(&s5, ACPI_SLP_TYP_S5);
    aml_int(&s5, ACPI_SLP_TYP_S5);
    aml_int(&s5, 0);
    aml_int(&s5, 0);
    aml_name(b, "\\_S5_");
    aml_wrap(b, &package_op, 1, &s5);

    struct buf dev = {0};
    put(&dev, "PCI0", 4);
    aml_name(&dev, "_HID");
    aml_int(&dev, eisa_id("PNP0A03"));
    aml_name(&dev, "_ADR");
    aml_int(&dev, 0);
    aml_name(&dev, "_UID");
    aml_int(&dev, 0);
    aml_name(&dev, "_SEG");
    aml_int(&dev, 0);
    aml_name(&dev, "_BBN");
    aml_int(&dev, 0);
    pci0_crs(&dev, cfg);
    pci0_prt(&dev);

    struct buf sb = {0};
    put(&sb, "\\_SB_", 5);
    aml_wrap(&sb, device_op, 2, &dev);
    aml_wrap(b, &scope_op, 1, &sb);
}

/* ---------------------------------------------------------------- tables */

static void header(struct buf *b, const char *sig, uint8_t rev)
{
    put(b, sig, 4);
    putle(b, 0, 4); /* length, patched */
    put8(b, rev);
    put8(b, 0);     /* checksum, patched */
    put(b, OEM_ID, 6);
    put(b, OEM_TABLE_ID, 8);
    putle(b, 1, 4);
    put(b, "VSVM", 4);
    putle(b, 1, 4);
}

/* Length and checksum of the table that starts at b->p + at. */
static void finish(struct buf *b, size_t at)
{
    if (b->oom)
        return;
    uint8_t *t = b->p + at;
    size_t len = b->n - at;
    wrle(t + 4, len, 4);
    t[9] = 0;
    t[9] = (uint8_t)-acpi_sum(t, len);
}

static void align(struct buf *b, size_t a)
{
    while (b->n % a)
        put8(b, 0);
}

static void gas_io(struct buf *b, unsigned bits, uint64_t port)
{
    put8(b, 1);            /* system I/O */
    put8(b, (uint8_t)bits);
    put8(b, 0);
    put8(b, bits <= 8 ? 1 : bits <= 16 ? 2 : 3); /* access size */
    putle(b, port, 8);
}

static void gas_none(struct buf *b)
{
    putle(b, 0, 8);
    putle(b, 0, 4);
}

static void fadt(struct buf *b, uint64_t facs, uint64_t dsdt)
{
    size_t at = b->n;
    header(b, "FACP", 6);
    putle(b, facs, 4);                 /* FIRMWARE_CTRL */
    putle(b, dsdt, 4);                 /* DSDT */
    put8(b, 0);                        /* reserved */
    put8(b, 0);                        /* preferred PM profile: unspecified */
    putle(b, ACPI_SCI_IRQ, 2);         /* SCI_INT */
    putle(b, 0, 4);                    /* SMI_CMD: none, always in ACPI mode */
    put8(b, 0);                        /* ACPI_ENABLE */
    put8(b, 0);                        /* ACPI_DISABLE */
    put8(b, 0);                        /* S4BIOS_REQ */
    put8(b, 0);                        /* PSTATE_CNT */
    putle(b, ACPI_PM1A_EVT_PORT, 4);   /* PM1a_EVT_BLK */
    putle(b, 0, 4);                    /* PM1b_EVT_BLK */
    putle(b, PLATFORM_PM1A_CNT, 4);    /* PM1a_CNT_BLK */
    putle(b, 0, 4);                    /* PM1b_CNT_BLK */
    putle(b, 0, 4);                    /* PM2_CNT_BLK */
    putle(b, 0, 4);                    /* PM_TMR_BLK: none */
    putle(b, 0, 4);                    /* GPE0_BLK */
    putle(b, 0, 4);                    /* GPE1_BLK */
    put8(b, 4);                        /* PM1_EVT_LEN */
    put8(b, 2);                        /* PM1_CNT_LEN */
    put8(b, 0);                        /* PM2_CNT_LEN */
    put8(b, 0);                        /* PM_TMR_LEN */
    put8(b, 0);                        /* GPE0_BLK_LEN */
    put8(b, 0);                        /* GPE1_BLK_LEN */
    put8(b, 0);                        /* GPE1_BASE */
    put8(b, 0);                        /* CST_CNT */
    putle(b, 0xfff, 2);                /* P_LVL2_LAT: C2 not supported */
    putle(b, 0xfff, 2);                /* P_LVL3_LAT: C3 not supported */
    putle(b, 0, 2);                    /* FLUSH_SIZE */
    putle(b, 0, 2);                    /* FLUSH_STRIDE */
    put8(b, 0);                        /* DUTY_OFFSET */
    put8(b, 0);                        /* DUTY_WIDTH */
    put8(b, 0);                        /* DAY_ALRM */
    put8(b, 0);                        /* MON_ALRM */
    put8(b, 0x32);                     /* CENTURY: the CMOS register */
    putle(b, 1u << 2, 2);              /* IAPC_BOOT_ARCH: no VGA; no 8042; MSI ok */
    put8(b, 0);                        /* reserved */
    /* WBINVD, PROC_C1, PWR_BUTTON and SLP_BUTTON as control methods (none),
     * RESET_REG_SUP */
    putle(b, (1u << 0) | (1u << 2) | (1u << 4) | (1u << 5) | (1u << 10), 4);
    gas_io(b, 8, ACPI_RESET_PORT);     /* RESET_REG */
    put8(b, ACPI_RESET_VALUE);         /* RESET_VALUE */
    putle(b, 0, 2);                    /* ARM_BOOT_ARCH */
    put8(b, 5);                        /* FADT minor version */
    putle(b, facs, 8);                 /* X_FIRMWARE_CTRL */
    putle(b, dsdt, 8);                 /* X_DSDT */
    gas_io(b, 32, ACPI_PM1A_EVT_PORT); /* X_PM1a_EVT_BLK */
    gas_none(b);                       /* X_PM1b_EVT_BLK */
    gas_io(b, 16, PLATFORM_PM1A_CNT);  /* X_PM1a_CNT_BLK */
    gas_none(b);                       /* X_PM1b_CNT_BLK */
    gas_none(b);                       /* X_PM2_CNT_BLK */
    gas_none(b);                       /* X_PM_TMR_BLK */
    gas_none(b);                       /* X_GPE0_BLK */
    gas_none(b);                       /* X_GPE1_BLK */
    gas_none(b);                       /* SLEEP_CONTROL_REG */
    gas_none(b);                       /* SLEEP_STATUS_REG */
    put(b, "VSWITCH ", 8);             /* hypervisor vendor identity */
    finish(b, at);
}

static void facs(struct buf *b)
{
    put(b, "FACS", 4);
    putle(b, 64, 4);
    putle(b, 0, 4); /* hardware signature */
    putle(b, 0, 4); /* firmware waking vector */
    putle(b, 0, 4); /* global lock */
    putle(b, 0, 4); /* flags */
    putle(b, 0, 8); /* X waking vector */
    put8(b, 2);     /* version */
    putle(b, 0, 3);
    putle(b, 0, 4); /* OSPM flags */
    static const uint8_t reserved[24];
    put(b, reserved, sizeof(reserved));
}

static void madt(struct buf *b, unsigned ncpus)
{
    size_t at = b->n;
    header(b, "APIC", 5);
    putle(b, VM_LAPIC_ADDR, 4);
    putle(b, 1, 4); /* PCAT_COMPAT: the 8259s are there */
    for (unsigned i = 0; i < ncpus; i++) {
        put8(b, 0);    /* processor local APIC */
        put8(b, 8);
        put8(b, (uint8_t)i); /* ACPI processor UID */
        put8(b, (uint8_t)i); /* APIC id */
        putle(b, 1, 4);      /* enabled */
    }
    put8(b, 1);        /* IOAPIC */
    put8(b, 12);
    put8(b, (uint8_t)ncpus);
    put8(b, 0);
    putle(b, VM_IOAPIC_ADDR, 4);
    putle(b, 0, 4);    /* GSI base */
    put8(b, 2);        /* interrupt source override: ISA IRQ 0 -> GSI 2 */
    put8(b, 10);
    put8(b, 0);
    put8(b, 0);
    putle(b, 2, 4);
    putle(b, 0, 2);    /* conforming */
    put8(b, 2);        /* SCI: level, active low */
    put8(b, 10);
    put8(b, 0);
    put8(b, ACPI_SCI_IRQ);
    putle(b, ACPI_SCI_IRQ, 4);
    putle(b, 0xf, 2);
    put8(b, 4);        /* LAPIC NMI on LINT1 of every processor */
    put8(b, 6);
    put8(b, 0xff);
    putle(b, 0, 2);
    put8(b, 1);
    finish(b, at);
}

int acpi_write_tables(uint8_t *mem, size_t size, uint64_t addr, size_t max,
                      const struct acpi_config *cfg)
{
    if (cfg->ncpus == 0 || cfg->ncpus > 254 || addr > size || max > size - addr)
        return -1;
    struct buf b = {0};
    /* RSDP (36 bytes), XSDT (36 + 2 * 8), then 64-byte aligned FACS, FADT,
     * MADT, DSDT. Offsets first: the XSDT and FADT point forward. */
    size_t rsdp = 0, xsdt = 48, facs_off = 128, fadt_off = facs_off + 64;

    put(&b, "RSD PTR ", 8);
    put8(&b, 0);             /* checksum of the first 20 bytes, patched */
    put(&b, OEM_ID, 6);
    put8(&b, 2);             /* revision: ACPI 2.0+, XSDT */
    putle(&b, 0, 4);         /* RSDT: none */
    putle(&b, 36, 4);
    putle(&b, addr + xsdt, 8);
    put8(&b, 0);             /* extended checksum, patched */
    putle(&b, 0, 3);
    align(&b, 16);
    while (b.n < xsdt)
        put8(&b, 0);

    header(&b, "XSDT", 1);
    size_t xsdt_entries = b.n;
    putle(&b, 0, 8); /* FADT */
    putle(&b, 0, 8); /* MADT */
    while (b.n < facs_off)
        put8(&b, 0);
    facs(&b);

    /* the DSDT's address is known once the MADT is written: build FADT with
     * a placeholder, then patch both pointers */
    fadt(&b, addr + facs_off, 0);
    align(&b, 8);
    size_t madt_off = b.n;
    madt(&b, cfg->ncpus);
    align(&b, 8);
    size_t dsdt_off = b.n;
    header(&b, "DSDT", 2);
    dsdt_body(&b, cfg);
    finish(&b, dsdt_off);
    if (b.oom || b.n > max) {
        free(b.p);
        return -1;
    }
    /* pointers */
    wrle(b.p + fadt_off + 40, addr + dsdt_off, 4);
    wrle(b.p + fadt_off + 140, addr + dsdt_off, 8);
    b.p[fadt_off + 9] = 0;
    b.p[fadt_off + 9] = (uint8_t)-acpi_sum(b.p + fadt_off, 276);
    wrle(b.p + xsdt_entries, addr + fadt_off, 8);
    wrle(b.p + xsdt_entries + 8, addr + madt_off, 8);
    wrle(b.p + xsdt + 4, HDR_LEN + 16, 4);
    b.p[xsdt + 9] = 0;
    b.p[xsdt + 9] = (uint8_t)-acpi_sum(b.p + xsdt, HDR_LEN + 16);
    b.p[rsdp + 8] = (uint8_t)-acpi_sum(b.p + rsdp, 20);
    b.p[rsdp + 32] = (uint8_t)-acpi_sum(b.p + rsdp, 36);

    memset(mem + addr, 0, max);
    memcpy(mem + addr, b.p, b.n);
    int n = (int)b.n;
    free(b.p);
    return n;
}
