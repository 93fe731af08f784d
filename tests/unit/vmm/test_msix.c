/* vmm/msix.c: the capability, the table and PBA, per-vector and function
 * masking, pending delivery on unmask, and irqfd wiring that follows masks. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_vm.h"
#include "msix.h"
#include "pci.h"

#define NVEC 4

static struct vm *vm;
static struct pci_bus *bus;
static struct pci_dev *dev;
static struct msix *m;
static unsigned slot, cap;

static int setup(void **state)
{
    vm = fake_vm_create(1 << 20);
    bus = pci_bus_create(vm);
    dev = pci_dev_create(bus, 0x1af4, 0x1041, 1, 0x020000, 0, 0);
    m = msix_create(vm, dev, NVEC, 0, 0x000, 0x800);
    assert_non_null(m);
    slot = pci_dev_slot(dev);
    cap = pci_cfg_read(bus, slot, PCI_CAPABILITY_LIST, 1);
    return 0;
}

static int teardown(void **state)
{
    msix_destroy(m);
    pci_bus_destroy(bus);
    fake_vm_destroy(vm);
    return 0;
}

static void tbl_write(unsigned v, unsigned field, uint32_t val)
{
    uint8_t b[4] = {(uint8_t)val, (uint8_t)(val >> 8), (uint8_t)(val >> 16),
                    (uint8_t)(val >> 24)};
    msix_table_access(m, v * 16 + field, b, 4, true);
}

static uint32_t tbl_read(unsigned v, unsigned field)
{
    uint8_t b[4];
    msix_table_access(m, v * 16 + field, b, 4, false);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
           (uint32_t)b[3] << 24;
}

static uint64_t pba(void)
{
    uint8_t b[8];
    msix_pba_access(m, 0, b, 8, false);
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; i++)
        v |= (uint64_t)b[i] << (8 * i);
    return v;
}

static void ctrl_write(uint16_t v)
{
    pci_cfg_write(bus, slot, cap + 2, 2, v);
    msix_cfg_write(m, cap + 2, 2); /* what the device's hook does */
}

static void program(unsigned v, uint32_t data, bool masked)
{
    tbl_write(v, 0, 0xfee00000);
    tbl_write(v, 4, 0);
    tbl_write(v, 8, data);
    tbl_write(v, 12, masked ? 1 : 0);
}

static void test_capability(void **state)
{
    assert_int_equal(pci_cfg_read(bus, slot, cap, 1), PCI_CAP_ID_MSIX);
    assert_int_equal(pci_cfg_read(bus, slot, cap + 2, 2), NVEC - 1);
    assert_int_equal(pci_cfg_read(bus, slot, cap + 4, 4), 0x000); /* BIR 0, offset 0 */
    assert_int_equal(pci_cfg_read(bus, slot, cap + 8, 4), 0x800);
    /* only enable and function mask are writable */
    pci_cfg_write(bus, slot, cap + 2, 2, 0xffff);
    assert_int_equal(pci_cfg_read(bus, slot, cap + 2, 2), 0xc000 | (NVEC - 1));
    pci_cfg_write(bus, slot, cap + 4, 4, 0x12345678);
    assert_int_equal(pci_cfg_read(bus, slot, cap + 4, 4), 0);
}

static void test_table_reset_state(void **state)
{
    for (unsigned v = 0; v < NVEC; v++) {
        assert_int_equal(tbl_read(v, 0), 0);
        assert_int_equal(tbl_read(v, 12), 1); /* masked at reset */
        assert_true(msix_vector_masked(m, v));
    }
    assert_int_equal(pba(), 0);
    assert_false(msix_enabled(m));
    assert_int_equal(msix_notify(m, 0), -EINVAL); /* disabled */
    assert_int_equal(msix_notify(m, NVEC), -EINVAL);
}

static void test_table_access_sizes(void **state)
{
    uint8_t q[8] = {0x00, 0x10, 0xe0, 0xfe, 0, 0, 0, 0};
    msix_table_access(m, 16, q, 8, true); /* qword: addr lo+hi */
    assert_int_equal(tbl_read(1, 0), 0xfee01000);
    uint8_t b[2] = {0xff, 0xff};
    msix_table_access(m, 16, b, 2, true); /* word writes are ignored */
    assert_int_equal(tbl_read(1, 0), 0xfee01000);
    msix_table_access(m, 16, b, 2, false);
    assert_int_equal(b[0], 0);
    msix_table_access(m, 2, q, 4, true); /* unaligned */
    assert_int_equal(tbl_read(0, 0), 0);
    msix_table_access(m, NVEC * 16, q, 4, true); /* past the table */
    /* PBA is read-only */
    msix_pba_access(m, 0, q, 8, true);
    assert_int_equal(pba(), 0);
}

