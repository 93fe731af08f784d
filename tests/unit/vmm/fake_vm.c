/* Test double for vmm/vm.h. See fake_vm.h. */
#include "fake_vm.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct fake_range {
    bool used;
    uint64_t base, len;
    vm_io_fn fn;
    void *opaque;
};

struct vm {
    struct vm_ram_region ram;
    struct fake_range pio[FAKE_MAX_RANGES];
    struct fake_range mmio[FAKE_MAX_RANGES];
    struct fake_route routes[FAKE_MAX_ROUTES];
    struct fake_signal signals[FAKE_MAX_SIGNALS];
    unsigned nsignals;
    struct fake_ioeventfd ioeventfds[FAKE_MAX_IOEVENTFDS];
    int irq[32];
    struct event_base *base;
};

struct vm *fake_vm_create(uint64_t ram_size)
{
    struct vm *vm = calloc(1, sizeof(*vm));
    if (!vm)
        return NULL;
    vm->ram.fd = memfd_create("fake-ram", MFD_CLOEXEC);
    if (vm->ram.fd < 0 || ftruncate(vm->ram.fd, (off_t)ram_size) < 0)
        abort();
    vm->ram.hva = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->ram.fd, 0);
    if (vm->ram.hva == MAP_FAILED)
        abort();
    vm->ram.size = ram_size;
    vm->base = event_base_new();
    return vm;
}

void fake_vm_destroy(struct vm *vm)
{
    fake_vm_run_events(vm); /* let finalizers run */
    event_base_free(vm->base);
    munmap(vm->ram.hva, vm->ram.size);
    close(vm->ram.fd);
    free(vm);
}

const struct vm_ram_region *vm_ram_regions(const struct vm *vm, unsigned *n)
{
    *n = 1;
    return &vm->ram;
}

void *vm_gpa(const struct vm *vm, uint64_t gpa, uint64_t len)
{
    if (gpa >= vm->ram.size || len > vm->ram.size - gpa)
        return NULL;
    return (uint8_t *)vm->ram.hva + gpa;
}

static int add_range(struct fake_range *r, uint64_t base, uint64_t len, vm_io_fn fn,
                     void *opaque)
{
    for (unsigned i = 0; i < FAKE_MAX_RANGES; i++)
        if (r[i].used && base < r[i].base + r[i].len && r[i].base < base + len)
            return -EEXIST;
    for (unsigned i = 0; i < FAKE_MAX_RANGES; i++) {
        if (!r[i].used) {
            r[i] = (struct fake_range){true, base, len, fn, opaque};
            return 0;
        }
    }
    return -ENOSPC;
}

int vm_register_pio(struct vm *vm, uint16_t base, uint16_t len, vm_io_fn fn, void *opaque)
{
    return add_range(vm->pio, base, len, fn, opaque);
}

int vm_register_mmio(struct vm *vm, uint64_t base, uint64_t len, vm_io_fn fn,
                     void *opaque)
{
    return add_range(vm->mmio, base, len, fn, opaque);
}

int vm_unregister_mmio(struct vm *vm, uint64_t base)
{
    for (unsigned i = 0; i < FAKE_MAX_RANGES; i++) {
        if (vm->mmio[i].used && vm->mmio[i].base == base) {
            vm->mmio[i].used = false;
            return 0;
        }
    }
    return -ENOENT;
}

bool fake_vm_mmio_registered(struct vm *vm, uint64_t base)
{
    for (unsigned i = 0; i < FAKE_MAX_RANGES; i++)
        if (vm->mmio[i].used && vm->mmio[i].base == base)
            return true;
    return false;
}

static bool dispatch(struct fake_range *r, uint64_t addr, void *data, unsigned len,
                     bool is_write)
{
    for (unsigned i = 0; i < FAKE_MAX_RANGES; i++) {
        if (r[i].used && addr >= r[i].base && addr + len <= r[i].base + r[i].len) {
            r[i].fn(r[i].opaque, addr - r[i].base, data, len, is_write);
            return true;
        }
    }
    return false;
}

bool fake_vm_pio(struct vm *vm, uint16_t port, void *data, unsigned len, bool is_write)
{
    return dispatch(vm->pio, port, data, len, is_write);
}

bool fake_vm_mmio(struct vm *vm, uint64_t addr, void *data, unsigned len, bool is_write)
{
    return dispatch(vm->mmio, addr, data, len, is_write);
}

uint32_t fake_pio_read(struct vm *vm, uint16_t port, unsigned len)
{
    uint8_t b[4];
    memset(b, 0xff, sizeof(b));
    fake_vm_pio(vm, port, b, len, false);
    uint32_t v = 0;
    for (unsigned i = 0; i < len; i++)
        v |= (uint32_t)b[i] << (8 * i);
    return v;
}

