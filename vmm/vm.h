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

/* ---- The VMM core's side (vm.c): building, running and stopping the VM.
 * Devices need nothing below; main.c, api.c and the tests do. */

/* Guest-physical layout. RAM is split around the 32-bit PCI hole: the first
 * min(size, 3 GiB) at 0, the rest at 4 GiB. PCI BARs go in
 * [VM_MMIO_START, VM_MMIO_END) (pci.c assigns them); the IOAPIC and LAPIC
 * sit above it. */
#define VM_LOW_RAM_MAX 0xC0000000ull
#define VM_PCI_HOLE_START 0xC0000000ull
#define VM_HIGH_RAM_START 0x100000000ull
#define VM_MMIO_START 0xC0000000ull
#define VM_MMIO_END 0xFEC00000ull
#define VM_IOAPIC_ADDR 0xFEC00000ull
#define VM_LAPIC_ADDR 0xFEE00000ull
#define VM_MAX_VCPUS 64
/* GSIs 0..23 are the IOAPIC pins; MSI routes are allocated from here up. */
#define VM_FIRST_MSI_GSI 24

/* Why the VM stopped; main turns it into the exit status (see vmm(1)). */
enum vm_exit_reason {
    VM_EXIT_NONE = 0,
    VM_EXIT_POWEROFF,       /* guest powered off (PM1a S5 write at port 0x604) */
    VM_EXIT_STOPPED,        /* stop via API or SIGTERM/SIGINT */
    VM_EXIT_REBOOT,         /* guest asked for a reset: i8042 0xFE, KVM system event */
    VM_EXIT_TRIPLE_FAULT,   /* KVM_EXIT_SHUTDOWN */
    VM_EXIT_CRASH,          /* internal error, failed entry, crash event */
    VM_EXIT_ERROR,          /* the VMM failed (an ioctl, a device) */
};

struct vm_config {
    uint64_t mem_bytes;
    unsigned ncpus;
};

/* Opens /dev/kvm, checks the API and capabilities, creates the VM with its
 * in-kernel IOAPIC/PIC/PIT and memfd RAM. NULL with err set on failure. */
struct vm *vm_create(const struct vm_config *cfg, struct event_base *base, char *err,
                     size_t errlen);
/* Stops vCPU threads if running, frees everything. */
void vm_destroy(struct vm *vm);

int vm_fd(const struct vm *vm);
unsigned vm_ncpus(const struct vm *vm);
uint64_t vm_mem_bytes(const struct vm *vm);

/* Register state of the boot vCPU at entry (from boot.c). */
struct vm_entry {
    bool long_mode;       /* 64-bit boot protocol; else 32-bit flat, paging off (PVH) */
    uint64_t rip, rsi, rbx, rsp;
    uint64_t cr3;         /* long mode: the identity page tables */
    uint64_t gdt_base;
    uint16_t gdt_limit;
};

/* Creates the vCPUs (CPUID, MSRs, LAPIC; the BSP at entry, APs waiting for
 * INIT/SIPI) and starts one thread each. */
int vm_start(struct vm *vm, const struct vm_entry *entry, char *err, size_t errlen);

/* Parks every vCPU outside KVM_RUN and returns once all are parked (or
 * resumes them). Call without vm_lock held. */
int vm_pause(struct vm *vm);
int vm_resume(struct vm *vm);
bool vm_paused(const struct vm *vm);

/* Asks the VM to stop for reason (first reason wins); safe from any thread,
 * also from an I/O handler. The control loop's exit callback runs next. */
void vm_request_exit(struct vm *vm, enum vm_exit_reason reason, const char *detail);
/* Called on the control thread once after an exit was requested. */
void vm_set_exit_cb(struct vm *vm, void (*cb)(void *opaque), void *opaque);
enum vm_exit_reason vm_exit_reason(const struct vm *vm, const char **detail);
/* Stops and joins the vCPU threads (idempotent). */
void vm_stop_vcpus(struct vm *vm);

/* Exits to the VMM so far (all vCPUs), and per kind. */
struct vm_stats {
    uint64_t exits, io_exits, mmio_exits;
};
void vm_get_stats(const struct vm *vm, struct vm_stats *st);

#endif
