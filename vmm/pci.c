/* PCI bus 0 with configuration mechanism #1. See pci.h. */
#include "pci.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pci_bar {
    uint32_t size; /* 0: not implemented */
    uint32_t addr; /* as assigned / programmed (without flag bits) */
    bool registered;
    uint32_t registered_addr;
    vm_io_fn fn;
    void *opaque;
    pci_bar_map_fn map;
};

struct pci_dev {
    struct pci_bus *bus;
    unsigned slot;
    uint8_t cfg[PCI_CFG_SIZE];
    uint8_t wmask[PCI_CFG_SIZE]; /* bits the guest may change (outside BARs) */
    struct pci_bar bars[PCI_NUM_BARS];
    unsigned cap_end;  /* next free capability offset */
    unsigned last_cap; /* offset of the last capability, 0 if none */
    pci_cfg_write_fn cfg_write;
    void *cfg_opaque;
};

struct pci_bus {
    struct vm *vm;
    uint32_t config_addr; /* the 0xCF8 register */
    struct pci_dev *slots[PCI_MAX_SLOTS];
    uint64_t next_mmio;   /* bump allocator in the hole */
};

static uint32_t rd_le(const uint8_t *p, unsigned len)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < len; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static void wr_le(uint8_t *p, unsigned len, uint32_t v)
{
    for (unsigned i = 0; i < len; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void bar_update_mapping(struct pci_dev *dev, unsigned i)
{
    struct pci_bar *b = &dev->bars[i];
    struct vm *vm = dev->bus->vm;
    uint16_t cmd = (uint16_t)rd_le(&dev->cfg[PCI_COMMAND], 2);
    /* A BAR decodes when memory space is on and it was given a real address
     * (not the all-ones sizing pattern, not zero, not overlapping the top). */
    bool want = b->size && (cmd & PCI_COMMAND_MEMORY) && b->addr != 0 &&
                (uint64_t)b->addr + b->size <= 0x100000000ULL &&
                b->addr != (uint32_t)~(b->size - 1);

    if (b->registered && (!want || b->registered_addr != b->addr)) {
        if (b->map)
            b->map(b->opaque, i, b->registered_addr, false);
        vm_unregister_mmio(vm, b->registered_addr);
        b->registered = false;
    }
    if (want && !b->registered) {
        int rc = vm_register_mmio(vm, b->addr, b->size, b->fn, b->opaque);
        if (rc < 0) {
            fprintf(stderr, "pci: %02x.0 BAR%u at 0x%x: cannot map (%s)\n", dev->slot, i,
                    b->addr, strerror(-rc));
            return;
        }
        b->registered = true;
        b->registered_addr = b->addr;
        if (b->map)
            b->map(b->opaque, i, b->addr, true);
    }
}

static void bar_write(struct pci_dev *dev, unsigned i, unsigned byte, unsigned len,
                      uint32_t value)
{
    struct pci_bar *b = &dev->bars[i];
    uint8_t raw[4];

    if (!b->size)
        return; /* unimplemented BARs read as zero and ignore writes */
    wr_le(raw, 4, b->addr);
    wr_le(raw + byte, len, value);
    b->addr = rd_le(raw, 4) & ~(b->size - 1);
    bar_update_mapping(dev, i);
}

static uint32_t bar_read(const struct pci_dev *dev, unsigned i)
{
    const struct pci_bar *b = &dev->bars[i];
    if (!b->size)
        return 0;
    return b->addr; /* 32-bit, non-prefetchable memory: flag bits all zero */
}

uint32_t pci_cfg_read(struct pci_bus *bus, unsigned slot, unsigned offset, unsigned len)
{
    struct pci_dev *dev = slot < PCI_MAX_SLOTS ? bus->slots[slot] : NULL;
    uint32_t mask = len >= 4 ? 0xffffffffu : (1u << (8 * len)) - 1;

    if (!dev || offset + len > PCI_CFG_SIZE)
        return mask;
    unsigned base = offset & ~3u;
    uint32_t v;
    if (base >= PCI_BAR0 && base < PCI_BAR0 + 4 * PCI_NUM_BARS)
        v = bar_read(dev, (base - PCI_BAR0) / 4);
    else
        v = rd_le(&dev->cfg[base], 4);
    return (v >> (8 * (offset & 3))) & mask;
}

void pci_cfg_write(struct pci_bus *bus, unsigned slot, unsigned offset, unsigned len,
                   uint32_t value)
{
    struct pci_dev *dev = slot < PCI_MAX_SLOTS ? bus->slots[slot] : NULL;

    if (!dev || offset + len > PCI_CFG_SIZE)
        return;
    if (offset >= PCI_BAR0 && offset < PCI_BAR0 + 4 * PCI_NUM_BARS) {
        unsigned i = (offset - PCI_BAR0) / 4;
        bar_write(dev, i, offset & 3, len, value);
        return;
    }
    uint16_t old_cmd = (uint16_t)rd_le(&dev->cfg[PCI_COMMAND], 2);
    bool touched_cap = false;
    for (unsigned k = 0; k < len; k++) {
        unsigned o = offset + k;
        uint8_t v = (uint8_t)(value >> (8 * k));
        if (o == PCI_STATUS || o == PCI_STATUS + 1) {
            /* write-one-to-clear error bits; nothing here ever sets them */
            dev->cfg[o] &= (uint8_t)~(v & dev->wmask[o]);
            continue;
        }
        dev->cfg[o] = (uint8_t)((dev->cfg[o] & ~dev->wmask[o]) | (v & dev->wmask[o]));
        if (o >= 0x40)
            touched_cap = true;
    }
    uint16_t cmd = (uint16_t)rd_le(&dev->cfg[PCI_COMMAND], 2);
    if ((cmd ^ old_cmd) & PCI_COMMAND_MEMORY)
        for (unsigned i = 0; i < PCI_NUM_BARS; i++)
            bar_update_mapping(dev, i);
    if (touched_cap && dev->cfg_write)
        dev->cfg_write(dev->cfg_opaque, offset, len);
}

/* 0xCF8: enable bit 31, bus 23-16, device 15-11, function 10-8, register 7-2. */
static bool conf1_decode(const struct pci_bus *bus, unsigned *slot, unsigned *reg)
{
    uint32_t a = bus->config_addr;
    if (!(a & 0x80000000u))
        return false;
    if (((a >> 16) & 0xff) != 0 || ((a >> 8) & 0x7) != 0)
        return false; /* bus 0, function 0 only */
    *slot = (a >> 11) & 0x1f;
    *reg = a & 0xfc;
    return true;
}

static void conf1_access(void *opaque, uint64_t offset, uint8_t *data, unsigned len,
                         bool is_write)
{
    struct pci_bus *bus = opaque;

    if (offset < 4) { /* 0xCF8-0xCFB: only dword accesses reach the register */
        if (offset != 0 || len != 4) {
            if (!is_write)
                memset(data, 0xff, len);
            return;
        }
        if (is_write)
            bus->config_addr = rd_le(data, 4) & 0x80fffffcu;
        else
            wr_le(data, 4, bus->config_addr);
        return;
    }
    unsigned byte = (unsigned)offset - 4; /* 0..3 inside the data window */
    unsigned slot, reg;
    if (len > 4 || byte + len > 4 || !conf1_decode(bus, &slot, &reg)) {
        if (!is_write)
            memset(data, 0xff, len);
        return;
    }
    if (is_write)
        pci_cfg_write(bus, slot, reg + byte, len, rd_le(data, len));
    else
        wr_le(data, len, pci_cfg_read(bus, slot, reg + byte, len));
}

static struct pci_dev *dev_alloc(struct pci_bus *bus, unsigned slot, uint16_t vendor,
                                 uint16_t device, uint8_t revision, uint32_t class_code)
{
    struct pci_dev *dev = calloc(1, sizeof(*dev));
    if (!dev)
        return NULL;
    dev->bus = bus;
    dev->slot = slot;
    wr_le(&dev->cfg[PCI_VENDOR_ID], 2, vendor);
    wr_le(&dev->cfg[PCI_DEVICE_ID], 2, device);
    dev->cfg[PCI_REVISION_ID] = revision;
    wr_le(&dev->cfg[PCI_CLASS_PROG], 3, class_code);
    dev->cfg[PCI_HEADER_TYPE] = 0;
    /* command: I/O, memory, bus master, INTx disable are the guest's */
    wr_le(&dev->wmask[PCI_COMMAND], 2,
          PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
              PCI_COMMAND_INTX_DISABLE);
    dev->wmask[PCI_INTERRUPT_LINE] = 0xff;
    dev->wmask[0x0c] = 0xff; /* cache line size */
    dev->wmask[0x0d] = 0xff; /* latency timer */
    dev->cap_end = 0x40;
    bus->slots[slot] = dev;
    return dev;
}

struct pci_bus *pci_bus_create(struct vm *vm)
{
    struct pci_bus *bus = calloc(1, sizeof(*bus));
    if (!bus)
        return NULL;
    bus->vm = vm;
    bus->next_mmio = PCI_MMIO_HOLE_START;
    /* host bridge: Intel 440FX-like ids are what every guest knows */
    if (!dev_alloc(bus, 0, 0x8086, 0x1237, 0x02, 0x060000))
        goto err_free;
    if (vm_register_pio(vm, PCI_CONFIG_ADDR_PORT, 8, conf1_access, bus) < 0)
        goto err_bridge;
    return bus;

err_bridge:
    free(bus->slots[0]);
err_free:
    free(bus);
    return NULL;
}

void pci_bus_destroy(struct pci_bus *bus)
{
    if (!bus)
        return;
    for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
        struct pci_dev *dev = bus->slots[s];
        if (!dev)
            continue;
        for (unsigned i = 0; i < PCI_NUM_BARS; i++)
            if (dev->bars[i].registered)
                vm_unregister_mmio(bus->vm, dev->bars[i].registered_addr);
        free(dev);
    }
    free(bus);
}

struct pci_dev *pci_dev_create(struct pci_bus *bus, uint16_t vendor, uint16_t device,
                               uint8_t revision, uint32_t class_code,
                               uint16_t subsys_vendor, uint16_t subsys_id)
{
    for (unsigned s = 1; s < PCI_MAX_SLOTS; s++) {
        if (bus->slots[s])
            continue;
        struct pci_dev *dev = dev_alloc(bus, s, vendor, device, revision, class_code);
        if (!dev)
            return NULL;
        wr_le(&dev->cfg[PCI_SUBSYSTEM_VENDOR], 2, subsys_vendor);
        wr_le(&dev->cfg[PCI_SUBSYSTEM_ID], 2, subsys_id);
        return dev;
    }
    return NULL;
}

int pci_dev_add_bar(struct pci_dev *dev, unsigned bar, uint32_t size, vm_io_fn fn,
                    void *opaque, pci_bar_map_fn map)
{
    struct pci_bus *bus = dev->bus;

    if (bar >= PCI_NUM_BARS || size < 16 || (size & (size - 1)) || dev->bars[bar].size)
        return -EINVAL;
    /* natural alignment, as sizing implies */
    uint64_t addr = (bus->next_mmio + size - 1) & ~(uint64_t)(size - 1);
    if (addr + size > PCI_MMIO_HOLE_END)
        return -ENOSPC;
    bus->next_mmio = addr + size;
    dev->bars[bar] = (struct pci_bar){
        .size = size, .addr = (uint32_t)addr, .fn = fn, .opaque = opaque, .map = map};
    /* firmware would have enabled decode for an assigned BAR; so do we */
    uint16_t cmd = (uint16_t)rd_le(&dev->cfg[PCI_COMMAND], 2);
    wr_le(&dev->cfg[PCI_COMMAND], 2, cmd | PCI_COMMAND_MEMORY);
    for (unsigned i = 0; i < PCI_NUM_BARS; i++)
        bar_update_mapping(dev, i);
    return 0;
}

int pci_dev_add_cap(struct pci_dev *dev, const void *cap, unsigned len,
                    const void *wmask)
{
    unsigned off = dev->cap_end;

    if (len < 2 || off + len > PCI_CFG_SIZE)
        return -ENOSPC;
    memcpy(&dev->cfg[off], cap, len);
    dev->cfg[off + 1] = 0;
    if (wmask) {
        memcpy(&dev->wmask[off], wmask, len);
        dev->wmask[off] = dev->wmask[off + 1] = 0;
    }
    if (dev->last_cap)
        dev->cfg[dev->last_cap + 1] = (uint8_t)off;
    else
        dev->cfg[PCI_CAPABILITY_LIST] = (uint8_t)off;
    wr_le(&dev->cfg[PCI_STATUS], 2,
          rd_le(&dev->cfg[PCI_STATUS], 2) | PCI_STATUS_CAP_LIST);
    dev->last_cap = off;
    dev->cap_end = (off + len + 3) & ~3u;
    return (int)off;
}

void pci_dev_set_cfg_write(struct pci_dev *dev, pci_cfg_write_fn fn, void *opaque)
{
    dev->cfg_write = fn;
    dev->cfg_opaque = opaque;
}

void pci_dev_set_intx(struct pci_dev *dev, uint8_t irq)
{
    dev->cfg[PCI_INTERRUPT_PIN] = 1;
    dev->cfg[PCI_INTERRUPT_LINE] = irq;
}

uint8_t *pci_dev_cfg(struct pci_dev *dev)
{
    return dev->cfg;
}

uint64_t pci_dev_bar_addr(const struct pci_dev *dev, unsigned bar)
{
    return bar < PCI_NUM_BARS ? dev->bars[bar].addr : 0;
}

bool pci_dev_bar_mapped(const struct pci_dev *dev, unsigned bar)
{
    return bar < PCI_NUM_BARS && dev->bars[bar].registered;
}

unsigned pci_dev_slot(const struct pci_dev *dev)
{
    return dev->slot;
}
