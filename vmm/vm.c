/* The KVM VM: /dev/kvm, memfd RAM split around the PCI hole, the in-kernel
 * IOAPIC/PIC/PIT, PIO and MMIO dispatch, ioeventfd, GSI routes for MSI and
 * irqfd, and one thread per vCPU with pause/resume and exit handling. */
#include "util.h"
#include "vm.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cpuid.h"

/* Below the BIOS area at the top of 4 GiB, as QEMU places them. */
#define VM_IDENTITY_MAP_ADDR 0xFFFBC000ull
#define VM_TSS_ADDR 0xFFFBD000ull
#define VM_KICK_SIGNAL SIGUSR1

struct io_range {
    uint64_t base, len;
    vm_io_fn fn;
    void *opaque;
};

struct io_table {
    struct io_range *v;
    size_t n, cap;
};

struct vcpu {
    struct vm *vm;
    unsigned id;
    int fd;
    struct kvm_run *run;
    size_t run_size;
    pthread_t thread;
    bool started;
};

struct vm {
    int kvm_fd, vm_fd;
    unsigned ncpus;
    uint64_t mem_bytes;
    struct vm_ram_region ram[2];
    unsigned nram;
    int mem_fd;

    pthread_mutex_t lock; /* the device lock (recursive) */
    struct io_table pio, mmio;

    pthread_mutex_t route_mu;
    struct kvm_irq_routing_entry *routes;
    unsigned nroutes, routes_cap, max_gsi;

    struct event_base *base;
    struct event *exit_ev;
    int exit_efd;
    void (*exit_cb)(void *);
    void *exit_cb_opaque;

    struct kvm_cpuid2 *cpuid;
    struct vcpu vcpus[VM_MAX_VCPUS];
    unsigned nstarted;

    /* lifecycle */
    pthread_mutex_t state_mu;
    pthread_cond_t parked_cv, resume_cv;
    atomic_bool exiting, pause_req;
    bool paused;
    unsigned parked, running_threads;
    enum vm_exit_reason exit_reason;
    char exit_detail[256];

    atomic_uint_fast64_t exits, io_exits, mmio_exits;
};

static _Thread_local struct kvm_run *tls_run;


/* ---------------------------------------------------------------- RAM */

const struct vm_ram_region *vm_ram_regions(const struct vm *vm, unsigned *n)
{
    *n = vm->nram;
    return vm->ram;
}

void *vm_gpa(const struct vm *vm, uint64_t gpa, uint64_t len)
{
    for (unsigned i = 0; i < vm->nram; i++) {
        const struct vm_ram_region *r = &vm->ram[i];
        if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
            return (uint8_t *)r->hva + (gpa - r->gpa);
    }
    return NULL;
}

static int vm_setup_ram(struct vm *vm, char *err, size_t errlen)
{
    uint64_t low = vm->mem_bytes < VM_LOW_RAM_MAX ? vm->mem_bytes : VM_LOW_RAM_MAX;
    uint64_t high = vm->mem_bytes - low;

    vm->mem_fd = memfd_create("vmm-guest-ram", MFD_CLOEXEC);
    if (vm->mem_fd < 0) {
        errf(err, errlen, "memfd_create: %s", strerror(errno));
        return -errno;
    }
    if (ftruncate(vm->mem_fd, (off_t)vm->mem_bytes) < 0) {
        errf(err, errlen, "cannot size guest RAM to %" PRIu64 " MiB: %s",
             vm->mem_bytes >> 20, strerror(errno));
        return -errno;
    }
    uint64_t sizes[2] = {low, high}, gpas[2] = {0, VM_HIGH_RAM_START};
    uint64_t off = 0;
    for (unsigned i = 0; i < 2; i++) {
        if (!sizes[i])
            continue;
        void *p = mmap(NULL, sizes[i], PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
                       vm->mem_fd, (off_t)off);
        if (p == MAP_FAILED) {
            errf(err, errlen, "cannot map guest RAM: %s", strerror(errno));
            return -errno;
        }
        struct vm_ram_region *r = &vm->ram[vm->nram];
        *r = (struct vm_ram_region){.gpa = gpas[i], .size = sizes[i], .hva = p,
                                    .fd = vm->mem_fd, .fd_offset = off};
        struct kvm_userspace_memory_region mr = {
            .slot = vm->nram, .guest_phys_addr = r->gpa, .memory_size = r->size,
            .userspace_addr = (uint64_t)(uintptr_t)p};
        vm->nram++;
        if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &mr) < 0) {
            errf(err, errlen, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
            return -errno;
        }
        off += sizes[i];
    }
    return 0;
}

