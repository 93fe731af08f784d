/* The guest runtime: console, boot information, interrupts, LAPIC/IOAPIC,
 * MP table and AP start-up. See guest.h. */
#include "guest.h"

#define COM1 0x3F8
#define AP_TRAMP 0x8000

extern char ap_tramp_start[], ap_tramp_end[], isr_stubs[];
extern volatile int ap_count;

static const uint8_t *zero_page;
static const uint8_t *pvh_info;
static struct spinlock print_lock;
static isr_fn handlers[256];
static ap_fn ap_main;
static volatile unsigned ap_started;

struct idt_gate {
    uint16_t off0, sel;
    uint8_t ist, type;
    uint16_t off1;
    uint32_t off2, zero;
} __attribute__((packed));
static struct idt_gate idt[256] __attribute__((aligned(16)));

/* ---------------------------------------------------------------- libc bits */

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i] != b[i] || !a[i])
            return (unsigned char)a[i] - (unsigned char)b[i];
    }
    return 0;
}

void *memset(void *d, int c, size_t n)
{
    uint8_t *p = d;
    while (n--)
        *p++ = (uint8_t)c;
    return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
    uint8_t *p = d;
    const uint8_t *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *p = a, *q = b;
    for (size_t i = 0; i < n; i++)
        if (p[i] != q[i])
            return p[i] - q[i];
    return 0;
}

void spin_lock(struct spinlock *l)
{
    while (__atomic_exchange_n(&l->v, 1, __ATOMIC_ACQUIRE))
        cpu_relax();
}

void spin_unlock(struct spinlock *l)
{
    __atomic_store_n(&l->v, 0, __ATOMIC_RELEASE);
}

/* ---------------------------------------------------------------- console */

/* vmm's UART transmits at once, so THR is never busy: no LSR poll, one
 * exit per byte instead of two. */
void putc(char c)
{
    outb(COM1, (uint8_t)c);
}

void puts(const char *s)
{
    while (*s)
        putc(*s++);
}

static void put_uint(uint64_t v, unsigned base)
{
    char buf[24];
    int i = 0;
    do {
        unsigned d = (unsigned)(v % base);
        buf[i++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v);
    while (i--)
        putc(buf[i]);
}

void vprintf(const char *fmt, va_list ap)
{
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            putc(*fmt);
            continue;
        }
        bool lng = false;
        if (*++fmt == 'l') {
            lng = true;
            fmt++;
        }
        switch (*fmt) {
        case 's': puts(va_arg(ap, const char *)); break;
        case 'c': putc((char)va_arg(ap, int)); break;
        case 'd': {
            int64_t v = lng ? va_arg(ap, long) : va_arg(ap, int);
            if (v < 0) {
                putc('-');
                v = -v;
            }
            put_uint((uint64_t)v, 10);
            break;
        }
        case 'u': put_uint(lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 10); break;
        case 'x': put_uint(lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 16); break;
        case 'p': puts("0x"); put_uint((uint64_t)va_arg(ap, void *), 16); break;
        case '%': putc('%'); break;
        default: putc('?'); break;
        }
    }
}

void printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    spin_lock(&print_lock);
    vprintf(fmt, ap);
    spin_unlock(&print_lock);
    va_end(ap);
}

/* ---------------------------------------------------------------- boot info */

static uint32_t rd32(const uint8_t *p)
{
    return *(const uint32_t *)p;
}

enum boot_kind boot_kind(void)
{
    return pvh_info ? BOOT_KIND_PVH : BOOT_KIND_BZIMAGE;
}

const char *boot_cmdline(void)
{
    uint64_t p = 0;
    if (zero_page)
        p = rd32(zero_page + 0x228);
    else if (pvh_info)
        p = *(const uint64_t *)(pvh_info + 24);
    return p ? (const char *)p : "";
}

bool cmdline_get(const char *key, char *buf, size_t len)
{
    const char *s = boot_cmdline();
    size_t kl = strlen(key);
    while (*s) {
        while (*s == ' ')
            s++;
        if (!strncmp(s, key, kl) && s[kl] == '=') {
            s += kl + 1;
            size_t i = 0;
            while (*s && *s != ' ' && i + 1 < len)
                buf[i++] = *s++;
            buf[i] = 0;
            return true;
        }
        while (*s && *s != ' ')
            s++;
    }
    return false;
}

unsigned long cmdline_uint(const char *key, unsigned long dflt)
{
    char buf[24];
    if (!cmdline_get(key, buf, sizeof(buf)) || !buf[0])
        return dflt;
    unsigned long v = 0;
    for (const char *p = buf; *p >= '0' && *p <= '9'; p++)
        v = v * 10 + (unsigned long)(*p - '0');
    return v;
}

unsigned e820_count(void)
{
    if (zero_page)
        return zero_page[0x1E8];
    if (pvh_info)
        return rd32(pvh_info + 48);
    return 0;
}

/* ---------------------------------------------------------------- ending */

void poweroff(void)
{
    outw(0x604, 0x2000); /* PM1a_CNT: SLP_EN */
    halt_forever();
}

void reboot(void)
{
    outb(0x64, 0xfe); /* i8042: pulse the reset line */
    halt_forever();
}

void triple_fault(void)
{
    static const struct {
        uint16_t limit;
        uint64_t base;
    } __attribute__((packed)) empty = {0, 0};
    /* ud2 with no IDT: #UD cannot be delivered, #DF neither: shutdown.
     * (int3 would do on real KVM; this machine's emulator stops on it.) */
    __asm__ volatile("lidt %0; ud2" ::"m"(empty));
    halt_forever();
}

void halt_forever(void)
{
    for (;;)
        __asm__ volatile("cli; hlt");
}

