/* vmm/virtio_net.c against the project's own vhost-user backend (vhost_dev)
 * on a real unix socket: the offer to the guest, DRIVER_OK handing the rings
 * over with ioeventfds and irqfds wired, reset stopping the rings, the
 * backend going away (link down + config interrupt), the redial, and the
 * replay with each ring's base taken from used->idx. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_vm.h"
#include "vhost_dev.h"
#include "virtio_net.h"
#include "virtio_pci.h"

struct backend {
    char path[108];
    int listen_fd;
    int sock;
    int stop_fd;
    struct vhost_dev *dev;
    pthread_t th;
    atomic_bool connected;
    atomic_bool gone;
};

static void *backend_main(void *arg)
{
    struct backend *b = arg;

    b->sock = accept4(b->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (b->sock < 0)
        return NULL;
    atomic_store(&b->connected, true);
    for (;;) {
        struct pollfd p[2] = {{.fd = b->sock, .events = POLLIN},
                              {.fd = b->stop_fd, .events = POLLIN}};
        if (poll(p, 2, -1) < 0)
            continue;
        if (p[0].revents) {
            if (vhost_dev_handle_msg(b->dev, b->sock) < 0) {
                atomic_store(&b->gone, true);
                return NULL;
            }
            continue;
        }
        if (p[1].revents)
            return NULL;
    }
}

static void backend_start(struct backend *b, const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    memset(b, 0, sizeof(*b));
    snprintf(b->path, sizeof(b->path), "%s", path);
    strcpy(sa.sun_path, path);
    unlink(path);
    b->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(b->listen_fd >= 0);
    assert_int_equal(bind(b->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(b->listen_fd, 1), 0);
    b->stop_fd = eventfd(0, EFD_CLOEXEC);
    b->dev = vhost_dev_create("be", 1, 1500, NULL, NULL);
    assert_non_null(b->dev);
    assert_int_equal(pthread_create(&b->th, NULL, backend_main, b), 0);
}

/* The backend process "dies": its socket closes. */
static void backend_kill(struct backend *b)
{
    eventfd_write(b->stop_fd, 1);
    pthread_join(b->th, NULL);
    if (atomic_load(&b->connected))
        close(b->sock);
    close(b->listen_fd);
    close(b->stop_fd);
    unlink(b->path);
    vhost_dev_destroy(b->dev);
}

static void quiet(int level, const char *fmt, ...)
{
}

/* ---------------------------------------------------------------- guest side */

#define RAM (1 << 20)
#define QSZ 64
static struct vm *vm;
static struct pci_bus *bus;
static uint64_t bar0, bar2;
static unsigned slot, cap;
static char sockpath[108];
static uint8_t mac[6] = {0x52, 0x54, 0x00, 0xaa, 0xbb, 0x01};

static uint64_t rd(unsigned off, unsigned len)
{
    return fake_mmio_read(vm, bar2 + off, len);
}

static void wr(unsigned off, unsigned len, uint64_t v)
{
    fake_mmio_write(vm, bar2 + off, len, v);
}

