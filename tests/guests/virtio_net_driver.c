/* A minimal modern virtio-net driver (virtio 1.2 §4.1, §5.1, split rings):
 * finds 1af4:1041 with mechanism #1, maps its capabilities, negotiates
 * VERSION_1|MAC|STATUS, sets up RX (MSI-X vector 1) and TX (no vector,
 * completions polled), waits for the link, then sends frames in batches and
 * waits for each batch to come back (a macswap/io peer behind the switch),
 * counting the RX MSI-X interrupts in the IDT handler.
 *
 * Command line: count=N (frames, default 256), batch=B (default 32),
 * timeout=S (seconds, default 20), reconnect=1 (after the first round wait
 * for the link to go down and up again — the switch restarting — then run a
 * second round, settle=S seconds after the link is back, default 3),
 * delay=S (seconds between link up and the first round, default 0),
 * continuous=1 (instead of rounds, one frame out and back at a time for ever,
 * each reported on the console as "rt SEQ" or, when it has not come back
 * within wait=T ticks of 10 ms (default 100), "lost SEQ"; gap=T ticks between
 * round trips (default 2); "link down" / "link up" as the switch goes away and
 * returns; the VMM is killed to end it). Markers for the e2e test's exit count:
 * "mark start" / "mark idle" / "mark done" (same length), each followed by
 * a quiet second. Ends with "virtio_net_driver passed" or "... FAILED". */
#include "guest.h"

#define QSZ 64
#define BUF 2048
#define HDR 12 /* virtio_net_hdr with VERSION_1 */
#define FRAME 64
#define ETHERTYPE 0x88b5
#define NO_VECTOR 0xffff

#define VEC_CONFIG 0x40
#define VEC_RX 0x41
#define VEC_TIMER 0x42

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};
struct avail {
    uint16_t flags, idx, ring[QSZ], used_event;
};
struct used_elem {
    uint32_t id, len;
};
struct used {
    uint16_t flags, idx;
    struct used_elem ring[QSZ];
    uint16_t avail_event;
};

struct queue {
    struct desc desc[QSZ] __attribute__((aligned(4096)));
    struct avail avail __attribute__((aligned(4096)));
    struct used used __attribute__((aligned(4096)));
    uint16_t last_used;
    uint64_t notify;
};

static struct queue rxq, txq;
static uint8_t rxbuf[QSZ][BUF] __attribute__((aligned(4096)));
static uint8_t txbuf[QSZ][HDR + FRAME] __attribute__((aligned(64)));

static uint64_t common, isr, devcfg, notify_base, msix_table;
static uint32_t notify_mult;
static volatile unsigned rx_irqs, cfg_irqs, ticks;
static unsigned tx_inflight;
static unsigned long tx_next;

/* ---- PCI */
static uint32_t cfg32(unsigned slot, unsigned reg)
{
    outl(0xCF8, 0x80000000u | slot << 11 | (reg & 0xfc));
    return inl(0xCFC);
}
static uint8_t cfg8(unsigned slot, unsigned reg)
{
    outl(0xCF8, 0x80000000u | slot << 11 | (reg & 0xfc));
    return inb((uint16_t)(0xCFC + (reg & 3)));
}
static void cfg16w(unsigned slot, unsigned reg, uint16_t v)
{
    outl(0xCF8, 0x80000000u | slot << 11 | (reg & 0xfc));
    outw((uint16_t)(0xCFC + (reg & 2)), v);
}
static uint64_t bar_addr(unsigned slot, unsigned bar)
{
    return cfg32(slot, 0x10 + 4 * bar) & ~0xfull;
}

/* ---- common configuration (offsets, §4.1.4.3) */
#define C_DFSEL 0x00
#define C_DF 0x04
#define C_GFSEL 0x08
#define C_GF 0x0c
#define C_MSIX 0x10
#define C_STATUS 0x14
#define C_QSEL 0x16
#define C_QSIZE 0x18
#define C_QMSIX 0x1a
#define C_QENABLE 0x1c
#define C_QNOFF 0x1e
#define C_QDESC 0x20
#define C_QDRIVER 0x28
#define C_QDEVICE 0x30

static void on_rx(unsigned v, uint64_t e) { rx_irqs++; lapic_eoi(); }
static void on_config(unsigned v, uint64_t e) { cfg_irqs++; lapic_eoi(); }
static void on_timer(unsigned v, uint64_t e) { ticks++; lapic_eoi(); }

