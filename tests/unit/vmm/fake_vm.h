/* A test-only implementation of vmm/vm.h: the devices' boundary. It records
 * what the device asked of "KVM" (MMIO/PIO ranges, ioeventfds, MSI routes and
 * signals, irq line levels) and dispatches accesses as vCPU exits would. */
#ifndef TESTS_FAKE_VM_H
#define TESTS_FAKE_VM_H

#include <stdbool.h>
#include <stdint.h>

#include "vm.h"

#define FAKE_MAX_RANGES 32
#define FAKE_MAX_ROUTES 32
#define FAKE_MAX_SIGNALS 64
#define FAKE_MAX_IOEVENTFDS 16

struct fake_route {
    bool used;
    uint64_t addr;
    uint32_t data;
    int irqfd;
};

struct fake_signal {
    uint64_t addr;
    uint32_t data;
};

struct fake_ioeventfd {
    bool used;
    uint64_t addr;
    unsigned len;
    int fd;
};

struct vm *fake_vm_create(uint64_t ram_size);
void fake_vm_destroy(struct vm *vm);

/* A vCPU access: false when nothing is registered there. */
bool fake_vm_pio(struct vm *vm, uint16_t port, void *data, unsigned len, bool is_write);
bool fake_vm_mmio(struct vm *vm, uint64_t addr, void *data, unsigned len, bool is_write);
uint32_t fake_pio_read(struct vm *vm, uint16_t port, unsigned len);
void fake_pio_write(struct vm *vm, uint16_t port, unsigned len, uint32_t v);
uint64_t fake_mmio_read(struct vm *vm, uint64_t addr, unsigned len);
void fake_mmio_write(struct vm *vm, uint64_t addr, unsigned len, uint64_t v);

bool fake_vm_mmio_registered(struct vm *vm, uint64_t base);

/* what the devices did */
struct fake_route *fake_vm_routes(struct vm *vm);       /* FAKE_MAX_ROUTES, by gsi */
unsigned fake_vm_routes_active(struct vm *vm);
unsigned fake_vm_nsignals(struct vm *vm);
const struct fake_signal *fake_vm_signal(struct vm *vm, unsigned i);
void fake_vm_clear_signals(struct vm *vm);
const struct fake_ioeventfd *fake_vm_ioeventfds(struct vm *vm); /* FAKE_MAX_IOEVENTFDS */
int fake_vm_irq_level(struct vm *vm, unsigned irq);
/* Runs the event loop once without blocking (watched eventfds). */
void fake_vm_run_events(struct vm *vm);

#endif
