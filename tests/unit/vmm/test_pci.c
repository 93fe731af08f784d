/* vmm/pci.c: configuration mechanism #1, the type-0 header, BAR sizing and
 * decode, the capability list. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fake_vm.h"
#include "pci.h"

struct env {
    struct vm *vm;
    struct pci_bus *bus;
    struct pci_dev *dev;
    unsigned maps, unmaps;
    uint64_t last_map;
    unsigned cfg_writes;
    uint8_t bar_mem[64];
};

static struct env E;

static void bar_io(void *opaque, uint64_t off, uint8_t *data, unsigned len, bool w)
{
    struct env *e = opaque;
    if (w)
        memcpy(e->bar_mem + off, data, len);
    else
        memcpy(data, e->bar_mem + off, len);
}

static void bar_map(void *opaque, unsigned bar, uint64_t gpa, bool mapped)
{
    struct env *e = opaque;
    if (mapped) {
        e->maps++;
        e->last_map = gpa;
    } else {
        e->unmaps++;
    }
}

static void cfg_hook(void *opaque, unsigned off, unsigned len)
{
    ((struct env *)opaque)->cfg_writes++;
}

static int setup(void **state)
{
    memset(&E, 0, sizeof(E));
    E.vm = fake_vm_create(1 << 20);
    E.bus = pci_bus_create(E.vm);
    assert_non_null(E.bus);
    E.dev = pci_dev_create(E.bus, 0x1af4, 0x1041, 1, 0x020000, 0x1af4, 0x1100);
    assert_non_null(E.dev);
    *state = &E;
    return 0;
}

static int teardown(void **state)
{
    pci_bus_destroy(E.bus);
    fake_vm_destroy(E.vm);
    return 0;
}

/* a mechanism #1 address for slot, register */
static uint32_t caddr(unsigned slot, unsigned reg)
{
    return 0x80000000u | slot << 11 | (reg & 0xfc);
}

static uint32_t cfg_read(unsigned slot, unsigned reg, unsigned len)
{
    fake_pio_write(E.vm, 0xcf8, 4, caddr(slot, reg));
    return fake_pio_read(E.vm, (uint16_t)(0xcfc + (reg & 3)), len);
}

static void cfg_write(unsigned slot, unsigned reg, unsigned len, uint32_t v)
{
    fake_pio_write(E.vm, 0xcf8, 4, caddr(slot, reg));
    fake_pio_write(E.vm, (uint16_t)(0xcfc + (reg & 3)), len, v);
}

static void test_host_bridge(void **state)
{
    assert_int_equal(cfg_read(0, 0, 4), 0x12378086);
    assert_int_equal(cfg_read(0, 0x0a, 2), 0x0600); /* host bridge class */
    assert_int_equal(cfg_read(0, 0x0e, 1), 0);      /* type 0, single function */
}

static void test_address_register(void **state)
{
    fake_pio_write(E.vm, 0xcf8, 4, 0x80001234);
    assert_int_equal(fake_pio_read(E.vm, 0xcf8, 4), 0x80001234 & 0x80fffffc);
    /* byte and word writes to 0xCF8 do not reach the address register */
    fake_pio_write(E.vm, 0xcf8, 1, 0);
    fake_pio_write(E.vm, 0xcf8, 2, 0);
    assert_int_equal(fake_pio_read(E.vm, 0xcf8, 4), 0x80001234 & 0x80fffffc);
    /* enable bit clear: the data port floats */
    fake_pio_write(E.vm, 0xcf8, 4, 0x00000000);
    assert_int_equal(fake_pio_read(E.vm, 0xcfc, 4), 0xffffffff);
    /* another bus or function is absent */
    fake_pio_write(E.vm, 0xcf8, 4, 0x80010000);
    assert_int_equal(fake_pio_read(E.vm, 0xcfc, 4), 0xffffffff);
    fake_pio_write(E.vm, 0xcf8, 4, caddr(1, 0) | 0x100);
    assert_int_equal(fake_pio_read(E.vm, 0xcfc, 2), 0xffff);
}

static void test_empty_slot(void **state)
{
    assert_int_equal(cfg_read(7, 0, 4), 0xffffffff);
    assert_int_equal(cfg_read(7, 0, 2), 0xffff);
    assert_int_equal(cfg_read(7, 2, 1), 0xff);
}

