/* virtio-net as a vhost-user frontend. See virtio_net.h. */
#include "virtio_net.h"

#include <errno.h>
#include <event2/event.h>
#include <stdarg.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "msix.h"
#include "unix_sock.h"
#include "vhost_frontend.h"
#include "virtio_pci.h"

#define NET_QUEUES      2   /* RX 0, TX 1 */
#define NET_QUEUE_MAX   256
#define NET_VECTORS     3   /* config, RX, TX */
#define NET_CONFIG_SIZE 12  /* mac, status, max_virtqueue_pairs, mtu */
#define NET_DEFAULT_MTU 1500
#define FE_TIMEOUT_MS   2000
#define REDIAL_SECONDS  1

/* Features this VMM serves itself (config space), whatever the backend says. */
#define VMM_OWN_FEATURES (VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_STATUS))

struct virtio_net_dev {
    struct vm *vm;
    struct virtio_pci *vp;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    bool server;
    uint8_t mac[6];

    int listen_fd;
    struct event *listen_ev;
    struct event *redial_ev;

    struct vhost_fe *fe;
    struct event *sock_ev;
    bool backend_seen;
    uint64_t backend_features;
    bool started;   /* vhost_fe_start done for the driver's current session */
    bool link_up;
    unsigned connects;

    int kick_fd[NET_QUEUES];
    int call_fd[NET_QUEUES];
    uint64_t ioeventfd_addr[NET_QUEUES]; /* 0: not armed */
};

static void backend_lost(struct virtio_net_dev *n, const char *why);