/* ---------------------------------------------------------------- I/O dispatch */

/* Index of the last range with base <= addr, or -1. */
static long io_find(const struct io_table *t, uint64_t addr)
{
    long lo = 0, hi = (long)t->n - 1, best = -1;
    while (lo <= hi) {
        long mid = lo + (hi - lo) / 2;
        if (t->v[mid].base <= addr) {
            best = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return best;
}

static int io_insert(struct io_table *t, uint64_t base, uint64_t len, vm_io_fn fn,
                     void *opaque)
{
    if (!len || base + len < base)
        return -EINVAL;
    long i = io_find(t, base);
    if (i >= 0 && t->v[i].base + t->v[i].len > base)
        return -EEXIST;
    if ((size_t)(i + 1) < t->n && t->v[i + 1].base < base + len)
        return -EEXIST;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct io_range *v = realloc(t->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        t->v = v;
        t->cap = cap;
    }
    size_t at = (size_t)(i + 1);
    memmove(&t->v[at + 1], &t->v[at], (t->n - at) * sizeof(*t->v));
    t->v[at] = (struct io_range){base, len, fn, opaque};
    t->n++;
    return 0;
}

static int io_remove(struct io_table *t, uint64_t base)
{
    long i = io_find(t, base);
    if (i < 0 || t->v[i].base != base)
        return -ENOENT;
    memmove(&t->v[i], &t->v[i + 1], (t->n - (size_t)i - 1) * sizeof(*t->v));
    t->n--;
    return 0;
}

/* Calls the handler owning addr with the device lock held; unclaimed reads
 * see all-ones and unclaimed writes are dropped, as on a PC bus. */
static void io_dispatch(struct vm *vm, struct io_table *t, uint64_t addr, uint8_t *data,
                        unsigned len, bool is_write)
{
    vm_lock(vm);
    long i = io_find(t, addr);
    if (i >= 0 && addr - t->v[i].base < t->v[i].len) {
        struct io_range r = t->v[i];
        r.fn(r.opaque, addr - r.base, data, len, is_write);
    } else if (!is_write) {
        memset(data, 0xff, len);
    }
    vm_unlock(vm);
}

int vm_register_pio(struct vm *vm, uint16_t base, uint16_t len, vm_io_fn fn, void *opaque)
{
    if ((uint32_t)base + len > 0x10000)
        return -EINVAL;
    vm_lock(vm);
    int r = io_insert(&vm->pio, base, len, fn, opaque);
    vm_unlock(vm);
    return r;
}

int vm_register_mmio(struct vm *vm, uint64_t base, uint64_t len, vm_io_fn fn, void *opaque)
{
    vm_lock(vm);
    int r = io_insert(&vm->mmio, base, len, fn, opaque);
    vm_unlock(vm);
    return r;
}

int vm_unregister_mmio(struct vm *vm, uint64_t base)
{
    vm_lock(vm);
    int r = io_remove(&vm->mmio, base);
    vm_unlock(vm);
    return r;
}

void vm_lock(struct vm *vm)
{
    pthread_mutex_lock(&vm->lock);
}

void vm_unlock(struct vm *vm)
{
    pthread_mutex_unlock(&vm->lock);
}

struct event_base *vm_event_base(struct vm *vm)
{
    return vm->base;
}

int vm_ioeventfd(struct vm *vm, uint64_t addr, unsigned len, int64_t datamatch, int fd,
                 bool assign)
{
    struct kvm_ioeventfd io = {.addr = addr, .len = len, .fd = fd};
    if (datamatch >= 0) {
        io.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
        io.datamatch = (uint64_t)datamatch;
    }
    if (!assign)
        io.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
    return ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

/* ---------------------------------------------------------------- interrupts */

/* KVM_SET_GSI_ROUTING replaces the whole table, so the pin routes of the
 * PIC and IOAPIC are part of it. ISA IRQ 0 (the PIT) reaches IOAPIC pin 2,
 * as the MP table says; pin 2 of the master PIC is the cascade. */
static int routes_commit(struct vm *vm)
{
    size_t sz = sizeof(struct kvm_irq_routing) + vm->nroutes * sizeof(*vm->routes);
    struct kvm_irq_routing *t = calloc(1, sz);
    if (!t)
        return -ENOMEM;
    t->nr = vm->nroutes;
    memcpy(t->entries, vm->routes, vm->nroutes * sizeof(*vm->routes));
    int r = ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, t) < 0 ? -errno : 0;
    free(t);
    return r;
}

static int routes_append(struct vm *vm, const struct kvm_irq_routing_entry *e)
{
    if (vm->nroutes == vm->routes_cap) {
        unsigned cap = vm->routes_cap ? vm->routes_cap * 2 : 64;
        struct kvm_irq_routing_entry *v = realloc(vm->routes, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        vm->routes = v;
        vm->routes_cap = cap;
    }
    vm->routes[vm->nroutes++] = *e;
    return 0;
}

static int routes_init(struct vm *vm)
{
    for (unsigned gsi = 0; gsi < 24; gsi++) {
        struct kvm_irq_routing_entry e = {.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP};
        int r;
        if (gsi < 16 && gsi != 2) {
            e.u.irqchip.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
            e.u.irqchip.pin = gsi % 8;
            if ((r = routes_append(vm, &e)) < 0)
                return r;
        }
        if (gsi == 2)
            continue;
        e.u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
        e.u.irqchip.pin = gsi == 0 ? 2 : gsi;
        if ((r = routes_append(vm, &e)) < 0)
            return r;
    }
    return routes_commit(vm);
}

static struct kvm_irq_routing_entry *route_find(struct vm *vm, int gsi)
{
    for (unsigned i = 0; i < vm->nroutes; i++)
        if (vm->routes[i].gsi == (uint32_t)gsi && vm->routes[i].type == KVM_IRQ_ROUTING_MSI)
            return &vm->routes[i];
    return NULL;
}

static void msi_fill(struct kvm_irq_routing_entry *e, uint64_t addr, uint32_t data)
{
    e->type = KVM_IRQ_ROUTING_MSI;
    e->u.msi.address_lo = (uint32_t)addr;
    e->u.msi.address_hi = (uint32_t)(addr >> 32);
    e->u.msi.data = data;
}

int vm_msi_route_add(struct vm *vm, uint64_t addr, uint32_t data, int irqfd, int *gsi)
{
    pthread_mutex_lock(&vm->route_mu);
    int g = VM_FIRST_MSI_GSI, r;
    while ((unsigned)g < vm->max_gsi && route_find(vm, g))
        g++;
    if ((unsigned)g >= vm->max_gsi) {
        r = -ENOSPC;
        goto out;
    }
    struct kvm_irq_routing_entry e = {.gsi = (uint32_t)g};
    msi_fill(&e, addr, data);
    if ((r = routes_append(vm, &e)) < 0)
        goto out;
    if ((r = routes_commit(vm)) < 0)
        goto undo;
    if (irqfd >= 0) {
        struct kvm_irqfd f = {.fd = (uint32_t)irqfd, .gsi = (uint32_t)g};
        if (ioctl(vm->vm_fd, KVM_IRQFD, &f) < 0) {
            r = -errno;
            goto undo;
        }
    }
    *gsi = g;
    r = 0;
    goto out;
undo:
    vm->nroutes--;
    routes_commit(vm);
out:
    pthread_mutex_unlock(&vm->route_mu);
    return r;
}

int vm_msi_route_update(struct vm *vm, int gsi, uint64_t addr, uint32_t data)
{
    pthread_mutex_lock(&vm->route_mu);
    struct kvm_irq_routing_entry *e = route_find(vm, gsi);
    int r = -ENOENT;
    if (e) {
        struct kvm_irq_routing_entry old = *e;
        msi_fill(e, addr, data);
        if ((r = routes_commit(vm)) < 0)
            *e = old;
    }
    pthread_mutex_unlock(&vm->route_mu);
    return r;
}

int vm_msi_route_del(struct vm *vm, int gsi, int irqfd)
{
    pthread_mutex_lock(&vm->route_mu);
    int r = 0;
    if (irqfd >= 0) {
        struct kvm_irqfd f = {.fd = (uint32_t)irqfd, .gsi = (uint32_t)gsi,
                              .flags = KVM_IRQFD_FLAG_DEASSIGN};
        if (ioctl(vm->vm_fd, KVM_IRQFD, &f) < 0)
            r = -errno;
    }
    struct kvm_irq_routing_entry *e = route_find(vm, gsi);
    if (!e) {
        r = r ? r : -ENOENT;
    } else {
        *e = vm->routes[--vm->nroutes];
        int c = routes_commit(vm);
        r = r ? r : c;
    }
    pthread_mutex_unlock(&vm->route_mu);
    return r;
}

int vm_msi_signal(struct vm *vm, uint64_t addr, uint32_t data)
{
    struct kvm_msi m = {.address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32),
                        .data = data};
    return ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &m) < 0 ? -errno : 0;
}

int vm_irq_line(struct vm *vm, unsigned irq, bool level)
{
    struct kvm_irq_level l = {.irq = irq, .level = level};
    return ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}

/* ---------------------------------------------------------------- create */

static int kvm_need(int kvm_fd, long cap, const char *name, char *err, size_t errlen)
{
    if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, cap) <= 0) {
        errf(err, errlen, "/dev/kvm lacks the capability KVM_CAP_%s, which the VMM needs", name);
        return -ENOTSUP;
    }
    return 0;
}

