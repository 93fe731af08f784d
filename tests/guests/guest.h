/* A tiny runtime for guest programs run by vmm (the kvm-unit-tests way):
 * freestanding, 64-bit, identity-mapped 0..4 GiB, CPL0. Every instruction
 * here is emulated on this machine's KVM (about 1 M instr/s) and every port
 * or MMIO access that leaves the kernel costs 10-25 us: keep loops short.
 *
 * A program defines `int guest_main(void)`; returning powers the VM off
 * (vmm exits 0). Console: COM1. Interrupts: idt_init() once, then
 * idt_set(vector, fn); lapic_enable(); sti. */
#ifndef GUEST_H
#define GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int guest_main(void);
/* APs started by smp_start_aps() run this (cpu = 1, 2, ...). */
typedef void (*ap_fn)(unsigned cpu);

/* ---- port and memory-mapped I/O */
static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint16_t inw(uint16_t port) { uint16_t v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t inl(uint16_t port) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint8_t mmio_read8(uint64_t a) { return *(volatile uint8_t *)a; }
static inline uint16_t mmio_read16(uint64_t a) { return *(volatile uint16_t *)a; }
static inline uint32_t mmio_read32(uint64_t a) { return *(volatile uint32_t *)a; }
static inline uint64_t mmio_read64(uint64_t a) { return *(volatile uint64_t *)a; }
static inline void mmio_write8(uint64_t a, uint8_t v) { *(volatile uint8_t *)a = v; }
static inline void mmio_write16(uint64_t a, uint16_t v) { *(volatile uint16_t *)a = v; }
static inline void mmio_write32(uint64_t a, uint32_t v) { *(volatile uint32_t *)a = v; }
static inline void mmio_write64(uint64_t a, uint64_t v) { *(volatile uint64_t *)a = v; }
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }
static inline void irq_enable(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void irq_disable(void) { __asm__ volatile("cli" ::: "memory"); }
/* Waits for an interrupt with none lost: sti takes effect after hlt starts. */
static inline void wait_for_irq(void) { __asm__ volatile("sti; hlt; cli" ::: "memory"); }

/* ---- console (COM1; each byte is one exit) and strings */
void putc(char c);
void puts(const char *s);                /* no newline added */
void printf(const char *fmt, ...);      /* %s %c %d %u %x %lu %lx %ld %p, no widths */
void vprintf(const char *fmt, va_list ap);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);

/* ---- boot information */
enum boot_kind { BOOT_KIND_BZIMAGE, BOOT_KIND_PVH };
enum boot_kind boot_kind(void);
const char *boot_cmdline(void);          /* "" if none */
/* Value of KEY=VALUE on the command line into buf; false if absent. */
bool cmdline_get(const char *key, char *buf, size_t len);
unsigned long cmdline_uint(const char *key, unsigned long dflt);
unsigned e820_count(void);               /* entries the VMM passed */

/* ---- ending: vmm exits 0 (power-off), 3 (reboot), 4 (triple fault) */
void __attribute__((noreturn)) poweroff(void);
void __attribute__((noreturn)) reboot(void);
void __attribute__((noreturn)) triple_fault(void);
void __attribute__((noreturn)) halt_forever(void);

/* ---- interrupts */
typedef void (*isr_fn)(unsigned vector, uint64_t error);
void idt_init(void);                     /* exceptions print and power off */
void idt_set(unsigned vector, isr_fn fn);

#define LAPIC_BASE 0xFEE00000ull
#define IOAPIC_BASE 0xFEC00000ull
void lapic_enable(void);                 /* software-enable, spurious vector 0xFF */
unsigned lapic_id(void);
void lapic_eoi(void);
void lapic_self_ipi(unsigned vector);
void lapic_send_ipi(unsigned apic_id, unsigned vector);
/* Routes IOAPIC pin to vector on apic_id; level-triggered active-low if level. */
void ioapic_route(unsigned pin, unsigned vector, unsigned apic_id, bool level);
void ioapic_mask(unsigned pin);
void pic_disable(void);                  /* mask both 8259s */

/* ---- SMP */
/* APIC ids of the processors the MP table lists (BSP first); count. */
unsigned mp_cpus(uint8_t *apic_ids, unsigned max);
/* Starts every AP in the MP table with INIT-SIPI-SIPI; each runs fn(cpu).
 * Returns the number of APs that reached fn within the spin budget. */
unsigned smp_start_aps(ap_fn fn);

struct spinlock { volatile int v; };
void spin_lock(struct spinlock *l);
void spin_unlock(struct spinlock *l);

#endif