static void test_notify_masked_then_unmask(void **state)
{
    ctrl_write(MSIX_CTRL_ENABLE);
    program(2, 0x4041, true);
    fake_vm_clear_signals(vm);
    assert_int_equal(msix_notify(m, 2), 0);
    assert_int_equal(fake_vm_nsignals(vm), 0);
    assert_int_equal(pba(), 1 << 2);
    assert_true(msix_pending(m, 2));
    tbl_write(2, 12, 0); /* unmask: the pending message goes out once */
    assert_int_equal(fake_vm_nsignals(vm), 1);
    assert_int_equal(fake_vm_signal(vm, 0)->addr, 0xfee00000);
    assert_int_equal(fake_vm_signal(vm, 0)->data, 0x4041);
    assert_int_equal(pba(), 0);
    /* unmasked: delivered at once */
    assert_int_equal(msix_notify(m, 2), 0);
    assert_int_equal(fake_vm_nsignals(vm), 2);
    assert_int_equal(pba(), 0);
}

static void test_function_mask(void **state)
{
    ctrl_write(MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL);
    program(0, 0x30, false);
    program(1, 0x31, false);
    fake_vm_clear_signals(vm);
    msix_notify(m, 0);
    msix_notify(m, 1);
    assert_int_equal(fake_vm_nsignals(vm), 0);
    assert_int_equal(pba(), 3);
    assert_true(msix_vector_masked(m, 0));
    ctrl_write(MSIX_CTRL_ENABLE);
    assert_int_equal(fake_vm_nsignals(vm), 2);
    assert_int_equal(pba(), 0);
    assert_int_equal(fake_vm_signal(vm, 0)->data, 0x30);
    assert_int_equal(fake_vm_signal(vm, 1)->data, 0x31);
    /* the data written last is what goes out */
    program(1, 0x99, false);
    msix_notify(m, 1);
    assert_int_equal(fake_vm_signal(vm, 2)->data, 0x99);
}

static void test_irqfd_follows_mask(void **state)
{
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    uint64_t one = 1;

    ctrl_write(MSIX_CTRL_ENABLE);
    program(1, 0x51, true);
    assert_int_equal(msix_set_source(m, 0, fd, 1), 0);
    /* masked: no route; the VMM watches the eventfd */
    assert_int_equal(fake_vm_routes_active(vm), 0);
    assert_int_equal(write(fd, &one, 8), 8);
    fake_vm_run_events(vm);
    assert_true(msix_pending(m, 1));
    assert_int_equal(pba(), 2);

    /* unmask: pending delivered by the VMM, then the irqfd is wired */
    fake_vm_clear_signals(vm);
    tbl_write(1, 12, 0);
    assert_int_equal(fake_vm_nsignals(vm), 1);
    assert_int_equal(fake_vm_signal(vm, 0)->data, 0x51);
    assert_int_equal(pba(), 0);
    assert_int_equal(fake_vm_routes_active(vm), 1);
    struct fake_route *r = &fake_vm_routes(vm)[0];
    assert_true(r->used);
    assert_int_equal(r->irqfd, fd);
    assert_int_equal(r->data, 0x51);

    /* reprogramming the entry re-aims the route */
    tbl_write(1, 8, 0x52);
    assert_int_equal(r->data, 0x52);
    tbl_write(1, 0, 0xfee01000);
    assert_int_equal(r->addr, 0xfee01000);

    /* signals while the irqfd is wired are KVM's: the VMM does not read them */
    assert_int_equal(write(fd, &one, 8), 8);
    fake_vm_run_events(vm);
    assert_false(msix_pending(m, 1));
    uint64_t cnt;
    assert_int_equal(read(fd, &cnt, 8), 8);

    /* function mask unwires it again */
    ctrl_write(MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL);
    assert_int_equal(fake_vm_routes_active(vm), 0);
    /* a signal that arrived while masked but before the watch ran is not lost */
    assert_int_equal(write(fd, &one, 8), 8);
    fake_vm_clear_signals(vm);
    ctrl_write(MSIX_CTRL_ENABLE);
    assert_int_equal(fake_vm_nsignals(vm), 1);
    assert_int_equal(fake_vm_routes_active(vm), 1);

    /* disabling MSI-X unwires; unbinding removes everything */
    ctrl_write(0);
    assert_int_equal(fake_vm_routes_active(vm), 0);
    assert_int_equal(msix_set_source(m, 0, -1, MSIX_NO_VECTOR), 0);
    assert_int_equal(msix_set_source(m, 0, fd, NVEC), -EINVAL);
    assert_int_equal(msix_set_source(m, MSIX_MAX_SOURCES, fd, 0), -EINVAL);
    fake_vm_run_events(vm);
    close(fd);
}