static void vm_exit_event(evutil_socket_t fd, short what, void *arg)
{
    struct vm *vm = arg;
    uint64_t v;
    if (read(fd, &v, sizeof(v)) < 0) {
        /* nothing to drain */
    }
    if (vm->exit_cb)
        vm->exit_cb(vm->exit_cb_opaque);
}

static void vcpu_kick_handler(int sig)
{
    if (tls_run)
        tls_run->immediate_exit = 1;
}

struct vm *vm_create(const struct vm_config *cfg, struct event_base *base, char *err,
                     size_t errlen)
{
    if (!cfg->ncpus || cfg->ncpus > VM_MAX_VCPUS) {
        errf(err, errlen, "--cpus must be 1..%d", VM_MAX_VCPUS);
        return NULL;
    }
    if (cfg->mem_bytes < (16ull << 20)) {
        errf(err, errlen, "--memory must be at least 16 MiB");
        return NULL;
    }
    struct vm *vm = calloc(1, sizeof(*vm));
    if (!vm) {
        errf(err, errlen, "out of memory");
        return NULL;
    }
    vm->kvm_fd = vm->vm_fd = vm->mem_fd = vm->exit_efd = -1;
    vm->ncpus = cfg->ncpus;
    vm->mem_bytes = cfg->mem_bytes;
    vm->base = base;
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&vm->lock, &ma);
    pthread_mutexattr_destroy(&ma);
    pthread_mutex_init(&vm->route_mu, NULL);
    pthread_mutex_init(&vm->state_mu, NULL);
    pthread_cond_init(&vm->parked_cv, NULL);
    pthread_cond_init(&vm->resume_cv, NULL);

    vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (vm->kvm_fd < 0) {
        errf(err, errlen, "cannot open /dev/kvm: %s", strerror(errno));
        goto fail;
    }
    int api = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
    if (api != KVM_API_VERSION) {
        errf(err, errlen, "/dev/kvm speaks KVM API %d, the VMM needs %d", api,
             KVM_API_VERSION);
        goto fail;
    }
    static const struct {
        long cap;
        const char *name;
    } caps[] = {
        {KVM_CAP_IRQCHIP, "IRQCHIP"},       {KVM_CAP_PIT2, "PIT2"},
        {KVM_CAP_USER_MEMORY, "USER_MEMORY"}, {KVM_CAP_SET_TSS_ADDR, "SET_TSS_ADDR"},
        {KVM_CAP_EXT_CPUID, "EXT_CPUID"},   {KVM_CAP_IRQ_ROUTING, "IRQ_ROUTING"},
        {KVM_CAP_IRQFD, "IRQFD"},           {KVM_CAP_IOEVENTFD, "IOEVENTFD"},
        {KVM_CAP_SIGNAL_MSI, "SIGNAL_MSI"}, {KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT"},
    };
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
        if (kvm_need(vm->kvm_fd, caps[i].cap, caps[i].name, err, errlen) < 0)
            goto fail;
    int maxv = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
    if (maxv > 0 && (unsigned)maxv < cfg->ncpus) {
        errf(err, errlen, "KVM allows at most %d vCPUs", maxv);
        goto fail;
    }
    int maxgsi = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQ_ROUTING);
    vm->max_gsi = maxgsi > 0 ? (unsigned)maxgsi : 1024;

    vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
    if (vm->vm_fd < 0) {
        errf(err, errlen, "KVM_CREATE_VM: %s", strerror(errno));
        goto fail;
    }
    if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)VM_TSS_ADDR) < 0) {
        errf(err, errlen, "KVM_SET_TSS_ADDR: %s", strerror(errno));
        goto fail;
    }
    uint64_t idmap = VM_IDENTITY_MAP_ADDR;
    if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0 &&
        ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0) {
        errf(err, errlen, "KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
        goto fail;
    }
    if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
        errf(err, errlen, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
        goto fail;
    }
    struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
    if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
        errf(err, errlen, "KVM_CREATE_PIT2: %s", strerror(errno));
        goto fail;
    }
    if (routes_init(vm) < 0) {
        errf(err, errlen, "KVM_SET_GSI_ROUTING: %s", strerror(errno));
        goto fail;
    }
    if (vm_setup_ram(vm, err, errlen) < 0)
        goto fail;
    vm->cpuid = cpuid_supported(vm->kvm_fd, err, errlen);
    if (!vm->cpuid)
        goto fail;
    if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0)
        cpuid_set_tsc_deadline(vm->cpuid);

    struct sigaction sa = {.sa_handler = vcpu_kick_handler};
    sigemptyset(&sa.sa_mask);
    sigaction(VM_KICK_SIGNAL, &sa, NULL);

    vm->exit_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (vm->exit_efd < 0) {
        errf(err, errlen, "eventfd: %s", strerror(errno));
        goto fail;
    }
    if (base) {
        vm->exit_ev = event_new(base, vm->exit_efd, EV_READ | EV_PERSIST, vm_exit_event, vm);
        if (!vm->exit_ev || event_add(vm->exit_ev, NULL) < 0) {
            errf(err, errlen, "cannot watch the exit eventfd");
            goto fail;
        }
    }
    return vm;
