/* The Intel MultiProcessor Specification 1.4 table, which is how a guest
 * without ACPI finds its CPUs, the IOAPIC and the ISA/PCI interrupt wiring.
 *
 * Interrupt wiring it describes (and vm.c's GSI routes implement):
 *   ISA IRQ 0 (PIT) -> IOAPIC pin 2; ISA IRQ n (1..15, not 2) -> pin n, edge;
 *   PCI device d, INTA# -> pin 16 + d % 8 (GSI 16 + d % 8), level, active low;
 *   LINT0 ExtINT, LINT1 NMI on every LAPIC.
 * APIC ids are 0..ncpus-1 (vCPU 0 the BSP); the IOAPIC's id is ncpus. */
#ifndef VMM_MPTABLE_H
#define VMM_MPTABLE_H

#include <stddef.h>
#include <stdint.h>

/* Writes the floating pointer and the configuration table at mem + addr
 * (gpa addr); returns the bytes used or -1 when size is too small. */
int mptable_write(uint8_t *mem, size_t size, uint64_t addr, unsigned ncpus);

/* PCI INTA# of device d as a GSI, as the table routes it. */
static inline unsigned mptable_pci_gsi(unsigned dev)
{
    return 16 + dev % 8;
}

#endif