static void net_log(const struct virtio_net_dev *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void net_log(const struct virtio_net_dev *n, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "vmm: net %s: ", n->path);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void noop_finalize(struct event *ev, void *arg)
{
}

/* Events are freed from vCPU threads too, under vm_lock, while their callback
 * may be waiting for that lock: EV_FINALIZE events never wait for it. */
static void event_release(struct event **ev)
{
    if (*ev) {
        event_free_finalize(0, *ev, noop_finalize);
        *ev = NULL;
    }
}

/* ---------------------------------------------------------- config space */

static uint64_t offered_features(const struct virtio_net_dev *n)
{
    if (!n->backend_seen)
        return VIRTIO_NET_VMM_FEATURES & ~VIRTIO_BIT(VIRTIO_NET_F_MTU);
    return (n->backend_features & VIRTIO_NET_VMM_FEATURES) | VMM_OWN_FEATURES |
           VIRTIO_BIT(VIRTIO_F_VERSION_1);
}

static void net_config_access(void *opaque, uint64_t offset, uint8_t *data, unsigned len,
                              bool is_write)
{
    struct virtio_net_dev *n = opaque;
    uint8_t cfg[NET_CONFIG_SIZE] = {0};

    if (is_write)
        return; /* mac is read-only without VIRTIO_NET_F_CTRL_MAC_ADDR */
    memcpy(cfg, n->mac, 6);
    uint16_t status = n->link_up ? VIRTIO_NET_S_LINK_UP : 0;
    cfg[6] = (uint8_t)status;
    cfg[7] = (uint8_t)(status >> 8);
    cfg[8] = 1; /* max_virtqueue_pairs */
    cfg[10] = (uint8_t)(NET_DEFAULT_MTU & 0xff);
    cfg[11] = (uint8_t)(NET_DEFAULT_MTU >> 8);
    memcpy(data, cfg + offset, len); /* bounds checked by the transport */
}

static void set_link(struct virtio_net_dev *n, bool up)
{
    if (n->link_up == up)
        return;
    n->link_up = up;
    net_log(n, "link %s", up ? "up" : "down");
    /* without STATUS the driver assumes the link is up and is not told */
    if (virtio_pci_driver_features(n->vp) & VIRTIO_BIT(VIRTIO_NET_F_STATUS))
        virtio_pci_config_changed(n->vp);
    else
        virtio_pci_config_bump(n->vp);
}

/* ---------------------------------------------------------- datapath wiring */

static void ioeventfds_disarm(struct virtio_net_dev *n)
{
    for (unsigned q = 0; q < NET_QUEUES; q++) {
        if (!n->ioeventfd_addr[q])
            continue;
        vm_ioeventfd(n->vm, n->ioeventfd_addr[q], 2, -1, n->kick_fd[q], false);
        n->ioeventfd_addr[q] = 0;
    }
}

static void ioeventfds_arm(struct virtio_net_dev *n)
{
    for (unsigned q = 0; q < NET_QUEUES; q++) {
        uint64_t addr = virtio_pci_notify_addr(n->vp, q);
        if (!addr || n->ioeventfd_addr[q])
            continue;
        int rc = vm_ioeventfd(n->vm, addr, 2, -1, n->kick_fd[q], true);
        if (rc < 0) {
            net_log(n, "queue %u: KVM_IOEVENTFD at 0x%llx: %s (kicks exit to the VMM)", q,
                    (unsigned long long)addr, strerror(-rc));
            continue;
        }
        n->ioeventfd_addr[q] = addr;
    }
}

static void drain_fd(int fd)
{
    uint64_t v;
    while (read(fd, &v, sizeof(v)) == sizeof(v))
        ;
}

static int ring_uva(const struct virtio_net_dev *n, uint64_t gpa, uint64_t len,
                    uint64_t *uva)
{
    void *p = vm_gpa(n->vm, gpa, len);
    if (!p)
        return -EFAULT;
    *uva = (uint64_t)(uintptr_t)p;
    return 0;
}

/* Hands the guest's rings to the backend. replay: the backend came back under
 * a running driver, each ring continues from its used->idx. */
static int vhost_start(struct virtio_net_dev *n, bool replay)
{
    struct vhost_fe_region regions[VHOST_USER_MAX_REGIONS];
    struct vhost_fe_vring rings[NET_QUEUES];
    unsigned nreg = 0;
    char err[160] = "";

    const struct vm_ram_region *ram = vm_ram_regions(n->vm, &nreg);
    if (nreg > VHOST_USER_MAX_REGIONS)
        nreg = VHOST_USER_MAX_REGIONS;
    for (unsigned i = 0; i < nreg; i++)
        regions[i] = (struct vhost_fe_region){.gpa = ram[i].gpa,
                                              .size = ram[i].size,
                                              .uva = (uint64_t)(uintptr_t)ram[i].hva,
                                              .fd = ram[i].fd,
                                              .fd_offset = ram[i].fd_offset};
    for (unsigned q = 0; q < NET_QUEUES; q++) {
        const struct virtio_pci_queue *vq = virtio_pci_queue(n->vp, q);
        struct vhost_fe_vring *r = &rings[q];
        uint64_t num = vq->size;

        if (!vq->enabled) {
            net_log(n, "queue %u not enabled at DRIVER_OK", q);
            return -EINVAL;
        }
        *r = (struct vhost_fe_vring){.index = q, .num = vq->size,
                                     .kick_fd = n->kick_fd[q], .call_fd = n->call_fd[q]};
        if (ring_uva(n, vq->desc, 16 * num, &r->desc_uva) < 0 ||
            ring_uva(n, vq->driver, 6 + 2 * num, &r->avail_uva) < 0 ||
            ring_uva(n, vq->device, 6 + 8 * num, &r->used_uva) < 0) {
            net_log(n, "queue %u: ring outside guest RAM", q);
            return -EFAULT;
        }
        if (replay) {
            /* used->idx: what the guest has been given back; anything the old
             * backend had popped but not used is lost with it */
            const _Atomic uint16_t *used_idx =
                (const _Atomic uint16_t *)(uintptr_t)(r->used_uva + 2);
            r->base = atomic_load_explicit(used_idx, memory_order_acquire);
        }
    }
    uint64_t features = virtio_pci_driver_features(n->vp) & n->backend_features;
    int rc = vhost_fe_start(n->fe, features, regions, nreg, rings, NET_QUEUES, err,
                            sizeof(err));
    if (rc < 0) {
        net_log(n, "vhost-user start failed: %s", err[0] ? err : strerror(-rc));
        return rc;
    }
    n->started = true;
    return 0;
}

static bool net_features_ok(void *opaque, uint64_t features)
{
    struct virtio_net_dev *n = opaque;
    /* a backend seen after the offer was read may lack some of it */
    if (n->backend_seen && (features & ~VMM_OWN_FEATURES & ~n->backend_features)) {
        net_log(n, "driver features 0x%llx not all served by the backend (0x%llx)",
                (unsigned long long)features, (unsigned long long)n->backend_features);
        return false;
    }
    return true;
}

static void net_driver_ok(void *opaque)
{
    struct virtio_net_dev *n = opaque;
    struct msix *m = virtio_pci_msix(n->vp);

    ioeventfds_arm(n);
    for (unsigned q = 0; q < NET_QUEUES; q++)
        msix_set_source(m, q, n->call_fd[q], virtio_pci_queue(n->vp, q)->msix_vector);
    if (n->fe && vhost_start(n, false) < 0)
        backend_lost(n, "start refused");
}

static void net_reset(void *opaque)
{
    struct virtio_net_dev *n = opaque;
    struct msix *m = virtio_pci_msix(n->vp);

    if (n->started && n->fe) {
        unsigned idx[NET_QUEUES] = {0, 1};
        uint16_t bases[NET_QUEUES];
        if (vhost_fe_stop(n->fe, idx, NET_QUEUES, bases) < 0)
            backend_lost(n, "stop failed");
    }
    n->started = false;
    ioeventfds_disarm(n);
    for (unsigned q = 0; q < NET_QUEUES; q++) {
        msix_set_source(m, q, -1, MSIX_NO_VECTOR);
        drain_fd(n->kick_fd[q]);
        drain_fd(n->call_fd[q]);
    }
}

/* A notify write that reached us: no ioeventfd there (BAR just moved, or
 * KVM refused it). Forward it to the backend's kick. */
static void net_notify(void *opaque, unsigned q)
{
    struct virtio_net_dev *n = opaque;
    uint64_t one = 1;
    if (q < NET_QUEUES && write(n->kick_fd[q], &one, sizeof(one)) < 0)
        net_log(n, "kick queue %u: %s", q, strerror(errno));
}

static void net_notify_moved(void *opaque, uint64_t gpa, bool mapped)
{
    struct virtio_net_dev *n = opaque;
    /* n->vp is NULL while virtio_pci_create places the BARs */
    if (!n->vp || !(virtio_pci_status(n->vp) & VIRTIO_CONFIG_S_DRIVER_OK))
        return;
    ioeventfds_disarm(n);
    if (mapped)
        ioeventfds_arm(n);
}

static const struct virtio_pci_ops net_ops = {
    .config_access = net_config_access,
    .features_ok = net_features_ok,
    .driver_ok = net_driver_ok,
    .reset = net_reset,
    .notify = net_notify,
    .notify_moved = net_notify_moved,
};

/* ---------------------------------------------------------- the backend */

static void schedule_redial(struct virtio_net_dev *n)
{
    struct timeval tv = {.tv_sec = REDIAL_SECONDS};
    if (!n->server && n->redial_ev)
        evtimer_add(n->redial_ev, &tv);
}

static void backend_lost(struct virtio_net_dev *n, const char *why)
{
    if (!n->fe)
        return;
    net_log(n, "backend gone (%s)", why);
    event_release(&n->sock_ev);
    vhost_fe_destroy(n->fe);
    n->fe = NULL;
    n->started = false;
    set_link(n, false);
    schedule_redial(n);
}

static void sock_cb(evutil_socket_t fd, short what, void *arg)
{
    struct virtio_net_dev *n = arg;
    char c;

    vm_lock(n->vm);
    if (n->fe && vhost_fe_socket(n->fe) == fd) {
        ssize_t r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r == 0) {
            backend_lost(n, "connection closed");
        } else if (r < 0 && errno != EAGAIN && errno != EINTR) {
            backend_lost(n, strerror(errno));
        } else if (r > 0) {
            /* nothing is asked of us unsolicited (no backend channel) */
            struct vhost_user_msg msg;
            if (vhost_user_recv(fd, &msg) <= 0) {
                backend_lost(n, "bad message");
            } else {
                net_log(n, "ignoring unsolicited %s",
                        vhost_user_request_name(msg.hdr.request));
                vhost_user_close_fds(&msg);
            }
        }
    }
    vm_unlock(n->vm);
}