/* LAPIC timer, periodic, ~100 Hz (KVM's APIC bus runs at 1 GHz) */
static void timer_start(void)
{
    mmio_write32(LAPIC_BASE + 0x3e0, 0xb);                 /* divide by 1 */
    mmio_write32(LAPIC_BASE + 0x320, VEC_TIMER | 1u << 17); /* periodic */
    mmio_write32(LAPIC_BASE + 0x380, 10000000);
}
static void timer_stop(void)
{
    mmio_write32(LAPIC_BASE + 0x320, 1u << 16);
}
static void quiet_ticks(unsigned n)
{
    unsigned until = ticks + n;
    while (ticks < until)
        wait_for_irq();
}
static void quiet_seconds(unsigned s)
{
    quiet_ticks(100 * s);
}

static void msix_entry(unsigned n, unsigned vector)
{
    uint64_t e = msix_table + 16 * n;
    mmio_write32(e + 0, (uint32_t)(LAPIC_BASE | lapic_id() << 12));
    mmio_write32(e + 4, 0);
    mmio_write32(e + 8, vector); /* fixed, edge */
    mmio_write32(e + 12, 0);     /* unmasked */
}

static bool queue_setup(struct queue *q, unsigned idx, uint16_t vector)
{
    mmio_write16(common + C_QSEL, (uint16_t)idx);
    uint16_t max = mmio_read16(common + C_QSIZE);
    if (max < QSZ) {
        printf("queue %u: max size %u < %u\n", idx, max, QSZ);
        return false;
    }
    mmio_write16(common + C_QSIZE, QSZ);
    mmio_write16(common + C_QMSIX, vector);
    if (mmio_read16(common + C_QMSIX) != vector) {
        printf("queue %u: vector %u refused\n", idx, vector);
        return false;
    }
    mmio_write64(common + C_QDESC, (uint64_t)q->desc);
    mmio_write64(common + C_QDRIVER, (uint64_t)&q->avail);
    mmio_write64(common + C_QDEVICE, (uint64_t)&q->used);
    q->notify = notify_base + (uint64_t)mmio_read16(common + C_QNOFF) * notify_mult;
    mmio_write16(common + C_QENABLE, 1);
    return true;
}

static void rx_post(uint16_t id)
{
    rxq.desc[id] = (struct desc){(uint64_t)rxbuf[id], BUF, 2 /* WRITE */, 0};
    rxq.avail.ring[rxq.avail.idx % QSZ] = id;
    barrier();
    rxq.avail.idx++;
}

static bool find_device(unsigned *slot_out)
{
    for (unsigned s = 0; s < 32; s++) {
        if (cfg32(s, 0) == 0x10411af4) {
            *slot_out = s;
            return true;
        }
    }
    return false;
}

static bool map_caps(unsigned slot)
{
    unsigned msix_cap = 0;
    for (unsigned p = cfg8(slot, 0x34), n = 0; p && n < 16; p = cfg8(slot, p + 1), n++) {
        unsigned id = cfg8(slot, p);
        if (id == 0x11) {
            msix_cap = p;
            uint32_t t = cfg32(slot, p + 4);
            msix_table = bar_addr(slot, t & 7) + (t & ~7u);
        } else if (id == 0x09) {
            uint64_t a = bar_addr(slot, cfg8(slot, p + 4)) + cfg32(slot, p + 8);
            switch (cfg8(slot, p + 3)) {
            case 1: common = a; break;
            case 2: notify_base = a; notify_mult = cfg32(slot, p + 16); break;
            case 3: isr = a; break;
            case 4: devcfg = a; break;
            }
        }
    }
    if (!msix_cap || !common || !notify_base || !isr || !devcfg)
        return false;
    cfg16w(slot, 0x04, 0x0006 | 0x0400); /* memory, bus master, INTx off */
    cfg16w(slot, msix_cap + 2, 0x8000);  /* MSI-X enable */
    return true;
}

/* Reclaims finished TX descriptors; returns how many are in flight. */
static unsigned tx_reap(unsigned inflight)
{
    while (txq.last_used != *(volatile uint16_t *)&txq.used.idx) {
        txq.last_used++;
        inflight--;
    }
    return inflight;
}

/* Counts returned frames of ours (all of them, or with want >= 0 only those
 * whose sequence byte is want). */
static unsigned rx_reap(const uint8_t *mac, unsigned *swapped, int want)
{
    unsigned got = 0;
    while (rxq.last_used != *(volatile uint16_t *)&rxq.used.idx) {
        barrier();
        struct used_elem *u = &rxq.used.ring[rxq.last_used % QSZ];
        uint16_t id = (uint16_t)u->id;
        const uint8_t *f = rxbuf[id] + HDR;
        if (id < QSZ && u->len >= HDR + 15 && f[12] == ETHERTYPE >> 8 &&
            f[13] == (ETHERTYPE & 0xff) && (want < 0 || f[14] == (uint8_t)want)) {
            got++;
            if (!memcmp(f, mac, 6))
                (*swapped)++;
        }
        rxq.last_used++;
        rx_post(id);
    }
    if (got)
        mmio_write16(rxq.notify, 0);
    return got;
}

