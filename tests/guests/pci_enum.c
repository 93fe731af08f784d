/* PCI enumeration the way a firmware or an OS does it: configuration
 * mechanism #1 over bus 0, a line per function, and for the virtio-net
 * device its BARs (sized by writing all-ones) and capability list. The e2e
 * test reads the lines; "pci_enum passed" ends a good run. */
#include "guest.h"

static uint32_t cfg_read32(unsigned slot, unsigned reg)
{
    outl(0xCF8, 0x80000000u | slot << 11 | (reg & 0xfc));
    return inl(0xCFC);
}

static uint16_t cfg_read16(unsigned slot, unsigned reg)
{
    outl(0xCF8, 0x80000000u | slot << 11 | (reg & 0xfc));
    return inw((uint16_t)(0xCFC + (reg & 2)));
}

static uint8_t cfg_read8(unsigned slot, unsigned reg)
{
    outl(0xCF8, 0x80000000u | slot << 11 | (reg & 0xfc));
    return inb((uint16_t)(0xCFC + (reg & 3)));
}

static void cfg_write32(unsigned slot, unsigned reg, uint32_t v)
{
    outl(0xCF8, 0x80000000u | slot << 11 | (reg & 0xfc));
    outl(0xCFC, v);
}

static void cfg_write16(unsigned slot, unsigned reg, uint16_t v)
{
    outl(0xCF8, 0x80000000u | slot << 11 | (reg & 0xfc));
    outw((uint16_t)(0xCFC + (reg & 2)), v);
}

static const char *vcap_name(unsigned t)
{
    switch (t) {
    case 1: return "common";
    case 2: return "notify";
    case 3: return "isr";
    case 4: return "device";
    case 5: return "pci-cfg";
    default: return "?";
    }
}

static bool show_virtio(unsigned slot)
{
    bool ok = true;
    unsigned vcaps = 0, msix = 0;

    /* BAR sizing with decode off, as Linux does */
    uint16_t cmd = cfg_read16(slot, 0x04);
    cfg_write16(slot, 0x04, cmd & (uint16_t)~0x3);
    for (unsigned b = 0; b < 6; b++) {
        uint32_t orig = cfg_read32(slot, 0x10 + 4 * b);
        cfg_write32(slot, 0x10 + 4 * b, 0xffffffffu);
        uint32_t sz = cfg_read32(slot, 0x10 + 4 * b);
        cfg_write32(slot, 0x10 + 4 * b, orig);
        if (!sz)
            continue;
        printf("  BAR%u: mem 0x%x size 0x%x\n", b, orig & ~0xfu, ~(sz & ~0xfu) + 1);
    }
    cfg_write16(slot, 0x04, cmd | 0x2);

    if (!(cfg_read16(slot, 0x06) & 0x10)) {
        puts("  no capability list\n");
        return false;
    }
    for (unsigned p = cfg_read8(slot, 0x34), n = 0; p && n < 16;
         p = cfg_read8(slot, p + 1), n++) {
        unsigned id = cfg_read8(slot, p);
        if (id == 0x11) {
            uint16_t ctl = cfg_read16(slot, p + 2);
            uint32_t t = cfg_read32(slot, p + 4), pba = cfg_read32(slot, p + 8);
            printf("  cap 0x%x: MSI-X vectors %u table BAR%u+0x%x PBA BAR%u+0x%x\n", p,
                   (ctl & 0x7ff) + 1, t & 7, t & ~7u, pba & 7, pba & ~7u);
            msix++;
        } else if (id == 0x09) {
            unsigned type = cfg_read8(slot, p + 3), bar = cfg_read8(slot, p + 4);
            uint32_t off = cfg_read32(slot, p + 8), len = cfg_read32(slot, p + 12);
            printf("  cap 0x%x: virtio %s BAR%u+0x%x len 0x%x", p, vcap_name(type), bar,
                   off, len);
            if (type == 2)
                printf(" multiplier %u", cfg_read32(slot, p + 16));
            puts("\n");
            vcaps |= 1u << type;
        } else {
            printf("  cap 0x%x: id 0x%x\n", p, id);
        }
    }
    if (msix != 1 || (vcaps & 0x1e) != 0x1e) {
        puts("  virtio capabilities incomplete\n");
        ok = false;
    }
    return ok;
}

int guest_main(void)
{
    unsigned found = 0, nets = 0;
    bool ok = true;

    for (unsigned slot = 0; slot < 32; slot++) {
        uint32_t id = cfg_read32(slot, 0);
        if ((id & 0xffff) == 0xffff)
            continue;
        uint32_t cls = cfg_read32(slot, 0x08);
        printf("00:%x.0 %x:%x class %x rev %u\n", slot, id & 0xffff, id >> 16, cls >> 8,
               cls & 0xff);
        found++;
        if (id == 0x10411af4) {
            nets++;
            printf("  virtio-net (modern), subsystem %x:%x, irq pin %u line %u\n",
                   cfg_read16(slot, 0x2c), cfg_read16(slot, 0x2e), cfg_read8(slot, 0x3d),
                   cfg_read8(slot, 0x3c));
            ok = show_virtio(slot) && ok;
        }
    }
    printf("functions %u virtio-net %u\n", found, nets);
    if (ok && found >= 1 && nets >= cmdline_uint("nets", 1))
        puts("pci_enum passed\n");
    else
        puts("pci_enum FAILED\n");
    return 0;
}