fail:
    vm_destroy(vm);
    return NULL;
}

void vm_destroy(struct vm *vm)
{
    if (!vm)
        return;
    vm_stop_vcpus(vm);
    for (unsigned i = 0; i < vm->ncpus; i++) {
        struct vcpu *c = &vm->vcpus[i];
        if (c->run)
            munmap(c->run, c->run_size);
        if (c->fd > 0)
            close(c->fd);
    }
    if (vm->exit_ev)
        event_free(vm->exit_ev);
    if (vm->exit_efd >= 0)
        close(vm->exit_efd);
    for (unsigned i = 0; i < vm->nram; i++)
        munmap(vm->ram[i].hva, vm->ram[i].size);
    if (vm->mem_fd >= 0)
        close(vm->mem_fd);
    if (vm->vm_fd >= 0)
        close(vm->vm_fd);
    if (vm->kvm_fd >= 0)
        close(vm->kvm_fd);
    free(vm->cpuid);
    free(vm->routes);
    free(vm->pio.v);
    free(vm->mmio.v);
    pthread_mutex_destroy(&vm->lock);
    pthread_mutex_destroy(&vm->route_mu);
    pthread_mutex_destroy(&vm->state_mu);
    pthread_cond_destroy(&vm->parked_cv);
    pthread_cond_destroy(&vm->resume_cv);
    free(vm);
}

