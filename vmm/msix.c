/* MSI-X: capability, table, PBA, and irqfd wiring that follows masking.
 * See msix.h. */
#include "msix.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* capability layout: id, next, message control, table offset|BIR, PBA offset|BIR */
#define CAP_CTRL  2
#define CAP_TABLE 4
#define CAP_PBA   8
#define CAP_LEN   12

struct msix_source {
    int fd;            /* -1: unbound */
    unsigned vector;
    int gsi;           /* route while wired */
    bool wired;        /* KVM_IRQFD attached */
    bool watching;     /* the VMM polls fd (vector masked) */
    uint64_t addr;     /* what the route points at */
    uint32_t data;
    struct event *watch;
    struct msix *m;
};

struct msix {
    struct vm *vm;
    struct pci_dev *dev;
    unsigned cap;      /* capability offset in config space */
    unsigned nvec;
    uint8_t table[MSIX_MAX_VECTORS * MSIX_ENTRY_SIZE];
    uint64_t pending[MSIX_MAX_VECTORS / 64];
    struct msix_source src[MSIX_MAX_SOURCES];
    void (*intx_fn)(void *opaque);
    void *intx_opaque;
};

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void wr32(uint8_t *p, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t ctrl(const struct msix *m)
{
    const uint8_t *cfg = pci_dev_cfg(m->dev);
    return (uint16_t)(cfg[m->cap + CAP_CTRL] | cfg[m->cap + CAP_CTRL + 1] << 8);
}

unsigned msix_nvec(const struct msix *m)
{
    return m->nvec;
}

bool msix_enabled(const struct msix *m)
{
    return ctrl(m) & MSIX_CTRL_ENABLE;
}

bool msix_vector_masked(const struct msix *m, unsigned v)
{
    if (v >= m->nvec)
        return true;
    return (ctrl(m) & MSIX_CTRL_MASKALL) ||
           (rd32(&m->table[v * MSIX_ENTRY_SIZE + 12]) & MSIX_VECTOR_MASKED);
}

bool msix_pending(const struct msix *m, unsigned v)
{
    return v < m->nvec && (m->pending[v / 64] >> (v % 64) & 1);
}

static void set_pending(struct msix *m, unsigned v, bool on)
{
    if (on)
        m->pending[v / 64] |= 1ULL << (v % 64);
    else
        m->pending[v / 64] &= ~(1ULL << (v % 64));
}

static void entry(const struct msix *m, unsigned v, uint64_t *addr, uint32_t *data)
{
    const uint8_t *e = &m->table[v * MSIX_ENTRY_SIZE];
    *addr = rd32(e) | (uint64_t)rd32(e + 4) << 32;
    *data = rd32(e + 8);
}

/* A vector delivers only with MSI-X on and neither mask set. */
static bool usable(const struct msix *m, unsigned v)
{
    return v < m->nvec && msix_enabled(m) && !msix_vector_masked(m, v);
}

static void deliver(struct msix *m, unsigned v)
{
    uint64_t addr;
    uint32_t data;
    entry(m, v, &addr, &data);
    vm_msi_signal(m->vm, addr, data);
}

/* Reads an eventfd's counter without blocking: true if it had been signalled. */
static bool drain(int fd)
{
    uint64_t n;
    return read(fd, &n, sizeof(n)) == sizeof(n) && n;
}

static void source_watch_cb(evutil_socket_t fd, short what, void *arg)
{
    struct msix_source *s = arg;
    struct msix *m = s->m;

    vm_lock(m->vm);
    if (s->watching && s->fd == fd && drain(fd)) {
        if (!msix_enabled(m) && m->intx_fn)
            m->intx_fn(m->intx_opaque);
        else if (s->vector < m->nvec)
            set_pending(m, s->vector, true);
    }
    vm_unlock(m->vm);
}

static void watch_finalized(struct event *ev, void *arg)
{
}

static void source_unwatch(struct msix_source *s)
{
    if (!s->watching)
        return;
    /* EV_FINALIZE events never wait for a running callback (which may be
     * waiting for vm_lock, held by our caller) */
    event_del(s->watch);
    s->watching = false;
}

static void source_unwire(struct msix *m, struct msix_source *s)
{
    if (!s->wired)
        return;
    vm_msi_route_del(m->vm, s->gsi, s->fd);
    s->wired = false;
    s->gsi = -1;
}

/* Brings one source in line with its vector's state. */
static void source_sync(struct msix *m, struct msix_source *s)
{
    if (s->fd < 0)
        return;
    if (usable(m, s->vector)) {
        uint64_t addr;
        uint32_t data;
        entry(m, s->vector, &addr, &data);
        if (s->watching) {
            source_unwatch(s);
            if (drain(s->fd))
                set_pending(m, s->vector, true);
        }
        if (!s->wired) {
            int gsi;
            /* KVM_IRQFD looks at the counter when assigned: a signal that
             * lands after the drain above is delivered by KVM itself. */
            if (vm_msi_route_add(m->vm, addr, data, s->fd, &gsi) == 0) {
                s->wired = true;
                s->gsi = gsi;
                s->addr = addr;
                s->data = data;
            } else {
                fprintf(stderr, "msix: cannot route vector %u\n", s->vector);
            }
        } else if (addr != s->addr || data != s->data) {
            vm_msi_route_update(m->vm, s->gsi, addr, data);
            s->addr = addr;
            s->data = data;
        }
    } else {
        source_unwire(m, s);
        if (!s->watching && s->watch) {
            if (event_add(s->watch, NULL) == 0)
                s->watching = true;
        }
    }
}

static void sync_all(struct msix *m)
{
    for (unsigned i = 0; i < MSIX_MAX_SOURCES; i++)
        source_sync(m, &m->src[i]);
    for (unsigned v = 0; v < m->nvec; v++) {
        if (msix_pending(m, v) && usable(m, v)) {
            set_pending(m, v, false);
            deliver(m, v);
        }
    }
}

struct msix *msix_create(struct vm *vm, struct pci_dev *dev, unsigned nvec,
                         unsigned bar, uint32_t table_off, uint32_t pba_off)
{
    uint8_t cap[CAP_LEN] = {PCI_CAP_ID_MSIX};
    uint8_t wmask[CAP_LEN] = {0};

    if (nvec == 0 || nvec > MSIX_MAX_VECTORS || bar >= PCI_NUM_BARS || (table_off & 7) ||
        (pba_off & 7))
        return NULL;
    struct msix *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->vm = vm;
    m->dev = dev;
    m->nvec = nvec;
    cap[CAP_CTRL] = (uint8_t)(nvec - 1);
    cap[CAP_CTRL + 1] = (uint8_t)((nvec - 1) >> 8);
    wr32(&cap[CAP_TABLE], table_off | bar);
    wr32(&cap[CAP_PBA], pba_off | bar);
    wmask[CAP_CTRL + 1] = (MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL) >> 8;
    int off = pci_dev_add_cap(dev, cap, CAP_LEN, wmask);
    if (off < 0) {
        free(m);
        return NULL;
    }
    m->cap = (unsigned)off;
    for (unsigned v = 0; v < nvec; v++)
        wr32(&m->table[v * MSIX_ENTRY_SIZE + 12], MSIX_VECTOR_MASKED);
    for (unsigned i = 0; i < MSIX_MAX_SOURCES; i++) {
        m->src[i].fd = -1;
        m->src[i].gsi = -1;
        m->src[i].m = m;
    }
    return m;
}

void msix_destroy(struct msix *m)
{
    if (!m)
        return;
    for (unsigned i = 0; i < MSIX_MAX_SOURCES; i++)
        msix_set_source(m, i, -1, MSIX_NO_VECTOR);
    free(m);
}

void msix_table_access(struct msix *m, uint64_t offset, uint8_t *data, unsigned len,
                       bool is_write)
{
    uint64_t size = (uint64_t)m->nvec * MSIX_ENTRY_SIZE;

    /* dword or qword, aligned (PCI 3.0 §6.8.2): anything else reads as 0 */
    if ((len != 4 && len != 8) || (offset & (len - 1)) || offset + len > size) {
        if (!is_write)
            memset(data, 0, len);
        return;
    }
    if (!is_write) {
        memcpy(data, &m->table[offset], len);
        return;
    }
    memcpy(&m->table[offset], data, len);
    sync_all(m);
}

void msix_pba_access(struct msix *m, uint64_t offset, uint8_t *data, unsigned len,
                     bool is_write)
{
    if (is_write)
        return; /* read-only */
    memset(data, 0, len);
    for (unsigned i = 0; i < len; i++) {
        uint64_t bit = (offset + i) * 8;
        for (unsigned b = 0; b < 8; b++)
            if (bit + b < m->nvec && msix_pending(m, (unsigned)(bit + b)))
                data[i] |= (uint8_t)(1u << b);
    }
}

void msix_cfg_write(struct msix *m, unsigned offset, unsigned len)
{
    if (offset + len <= m->cap || offset >= m->cap + CAP_LEN)
        return;
    sync_all(m);
}

int msix_notify(struct msix *m, unsigned v)
{
    if (v >= m->nvec || !msix_enabled(m))
        return -EINVAL;
    if (msix_vector_masked(m, v)) {
        set_pending(m, v, true);
        return 0;
    }
    deliver(m, v);
    return 0;
}

void msix_set_intx(struct msix *m, void (*fn)(void *opaque), void *opaque)
{
    m->intx_fn = fn;
    m->intx_opaque = opaque;
}

int msix_set_source(struct msix *m, unsigned slot, int fd, unsigned vector)
{
    if (slot >= MSIX_MAX_SOURCES)
        return -EINVAL;
    struct msix_source *s = &m->src[slot];

    if (s->fd >= 0) {
        source_unwire(m, s);
        source_unwatch(s);
        if (s->watch)
            event_free_finalize(0, s->watch, watch_finalized);
        s->watch = NULL;
        s->fd = -1;
    }
    if (fd < 0)
        return 0;
    if (vector != MSIX_NO_VECTOR && vector >= m->nvec)
        return -EINVAL;
    s->fd = fd;
    s->vector = vector;
    s->watch = event_new(vm_event_base(m->vm), fd, EV_READ | EV_PERSIST | EV_FINALIZE,
                         source_watch_cb, s);
    if (!s->watch) {
        s->fd = -1;
        return -ENOMEM;
    }
    source_sync(m, s);
    return 0;
}