static uint64_t device_features(void)
{
    wr(VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
    uint64_t lo = rd(VIRTIO_PCI_COMMON_DF, 4);
    wr(VIRTIO_PCI_COMMON_DFSELECT, 4, 1);
    return lo | rd(VIRTIO_PCI_COMMON_DF, 4) << 32;
}

static uint16_t link_status(void)
{
    return (uint16_t)rd(VIRTIO_PCI_DEVICE_OFF + 6, 2);
}

static uint64_t ring_gpa(unsigned q, unsigned part)
{
    return 0x10000 + q * 0x4000 + part * 0x1000; /* desc, avail, used */
}

/* A driver bringing the device up as Linux does: MSI-X, features, queues. */
static void driver_up(uint64_t features)
{
    pci_cfg_write(bus, slot, cap + 2, 2, MSIX_CTRL_ENABLE);
    for (unsigned v = 0; v < 3; v++) {
        fake_mmio_write(vm, bar0 + v * 16, 4, 0xfee00000);
        fake_mmio_write(vm, bar0 + v * 16 + 8, 4, 0x40 + v);
        fake_mmio_write(vm, bar0 + v * 16 + 12, 4, 0);
    }
    wr(VIRTIO_PCI_COMMON_STATUS, 1, 0);
    wr(VIRTIO_PCI_COMMON_STATUS, 1, 1);
    wr(VIRTIO_PCI_COMMON_STATUS, 1, 3);
    wr(VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
    wr(VIRTIO_PCI_COMMON_GF, 4, (uint32_t)features);
    wr(VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
    wr(VIRTIO_PCI_COMMON_GF, 4, features >> 32);
    wr(VIRTIO_PCI_COMMON_STATUS, 1, 0x0b);
    assert_int_equal(rd(VIRTIO_PCI_COMMON_STATUS, 1), 0x0b);
    wr(VIRTIO_PCI_COMMON_MSIX, 2, 0);
    for (unsigned q = 0; q < 2; q++) {
        wr(VIRTIO_PCI_COMMON_Q_SELECT, 2, q);
        wr(VIRTIO_PCI_COMMON_Q_SIZE, 2, QSZ);
        wr(VIRTIO_PCI_COMMON_Q_MSIX, 2, 1 + q);
        wr(VIRTIO_PCI_COMMON_Q_DESCLO, 8, ring_gpa(q, 0));
        wr(VIRTIO_PCI_COMMON_Q_AVAILLO, 8, ring_gpa(q, 1));
        wr(VIRTIO_PCI_COMMON_Q_USEDLO, 8, ring_gpa(q, 2));
        wr(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
    }
    wr(VIRTIO_PCI_COMMON_STATUS, 1, 0x0f);
}

static int setup(void **state)
{
    vhost_set_log(quiet);
    snprintf(sockpath, sizeof(sockpath), "/tmp/vmm-net-test-%d.sock", getpid());
    vm = fake_vm_create(RAM);
    bus = pci_bus_create(vm);
    return 0;
}

static int teardown(void **state)
{
    pci_bus_destroy(bus);
    fake_vm_destroy(vm);
    unlink(sockpath);
    return 0;
}

static struct virtio_net_dev *make_dev(bool server)
{
    char err[128] = "";
    struct virtio_net_dev *n = virtio_net_create(vm, bus, sockpath, mac, server, err,
                                                 sizeof(err));
    assert_non_null(n);
    slot = pci_dev_slot(virtio_pci_dev_of(n));
    cap = pci_cfg_read(bus, slot, PCI_CAPABILITY_LIST, 1);
    bar0 = pci_cfg_read(bus, slot, PCI_BAR0, 4);
    bar2 = pci_cfg_read(bus, slot, PCI_BAR0 + 8, 4);
    return n;
}

static unsigned ioeventfds_armed(void)
{
    unsigned c = 0;
    const struct fake_ioeventfd *e = fake_vm_ioeventfds(vm);
    for (unsigned i = 0; i < FAKE_MAX_IOEVENTFDS; i++)
        c += e[i].used;
    return c;
}

static bool config_irq_seen(void)
{
    for (unsigned i = 0; i < fake_vm_nsignals(vm); i++)
        if (fake_vm_signal(vm, i)->data == 0x40)
            return true;
    return false;
}

/* Runs the event loop until pred() or timeout. */
static bool loop_until(bool (*pred)(struct virtio_net_dev *), struct virtio_net_dev *n,
                       int ms)
{
    for (int t = 0; t < ms; t += 10) {
        fake_vm_run_events(vm);
        if (pred(n))
            return true;
        usleep(10 * 1000);
    }
    return false;
}

static bool is_down(struct virtio_net_dev *n)
{
    return !virtio_net_link_up(n);
}

static bool is_up(struct virtio_net_dev *n)
{
    return virtio_net_link_up(n);
}

static void test_offer_and_start(void **state)
{
    struct backend b;
    backend_start(&b, sockpath);
    struct virtio_net_dev *n = make_dev(false);

    assert_true(virtio_net_link_up(n));
    assert_int_equal(pci_cfg_read(bus, slot, 0, 4), 0x10411af4);
    uint64_t f = device_features();
    assert_int_equal(f & ~VIRTIO_NET_VMM_FEATURES, 0);
    assert_true(f & VIRTIO_BIT(VIRTIO_F_VERSION_1));
    assert_true(f & VIRTIO_BIT(VIRTIO_NET_F_MAC));
    assert_true(f & VIRTIO_BIT(VIRTIO_NET_F_STATUS));
    assert_true(f & VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF));
    assert_false(f & VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ));
    assert_false(f & VIRTIO_BIT(VHOST_USER_F_PROTOCOL_FEATURES));
    assert_int_equal(rd(VIRTIO_PCI_DEVICE_OFF, 4), 0xaa005452);
    assert_int_equal(rd(VIRTIO_PCI_DEVICE_OFF + 4, 2), 0x01bb);
    assert_int_equal(link_status(), VIRTIO_NET_S_LINK_UP);
    assert_int_equal(rd(VIRTIO_PCI_DEVICE_OFF + 8, 2), 1);

    uint64_t want = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_NET_F_MAC) |
                    VIRTIO_BIT(VIRTIO_NET_F_STATUS) | VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) |
                    VIRTIO_BIT(VIRTIO_RING_F_EVENT_IDX);
    driver_up(want);
    assert_int_equal(rd(VIRTIO_PCI_COMMON_STATUS, 1), 0x0f);
    /* the backend got the rings, and of the driver's features those it offers
     * (vhost_dev has STATUS but not MAC: the VMM serves MAC itself) */
    assert_true(vhost_dev_running(b.dev));
    assert_int_equal(vhost_dev_features(b.dev) & ~VIRTIO_BIT(VHOST_USER_F_PROTOCOL_FEATURES),
                     want & ~VIRTIO_BIT(VIRTIO_NET_F_MAC));
    assert_int_equal(vhost_dev_vring(b.dev, 0)->size, QSZ);
    /* kicks and calls bypass the VMM */
    assert_int_equal(ioeventfds_armed(), 2);
    const struct fake_ioeventfd *e = fake_vm_ioeventfds(vm);
    for (unsigned i = 0; i < 2; i++)
        assert_int_equal(e[i].addr, bar2 + VIRTIO_PCI_NOTIFY_OFF + i * 4);
    assert_int_equal(fake_vm_routes_active(vm), 2);

    json_t *st = virtio_net_status_json(n);
    assert_string_equal(json_string_value(json_object_get(st, "link")), "up");
    assert_true(json_is_true(json_object_get(st, "driver_ok")));
    json_decref(st);

    /* driver reset: rings stopped, wiring removed */
    wr(VIRTIO_PCI_COMMON_STATUS, 1, 0);
    assert_false(vhost_dev_running(b.dev));
    assert_int_equal(ioeventfds_armed(), 0);
    assert_int_equal(fake_vm_routes_active(vm), 0);
    /* and up again */
    driver_up(want);
    assert_true(vhost_dev_running(b.dev));

    virtio_net_destroy(n);
    backend_kill(&b);
}

