/* MP table: floating pointer, then the configuration table right after it. */
#include "mptable.h"

#include <string.h>

#include "vm.h"

#define MP_PROCESSOR 0
#define MP_BUS 1
#define MP_IOAPIC 2
#define MP_INTSRC 3
#define MP_LINTSRC 4
#define MP_INT_INT 0
#define MP_INT_NMI 1
#define MP_INT_EXTINT 3
#define MP_BUS_PCI 0
#define MP_BUS_ISA 1
#define MP_APIC_VERSION 0x14
#define MP_IOAPIC_VERSION 0x11

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint8_t checksum(const uint8_t *p, size_t n)
{
    uint8_t s = 0;
    for (size_t i = 0; i < n; i++)
        s = (uint8_t)(s + p[i]);
    return (uint8_t)-s;
}

static size_t put_intsrc(uint8_t *p, uint8_t type, uint16_t flags, uint8_t bus, uint8_t irq,
                         uint8_t apic, uint8_t pin, uint8_t kind)
{
    p[0] = kind;
    p[1] = type;
    put16(p + 2, flags);
    p[4] = bus;
    p[5] = irq;
    p[6] = apic;
    p[7] = pin;
    return 8;
}

int mptable_write(uint8_t *mem, size_t size, uint64_t addr, unsigned ncpus)
{
    size_t need = 16 + 44 + ncpus * 20 + 2 * 8 + 8 + (15 + 31) * 8 + 2 * 8;
    if (addr > size || need > size - addr || ncpus == 0 || ncpus > 254)
        return -1;
    uint8_t *fp = mem + addr, *ct = fp + 16, *p = ct + 44;
    memset(fp, 0, need);
    uint16_t count = 0;
    uint8_t ioapic_id = (uint8_t)ncpus;

    for (unsigned i = 0; i < ncpus; i++, count++) {
        p[0] = MP_PROCESSOR;
        p[1] = (uint8_t)i;                  /* LAPIC id */
        p[2] = MP_APIC_VERSION;
        p[3] = 0x1 | (i == 0 ? 0x2 : 0);   /* enabled, BSP */
        put32(p + 4, 0x600);               /* family 6 signature */
        put32(p + 8, 0x201);               /* FPU, APIC */
        p += 20;
    }
    p[0] = MP_BUS;
    p[1] = 0;
    memcpy(p + 2, "PCI   ", 6);
    p += 8, count++;
    p[0] = MP_BUS;
    p[1] = 1;
    memcpy(p + 2, "ISA   ", 6);
    p += 8, count++;
    p[0] = MP_IOAPIC;
    p[1] = ioapic_id;
    p[2] = MP_IOAPIC_VERSION;
    p[3] = 1;
    put32(p + 4, (uint32_t)VM_IOAPIC_ADDR);
    p += 8, count++;
    for (unsigned irq = 0; irq < 16; irq++) {
        if (irq == 2)
            continue;
        p += put_intsrc(p, MP_INT_INT, 0, 1, (uint8_t)irq, ioapic_id,
                        (uint8_t)(irq == 0 ? 2 : irq), MP_INTSRC);
        count++;
    }
    /* PCI: source irq = device << 2 | pin (0 = INTA#); level, active low. */
    for (unsigned dev = 1; dev < 32; dev++) {
        p += put_intsrc(p, MP_INT_INT, 0x0f, 0, (uint8_t)(dev << 2), ioapic_id,
                        (uint8_t)mptable_pci_gsi(dev), MP_INTSRC);
        count++;
    }
    p += put_intsrc(p, MP_INT_EXTINT, 0, 1, 0, 0xff, 0, MP_LINTSRC);
    p += put_intsrc(p, MP_INT_NMI, 0, 1, 0, 0xff, 1, MP_LINTSRC);
    count += 2;

    size_t ct_len = (size_t)(p - ct);
    memcpy(ct, "PCMP", 4);
    put16(ct + 4, (uint16_t)ct_len);
    ct[6] = 4; /* spec 1.4 */
    memcpy(ct + 8, "VSWITCH ", 8);
    memcpy(ct + 16, "VMM         ", 12);
    put16(ct + 34, count);
    put32(ct + 36, (uint32_t)VM_LAPIC_ADDR);
    ct[7] = checksum(ct, ct_len);

    memcpy(fp, "_MP_", 4);
    put32(fp + 4, (uint32_t)(addr + 16));
    fp[8] = 1; /* length in 16-byte units */
    fp[9] = 4;
    fp[10] = checksum(fp, 16);
    return (int)(16 + ct_len);
}
