/* CPUID, MSRs, LAPIC and FPU state for each vCPU. */
#include "util.h"
#include "cpuid.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define CPUID_SPARE 8


struct kvm_cpuid2 *cpuid_supported(int kvm_fd, char *err, size_t errlen)
{
    for (unsigned n = 128; n <= 4096; n *= 2) {
        struct kvm_cpuid2 *c =
            calloc(1, sizeof(*c) + (n + CPUID_SPARE) * sizeof(struct kvm_cpuid_entry2));
        if (!c) {
            errf(err, errlen, "out of memory");
            return NULL;
        }
        c->nent = n;
        if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
            return c;
        int e = errno;
        free(c);
        if (e != E2BIG) {
            errf(err, errlen, "KVM_GET_SUPPORTED_CPUID: %s", strerror(e));
            return NULL;
        }
    }
    errf(err, errlen, "KVM_GET_SUPPORTED_CPUID: table too large");
    return NULL;
}

struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t function, uint32_t index)
{
    for (uint32_t i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        if (e->function != function)
            continue;
        if (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == index)
            return e;
    }
    return NULL;
}

static unsigned bits_for(unsigned n)
{
    unsigned b = 0;
    while ((1u << b) < n)
        b++;
    return b;
}

void cpuid_patch(struct kvm_cpuid2 *c, unsigned capacity, unsigned apic_id, unsigned ncpus)
{
    for (uint32_t i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        switch (e->function) {
        case 1:
            e->ebx = (e->ebx & 0x0000ffffu) | ((ncpus & 0xffu) << 16) | (apic_id << 24);
            if (ncpus > 1)
                e->edx |= 1u << 28; /* HTT: the logical count is valid */
            e->ecx |= 1u << 31;     /* hypervisor */
            e->ecx &= ~((1u << 3) | (1u << 15)); /* MONITOR, PDCM */
            break;
        case 4:
            /* every vCPU a core of one package */
            e->eax = (e->eax & 0x03ffffffu) | (((ncpus - 1) & 0x3fu) << 26);
            break;
        case 6:
            e->ecx &= ~(1u << 3); /* energy-performance bias MSR */
            break;
        case 0xA:                 /* no PMU exposed */
            e->eax = e->ebx = e->ecx = e->edx = 0;
            break;
        case 0xB:
        case 0x1F:
            e->edx = apic_id;
            if (e->index == 0) {          /* SMT level: one thread per core */
                e->eax = 0;
                e->ebx = 1;
                e->ecx = (1u << 8) | 0;
            } else if (e->index == 1) {   /* core level */
                e->eax = bits_for(ncpus);
                e->ebx = ncpus;
                e->ecx = (2u << 8) | 1;
            } else {
                e->eax = e->ebx = 0;
                e->ecx = e->index & 0xff;
            }
            break;
        default:
            break;
        }
    }
    struct kvm_cpuid_entry2 *sig = cpuid_find(c, 0x40000000, 0);
    if (!sig && c->nent < capacity) {
        sig = &c->entries[c->nent++];
        memset(sig, 0, sizeof(*sig));
        sig->function = 0x40000000;
    }
    if (sig) {
        memcpy(&sig->ebx, "KVMK", 4);
        memcpy(&sig->ecx, "VMKV", 4);
        memcpy(&sig->edx, "M\0\0\0", 4);
        if (sig->eax < 0x40000001)
            sig->eax = 0x40000001;
    }
    if (!cpuid_find(c, 0x40000001, 0) && c->nent < capacity) {
        struct kvm_cpuid_entry2 *f = &c->entries[c->nent++];
        memset(f, 0, sizeof(*f));
        f->function = 0x40000001;
    }
}

void cpuid_set_tsc_deadline(struct kvm_cpuid2 *c)
{
    struct kvm_cpuid_entry2 *e = cpuid_find(c, 1, 0);
    if (e)
        e->ecx |= 1u << 24;
}

