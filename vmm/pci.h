/* The PCI bus as the guest sees it: configuration mechanism #1 on ports
 * 0xCF8 (address) and 0xCFC-0xCFF (data), bus 0 only, a host bridge at
 * 00:00.0 and one function per slot. Devices get a 256-byte type-0 header,
 * a capability list, and memory BARs whose addresses this module assigns in
 * the 32-bit MMIO hole; the BAR's MMIO range is registered with the VM only
 * while memory decode is enabled, and moves when the guest reprograms it.
 *
 * Threads: config accesses arrive on vCPU threads with vm_lock held; a
 * device's callbacks run in that context. */
#ifndef VMM_PCI_H
#define VMM_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "vm.h"

/* Guest-physical window where BARs live. vm.c keeps RAM below 3 GiB and above
 * 4 GiB; the IOAPIC/LAPIC (0xFEC00000...) sit just above the window. */
#define PCI_MMIO_HOLE_START 0xC0000000ULL
#define PCI_MMIO_HOLE_END   0xFEC00000ULL /* exclusive */

#define PCI_CONFIG_ADDR_PORT 0xCF8
#define PCI_CONFIG_DATA_PORT 0xCFC

#define PCI_MAX_SLOTS 32
#define PCI_NUM_BARS  6
#define PCI_CFG_SIZE  256

/* Type-0 header offsets and bits (PCI Local Bus 3.0 §6.1). */
#define PCI_VENDOR_ID        0x00
#define PCI_DEVICE_ID        0x02
#define PCI_COMMAND          0x04
#define PCI_STATUS           0x06
#define PCI_REVISION_ID      0x08
#define PCI_CLASS_PROG       0x09
#define PCI_CLASS_DEVICE     0x0a
#define PCI_HEADER_TYPE      0x0e
#define PCI_BAR0             0x10
#define PCI_SUBSYSTEM_VENDOR 0x2c
#define PCI_SUBSYSTEM_ID     0x2e
#define PCI_CAPABILITY_LIST  0x34
#define PCI_INTERRUPT_LINE   0x3c
#define PCI_INTERRUPT_PIN    0x3d

#define PCI_COMMAND_IO     0x1
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS_CAP_LIST 0x10

#define PCI_BAR_MEM_64       0x4
#define PCI_BAR_PREFETCH     0x8

#define PCI_CAP_ID_MSIX   0x11
#define PCI_CAP_ID_VENDOR 0x09

struct pci_bus;
struct pci_dev;

/* Told when a BAR starts or stops decoding at gpa (mapped false: it was at
 * gpa and no longer is). Devices re-aim ioeventfds here. */
typedef void (*pci_bar_map_fn)(void *opaque, unsigned bar, uint64_t gpa, bool mapped);
/* A guest write to the device's config space, after the bytes were stored
 * (writes to capabilities: MSI-X enable and function mask). */
typedef void (*pci_cfg_write_fn)(void *opaque, unsigned offset, unsigned len);

/* Registers 0xCF8/0xCFC and the host bridge at 00:00.0. NULL on failure. */
struct pci_bus *pci_bus_create(struct vm *vm);
void pci_bus_destroy(struct pci_bus *bus);

/* A new function in the first free slot, with its ids and class
 * (class_code: base << 16 | sub << 8 | prog-if). NULL when the bus is full. */
struct pci_dev *pci_dev_create(struct pci_bus *bus, uint16_t vendor, uint16_t device,
                               uint8_t revision, uint32_t class_code,
                               uint16_t subsys_vendor, uint16_t subsys_id);
/* Adds a 32-bit non-prefetchable memory BAR of size bytes (a power of two,
 * at least 16) at an address chosen in the MMIO hole. fn serves accesses with
 * offsets from the BAR's base. -errno on failure. */
int pci_dev_add_bar(struct pci_dev *dev, unsigned bar, uint32_t size, vm_io_fn fn,
                    void *opaque, pci_bar_map_fn map);
/* Appends a capability (cap[0] = id; cap[1], the next pointer, is filled in)
 * of len bytes, dword-aligned. Bytes in wmask (may be NULL: read-only) are
 * writable by the guest. Returns its offset in config space or -errno. */
int pci_dev_add_cap(struct pci_dev *dev, const void *cap, unsigned len,
                    const void *wmask);
void pci_dev_set_cfg_write(struct pci_dev *dev, pci_cfg_write_fn fn, void *opaque);
/* Interrupt pin 1 (INTA#) wired to irq, written to the interrupt line. */
void pci_dev_set_intx(struct pci_dev *dev, uint8_t irq);

/* The config space image (little-endian), for devices to read their caps. */
uint8_t *pci_dev_cfg(struct pci_dev *dev);
/* The BAR's current address, and whether it decodes (memory enable on). */
uint64_t pci_dev_bar_addr(const struct pci_dev *dev, unsigned bar);
bool pci_dev_bar_mapped(const struct pci_dev *dev, unsigned bar);
unsigned pci_dev_slot(const struct pci_dev *dev);

/* Config access by (slot, offset) as mechanism #1 would do it; for tests and
 * for the API's introspection. len 1, 2 or 4, naturally aligned. */
uint32_t pci_cfg_read(struct pci_bus *bus, unsigned slot, unsigned offset, unsigned len);
void pci_cfg_write(struct pci_bus *bus, unsigned slot, unsigned offset, unsigned len,
                   uint32_t value);

#endif