int vm_fd(const struct vm *vm)
{
    return vm->vm_fd;
}

unsigned vm_ncpus(const struct vm *vm)
{
    return vm->ncpus;
}

uint64_t vm_mem_bytes(const struct vm *vm)
{
    return vm->mem_bytes;
}

/* ---------------------------------------------------------------- lifecycle */

static void vm_kick_all(struct vm *vm)
{
    pthread_t self = pthread_self();
    for (unsigned i = 0; i < vm->nstarted; i++)
        if (vm->vcpus[i].started && !pthread_equal(vm->vcpus[i].thread, self))
            pthread_kill(vm->vcpus[i].thread, VM_KICK_SIGNAL);
}

void vm_request_exit(struct vm *vm, enum vm_exit_reason reason, const char *detail)
{
    pthread_mutex_lock(&vm->state_mu);
    bool first = vm->exit_reason == VM_EXIT_NONE;
    if (first) {
        vm->exit_reason = reason;
        snprintf(vm->exit_detail, sizeof(vm->exit_detail), "%s", detail ? detail : "");
    }
    atomic_store(&vm->exiting, true);
    pthread_cond_broadcast(&vm->resume_cv);
    pthread_cond_broadcast(&vm->parked_cv);
    pthread_mutex_unlock(&vm->state_mu);
    if (!first)
        return;
    vm_kick_all(vm);
    uint64_t one = 1;
    if (write(vm->exit_efd, &one, sizeof(one)) < 0) {
        /* the counter cannot overflow from one write */
    }
}