/* ---------------------------------------------------------------- interrupts */

void guest_isr(uint64_t vector, uint64_t error, uint64_t *frame);
void guest_isr(uint64_t vector, uint64_t error, uint64_t *frame)
{
    if (handlers[vector]) {
        handlers[vector]((unsigned)vector, error);
        return;
    }
    if (vector < 32) {
        printf("GUEST EXCEPTION %lu error 0x%lx rip 0x%lx\n", vector, error, frame[0]);
        triple_fault();
    }
    if (vector != 0xff) {
        printf("unexpected interrupt %lu\n", vector);
        lapic_eoi();
    }
}

void idt_init(void)
{
    for (unsigned v = 0; v < 256; v++) {
        uint64_t a = (uint64_t)isr_stubs + 16 * v;
        idt[v] = (struct idt_gate){(uint16_t)a, 0x10, 0, 0x8e, (uint16_t)(a >> 16),
                                   (uint32_t)(a >> 32), 0};
    }
    struct {
        uint16_t limit;
        uint64_t base;
    } __attribute__((packed)) d = {sizeof(idt) - 1, (uint64_t)idt};
    __asm__ volatile("lidt %0" ::"m"(d));
}

void idt_set(unsigned vector, isr_fn fn)
{
    handlers[vector & 0xff] = fn;
}

static uint32_t lapic_read(unsigned reg)
{
    return mmio_read32(LAPIC_BASE + reg);
}

static void lapic_write(unsigned reg, uint32_t v)
{
    mmio_write32(LAPIC_BASE + reg, v);
}

void lapic_enable(void)
{
    lapic_write(0xF0, 0x100 | 0xFF);
}

unsigned lapic_id(void)
{
    return lapic_read(0x20) >> 24;
}

void lapic_eoi(void)
{
    lapic_write(0xB0, 0);
}

void lapic_self_ipi(unsigned vector)
{
    lapic_write(0x300, (1u << 18) | 0x4000 | (vector & 0xff)); /* self, assert */
}

void lapic_send_ipi(unsigned apic_id, unsigned vector)
{
    lapic_write(0x310, apic_id << 24);
    lapic_write(0x300, 0x4000 | (vector & 0xff));
}

static void ioapic_write(unsigned reg, uint32_t v)
{
    mmio_write32(IOAPIC_BASE, reg);
    mmio_write32(IOAPIC_BASE + 0x10, v);
}

void ioapic_route(unsigned pin, unsigned vector, unsigned apic_id, bool level)
{
    uint32_t lo = (vector & 0xff) | (level ? (1u << 15) | (1u << 13) : 0);
    ioapic_write(0x11 + 2 * pin, apic_id << 24);
    ioapic_write(0x10 + 2 * pin, lo);
}

void ioapic_mask(unsigned pin)
{
    ioapic_write(0x10 + 2 * pin, 1u << 16);
}

void pic_disable(void)
{
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
}

/* ---------------------------------------------------------------- SMP */

unsigned mp_cpus(uint8_t *apic_ids, unsigned max)
{
    const uint8_t *fp = 0;
    for (uint64_t a = 0xF0000; a < 0x100000; a += 16) {
        if (!memcmp((const void *)a, "_MP_", 4)) {
            fp = (const uint8_t *)a;
            break;
        }
    }
    if (!fp)
        return 0;
    const uint8_t *ct = (const uint8_t *)(uint64_t)rd32(fp + 4);
    if (memcmp(ct, "PCMP", 4))
        return 0;
    unsigned count = *(const uint16_t *)(ct + 34), n = 0;
    const uint8_t *e = ct + 44;
    for (unsigned i = 0; i < count; i++) {
        if (e[0] == 0) {
            if ((e[3] & 1) && n < max) {
                /* BSP first */
                if (e[3] & 2) {
                    for (unsigned j = n; j > 0; j--)
                        apic_ids[j] = apic_ids[j - 1];
                    apic_ids[0] = e[1];
                } else {
                    apic_ids[n] = e[1];
                }
                n++;
            }
            e += 20;
        } else {
            e += 8;
        }
    }
    return n;
}

void guest_ap_entry(unsigned slot);
void guest_ap_entry(unsigned slot)
{
    __atomic_add_fetch(&ap_started, 1, __ATOMIC_SEQ_CST);
    if (ap_main)
        ap_main(slot + 1);
    halt_forever();
}

static uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

unsigned smp_start_aps(ap_fn fn)
{
    uint8_t ids[16];
    unsigned n = mp_cpus(ids, 16), me = lapic_id(), aps = 0;
    ap_main = fn;
    memcpy((void *)AP_TRAMP, ap_tramp_start, (size_t)(ap_tramp_end - ap_tramp_start));
    for (unsigned i = 0; i < n; i++) {
        if (ids[i] == me)
            continue;
        lapic_write(0x310, (uint32_t)ids[i] << 24);
        lapic_write(0x300, 0x4500);                    /* INIT */
        lapic_write(0x310, (uint32_t)ids[i] << 24);
        lapic_write(0x300, 0x4600 | (AP_TRAMP >> 12)); /* SIPI */
        aps++;
    }
    /* A few seconds of TSC at most; an AP needs far less. */
    uint64_t t0 = rdtsc();
    while (ap_started < aps && rdtsc() - t0 < 20000000000ull)
        cpu_relax();
    return ap_started;
}

/* ---------------------------------------------------------------- entry */

void guest_entry(const uint8_t *zp, const uint8_t *pvh);
void guest_entry(const uint8_t *zp, const uint8_t *pvh)
{
    zero_page = zp;
    pvh_info = pvh;
    guest_main();
    poweroff();
}