struct round {
    unsigned long sent, received;
    unsigned swapped, irqs, ticks, lost_rounds;
};

/* Sends count frames in batches, each batch waited for on RX (interrupts
 * wake the wait; timer ticks bound it). */
static struct round traffic(unsigned long count, unsigned long batch, const uint8_t *mac,
                            unsigned budget)
{
    struct round r = {0};
    unsigned start = ticks, irqs0 = rx_irqs, limit = ticks + budget;

    while (r.sent < count && ticks < limit) {
        unsigned n = (unsigned)(count - r.sent < batch ? count - r.sent : batch);
        tx_inflight = tx_reap(tx_inflight);
        while (tx_inflight + n > QSZ && ticks < limit) { /* TX has no interrupt */
            cpu_relax();
            tx_inflight = tx_reap(tx_inflight);
        }
        if (tx_inflight + n > QSZ)
            break;
        for (unsigned i = 0; i < n; i++) {
            uint16_t id = (uint16_t)(tx_next++ % QSZ);
            txbuf[id][HDR + 14] = (uint8_t)(r.sent + i);
            txq.avail.ring[txq.avail.idx % QSZ] = id;
            barrier();
            txq.avail.idx++;
        }
        tx_inflight += n;
        mmio_write16(txq.notify, 1);
        r.sent += n;
        unsigned got = 0, deadline = ticks + 100;
        irq_disable();
        while (got < n && ticks < deadline) {
            got += rx_reap(mac, &r.swapped, -1);
            if (got < n)
                wait_for_irq();
        }
        irq_enable();
        r.received += got;
        if (got < n)
            r.lost_rounds++;
    }
    r.irqs = rx_irqs - irqs0;
    r.ticks = ticks - start;
    return r;
}

static bool link_is_up(void)
{
    return mmio_read16(devcfg + 6) & 1;
}

/* continuous=1: never returns. A frame that went out before the switch died
 * may still come back after; the sequence byte keeps it from counting for a
 * later round trip. */
static void continuous(const uint8_t *mac, unsigned wait, unsigned gap)
{
    unsigned swapped = 0;

    for (unsigned long seq = 0;; seq++) {
        if (!link_is_up()) {
            puts("link down\n");
            while (!link_is_up())
                wait_for_irq();
            puts("link up\n");
        }
        tx_inflight = tx_reap(tx_inflight);
        if (tx_inflight >= QSZ) { /* the switch is not taking frames: wait */
            printf("lost %lu\n", seq);
            quiet_ticks(wait);
            continue;
        }
        uint16_t id = (uint16_t)(tx_next++ % QSZ);
        txbuf[id][HDR + 14] = (uint8_t)seq;
        txq.avail.ring[txq.avail.idx % QSZ] = id;
        barrier();
        txq.avail.idx++;
        tx_inflight++;
        mmio_write16(txq.notify, 1);
        unsigned got = 0, deadline = ticks + wait;
        irq_disable();
        while (!got && ticks < deadline) {
            got = rx_reap(mac, &swapped, (int)(seq & 0xff));
            if (!got)
                wait_for_irq();
        }
        irq_enable();
        printf(got ? "rt %lu\n" : "lost %lu\n", seq);
        quiet_ticks(gap);
    }
}

static void report(const char *what, const struct round *r)
{
    printf("%s: sent %lu received %lu swapped %u rx_irqs %u ticks %u lost_rounds %u\n", what,
           r->sent, r->received, r->swapped, r->irqs, r->ticks, r->lost_rounds);
}