void vm_set_exit_cb(struct vm *vm, void (*cb)(void *opaque), void *opaque)
{
    vm->exit_cb = cb;
    vm->exit_cb_opaque = opaque;
}

enum vm_exit_reason vm_exit_reason(const struct vm *vm, const char **detail)
{
    if (detail)
        *detail = vm->exit_detail;
    return vm->exit_reason;
}

int vm_pause(struct vm *vm)
{
    pthread_mutex_lock(&vm->state_mu);
    if (!vm->paused && !atomic_load(&vm->exiting)) {
        atomic_store(&vm->pause_req, true);
        pthread_mutex_unlock(&vm->state_mu);
        vm_kick_all(vm);
        pthread_mutex_lock(&vm->state_mu);
        while (vm->parked < vm->running_threads && !atomic_load(&vm->exiting))
            pthread_cond_wait(&vm->parked_cv, &vm->state_mu);
        vm->paused = true;
    }
    pthread_mutex_unlock(&vm->state_mu);
    return 0;
}

int vm_resume(struct vm *vm)
{
    pthread_mutex_lock(&vm->state_mu);
    atomic_store(&vm->pause_req, false);
    vm->paused = false;
    pthread_cond_broadcast(&vm->resume_cv);
    pthread_mutex_unlock(&vm->state_mu);
    return 0;
}

bool vm_paused(const struct vm *vm)
{
    return vm->paused;
}

void vm_get_stats(const struct vm *vm, struct vm_stats *st)
{
    st->exits = atomic_load(&vm->exits);
    st->io_exits = atomic_load(&vm->io_exits);
    st->mmio_exits = atomic_load(&vm->mmio_exits);
}

/* ---------------------------------------------------------------- vCPUs */

static void vcpu_park(struct vm *vm)
{
    pthread_mutex_lock(&vm->state_mu);
    vm->parked++;
    pthread_cond_broadcast(&vm->parked_cv);
    while (atomic_load(&vm->pause_req) && !atomic_load(&vm->exiting))
        pthread_cond_wait(&vm->resume_cv, &vm->state_mu);
    vm->parked--;
    pthread_mutex_unlock(&vm->state_mu);
}

static void vcpu_fatal(struct vcpu *c, enum vm_exit_reason why, const char *what)
{
    char buf[224];
    struct kvm_regs regs;
    if (ioctl(c->fd, KVM_GET_REGS, &regs) == 0)
        snprintf(buf, sizeof(buf), "vCPU %u: %s (rip 0x%llx)", c->id, what, regs.rip);
    else
        snprintf(buf, sizeof(buf), "vCPU %u: %s", c->id, what);
    vm_request_exit(c->vm, why, buf);
}