static void test_backend_gone_and_back(void **state)
{
    struct backend b;
    backend_start(&b, sockpath);
    struct virtio_net_dev *n = make_dev(false);
    uint64_t want = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_NET_F_STATUS) |
                    VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF);
    driver_up(want);
    assert_true(vhost_dev_running(b.dev));

    fake_vm_clear_signals(vm);
    backend_kill(&b);
    assert_true(loop_until(is_down, n, 2000));
    assert_int_equal(link_status(), 0);
    assert_true(config_irq_seen());
    /* the guest's wiring stays: kicks latch in the eventfds meanwhile */
    assert_int_equal(ioeventfds_armed(), 2);

    /* the guest used 7 RX and 3 TX buffers before the backend died */
    uint8_t *ram = vm_gpa(vm, 0, RAM);
    ram[ring_gpa(0, 2) + 2] = 7;
    ram[ring_gpa(1, 2) + 2] = 3;

    fake_vm_clear_signals(vm);
    backend_start(&b, sockpath);
    assert_true(loop_until(is_up, n, 3000)); /* redial within a second or so */
    assert_int_equal(link_status(), VIRTIO_NET_S_LINK_UP);
    assert_true(config_irq_seen());
    assert_true(vhost_dev_running(b.dev));
    assert_int_equal(vhost_dev_vring(b.dev, 0)->last_avail_idx, 7);
    assert_int_equal(vhost_dev_vring(b.dev, 1)->last_avail_idx, 3);
    assert_int_equal(rd(VIRTIO_PCI_COMMON_STATUS, 1), 0x0f); /* guest untouched */

    virtio_net_destroy(n);
    backend_kill(&b);
}

/* server mode: the backend dials the VMM's socket */
struct dialer {
    struct vhost_dev *dev;
    int sock;
    int stop_fd;
    pthread_t th;
};

static void *dialer_main(void *arg)
{
    struct dialer *d = arg;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, sockpath);
    for (int i = 0; i < 200; i++) {
        d->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(d->sock, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            break;
        close(d->sock);
        d->sock = -1;
        usleep(10 * 1000);
    }
    if (d->sock < 0)
        return NULL;
    for (;;) {
        struct pollfd p[2] = {{.fd = d->sock, .events = POLLIN},
                              {.fd = d->stop_fd, .events = POLLIN}};
        if (poll(p, 2, -1) < 0)
            continue;
        if (p[0].revents) {
            if (vhost_dev_handle_msg(d->dev, d->sock) < 0)
                return NULL;
            continue;
        }
        if (p[1].revents)
            return NULL;
    }
}

static void test_server_mode(void **state)
{
    struct dialer d = {.sock = -1};
    d.dev = vhost_dev_create("be", 1, 1500, NULL, NULL);
    d.stop_fd = eventfd(0, EFD_CLOEXEC);
    unlink(sockpath);
    assert_int_equal(pthread_create(&d.th, NULL, dialer_main, &d), 0);
    struct virtio_net_dev *n = make_dev(true);
    assert_true(virtio_net_link_up(n));
    driver_up(VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_NET_F_STATUS));
    assert_true(vhost_dev_running(d.dev));
    eventfd_write(d.stop_fd, 1);
    pthread_join(d.th, NULL);
    close(d.sock);
    assert_true(loop_until(is_down, n, 2000));
    virtio_net_destroy(n);
    assert_int_equal(access(sockpath, F_OK), -1); /* the VMM removed its socket */
    vhost_dev_destroy(d.dev);
    close(d.stop_fd);
}

static void test_no_backend(void **state)
{
    unlink(sockpath);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct virtio_net_dev *n = make_dev(false);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_false(virtio_net_link_up(n));
    assert_int_equal(link_status(), 0);
    /* the VMM's own set, without MTU (no backend told us one) */
    assert_int_equal(device_features(),
                     VIRTIO_NET_VMM_FEATURES & ~VIRTIO_BIT(VIRTIO_NET_F_MTU));
    virtio_net_destroy(n);

    char err[64];
    assert_null(virtio_net_create(vm, bus, "", mac, false, err, sizeof(err)));
    assert_non_null(strstr(err, "missing"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_offer_and_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backend_gone_and_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_backend, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