static void test_ids_byte_word_dword(void **state)
{
    unsigned s = pci_dev_slot(E.dev);
    assert_int_equal(s, 1);
    assert_int_equal(cfg_read(s, 0, 4), 0x10411af4);
    assert_int_equal(cfg_read(s, 0, 2), 0x1af4);
    assert_int_equal(cfg_read(s, 2, 2), 0x1041);
    assert_int_equal(cfg_read(s, 1, 1), 0x1a);
    assert_int_equal(cfg_read(s, 3, 1), 0x10);
    assert_int_equal(cfg_read(s, 8, 4), 0x02000001); /* class 02/00/00, rev 1 */
    assert_int_equal(cfg_read(s, 0x0b, 1), 0x02);
    assert_int_equal(cfg_read(s, 0x2c, 4), 0x11001af4);
    /* ids are read-only */
    cfg_write(s, 0, 4, 0);
    cfg_write(s, 2, 2, 0xbeef);
    assert_int_equal(cfg_read(s, 0, 4), 0x10411af4);
}

static void test_command_status(void **state)
{
    unsigned s = pci_dev_slot(E.dev);
    cfg_write(s, 4, 2, 0xffff);
    assert_int_equal(cfg_read(s, 4, 2), 0x0407); /* io, mem, master, intx disable */
    cfg_write(s, 4, 2, 0);
    assert_int_equal(cfg_read(s, 4, 2), 0);
    /* byte write to the high half of the command word */
    cfg_write(s, 5, 1, 0x04);
    assert_int_equal(cfg_read(s, 4, 2), 0x0400);
    /* status is not writable except write-one-to-clear bits, none set */
    cfg_write(s, 6, 2, 0xffff);
    assert_int_equal(cfg_read(s, 6, 2) & 0xff00, 0);
}

static void test_bar_assign_and_size(void **state)
{
    unsigned s = pci_dev_slot(E.dev);
    assert_int_equal(pci_dev_add_bar(E.dev, 0, 0x1000, bar_io, &E, bar_map), 0);
    assert_int_equal(pci_dev_add_bar(E.dev, 2, 0x4000, bar_io, &E, bar_map), 0);
    assert_int_equal(pci_dev_add_bar(E.dev, 2, 0x4000, bar_io, &E, NULL), -EINVAL);
    assert_int_equal(pci_dev_add_bar(E.dev, 3, 0x3000, bar_io, &E, NULL), -EINVAL);

    uint32_t b0 = cfg_read(s, 0x10, 4), b2 = cfg_read(s, 0x18, 4);
    assert_true(b0 >= PCI_MMIO_HOLE_START && b0 < PCI_MMIO_HOLE_END);
    assert_true(b2 >= PCI_MMIO_HOLE_START && b2 < PCI_MMIO_HOLE_END);
    assert_int_equal(b0 & 0xfff, 0);
    assert_int_equal(b2 & 0x3fff, 0);
    assert_int_equal(cfg_read(s, 0x14, 4), 0); /* unimplemented BAR */
    assert_true(fake_vm_mmio_registered(E.vm, b2));
    assert_int_equal(cfg_read(s, 4, 2) & PCI_COMMAND_MEMORY, PCI_COMMAND_MEMORY);

    /* sizing as Linux does it: decode off, all ones, read, restore */
    cfg_write(s, 4, 2, 0);
    assert_false(fake_vm_mmio_registered(E.vm, b2));
    cfg_write(s, 0x18, 4, 0xffffffff);
    assert_int_equal(cfg_read(s, 0x18, 4), 0xffffc000);
    cfg_write(s, 0x14, 4, 0xffffffff);
    assert_int_equal(cfg_read(s, 0x14, 4), 0);
    cfg_write(s, 0x18, 4, b2);
    cfg_write(s, 4, 2, PCI_COMMAND_MEMORY);
    assert_int_equal(cfg_read(s, 0x18, 4), b2);
    assert_true(fake_vm_mmio_registered(E.vm, b2));

    /* the guest moves the BAR: the MMIO range follows, the device is told */
    unsigned maps = E.maps, unmaps = E.unmaps;
    uint32_t nb = 0xe0000000;
    cfg_write(s, 0x18, 4, nb | 0x123); /* low bits are not address bits */
    assert_int_equal(cfg_read(s, 0x18, 4), nb);
    assert_false(fake_vm_mmio_registered(E.vm, b2));
    assert_true(fake_vm_mmio_registered(E.vm, nb));
    assert_int_equal(E.unmaps, unmaps + 1);
    assert_int_equal(E.maps, maps + 1);
    assert_int_equal(E.last_map, nb);
    assert_int_equal(pci_dev_bar_addr(E.dev, 2), nb);
    assert_true(pci_dev_bar_mapped(E.dev, 2));

    /* accesses reach the device at the new address */
    fake_mmio_write(E.vm, nb + 8, 4, 0xa5a5a5a5);
    assert_int_equal(fake_mmio_read(E.vm, nb + 8, 4), 0xa5a5a5a5);
    assert_int_equal(fake_mmio_read(E.vm, nb + 9, 1), 0xa5);

    /* word writes into a BAR assemble an address */
    cfg_write(s, 4, 2, 0);
    cfg_write(s, 0x1a, 2, 0xd000);
    cfg_write(s, 0x18, 2, 0x4000);
    assert_int_equal(cfg_read(s, 0x18, 4), 0xd0004000);
    cfg_write(s, 4, 2, PCI_COMMAND_MEMORY);
    assert_true(fake_vm_mmio_registered(E.vm, 0xd0004000));
}