/* One exit; false when the vCPU is to stop. */
static bool vcpu_handle_exit(struct vcpu *c)
{
    struct vm *vm = c->vm;
    struct kvm_run *run = c->run;
    char what[160];

    atomic_fetch_add(&vm->exits, 1);
    switch (run->exit_reason) {
    case KVM_EXIT_IO: {
        atomic_fetch_add(&vm->io_exits, 1);
        uint8_t *p = (uint8_t *)run + run->io.data_offset;
        for (uint32_t i = 0; i < run->io.count; i++, p += run->io.size)
            io_dispatch(vm, &vm->pio, run->io.port, p, run->io.size,
                        run->io.direction == KVM_EXIT_IO_OUT);
        return true;
    }
    case KVM_EXIT_MMIO:
        atomic_fetch_add(&vm->mmio_exits, 1);
        io_dispatch(vm, &vm->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
                    run->mmio.is_write);
        return true;
    case KVM_EXIT_INTR:
    case KVM_EXIT_HLT: /* the in-kernel LAPIC handles HLT; nothing to do */
        return true;
    case KVM_EXIT_SHUTDOWN:
        vcpu_fatal(c, VM_EXIT_TRIPLE_FAULT, "triple fault (KVM_EXIT_SHUTDOWN)");
        return false;
    case KVM_EXIT_SYSTEM_EVENT:
        switch (run->system_event.type) {
        case KVM_SYSTEM_EVENT_SHUTDOWN:
            vm_request_exit(vm, VM_EXIT_POWEROFF, "system event: shutdown");
            break;
        case KVM_SYSTEM_EVENT_RESET:
            vm_request_exit(vm, VM_EXIT_REBOOT, "system event: reset");
            break;
        default:
            snprintf(what, sizeof(what), "system event %u", run->system_event.type);
            vcpu_fatal(c, VM_EXIT_CRASH, what);
        }
        return false;
    case KVM_EXIT_INTERNAL_ERROR:
        snprintf(what, sizeof(what), "KVM internal error, suberror %u%s",
                 run->internal.suberror,
                 run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION
                     ? " (instruction emulation failed)" : "");
        vcpu_fatal(c, VM_EXIT_CRASH, what);
        return false;
    case KVM_EXIT_FAIL_ENTRY:
        snprintf(what, sizeof(what), "VM entry failed, hardware reason 0x%llx",
                 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
        vcpu_fatal(c, VM_EXIT_CRASH, what);
        return false;
    default:
        snprintf(what, sizeof(what), "unexpected KVM exit reason %u", run->exit_reason);
        vcpu_fatal(c, VM_EXIT_ERROR, what);
        return false;
    }
}

static void *vcpu_thread(void *arg)
{
    struct vcpu *c = arg;
    struct vm *vm = c->vm;
    char name[16];
    snprintf(name, sizeof(name), "vcpu%u", c->id);
    pthread_setname_np(pthread_self(), name);
    tls_run = c->run;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, VM_KICK_SIGNAL);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);

    for (;;) {
        /* Cleared before the flags are read: a kick landing after the
         * check sets it again and KVM_RUN returns at once. */
        c->run->immediate_exit = 0;
        if (atomic_load(&vm->exiting))
            break;
        if (atomic_load(&vm->pause_req)) {
            vcpu_park(vm);
            continue;
        }
        if (ioctl(c->fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            char what[96];
            snprintf(what, sizeof(what), "KVM_RUN: %s", strerror(errno));
            vcpu_fatal(c, VM_EXIT_ERROR, what);
            break;
        }
        if (!vcpu_handle_exit(c))
            break;
    }
    pthread_mutex_lock(&vm->state_mu);
    vm->running_threads--;
    pthread_cond_broadcast(&vm->parked_cv);
    pthread_mutex_unlock(&vm->state_mu);
    return NULL;
}

static void seg_flat(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code64)
{
    *s = (struct kvm_segment){.base = 0, .limit = 0xffffffff, .selector = sel,
                              .type = type, .present = 1, .dpl = 0, .s = 1,
                              .db = code64 ? 0 : 1, .l = code64 ? 1 : 0, .g = 1};
}

static int vcpu_set_entry(struct vcpu *c, const struct vm_entry *e, char *err, size_t errlen)
{
    struct kvm_sregs sr;
    if (ioctl(c->fd, KVM_GET_SREGS, &sr) < 0) {
        errf(err, errlen, "KVM_GET_SREGS: %s", strerror(errno));
        return -errno;
    }
    sr.gdt.base = e->gdt_base;
    sr.gdt.limit = e->gdt_limit;
    sr.idt.base = 0;
    sr.idt.limit = 0;
    if (e->long_mode) {
        seg_flat(&sr.cs, 0x10, 0xb, true);
        sr.cr3 = e->cr3;
        sr.cr4 = 0x20;                      /* PAE */
        sr.cr0 = 0x80000001 | 0x10 | 0x20;  /* PG | PE | ET | NE */
        sr.efer = 0x500;                    /* LME | LMA */
    } else {
        seg_flat(&sr.cs, 0x08, 0xb, false);
        sr.cr0 = 0x1 | 0x10 | 0x20;         /* PE | ET | NE, paging off */
        sr.cr4 = 0;
        sr.efer = 0;
    }
    seg_flat(&sr.ds, 0x18, 0x3, false);
    sr.es = sr.fs = sr.gs = sr.ss = sr.ds;
    sr.tr = (struct kvm_segment){.selector = 0x20, .limit = 0x67, .type = 0xb, .present = 1};
    if (ioctl(c->fd, KVM_SET_SREGS, &sr) < 0) {
        errf(err, errlen, "KVM_SET_SREGS: %s", strerror(errno));
        return -errno;
    }
    struct kvm_regs r = {.rip = e->rip, .rsi = e->rsi, .rbx = e->rbx, .rsp = e->rsp,
                         .rflags = 0x2};
    if (ioctl(c->fd, KVM_SET_REGS, &r) < 0) {
        errf(err, errlen, "KVM_SET_REGS: %s", strerror(errno));
        return -errno;
    }
    return 0;
}

