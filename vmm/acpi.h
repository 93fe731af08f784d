/* ACPI tables: how a modern guest finds its CPUs, the IOAPIC, the PCI host
 * bridge with its INTx routing, and how it powers off and resets.
 *
 * The MP table (mptable.h) says the same for guests without ACPI, but many
 * distribution kernels are built without CONFIG_X86_MPPARSE (Debian's cloud
 * kernel is): without ACPI such a guest sees one CPU, no IOAPIC (everything
 * on the 8259 PIC, the PIT as its clock event) and probes the i8042 for
 * seconds. So the VMM writes both, as QEMU and Firecracker do:
 *
 *   RSDP (revision 2) -> XSDT -> FADT, MADT;  FADT -> DSDT.
 *
 * FADT (revision 6, not hardware-reduced: the guest keeps the 8259s and the
 *   PIT it knows from QEMU's pc machine): SCI on IRQ 9 (never raised), the
 *   PM1a event block at ACPI_PM1A_EVT_PORT (status/enable, always 0) and
 *   control block at PLATFORM_PM1A_CNT (platform.c: SLP_EN powers off), no
 *   PM timer, no GPE blocks, no SMI command port (the guest is in ACPI mode
 *   from the start); IAPC_BOOT_ARCH without 8042 and VGA (the guest does not
 *   probe them; MSI allowed); the reset register: I/O port 0x64, value 0xFE
 *   (platform.c's i8042 reset). A FACS, as full ACPI wants one.
 * MADT: a LAPIC per vCPU (ids 0..n-1), the IOAPIC (id n, GSI base 0), ISA
 *   IRQ 0 -> GSI 2, LINT1 NMI; PCAT_COMPAT (the 8259s exist).
 * DSDT: \_S5 = {5, 5, 0, 0}; \_SB.PCI0 (PNP0A03) with bus 0, the conf1
 *   ports, the I/O space and the 32-bit MMIO hole as _CRS, and a _PRT that
 *   routes INTA# of device d to GSI mptable_pci_gsi(d) (level, active low),
 *   the same wiring as the MP table. */
#ifndef VMM_ACPI_H
#define VMM_ACPI_H

#include <stddef.h>
#include <stdint.h>

#define ACPI_TABLES_ADDR 0xE0000ull /* in the reserved BIOS area; the RSDP first */
#define ACPI_TABLES_MAX 0x10000ull  /* up to 0xF0000, where the MP table goes */

#define ACPI_PM1A_EVT_PORT 0x600    /* PM1a status (2 bytes) and enable (2 bytes) */
#define ACPI_SCI_IRQ 9
#define ACPI_SLP_TYP_S5 5           /* \_S5's SLP_TYP (PM1 control bits 12:10) */
#define ACPI_RESET_PORT 0x64
#define ACPI_RESET_VALUE 0xFE

struct acpi_config {
    unsigned ncpus;
    uint64_t mmio_start, mmio_end; /* the PCI hole given to the host bridge (end exclusive) */
};

/* Writes the tables at mem + addr (gpa addr), within max bytes; returns the
 * bytes used or -1 when they do not fit. The RSDP is at addr. */
int acpi_write_tables(uint8_t *mem, size_t size, uint64_t addr, size_t max,
                      const struct acpi_config *cfg);

/* Byte sum of a table (0 when its checksum is right; tests). */
uint8_t acpi_sum(const uint8_t *p, size_t n);

#endif