int guest_main(void)
{
    unsigned slot;
    unsigned long count = cmdline_uint("count", 256), batch = cmdline_uint("batch", 32);
    unsigned long timeout = cmdline_uint("timeout", 20);
    uint8_t mac[6];
    const uint8_t peer[6] = {0x02, 0, 0, 0, 0, 0x02};

    if (batch > QSZ / 2)
        batch = QSZ / 2;
    idt_init();
    pic_disable();
    lapic_enable();
    idt_set(VEC_RX, on_rx);
    idt_set(VEC_CONFIG, on_config);
    idt_set(VEC_TIMER, on_timer);
    timer_start();

    if (!find_device(&slot) || !map_caps(slot)) {
        puts("no usable virtio-net device\nvirtio_net_driver FAILED\n");
        return 0;
    }
    /* §3.1.1 initialization */
    mmio_write8(common + C_STATUS, 0);
    mmio_write8(common + C_STATUS, 1);
    mmio_write8(common + C_STATUS, 3);
    mmio_write32(common + C_DFSEL, 0);
    uint32_t f0 = mmio_read32(common + C_DF);
    mmio_write32(common + C_DFSEL, 1);
    uint32_t f1 = mmio_read32(common + C_DF);
    uint32_t want0 = f0 & (1u << 5 | 1u << 16); /* MAC, STATUS */
    if (!(f1 & 1)) {
        puts("device lacks VERSION_1\nvirtio_net_driver FAILED\n");
        return 0;
    }
    mmio_write32(common + C_GFSEL, 0);
    mmio_write32(common + C_GF, want0);
    mmio_write32(common + C_GFSEL, 1);
    mmio_write32(common + C_GF, 1);
    mmio_write8(common + C_STATUS, 0x0b);
    if (!(mmio_read8(common + C_STATUS) & 0x08)) {
        puts("FEATURES_OK refused\nvirtio_net_driver FAILED\n");
        return 0;
    }
    printf("features offered %x:%x accepted %x:1\n", f1, f0, want0);
    msix_entry(0, VEC_CONFIG);
    msix_entry(1, VEC_RX);
    mmio_write16(common + C_MSIX, 0);
    if (!queue_setup(&rxq, 0, 1) || !queue_setup(&txq, 1, NO_VECTOR)) {
        puts("virtio_net_driver FAILED\n");
        return 0;
    }
    for (uint16_t i = 0; i < QSZ; i++)
        rx_post(i);
    mmio_write8(common + C_STATUS, 0x0f);
    mmio_write16(rxq.notify, 0);
    for (unsigned i = 0; i < 6; i++)
        mac[i] = mmio_read8(devcfg + i);
    printf("mac %x:%x:%x:%x:%x:%x\n", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);

    unsigned until = ticks + 100 * (unsigned)timeout;
    while (!(mmio_read16(devcfg + 6) & 1) && ticks < until)
        wait_for_irq();
    if (!(mmio_read16(devcfg + 6) & 1)) {
        puts("link stays down\nvirtio_net_driver FAILED\n");
        return 0;
    }
    puts("link up\n");
    quiet_seconds((unsigned)cmdline_uint("delay", 0)); /* the peer behind the switch */

    /* TX frames: header zero (no offloads), then dst peer, src us, type, seq */
    for (unsigned i = 0; i < QSZ; i++) {
        uint8_t *b = txbuf[i];
        memset(b, 0, HDR + FRAME);
        memcpy(b + HDR, peer, 6);
        memcpy(b + HDR + 6, mac, 6);
        b[HDR + 12] = ETHERTYPE >> 8;
        b[HDR + 13] = ETHERTYPE & 0xff;
        txq.desc[i] = (struct desc){(uint64_t)b, HDR + FRAME, 0, 0};
    }

    if (cmdline_uint("continuous", 0))
        continuous(mac, (unsigned)cmdline_uint("wait", 100), (unsigned)cmdline_uint("gap", 2));

    puts("mark start\n");
    quiet_seconds(1);
    puts("mark idle \n");
    quiet_seconds(1);
    struct round r1 = traffic(count, batch, mac, 100 * (unsigned)timeout);
    puts("mark done \n");
    quiet_seconds(1);
    report("round 1", &r1);
    bool ok = r1.sent == count && r1.received == count && r1.irqs > 0;

    if (cmdline_uint("reconnect", 0)) {
        /* the switch goes away and comes back; this driver is not restarted */
        puts("waiting for link down\n");
        unsigned cfg0 = cfg_irqs;
        until = ticks + 100 * (unsigned)timeout;
        while ((mmio_read16(devcfg + 6) & 1) && ticks < until)
            wait_for_irq();
        bool down = !(mmio_read16(devcfg + 6) & 1);
        printf("link %s, config irqs %u\n", down ? "down" : "still up", cfg_irqs - cfg0);
        until = ticks + 100 * (unsigned)timeout;
        while (!(mmio_read16(devcfg + 6) & 1) && ticks < until)
            wait_for_irq();
        bool up = mmio_read16(devcfg + 6) & 1;
        printf("link %s again, config irqs %u\n", up ? "up" : "not up", cfg_irqs - cfg0);
        quiet_seconds((unsigned)cmdline_uint("settle", 3)); /* the switch's other ports */
        struct round r2 = traffic(count, batch, mac, 100 * (unsigned)timeout);
        report("round 2", &r2);
        ok = ok && down && up && cfg_irqs - cfg0 >= 2 && r2.sent == count &&
             r2.received == count;
    }
    timer_stop();
    puts(ok ? "virtio_net_driver passed\n" : "virtio_net_driver FAILED\n");
    return 0;
}
