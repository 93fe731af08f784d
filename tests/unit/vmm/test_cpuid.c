/* cpuid.c: the per-vCPU CPUID patch and the LAPIC LVT setup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <linux/kvm.h>

#include "cpuid.h"

static struct kvm_cpuid2 *table(unsigned cap)
{
    struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + cap * sizeof(struct kvm_cpuid_entry2));
    struct kvm_cpuid_entry2 *e = c->entries;
    e[0] = (struct kvm_cpuid_entry2){.function = 0, .eax = 0xd};
    e[1] = (struct kvm_cpuid_entry2){.function = 1, .eax = 0x806f8, .ebx = 0x00ff0800,
                                     .ecx = 0x7ffafbff, .edx = 0x0fabfbff};
    e[2] = (struct kvm_cpuid_entry2){.function = 0xa, .eax = 0x07300402, .edx = 0x603};
    e[3] = (struct kvm_cpuid_entry2){.function = 0xb, .index = 0,
                                     .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .edx = 99};
    e[4] = (struct kvm_cpuid_entry2){.function = 0xb, .index = 1,
                                     .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .edx = 99};
    e[5] = (struct kvm_cpuid_entry2){.function = 6, .ecx = 0x9};
    e[6] = (struct kvm_cpuid_entry2){.function = 4, .index = 0,
                                     .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 0x121};
    c->nent = 7;
    return c;
}

static void test_leaf1(void **state)
{
    struct kvm_cpuid2 *c = table(16);
    cpuid_patch(c, 16, 3, 4);
    struct kvm_cpuid_entry2 *e = cpuid_find(c, 1, 0);
    assert_non_null(e);
    assert_int_equal(e->ebx >> 24, 3);            /* initial APIC id */
    assert_int_equal((e->ebx >> 16) & 0xff, 4);   /* logical processors */
    assert_int_equal(e->ebx & 0xffff, 0x0800);    /* CLFLUSH size kept */
    assert_true(e->ecx & (1u << 31));             /* hypervisor */
    assert_false(e->ecx & (1u << 3));             /* no MONITOR */
    assert_false(e->ecx & (1u << 15));            /* no PDCM */
    assert_true(e->edx & (1u << 28));             /* HTT */
    assert_int_equal(e->eax, 0x806f8);            /* signature untouched */
    free(c);

    c = table(16);
    cpuid_patch(c, 16, 0, 1);
    e = cpuid_find(c, 1, 0);
    assert_int_equal(e->ebx >> 24, 0);
    assert_int_equal((e->ebx >> 16) & 0xff, 1);
    free(c);
}

/* The LAPIC timer's TSC-deadline mode is offered when KVM emulates it (Linux
 * then skips calibrating the LAPIC timer against the PIT, which failed under
 * nested KVM and left all ticks to the PIT); the patch keeps it. */
static void test_tsc_deadline(void **state)
{
    struct kvm_cpuid2 *c = table(16);
    c->entries[1].ecx &= ~(1u << 24);
    cpuid_set_tsc_deadline(c);
    assert_true(cpuid_find(c, 1, 0)->ecx & (1u << 24));
    cpuid_patch(c, 16, 1, 2);
    assert_true(cpuid_find(c, 1, 0)->ecx & (1u << 24));
    free(c);
}

static void test_topology_and_pmu(void **state)
{
    struct kvm_cpuid2 *c = table(16);
    cpuid_patch(c, 16, 2, 3);
    struct kvm_cpuid_entry2 *b0 = cpuid_find(c, 0xb, 0), *b1 = cpuid_find(c, 0xb, 1);
    assert_int_equal(b0->edx, 2);
    assert_int_equal(b1->edx, 2);
    assert_int_equal(b0->ebx, 1);
    assert_int_equal((b0->ecx >> 8) & 0xff, 1);   /* SMT level */
    assert_int_equal(b1->ebx, 3);
    assert_int_equal(b1->eax, 2);                 /* 2 bits cover 3 cores */
    assert_int_equal((b1->ecx >> 8) & 0xff, 2);   /* core level */
    struct kvm_cpuid_entry2 *a = cpuid_find(c, 0xa, 0);
    assert_int_equal(a->eax | a->ebx | a->ecx | a->edx, 0);
    assert_int_equal(cpuid_find(c, 6, 0)->ecx, 0x1);
    assert_int_equal(cpuid_find(c, 4, 0)->eax >> 26, 2);
    assert_int_equal(cpuid_find(c, 4, 0)->eax & 0x3ffffff, 0x121);
    free(c);
}

static void test_kvm_signature(void **state)
{
    struct kvm_cpuid2 *c = table(16);
    cpuid_patch(c, 16, 0, 1);
    struct kvm_cpuid_entry2 *s = cpuid_find(c, 0x40000000, 0);
    assert_non_null(s);
    char sig[13];
    memcpy(sig, &s->ebx, 4);
    memcpy(sig + 4, &s->ecx, 4);
    memcpy(sig + 8, &s->edx, 4);
    sig[12] = 0;
    assert_string_equal(sig, "KVMKVMKVM");
    assert_true(s->eax >= 0x40000001);
    assert_non_null(cpuid_find(c, 0x40000001, 0));
    unsigned n = c->nent;
    cpuid_patch(c, 16, 0, 1); /* idempotent: nothing added twice */
    assert_int_equal(c->nent, n);
    free(c);

    /* no room: nothing written past capacity */
    c = table(7);
    cpuid_patch(c, 7, 0, 1);
    assert_int_equal(c->nent, 7);
    assert_null(cpuid_find(c, 0x40000000, 0));
    free(c);
}

static void test_lapic(void **state)
{
    struct kvm_lapic_state s;
    memset(&s, 0, sizeof(s));
    uint32_t masked = 0x10000;
    memcpy(&s.regs[0x350], &masked, 4);
    memcpy(&s.regs[0x360], &masked, 4);
    lapic_patch(&s, true);
    uint32_t l0, l1;
    memcpy(&l0, &s.regs[0x350], 4);
    memcpy(&l1, &s.regs[0x360], 4);
    assert_int_equal(l0, 0x700); /* ExtINT, unmasked */
    assert_int_equal(l1, 0x400); /* NMI, unmasked */

    memcpy(&s.regs[0x350], &masked, 4);
    memcpy(&s.regs[0x360], &masked, 4);
    lapic_patch(&s, false);
    memcpy(&l0, &s.regs[0x350], 4);
    memcpy(&l1, &s.regs[0x360], 4);
    assert_int_equal(l0, 0x10000); /* an AP's LINT0 stays masked */
    assert_int_equal(l1, 0x400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leaf1),
        cmocka_unit_test(test_tsc_deadline),
        cmocka_unit_test(test_topology_and_pmu),
        cmocka_unit_test(test_kvm_signature),
        cmocka_unit_test(test_lapic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