static void test_capabilities(void **state)
{
    unsigned s = pci_dev_slot(E.dev);
    uint8_t cap1[8] = {0x09, 0xee, 8, 1, 2, 3, 4, 5};
    uint8_t cap2[6] = {0x11, 0, 0x11, 0x22, 0x33, 0x44};
    uint8_t wm2[6] = {0, 0, 0, 0xc0, 0, 0};

    assert_int_equal(cfg_read(s, 6, 2) & PCI_STATUS_CAP_LIST, 0);
    int o1 = pci_dev_add_cap(E.dev, cap1, sizeof(cap1), NULL);
    int o2 = pci_dev_add_cap(E.dev, cap2, sizeof(cap2), wm2);
    pci_dev_set_cfg_write(E.dev, cfg_hook, &E);
    assert_int_equal(o1, 0x40);
    assert_int_equal(o2, 0x48);
    assert_int_equal(cfg_read(s, 6, 2) & PCI_STATUS_CAP_LIST, PCI_STATUS_CAP_LIST);
    assert_int_equal(cfg_read(s, 0x34, 1), 0x40);
    /* walk the list as a guest does */
    unsigned ids[4], n = 0;
    for (unsigned p = cfg_read(s, 0x34, 1); p && n < 4; p = cfg_read(s, p + 1, 1))
        ids[n++] = cfg_read(s, p, 1);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 0x09);
    assert_int_equal(ids[1], 0x11);
    assert_int_equal(cfg_read(s, 0x40, 4), 0x01084809);
    assert_int_equal(cfg_read(s, 0x44, 4), 0x05040302);
    assert_int_equal(cfg_read(s, 0x42, 4), 0xffffffff); /* crosses the window */
    /* read-only capability bytes stay; masked bits change and the hook runs */
    cfg_write(s, 0x42, 2, 0xffff);
    assert_int_equal(cfg_read(s, 0x42, 2), 0x0108);
    cfg_write(s, 0x4a, 2, 0xffff);
    assert_int_equal(cfg_read(s, 0x4a, 2), 0xe211);
    assert_int_equal(E.cfg_writes, 2);
}

static void test_intx(void **state)
{
    unsigned s = pci_dev_slot(E.dev);
    pci_dev_set_intx(E.dev, 11);
    assert_int_equal(cfg_read(s, 0x3d, 1), 1);
    assert_int_equal(cfg_read(s, 0x3c, 1), 11);
    cfg_write(s, 0x3c, 1, 5); /* the line register is the guest's scratch */
    assert_int_equal(cfg_read(s, 0x3c, 1), 5);
    cfg_write(s, 0x3d, 1, 3);
    assert_int_equal(cfg_read(s, 0x3d, 1), 1);
}

static void test_bus_full(void **state)
{
    unsigned n = 0;
    while (pci_dev_create(E.bus, 0x1234, 0x5678, 0, 0, 0, 0))
        n++;
    assert_int_equal(n, PCI_MAX_SLOTS - 2); /* host bridge and E.dev */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_host_bridge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_address_register, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_slot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ids_byte_word_dword, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bar_assign_and_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capabilities, setup, teardown),
        cmocka_unit_test_setup_teardown(test_intx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bus_full, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
