/* The VM as devices see it: guest RAM, I/O dispatch, and the KVM plumbing
 * that keeps the datapath out of the VMM (ioeventfd, irqfd with MSI routes).
 * Implemented in vm.c (the VMM core); used by every device file.
 *
 * Threads: I/O handlers run on vCPU threads with the device lock held
 * (vm_lock); the control thread (libevent: API socket, vhost-user sockets,
 * timers) takes vm_lock before touching device state. */
#ifndef VMM_VM_H
#define VMM_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct vm;

/* Guest RAM as shared with a vhost-user backend: one entry per memfd-backed
 * region (RAM below the PCI hole, RAM above 4 GiB). */
struct vm_ram_region {
    uint64_t gpa;
    uint64_t size;
    void *hva;          /* the VMM's mapping (MAP_SHARED) */
    int fd;             /* memfd */
    uint64_t fd_offset;
};

const struct vm_ram_region *vm_ram_regions(const struct vm *vm, unsigned *n);

/* Host pointer for guest-physical [gpa, gpa+len) inside RAM, or NULL. */
void *vm_gpa(const struct vm *vm, uint64_t gpa, uint64_t len);

/* An access to a registered range. offset is from the range's base; data
 * holds len (1, 2, 4 or 8) bytes, little-endian, to write or to fill. */
typedef void (*vm_io_fn)(void *opaque, uint64_t offset, uint8_t *data, unsigned len,
                         bool is_write);

/* Registers a port-I/O or MMIO range. Overlaps are refused (-EEXIST). */
int vm_register_pio(struct vm *vm, uint16_t base, uint16_t len, vm_io_fn fn,
                    void *opaque);
int vm_register_mmio(struct vm *vm, uint64_t base, uint64_t len, vm_io_fn fn,
                     void *opaque);
/* Removes the range registered at base (a BAR being moved or disabled). */
int vm_unregister_mmio(struct vm *vm, uint64_t base);

/* KVM_IOEVENTFD: a guest write of len bytes at addr (MMIO) signals fd without
 * an exit. datamatch < 0: any value. */
int vm_ioeventfd(struct vm *vm, uint64_t addr, unsigned len, int64_t datamatch, int fd,
                 bool assign);

/* MSI delivery. vm_msi_route_add allocates a GSI routed to (addr, data) and,
 * when irqfd >= 0, binds the eventfd to it with KVM_IRQFD so a write to the
 * eventfd interrupts the guest without an exit. vm_msi_route_update re-aims
 * it when the guest reprograms its MSI-X entry (masking: remove the irqfd or
 * let the device hold the vector pending, as virtio_pci.c chooses). */
int vm_msi_route_add(struct vm *vm, uint64_t addr, uint32_t data, int irqfd, int *gsi);
int vm_msi_route_update(struct vm *vm, int gsi, uint64_t addr, uint32_t data);
int vm_msi_route_del(struct vm *vm, int gsi, int irqfd);
/* Injects one MSI now (KVM_SIGNAL_MSI): config-change interrupts, PBA replay. */
int vm_msi_signal(struct vm *vm, uint64_t addr, uint32_t data);

/* Legacy interrupt line (IOAPIC/PIC pin) level. */
int vm_irq_line(struct vm *vm, unsigned irq, bool level);

void vm_lock(struct vm *vm);
void vm_unlock(struct vm *vm);

/* The control thread's event loop. */
struct event_base *vm_event_base(struct vm *vm);

#endif
