/* vmm/virtio_pci.c: the modern transport's PCI identity and capabilities,
 * and the common configuration state machine (feature words, queue select
 * and registers, status transitions with FEATURES_OK checking, reset),
 * ISR, device config, notifications and config-change interrupts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_vm.h"
#include "mptable.h"
#include "virtio_pci.h"

#define F_VERSION_1 (1ULL << 32)
#define F_MAC       (1ULL << 5)
#define F_EVENT_IDX (1ULL << 29)
#define OFFER       (F_VERSION_1 | F_MAC | F_EVENT_IDX)

static struct vm *vm;
static struct pci_bus *bus;
static struct virtio_pci *vp;
static unsigned slot;
static uint64_t bar2;
static struct {
    unsigned driver_ok, reset, notify, last_notify, moved;
    bool refuse;
    uint64_t offered_to_ok;
    uint8_t cfg[8];
} dev;

static void dev_config(void *o, uint64_t off, uint8_t *data, unsigned len, bool w)
{
    if (w)
        memcpy(dev.cfg + off, data, len);
    else
        memcpy(data, dev.cfg + off, len);
}

static bool dev_features_ok(void *o, uint64_t f)
{
    dev.offered_to_ok = f;
    return !dev.refuse;
}

static void dev_driver_ok(void *o)
{
    dev.driver_ok++;
}

static void dev_reset(void *o)
{
    dev.reset++;
}

static void dev_notify(void *o, unsigned q)
{
    dev.notify++;
    dev.last_notify = q;
}

static void dev_moved(void *o, uint64_t gpa, bool mapped)
{
    dev.moved++;
}

static const struct virtio_pci_ops ops = {
    .config_access = dev_config,
    .features_ok = dev_features_ok,
    .driver_ok = dev_driver_ok,
    .reset = dev_reset,
    .notify = dev_notify,
    .notify_moved = dev_moved,
};

static int setup(void **state)
{
    memset(&dev, 0, sizeof(dev));
    memcpy(dev.cfg, "\x52\x54\x00\x12\x34\x56\x01\x00", 8);
    vm = fake_vm_create(1 << 20);
    bus = pci_bus_create(vm);
    vp = virtio_pci_create(vm, bus, 1, 0x020000, 3, 256, 4, 8, OFFER, &ops, NULL);
    assert_non_null(vp);
    slot = pci_dev_slot(virtio_pci_dev(vp));
    bar2 = pci_cfg_read(bus, slot, PCI_BAR0 + 8, 4);
    return 0;
}

static int teardown(void **state)
{
    virtio_pci_destroy(vp);
    pci_bus_destroy(bus);
    fake_vm_destroy(vm);
    return 0;
}

static uint64_t rd(unsigned off, unsigned len)
{
    return fake_mmio_read(vm, bar2 + off, len);
}

static void wr(unsigned off, unsigned len, uint64_t v)
{
    fake_mmio_write(vm, bar2 + off, len, v);
}

static uint64_t read_device_features(void)
{
    wr(VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
    uint64_t lo = rd(VIRTIO_PCI_COMMON_DF, 4);
    wr(VIRTIO_PCI_COMMON_DFSELECT, 4, 1);
    return lo | rd(VIRTIO_PCI_COMMON_DF, 4) << 32;
}

static void write_driver_features(uint64_t f)
{
    wr(VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
    wr(VIRTIO_PCI_COMMON_GF, 4, (uint32_t)f);
    wr(VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
    wr(VIRTIO_PCI_COMMON_GF, 4, f >> 32);
}

static uint8_t status(void)
{
    return (uint8_t)rd(VIRTIO_PCI_COMMON_STATUS, 1);
}

static void test_identity(void **state)
{
    assert_int_equal(pci_cfg_read(bus, slot, 0, 4), 0x10411af4);
    assert_int_equal(pci_cfg_read(bus, slot, PCI_REVISION_ID, 1), 1);
    assert_int_equal(pci_cfg_read(bus, slot, PCI_CLASS_DEVICE, 2), 0x0200);
    assert_int_equal(pci_cfg_read(bus, slot, PCI_SUBSYSTEM_VENDOR, 2), 0x1af4);
    assert_true(bar2 >= PCI_MMIO_HOLE_START);
    assert_true(fake_vm_mmio_registered(vm, bar2));
}

static void test_capabilities(void **state)
{
    unsigned seen = 0, msix = 0;
    for (unsigned p = pci_cfg_read(bus, slot, PCI_CAPABILITY_LIST, 1); p;
         p = pci_cfg_read(bus, slot, p + 1, 1)) {
        unsigned id = pci_cfg_read(bus, slot, p, 1);
        if (id == PCI_CAP_ID_MSIX) {
            msix++;
            assert_int_equal(pci_cfg_read(bus, slot, p + 2, 2) & 0x7ff, 3);
            continue;
        }
        assert_int_equal(id, PCI_CAP_ID_VENDOR);
        unsigned type = pci_cfg_read(bus, slot, p + 3, 1);
        unsigned bar = pci_cfg_read(bus, slot, p + 4, 1);
        uint32_t off = pci_cfg_read(bus, slot, p + 8, 4);
        uint32_t len = pci_cfg_read(bus, slot, p + 12, 4);
        assert_int_equal(bar, VIRTIO_PCI_BAR);
        seen |= 1u << type;
        switch (type) {
        case VIRTIO_PCI_CAP_COMMON_CFG:
            assert_int_equal(off, VIRTIO_PCI_COMMON_OFF);
            assert_true(len >= 0x38);
            break;
        case VIRTIO_PCI_CAP_NOTIFY_CFG:
            assert_int_equal(pci_cfg_read(bus, slot, p + 2, 1), 20);
            assert_int_equal(off, VIRTIO_PCI_NOTIFY_OFF);
            assert_int_equal(pci_cfg_read(bus, slot, p + 16, 4), VIRTIO_PCI_NOTIFY_MULT);
            assert_int_equal(len, 3 * VIRTIO_PCI_NOTIFY_MULT);
            break;
        case VIRTIO_PCI_CAP_ISR_CFG:
            assert_int_equal(off, VIRTIO_PCI_ISR_OFF);
            break;
        case VIRTIO_PCI_CAP_DEVICE_CFG:
            assert_int_equal(off, VIRTIO_PCI_DEVICE_OFF);
            assert_int_equal(len, 8);
            break;
        }
    }
    assert_int_equal(msix, 1);
    assert_int_equal(seen, 0x1e);
}

static void test_feature_select(void **state)
{
    assert_int_equal(read_device_features(), OFFER);
    wr(VIRTIO_PCI_COMMON_DFSELECT, 4, 2);
    assert_int_equal(rd(VIRTIO_PCI_COMMON_DF, 4), 0);
    assert_int_equal(rd(VIRTIO_PCI_COMMON_DFSELECT, 4), 2);
    write_driver_features(F_VERSION_1 | F_MAC);
    wr(VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
    assert_int_equal(rd(VIRTIO_PCI_COMMON_GF, 4), F_MAC);
    wr(VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
    assert_int_equal(rd(VIRTIO_PCI_COMMON_GF, 4), 1);
    assert_int_equal(virtio_pci_driver_features(vp), F_VERSION_1 | F_MAC);
    /* device_feature is read-only */
    wr(VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
    wr(VIRTIO_PCI_COMMON_DF, 4, 0xffffffff);
    assert_int_equal(read_device_features(), OFFER);
}