/* A connected socket: handshake, then (re)start under a running driver. */
static int backend_connected(struct virtio_net_dev *n, int sock)
{
    char err[160] = "";

    n->fe = vhost_fe_create(n->path, sock, FE_TIMEOUT_MS); /* closes sock on failure */
    if (!n->fe)
        return -ENOMEM;
    if (vhost_fe_handshake(n->fe, err, sizeof(err)) < 0) {
        net_log(n, "handshake failed: %s", err);
        goto err_fe;
    }
    uint64_t bf = vhost_fe_backend_features(n->fe);
    if (!(bf & VIRTIO_BIT(VIRTIO_F_VERSION_1))) {
        net_log(n, "backend lacks VIRTIO_F_VERSION_1 (0x%llx)", (unsigned long long)bf);
        goto err_fe;
    }
    uint8_t status = virtio_pci_status(n->vp);
    if (status & VIRTIO_CONFIG_S_FEATURES_OK) {
        uint64_t need = virtio_pci_driver_features(n->vp) & ~VMM_OWN_FEATURES;
        if (need & ~bf) {
            net_log(n, "backend no longer offers 0x%llx the driver uses",
                    (unsigned long long)(need & ~bf));
            goto err_fe;
        }
    }
    n->backend_features = bf;
    if (!n->backend_seen && status == 0) {
        n->backend_seen = true;
        virtio_pci_set_device_features(n->vp, offered_features(n));
    }
    n->sock_ev = event_new(vm_event_base(n->vm), vhost_fe_socket(n->fe),
                           EV_READ | EV_PERSIST | EV_FINALIZE, sock_cb, n);
    if (!n->sock_ev || event_add(n->sock_ev, NULL) < 0)
        goto err_ev;
    if ((status & VIRTIO_CONFIG_S_DRIVER_OK) && vhost_start(n, true) < 0)
        goto err_ev;
    n->connects++;
    net_log(n, "backend connected (features 0x%llx)", (unsigned long long)bf);
    set_link(n, true);
    return 0;

err_ev:
    event_release(&n->sock_ev);
err_fe:
    vhost_fe_destroy(n->fe);
    n->fe = NULL;
    return -EPROTO;
}