void fake_pio_write(struct vm *vm, uint16_t port, unsigned len, uint32_t v)
{
    uint8_t b[4];
    for (unsigned i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    fake_vm_pio(vm, port, b, len, true);
}

uint64_t fake_mmio_read(struct vm *vm, uint64_t addr, unsigned len)
{
    uint8_t b[8];
    memset(b, 0xff, sizeof(b));
    fake_vm_mmio(vm, addr, b, len, false);
    uint64_t v = 0;
    for (unsigned i = 0; i < len; i++)
        v |= (uint64_t)b[i] << (8 * i);
    return v;
}

void fake_mmio_write(struct vm *vm, uint64_t addr, unsigned len, uint64_t v)
{
    uint8_t b[8];
    for (unsigned i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    fake_vm_mmio(vm, addr, b, len, true);
}

int vm_ioeventfd(struct vm *vm, uint64_t addr, unsigned len, int64_t datamatch, int fd,
                 bool assign)
{
    for (unsigned i = 0; i < FAKE_MAX_IOEVENTFDS; i++) {
        struct fake_ioeventfd *e = &vm->ioeventfds[i];
        if (!assign && e->used && e->addr == addr && e->fd == fd) {
            e->used = false;
            return 0;
        }
        if (assign && e->used && e->addr == addr)
            return -EEXIST;
    }
    if (!assign)
        return -ENOENT;
    for (unsigned i = 0; i < FAKE_MAX_IOEVENTFDS; i++) {
        if (!vm->ioeventfds[i].used) {
            vm->ioeventfds[i] = (struct fake_ioeventfd){true, addr, len, fd};
            return 0;
        }
    }
    return -ENOSPC;
}

int vm_msi_route_add(struct vm *vm, uint64_t addr, uint32_t data, int irqfd, int *gsi)
{
    for (unsigned i = 0; i < FAKE_MAX_ROUTES; i++) {
        if (!vm->routes[i].used) {
            vm->routes[i] = (struct fake_route){true, addr, data, irqfd};
            *gsi = (int)i;
            return 0;
        }
    }
    return -ENOSPC;
}

int vm_msi_route_update(struct vm *vm, int gsi, uint64_t addr, uint32_t data)
{
    if (gsi < 0 || gsi >= FAKE_MAX_ROUTES || !vm->routes[gsi].used)
        return -ENOENT;
    vm->routes[gsi].addr = addr;
    vm->routes[gsi].data = data;
    return 0;
}

int vm_msi_route_del(struct vm *vm, int gsi, int irqfd)
{
    if (gsi < 0 || gsi >= FAKE_MAX_ROUTES || !vm->routes[gsi].used ||
        vm->routes[gsi].irqfd != irqfd)
        return -ENOENT;
    vm->routes[gsi].used = false;
    return 0;
}

int vm_msi_signal(struct vm *vm, uint64_t addr, uint32_t data)
{
    if (vm->nsignals < FAKE_MAX_SIGNALS)
        vm->signals[vm->nsignals] = (struct fake_signal){addr, data};
    vm->nsignals++;
    return 0;
}

int vm_irq_line(struct vm *vm, unsigned irq, bool level)
{
    if (irq >= 32)
        return -EINVAL;
    vm->irq[irq] = level;
    return 0;
}

void vm_lock(struct vm *vm)
{
}

void vm_unlock(struct vm *vm)
{
}

struct event_base *vm_event_base(struct vm *vm)
{
    return vm->base;
}

struct fake_route *fake_vm_routes(struct vm *vm)
{
    return vm->routes;
}

unsigned fake_vm_routes_active(struct vm *vm)
{
    unsigned n = 0;
    for (unsigned i = 0; i < FAKE_MAX_ROUTES; i++)
        n += vm->routes[i].used;
    return n;
}

unsigned fake_vm_nsignals(struct vm *vm)
{
    return vm->nsignals;
}

const struct fake_signal *fake_vm_signal(struct vm *vm, unsigned i)
{
    return i < FAKE_MAX_SIGNALS ? &vm->signals[i] : NULL;
}

void fake_vm_clear_signals(struct vm *vm)
{
    vm->nsignals = 0;
}

const struct fake_ioeventfd *fake_vm_ioeventfds(struct vm *vm)
{
    return vm->ioeventfds;
}

int fake_vm_irq_level(struct vm *vm, unsigned irq)
{
    return irq < 32 ? vm->irq[irq] : -1;
}

void fake_vm_run_events(struct vm *vm)
{
    event_base_loop(vm->base, EVLOOP_NONBLOCK);
}