static void test_status_features_ok(void **state)
{
    wr(VIRTIO_PCI_COMMON_STATUS, 1, 1);
    wr(VIRTIO_PCI_COMMON_STATUS, 1, 3);
    assert_int_equal(status(), 3);
    write_driver_features(F_VERSION_1 | F_EVENT_IDX);
    wr(VIRTIO_PCI_COMMON_STATUS, 1, 0x0b);
    assert_int_equal(status(), 0x0b);
    assert_int_equal(dev.offered_to_ok, F_VERSION_1 | F_EVENT_IDX);
    /* features are frozen after FEATURES_OK */
    write_driver_features(F_VERSION_1);
    assert_int_equal(virtio_pci_driver_features(vp), F_VERSION_1 | F_EVENT_IDX);
    wr(VIRTIO_PCI_COMMON_STATUS, 1, 0x0f);
    assert_int_equal(status(), 0x0f);
    assert_int_equal(dev.driver_ok, 1);
    wr(VIRTIO_PCI_COMMON_STATUS, 1, 0x0f); /* once */
    assert_int_equal(dev.driver_ok, 1);
}

static void test_features_ok_refused(void **state)
{
    /* a feature not offered */
    wr(VIRTIO_PCI_COMMON_STATUS, 1, 3);
    write_driver_features(F_VERSION_1 | (1ULL << 40));
    wr(VIRTIO_PCI_COMMON_STATUS, 1, 0x0b);
    assert_int_equal(status(), 0x03);
    /* no VERSION_1: a legacy driver on a modern-only device */
    write_driver_features(F_MAC);
    wr(VIRTIO_PCI_COMMON_STATUS, 1, 0x0b);
    assert_int_equal(status(), 0x03);
    /* the device refuses */
    dev.refuse = true;
    write_driver_features(F_VERSION_1);
    wr(VIRTIO_PCI_COMMON_STATUS, 1, 0x0b);
    assert_int_equal(status(), 0x03);
    /* DRIVER_OK without FEATURES_OK is not taken */
    wr(VIRTIO_PCI_COMMON_STATUS, 1, 0x07);
    assert_int_equal(status() & 0x04, 0);
    assert_int_equal(dev.driver_ok, 0);
    dev.refuse = false;
    wr(VIRTIO_PCI_COMMON_STATUS, 1, 0x0b);
    assert_int_equal(status(), 0x0b);
}