static int vcpu_create(struct vm *vm, unsigned id, const struct vm_entry *entry, char *err,
                       size_t errlen)
{
    struct vcpu *c = &vm->vcpus[id];
    c->vm = vm;
    c->id = id;
    c->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
    if (c->fd < 0) {
        errf(err, errlen, "KVM_CREATE_VCPU %u: %s", id, strerror(errno));
        c->fd = 0;
        return -1;
    }
    int sz = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (sz <= 0) {
        errf(err, errlen, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
        return -1;
    }
    c->run_size = (size_t)sz;
    c->run = mmap(NULL, c->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
    if (c->run == MAP_FAILED) {
        c->run = NULL;
        errf(err, errlen, "mmap kvm_run: %s", strerror(errno));
        return -1;
    }
    if (cpuid_setup_vcpu(c->fd, vm->cpuid, id, vm->ncpus, err, errlen) < 0)
        return -1;
    if (vcpu_setup_msrs(c->fd, err, errlen) < 0)
        return -1;
    if (vcpu_setup_lapic(c->fd, id == 0, err, errlen) < 0)
        return -1;
    if (vcpu_setup_fpu(c->fd, err, errlen) < 0)
        return -1;
    if (id == 0 && vcpu_set_entry(c, entry, err, errlen) < 0)
        return -1;
    return 0;
}

int vm_start(struct vm *vm, const struct vm_entry *entry, char *err, size_t errlen)
{
    for (unsigned i = 0; i < vm->ncpus; i++)
        if (vcpu_create(vm, i, entry, err, errlen) < 0)
            return -1;
    /* vCPU threads take the kick signal; every other thread keeps it blocked
     * so a kick never lands elsewhere. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, VM_KICK_SIGNAL);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    int rc = 0;
    for (unsigned i = 0; i < vm->ncpus; i++) {
        struct vcpu *c = &vm->vcpus[i];
        pthread_mutex_lock(&vm->state_mu);
        vm->running_threads++;
        pthread_mutex_unlock(&vm->state_mu);
        int r = pthread_create(&c->thread, NULL, vcpu_thread, c);
        if (r) {
            pthread_mutex_lock(&vm->state_mu);
            vm->running_threads--;
            pthread_mutex_unlock(&vm->state_mu);
            errf(err, errlen, "cannot start vCPU thread %u: %s", i, strerror(r));
            rc = -1;
            break;
        }
        c->started = true;
        vm->nstarted = i + 1;
    }
    return rc;
}

void vm_stop_vcpus(struct vm *vm)
{
    if (!vm->nstarted)
        return;
    /* Claiming the exit reason keeps a late vm_request_exit from kicking
     * threads that are already joined. */
    pthread_mutex_lock(&vm->state_mu);
    if (vm->exit_reason == VM_EXIT_NONE)
        vm->exit_reason = VM_EXIT_STOPPED;
    atomic_store(&vm->exiting, true);
    pthread_cond_broadcast(&vm->resume_cv);
    pthread_mutex_unlock(&vm->state_mu);
    vm_kick_all(vm);
    for (unsigned i = 0; i < vm->nstarted; i++) {
        if (vm->vcpus[i].started) {
            pthread_join(vm->vcpus[i].thread, NULL);
            vm->vcpus[i].started = false;
        }
    }
    vm->nstarted = 0;
}
