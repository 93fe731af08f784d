/* Per-vCPU CPU state the VMM sets before the first KVM_RUN: CPUID (what KVM
 * supports, patched per vCPU), MSRs, LAPIC LVTs and the FPU. */
#ifndef VMM_CPUID_H
#define VMM_CPUID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kvm_cpuid2;
struct kvm_lapic_state;

/* KVM_GET_SUPPORTED_CPUID into a table with spare room for leaves the
 * patch adds. NULL with err set on failure. Free with free(). */
struct kvm_cpuid2 *cpuid_supported(int kvm_fd, char *err, size_t errlen);

/* Patches a copy of the supported table for vCPU apic_id of ncpus (pure):
 * APIC ids in leaves 1 and 0xB, logical count and HTT, the hypervisor bit,
 * the KVM signature leaves 0x40000000/1 (added if missing, when capacity
 * allows), and features the VMM does not back cleared (PMU leaf 0xA,
 * PDCM, MONITOR/MWAIT, energy-perf bias). */
void cpuid_patch(struct kvm_cpuid2 *c, unsigned capacity, unsigned apic_id, unsigned ncpus);

/* Offers the TSC-deadline mode of the LAPIC timer (CPUID.1:ECX[24]), which
 * KVM emulates when it has KVM_CAP_TSC_DEADLINE_TIMER but does not list in
 * KVM_GET_SUPPORTED_CPUID (VMMs add it, as QEMU does). Without it Linux
 * calibrates the LAPIC timer against the PIT at boot, which under nested
 * KVM fails its own check ("APIC timer disabled due to verification
 * failure") and leaves every tick to the PIT through the IOAPIC. */
void cpuid_set_tsc_deadline(struct kvm_cpuid2 *c);

/* Finds leaf/index in the table, or NULL. */
struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t function, uint32_t index);

int cpuid_setup_vcpu(int vcpu_fd, const struct kvm_cpuid2 *supported, unsigned apic_id,
                     unsigned ncpus, char *err, size_t errlen);

/* LVT LINT0 as ExtINT on the BSP (the PIC's output), LINT1 as NMI (pure). */
void lapic_patch(struct kvm_lapic_state *s, bool bsp);

int vcpu_setup_lapic(int vcpu_fd, bool bsp, char *err, size_t errlen);
int vcpu_setup_msrs(int vcpu_fd, char *err, size_t errlen);
int vcpu_setup_fpu(int vcpu_fd, char *err, size_t errlen);

#endif