static void test_queue_select(void **state)
{
    assert_int_equal(rd(VIRTIO_PCI_COMMON_NUMQ, 2), 3);
    for (unsigned q = 0; q < 3; q++) {
        wr(VIRTIO_PCI_COMMON_Q_SELECT, 2, q);
        assert_int_equal(rd(VIRTIO_PCI_COMMON_Q_SIZE, 2), 256);
        assert_int_equal(rd(VIRTIO_PCI_COMMON_Q_NOFF, 2), q);
        assert_int_equal(rd(VIRTIO_PCI_COMMON_Q_MSIX, 2), MSIX_NO_VECTOR);
        assert_int_equal(rd(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
    }
    /* a queue that does not exist: size 0, writes go nowhere */
    wr(VIRTIO_PCI_COMMON_Q_SELECT, 2, 3);
    assert_int_equal(rd(VIRTIO_PCI_COMMON_Q_SIZE, 2), 0);
    wr(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
    assert_int_equal(rd(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);

    wr(VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
    wr(VIRTIO_PCI_COMMON_Q_SIZE, 2, 64);
    assert_int_equal(rd(VIRTIO_PCI_COMMON_Q_SIZE, 2), 64);
    wr(VIRTIO_PCI_COMMON_Q_SIZE, 2, 100); /* not a power of two */
    assert_int_equal(rd(VIRTIO_PCI_COMMON_Q_SIZE, 2), 64);
    wr(VIRTIO_PCI_COMMON_Q_SIZE, 2, 512); /* above the maximum */
    assert_int_equal(rd(VIRTIO_PCI_COMMON_Q_SIZE, 2), 64);
    wr(VIRTIO_PCI_COMMON_Q_MSIX, 2, 2);
    assert_int_equal(rd(VIRTIO_PCI_COMMON_Q_MSIX, 2), 2);
    wr(VIRTIO_PCI_COMMON_Q_MSIX, 2, 4); /* beyond the table: NO_VECTOR */
    assert_int_equal(rd(VIRTIO_PCI_COMMON_Q_MSIX, 2), MSIX_NO_VECTOR);
    wr(VIRTIO_PCI_COMMON_Q_MSIX, 2, 1);
    wr(VIRTIO_PCI_COMMON_Q_DESCLO, 4, 0x1000);
    wr(VIRTIO_PCI_COMMON_Q_DESCHI, 4, 0x1);
    wr(VIRTIO_PCI_COMMON_Q_AVAILLO, 8, 0x2000);
    wr(VIRTIO_PCI_COMMON_Q_USEDLO, 4, 0x3000);
    wr(VIRTIO_PCI_COMMON_Q_USEDHI, 4, 0);
    assert_int_equal(rd(VIRTIO_PCI_COMMON_Q_DESCLO, 8), 0x100001000ULL);
    assert_int_equal(rd(VIRTIO_PCI_COMMON_Q_DESCHI, 4), 1);
    assert_int_equal(rd(VIRTIO_PCI_COMMON_Q_AVAILLO, 4), 0x2000);
    wr(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
    assert_int_equal(rd(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);
    /* an enabled queue's size and addresses stay */
    wr(VIRTIO_PCI_COMMON_Q_SIZE, 2, 32);
    wr(VIRTIO_PCI_COMMON_Q_DESCLO, 4, 0x5000);
    const struct virtio_pci_queue *q = virtio_pci_queue(vp, 1);
    assert_int_equal(q->size, 64);
    assert_int_equal(q->desc, 0x100001000ULL);
    assert_int_equal(q->driver, 0x2000);
    assert_int_equal(q->device, 0x3000);
    assert_int_equal(q->msix_vector, 1);
    assert_true(q->enabled);
    /* other queues untouched */
    wr(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
    assert_int_equal(rd(VIRTIO_PCI_COMMON_Q_SIZE, 2), 256);
    assert_int_equal(rd(VIRTIO_PCI_COMMON_Q_DESCLO, 8), 0);
    /* config vector */
    wr(VIRTIO_PCI_COMMON_MSIX, 2, 0);
    assert_int_equal(rd(VIRTIO_PCI_COMMON_MSIX, 2), 0);
    wr(VIRTIO_PCI_COMMON_MSIX, 2, 9);
    assert_int_equal(rd(VIRTIO_PCI_COMMON_MSIX, 2), MSIX_NO_VECTOR);
}

static void test_reset(void **state)
{
    wr(VIRTIO_PCI_COMMON_STATUS, 1, 3);
    write_driver_features(F_VERSION_1);
    wr(VIRTIO_PCI_COMMON_STATUS, 1, 0x0b);
    wr(VIRTIO_PCI_COMMON_Q_SELECT, 2, 2);
    wr(VIRTIO_PCI_COMMON_Q_SIZE, 2, 16);
    wr(VIRTIO_PCI_COMMON_Q_DESCLO, 4, 0x4000);
    wr(VIRTIO_PCI_COMMON_Q_MSIX, 2, 1);
    wr(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
    wr(VIRTIO_PCI_COMMON_MSIX, 2, 0);
    wr(VIRTIO_PCI_COMMON_STATUS, 1, 0x0f);
    assert_int_equal(dev.driver_ok, 1);

    wr(VIRTIO_PCI_COMMON_STATUS, 1, 0);
    assert_int_equal(dev.reset, 1);
    assert_int_equal(status(), 0);
    assert_int_equal(virtio_pci_driver_features(vp), 0);
    assert_int_equal(rd(VIRTIO_PCI_COMMON_Q_SELECT, 2), 0);
    assert_int_equal(rd(VIRTIO_PCI_COMMON_MSIX, 2), MSIX_NO_VECTOR);
    const struct virtio_pci_queue *q = virtio_pci_queue(vp, 2);
    assert_int_equal(q->size, 256);
    assert_int_equal(q->desc, 0);
    assert_false(q->enabled);
    assert_int_equal(q->msix_vector, MSIX_NO_VECTOR);
    /* the device works again after reset */
    wr(VIRTIO_PCI_COMMON_STATUS, 1, 3);
    write_driver_features(F_VERSION_1);
    wr(VIRTIO_PCI_COMMON_STATUS, 1, 0x0b);
    wr(VIRTIO_PCI_COMMON_STATUS, 1, 0x0f);
    assert_int_equal(dev.driver_ok, 2);
}

static void test_device_config_and_generation(void **state)
{
    assert_int_equal(rd(VIRTIO_PCI_DEVICE_OFF, 4), 0x12005452);
    assert_int_equal(rd(VIRTIO_PCI_DEVICE_OFF + 6, 2), 1);
    assert_int_equal(rd(VIRTIO_PCI_DEVICE_OFF + 8, 4), 0); /* past config_size */
    uint8_t gen = (uint8_t)rd(VIRTIO_PCI_COMMON_CFGGEN, 1);
    virtio_pci_config_bump(vp);
    assert_int_equal((uint8_t)rd(VIRTIO_PCI_COMMON_CFGGEN, 1), (uint8_t)(gen + 1));
    wr(VIRTIO_PCI_COMMON_CFGGEN, 1, 0); /* read-only */
    assert_int_equal((uint8_t)rd(VIRTIO_PCI_COMMON_CFGGEN, 1), (uint8_t)(gen + 1));
}

static void drive_to_ok(void)
{
    wr(VIRTIO_PCI_COMMON_STATUS, 1, 3);
    write_driver_features(F_VERSION_1);
    wr(VIRTIO_PCI_COMMON_STATUS, 1, 0x0b);
    wr(VIRTIO_PCI_COMMON_STATUS, 1, 0x0f);
}

static void test_config_change_msix(void **state)
{
    struct msix *m = virtio_pci_msix(vp);
    struct pci_dev *pd = virtio_pci_dev(vp);
    uint64_t bar0 = pci_dev_bar_addr(pd, VIRTIO_PCI_MSIX_BAR);
    unsigned cap = pci_cfg_read(bus, slot, PCI_CAPABILITY_LIST, 1);

    /* the guest's MSI-X setup, through the BAR and config space */
    fake_mmio_write(vm, bar0 + 0, 4, 0xfee00000);
    fake_mmio_write(vm, bar0 + 8, 4, 0x45);
    fake_mmio_write(vm, bar0 + 12, 4, 0);
    pci_cfg_write(bus, slot, cap + 2, 2, MSIX_CTRL_ENABLE);
    assert_true(msix_enabled(m));
    wr(VIRTIO_PCI_COMMON_MSIX, 2, 0);
    fake_vm_clear_signals(vm);
    virtio_pci_config_changed(vp); /* before DRIVER_OK: no interrupt */
    assert_int_equal(fake_vm_nsignals(vm), 0);
    drive_to_ok();
    virtio_pci_config_changed(vp);
    assert_int_equal(fake_vm_nsignals(vm), 1);
    assert_int_equal(fake_vm_signal(vm, 0)->data, 0x45);
    /* masked: pending in the PBA, delivered on unmask */
    fake_mmio_write(vm, bar0 + 12, 4, 1);
    virtio_pci_config_changed(vp);
    assert_int_equal(fake_vm_nsignals(vm), 1);
    assert_int_equal(fake_mmio_read(vm, bar0 + 0x800, 8), 1);
    fake_mmio_write(vm, bar0 + 12, 4, 0);
    assert_int_equal(fake_vm_nsignals(vm), 2);
    assert_int_equal(fake_mmio_read(vm, bar0 + 0x800, 8), 0);
}

/* INTx goes out on the GSI the MP table and the ACPI _PRT give the slot's
 * INTA# (it was IRQ 11, which nothing routed there: the guest never saw it),
 * and the interrupt line register says the same. */
static void test_config_change_intx(void **state)
{
    unsigned gsi = mptable_pci_gsi(slot);
    assert_int_equal(pci_cfg_read(bus, slot, PCI_INTERRUPT_PIN, 1), 1);
    assert_int_equal(pci_cfg_read(bus, slot, PCI_INTERRUPT_LINE, 1), gsi);
    drive_to_ok();
    virtio_pci_config_changed(vp);
    assert_int_equal(fake_vm_irq_level(vm, gsi), 1);
    assert_int_equal(fake_vm_irq_level(vm, 11), 0);
    assert_int_equal(rd(VIRTIO_PCI_ISR_OFF, 1), VIRTIO_PCI_ISR_CONFIG);
    assert_int_equal(fake_vm_irq_level(vm, gsi), 0); /* read acknowledges */
    assert_int_equal(rd(VIRTIO_PCI_ISR_OFF, 1), 0);
}

/* A queue's call without MSI-X raises INTA# on the slot's GSI with the queue
 * bit in the ISR (read to acknowledge); INTx disable in the command register
 * keeps the line down. */
static void test_queue_intx(void **state)
{
    unsigned gsi = mptable_pci_gsi(slot);
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    uint64_t one = 1;
    drive_to_ok();
    assert_int_equal(msix_set_source(virtio_pci_msix(vp), 0, fd, MSIX_NO_VECTOR), 0);
    assert_int_equal(write(fd, &one, 8), 8);
    fake_vm_run_events(vm);
    assert_int_equal(fake_vm_irq_level(vm, gsi), 1);
    assert_int_equal(rd(VIRTIO_PCI_ISR_OFF, 1), VIRTIO_PCI_ISR_QUEUE);
    assert_int_equal(fake_vm_irq_level(vm, gsi), 0);

    pci_cfg_write(bus, slot, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_INTX_DISABLE);
    assert_int_equal(write(fd, &one, 8), 8);
    fake_vm_run_events(vm);
    assert_int_equal(fake_vm_irq_level(vm, gsi), 0);
    assert_int_equal(rd(VIRTIO_PCI_ISR_OFF, 1), VIRTIO_PCI_ISR_QUEUE);
    msix_set_source(virtio_pci_msix(vp), 0, -1, MSIX_NO_VECTOR);
    fake_vm_run_events(vm);
    close(fd);
}

static void test_notify(void **state)
{
    wr(VIRTIO_PCI_NOTIFY_OFF + 2 * VIRTIO_PCI_NOTIFY_MULT, 2, 2);
    assert_int_equal(dev.notify, 1);
    assert_int_equal(dev.last_notify, 2);
    wr(VIRTIO_PCI_NOTIFY_OFF + 5 * VIRTIO_PCI_NOTIFY_MULT, 2, 5); /* no such queue */
    assert_int_equal(dev.notify, 1);
    assert_int_equal(virtio_pci_notify_addr(vp, 1),
                     bar2 + VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT);
    /* moving BAR 2 tells the device (to re-aim ioeventfds) */
    unsigned moved = dev.moved;
    pci_cfg_write(bus, slot, PCI_BAR0 + 8, 4, 0xd0000000);
    assert_int_equal(dev.moved, moved + 2); /* unmapped, mapped */
    assert_int_equal(virtio_pci_notify_addr(vp, 0), 0xd0000000 + VIRTIO_PCI_NOTIFY_OFF);
    pci_cfg_write(bus, slot, PCI_COMMAND, 2, 0);
    assert_int_equal(virtio_pci_notify_addr(vp, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capabilities, setup, teardown),
        cmocka_unit_test_setup_teardown(test_feature_select, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_features_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_features_ok_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_select, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_config_and_generation, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_config_change_msix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_change_intx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_intx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