static int dial(const struct virtio_net_dev *n)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (s < 0)
        return -errno;
    memcpy(sa.sun_path, n->path, strlen(n->path) + 1);
    if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(s);
        return -e;
    }
    return s;
}

static void redial_cb(evutil_socket_t fd, short what, void *arg)
{
    struct virtio_net_dev *n = arg;

    vm_lock(n->vm);
    if (!n->fe) {
        int s = dial(n);
        if (s < 0 || backend_connected(n, s) < 0)
            schedule_redial(n);
    }
    vm_unlock(n->vm);
}

static void listen_cb(evutil_socket_t fd, short what, void *arg)
{
    struct virtio_net_dev *n = arg;
    int s = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

    if (s < 0)
        return;
    vm_lock(n->vm);
    /* a backend that restarted may dial before we noticed its old socket close */
    if (n->fe)
        backend_lost(n, "replaced by a new connection");
    backend_connected(n, s);
    vm_unlock(n->vm);
}

static int listen_on(struct virtio_net_dev *n)
{
    struct stat st;
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (s < 0)
        return -errno;
    if (stat(n->path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(n->path); /* stale socket of an earlier run */
    /* 0600, or 0660 with the group of vmm --group (a vswitchd running as
     * another user of that group connects) */
    enum unix_sock_step step;
    int r = unix_sock_bind(s, n->path, unix_sock_group() != (gid_t)-1 ? 0660 : 0600, &step);
    if (r < 0 || listen(s, 4) < 0) {
        int e = r < 0 ? -r : errno;
        close(s);
        return -e;
    }
    return s;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The first backend, waited for briefly so the guest is offered its features. */
static void first_connect(struct virtio_net_dev *n)
{
    int64_t deadline = now_ms() + VIRTIO_NET_FIRST_WAIT_MS;

    do {
        int s;
        if (n->server) {
            struct pollfd p = {.fd = n->listen_fd, .events = POLLIN};
            int left = (int)(deadline - now_ms());
            if (poll(&p, 1, left > 0 ? left : 0) <= 0)
                break;
            s = accept4(n->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        } else {
            s = dial(n);
        }
        if (s >= 0 && backend_connected(n, s) == 0)
            return;
        if (!n->server)
            usleep(100 * 1000);
    } while (now_ms() < deadline);
    net_log(n, "no backend yet; link down until one %s", n->server ? "dials" : "listens");
}

struct virtio_net_dev *virtio_net_create(struct vm *vm, struct pci_bus *bus,
                                         const char *socket, const uint8_t mac[6],
                                         bool server, char *err, size_t errlen)
{
    struct virtio_net_dev *n = calloc(1, sizeof(*n));
    if (!n) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    n->vm = vm;
    n->server = server;
    n->listen_fd = -1;
    memcpy(n->mac, mac, 6);
    for (unsigned q = 0; q < NET_QUEUES; q++)
        n->kick_fd[q] = n->call_fd[q] = -1;
    if (!socket || !*socket || strlen(socket) >= sizeof(n->path)) {
        snprintf(err, errlen, "vhost-user socket path %s", socket && *socket ? "too long"
                                                                              : "missing");
        goto err_free;
    }
    strcpy(n->path, socket);
    for (unsigned q = 0; q < NET_QUEUES; q++) {
        n->kick_fd[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        n->call_fd[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (n->kick_fd[q] < 0 || n->call_fd[q] < 0) {
            snprintf(err, errlen, "eventfd: %s", strerror(errno));
            goto err_fds;
        }
    }
    n->vp = virtio_pci_create(vm, bus, 1, 0x020000, NET_QUEUES, NET_QUEUE_MAX, NET_VECTORS,
                              NET_CONFIG_SIZE, offered_features(n), &net_ops, n);
    if (!n->vp) {
        snprintf(err, errlen, "cannot add a virtio-net PCI function (bus full?)");
        goto err_fds;
    }
    if (server) {
        n->listen_fd = listen_on(n);
        if (n->listen_fd < 0) {
            snprintf(err, errlen, "cannot listen on %s: %s", n->path,
                     strerror(-n->listen_fd));
            goto err_vp;
        }
        n->listen_ev = event_new(vm_event_base(vm), n->listen_fd,
                                 EV_READ | EV_PERSIST | EV_FINALIZE, listen_cb, n);
        if (!n->listen_ev || event_add(n->listen_ev, NULL) < 0) {
            snprintf(err, errlen, "event loop: cannot watch %s", n->path);
            goto err_listen;
        }
    } else {
        n->redial_ev = evtimer_new(vm_event_base(vm), redial_cb, n);
        if (!n->redial_ev) {
            snprintf(err, errlen, "event loop: cannot make a timer");
            goto err_vp;
        }
    }
    first_connect(n);
    if (!n->fe)
        schedule_redial(n);
    return n;

err_listen:
    if (n->listen_ev)
        event_free(n->listen_ev);
    close(n->listen_fd);
    unlink(n->path);
err_vp:
    virtio_pci_destroy(n->vp);
err_fds:
    for (unsigned q = 0; q < NET_QUEUES; q++) {
        if (n->kick_fd[q] >= 0)
            close(n->kick_fd[q]);
        if (n->call_fd[q] >= 0)
            close(n->call_fd[q]);
    }
err_free:
    free(n);
    return NULL;
}

void virtio_net_destroy(struct virtio_net_dev *n)
{
    if (!n)
        return;
    ioeventfds_disarm(n);
    if (n->fe) {
        event_free(n->sock_ev);
        vhost_fe_destroy(n->fe);
    }
    if (n->redial_ev)
        event_free(n->redial_ev);
    if (n->listen_ev)
        event_free(n->listen_ev);
    if (n->listen_fd >= 0) {
        close(n->listen_fd);
        unlink(n->path);
    }
    virtio_pci_destroy(n->vp);
    for (unsigned q = 0; q < NET_QUEUES; q++) {
        close(n->kick_fd[q]);
        close(n->call_fd[q]);
    }
    free(n);
}

bool virtio_net_link_up(const struct virtio_net_dev *n)
{
    return n->link_up;
}

struct pci_dev *virtio_pci_dev_of(struct virtio_net_dev *n)
{
    return virtio_pci_dev(n->vp);
}

json_t *virtio_net_status_json(struct virtio_net_dev *n)
{
    char mac[18], feat[19];

    vm_lock(n->vm);
    snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0], n->mac[1],
             n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
    snprintf(feat, sizeof(feat), "0x%llx",
             (unsigned long long)virtio_pci_driver_features(n->vp));
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:s, s:i, s:i}", "socket", n->path,
                          "mode", n->server ? "server" : "client", "mac", mac, "link",
                          n->link_up ? "up" : "down", "connected", n->fe != NULL,
                          "driver_ok",
                          (virtio_pci_status(n->vp) & VIRTIO_CONFIG_S_DRIVER_OK) != 0,
                          "features", feat, "connects", (int)n->connects, "pci_slot",
                          (int)pci_dev_slot(virtio_pci_dev(n->vp)));
    vm_unlock(n->vm);
    return o;
}