int cpuid_setup_vcpu(int vcpu_fd, const struct kvm_cpuid2 *supported, unsigned apic_id,
                     unsigned ncpus, char *err, size_t errlen)
{
    unsigned cap = supported->nent + CPUID_SPARE;
    size_t sz = sizeof(*supported) + cap * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *c = calloc(1, sz);
    if (!c) {
        errf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    memcpy(c, supported,
           sizeof(*supported) + supported->nent * sizeof(struct kvm_cpuid_entry2));
    cpuid_patch(c, cap, apic_id, ncpus);
    int r = 0;
    if (ioctl(vcpu_fd, KVM_SET_CPUID2, c) < 0) {
        r = -errno;
        errf(err, errlen, "KVM_SET_CPUID2 on vCPU %u: %s", apic_id, strerror(errno));
    }
    free(c);
    return r;
}

void lapic_patch(struct kvm_lapic_state *s, bool bsp)
{
    static const unsigned lvt_lint0 = 0x350, lvt_lint1 = 0x360;
    uint32_t v;
    if (bsp) {
        memcpy(&v, &s->regs[lvt_lint0], 4);
        v = (v & ~0x10700u) | (7u << 8); /* ExtINT, unmasked */
        memcpy(&s->regs[lvt_lint0], &v, 4);
    }
    memcpy(&v, &s->regs[lvt_lint1], 4);
    v = (v & ~0x10700u) | (4u << 8); /* NMI, unmasked */
    memcpy(&s->regs[lvt_lint1], &v, 4);
}

int vcpu_setup_lapic(int vcpu_fd, bool bsp, char *err, size_t errlen)
{
    struct kvm_lapic_state s;
    if (ioctl(vcpu_fd, KVM_GET_LAPIC, &s) < 0) {
        errf(err, errlen, "KVM_GET_LAPIC: %s", strerror(errno));
        return -errno;
    }
    lapic_patch(&s, bsp);
    if (ioctl(vcpu_fd, KVM_SET_LAPIC, &s) < 0) {
        errf(err, errlen, "KVM_SET_LAPIC: %s", strerror(errno));
        return -errno;
    }
    return 0;
}

int vcpu_setup_msrs(int vcpu_fd, char *err, size_t errlen)
{
    static const struct {
        uint32_t index;
        uint64_t value;
        const char *name;
    } msrs[] = {
        {0x174, 0, "IA32_SYSENTER_CS"},
        {0x175, 0, "IA32_SYSENTER_ESP"},
        {0x176, 0, "IA32_SYSENTER_EIP"},
        {0xc0000081, 0, "STAR"},
        {0xc0000082, 0, "LSTAR"},
        {0xc0000083, 0, "CSTAR"},
        {0xc0000084, 0, "SYSCALL_MASK"},
        {0xc0000102, 0, "KERNEL_GS_BASE"},
        {0x10, 0, "IA32_TSC"},
        {0x1a0, 1, "IA32_MISC_ENABLE"},               /* fast strings */
        {0x2ff, (1u << 11) | 6, "IA32_MTRR_DEF_TYPE"}, /* MTRRs on, write-back */
    };
    enum { N = sizeof(msrs) / sizeof(msrs[0]) };
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry e[N];
    } m;
    memset(&m, 0, sizeof(m));
    m.hdr.nmsrs = N;
    for (unsigned i = 0; i < N; i++) {
        m.e[i].index = msrs[i].index;
        m.e[i].data = msrs[i].value;
    }
    int r = ioctl(vcpu_fd, KVM_SET_MSRS, &m);
    if (r < 0) {
        errf(err, errlen, "KVM_SET_MSRS: %s", strerror(errno));
        return -errno;
    }
    if (r < N) {
        errf(err, errlen, "KVM refused MSR %s (0x%x)", msrs[r].name, msrs[r].index);
        return -EINVAL;
    }
    return 0;
}

int vcpu_setup_fpu(int vcpu_fd, char *err, size_t errlen)
{
    struct kvm_fpu f;
    memset(&f, 0, sizeof(f));
    f.fcw = 0x37f;
    f.mxcsr = 0x1f80;
    if (ioctl(vcpu_fd, KVM_SET_FPU, &f) < 0) {
        errf(err, errlen, "KVM_SET_FPU: %s", strerror(errno));
        return -errno;
    }
    return 0;
}