static unsigned intx_calls;
static void count_intx(void *opaque)
{
    intx_calls++;
}

/* With MSI-X disabled a source's signal goes to the INTx fallback (it used
 * to sit in the PBA until MSI-X came on, which a guest on INTx never does:
 * traffic moved only on the driver's timeouts); with MSI-X on, the irqfd. A
 * source without a vector is watched for the fallback alone. */
static void test_intx_fallback(void **state)
{
    int a = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), b = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    uint64_t one = 1;

    intx_calls = 0;
    msix_set_intx(m, count_intx, NULL);
    program(1, 0x71, false);
    assert_int_equal(msix_set_source(m, 0, a, 1), 0);
    assert_int_equal(msix_set_source(m, 1, b, MSIX_NO_VECTOR), 0);
    assert_int_equal(fake_vm_routes_active(vm), 0);
    assert_int_equal(write(a, &one, 8), 8);
    fake_vm_run_events(vm);
    assert_int_equal(intx_calls, 1);
    assert_false(msix_pending(m, 1));
    assert_int_equal(write(b, &one, 8), 8);
    fake_vm_run_events(vm);
    assert_int_equal(intx_calls, 2);

    /* MSI-X on: a's vector is wired, b (no vector) raises nothing */
    ctrl_write(MSIX_CTRL_ENABLE);
    assert_int_equal(fake_vm_routes_active(vm), 1);
    assert_int_equal(write(b, &one, 8), 8);
    fake_vm_run_events(vm);
    assert_int_equal(intx_calls, 2);
    assert_int_equal(fake_vm_nsignals(vm), 0);

    msix_set_source(m, 0, -1, MSIX_NO_VECTOR);
    msix_set_source(m, 1, -1, MSIX_NO_VECTOR);
    fake_vm_run_events(vm);
    msix_set_intx(m, NULL, NULL);
    close(a);
    close(b);
}

static void test_shared_vector(void **state)
{
    int a = eventfd(0, EFD_NONBLOCK), b = eventfd(0, EFD_NONBLOCK);
    ctrl_write(MSIX_CTRL_ENABLE);
    program(1, 0x61, false);
    msix_set_source(m, 0, a, 1);
    msix_set_source(m, 1, b, 1);
    assert_int_equal(fake_vm_routes_active(vm), 2);
    /* rebinding a source to another vector moves its route */
    program(2, 0x62, false);
    msix_set_source(m, 1, b, 2);
    assert_int_equal(fake_vm_routes_active(vm), 2);
    unsigned found = 0;
    for (unsigned i = 0; i < FAKE_MAX_ROUTES; i++)
        if (fake_vm_routes(vm)[i].used && fake_vm_routes(vm)[i].irqfd == b)
            found = fake_vm_routes(vm)[i].data;
    assert_int_equal(found, 0x62);
    msix_set_source(m, 0, -1, MSIX_NO_VECTOR);
    msix_set_source(m, 1, -1, MSIX_NO_VECTOR);
    assert_int_equal(fake_vm_routes_active(vm), 0);
    fake_vm_run_events(vm);
    close(a);
    close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_capability, setup, teardown),
        cmocka_unit_test_setup_teardown(test_table_reset_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_table_access_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_masked_then_unmask, setup, teardown),
        cmocka_unit_test_setup_teardown(test_function_mask, setup, teardown),
        cmocka_unit_test_setup_teardown(test_irqfd_follows_mask, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_vector, setup, teardown),
        cmocka_unit_test_setup_teardown(test_intx_fallback, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
