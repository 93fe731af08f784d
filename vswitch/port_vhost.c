/* The vhost-user port type. The socket side (server: listen and accept one
 * frontend; client: dial and keep redialling) runs on the control thread with
 * libevent and feeds messages to the vhost_dev state machine. The datapath
 * side moves frames between the guest's rings and the switch: a guest's TX
 * queue (vring 2q+1) is our receive queue q; we transmit into its RX queue 0. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "gso.h"
#include "guest_fault.h"
#include "log.h"
#include "privilege.h"
#include "port.h"
#include "vhost_dev.h"
#include "vhost_net.h"

#define VHOST_RETRY_SECS 1

struct vhost_rxq {
    struct vring_chain chain;
    struct vring_buf frame[VRING_CHAIN_MAX];
};

struct vhost_port {
    struct port *port;
    struct vhost_dev *dev;
    struct event_base *base;
    char path[CONF_PATH_MAX];
    bool client;
    int listen_fd;
    struct event *listen_ev;
    int conn_fd;
    struct event *conn_ev;
    struct event *retry_ev;
    struct event *fault_ev;    /* a PMD saw this guest's memory vanish */
    bool faulted;              /* until the frontend is dropped: stay out */
    bool retry_logged;
    pthread_spinlock_t tx_lock;
    /* set while quiesced, read by the datapath */
    size_t hdr_len;
    bool mrg_rxbuf;
    bool guest_csum, guest_tso4, guest_tso6, guest_ecn;
    struct vhost_rxq rxq[PORT_RXQ_MAX];
};

static void vhost_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void vhost_log(int level, const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    vlog(level <= 0 ? LOG_LVL_ERR : level == 1 ? LOG_LVL_WARN
                                   : level == 2 ? LOG_LVL_INFO : LOG_LVL_DEBUG,
         "%s", buf);
}

static void vp_quiesce(void *opaque)
{
    struct vhost_port *vp = opaque;

    port_quiesce(vp->port);
}

static void vp_resume(void *opaque)
{
    struct vhost_port *vp = opaque;
    struct port *p = vp->port;
    uint64_t f = vhost_dev_features(vp->dev);
    bool running = vhost_dev_running(vp->dev) && !__atomic_load_n(&vp->faulted,
                                                                   __ATOMIC_ACQUIRE);

    vp->hdr_len = vhost_dev_hdr_len(vp->dev);
    vp->mrg_rxbuf = f & VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF);
    vp->guest_csum = f & VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM);
    vp->guest_tso4 = f & VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4);
    vp->guest_tso6 = f & VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6);
    vp->guest_ecn = f & VIRTIO_BIT(VIRTIO_NET_F_GUEST_ECN);
    for (unsigned q = 0; q < p->n_rxq; q++)
        __atomic_store_n(&p->rxq_ready[q],
                         running && vhost_dev_vring_ready(vp->dev, 2 * q + 1),
                         __ATOMIC_RELEASE);
    __atomic_store_n(&p->tx_ready, running && vhost_dev_vring_ready(vp->dev, 0),
                     __ATOMIC_RELEASE);
    switch_port_changed(p->sw, p);
}

static const struct vhost_dev_ops vp_dev_ops = {
    .quiesce = vp_quiesce,
    .resume = vp_resume,
};

static void vp_schedule_retry(struct vhost_port *vp);

static void vp_disconnect(struct vhost_port *vp)
{
    if (GUEST_GUARD_ENTER()) {
        /* cannot happen (a reset does not touch guest memory); be safe */
        guest_guard_recover();
        log_err("port %s: guest memory fault while disconnecting", vp->port->name);
    }
    if (vp->conn_ev) {
        event_free(vp->conn_ev);
        vp->conn_ev = NULL;
    }
    vhost_dev_disconnect(vp->dev);
    if (vp->conn_fd >= 0) {
        close(vp->conn_fd);
        vp->conn_fd = -1;
        log_info("port %s: frontend disconnected", vp->port->name);
    }
    guest_guard_leave();
    __atomic_store_n(&vp->faulted, false, __ATOMIC_RELEASE);
    vp_resume(vp);
    if (vp->client)
        vp_schedule_retry(vp);
}

static void vp_on_msg(evutil_socket_t fd, short what, void *arg)
{
    struct vhost_port *vp = arg;
    int r;

    (void)what;
    /* handlers read and write the rings (used->idx): guard them too */
    if (GUEST_GUARD_ENTER()) {
        guest_guard_recover();
        log_err("port %s: guest memory vanished under a vhost-user request "
                "(the frontend truncated what it shared); dropping the frontend",
                vp->port->name);
        port_count_drop(vp->port, DROP_GUEST_FAULT, 1);
        vp_disconnect(vp);
        return;
    }
    r = vhost_dev_handle_msg(vp->dev, fd);
    guest_guard_leave();
    if (r < 0)
        vp_disconnect(vp);
}

/* On the control thread, after a PMD's fault (vp_fault). */
static void vp_on_fault(evutil_socket_t unused, short what, void *arg)
{
    struct vhost_port *vp = arg;

    (void)unused;
    (void)what;
    log_err("port %s: guest memory vanished under the datapath (the frontend "
            "truncated what it shared); dropping the frontend", vp->port->name);
    vp_disconnect(vp);
}

static int vp_attach(struct vhost_port *vp, int fd)
{
    vp->conn_ev = event_new(vp->base, fd, EV_READ | EV_PERSIST, vp_on_msg, vp);
    if (!vp->conn_ev) {
        close(fd);
        return -1;
    }
    vp->conn_fd = fd;
    event_add(vp->conn_ev, NULL);
    log_info("port %s: frontend connected on %s", vp->port->name, vp->path);
    return 0;
}

static void vp_on_accept(evutil_socket_t lfd, short what, void *arg)
{
    struct vhost_port *vp = arg;
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

    (void)what;
    if (fd < 0)
        return;
    if (vp->conn_fd >= 0) {
        log_warn("port %s: refusing a second frontend on %s", vp->port->name, vp->path);
        close(fd);
        return;
    }
    vp_attach(vp, fd);
}

static int unix_connect(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static void vp_try_connect(evutil_socket_t unused, short what, void *arg)
{
    struct vhost_port *vp = arg;
    int fd;

    (void)unused;
    (void)what;
    if (vp->conn_fd >= 0)
        return;
    fd = unix_connect(vp->path);
    if (fd < 0) {
        if (!vp->retry_logged)
            log_info("port %s: cannot connect to %s (%s); retrying every %ds",
                     vp->port->name, vp->path, strerror(errno), VHOST_RETRY_SECS);
        vp->retry_logged = true;
        vp_schedule_retry(vp);
        return;
    }
    vp->retry_logged = false;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); /* a slow frontend must not stall us */
    vp_attach(vp, fd);
}

static void vp_schedule_retry(struct vhost_port *vp)
{
    struct timeval tv = {VHOST_RETRY_SECS, 0};

    event_add(vp->retry_ev, &tv);
}

static int vp_listen(struct vhost_port *vp, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    int fd;

    if (strlen(vp->path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "socket path %s is too long", vp->path);
        return -1;
    }
    if (lstat(vp->path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "%s exists and is not a socket", vp->path);
            return -1;
        }
        fd = unix_connect(vp->path);
        if (fd >= 0) {
            close(fd);
            snprintf(err, errlen, "socket %s is in use by another process", vp->path);
            return -1;
        }
        unlink(vp->path); /* stale: nobody listens */
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        goto fail_errno;
    if (priv_bind_unix(fd, vp->path, "socket", err, errlen) < 0) {
        close(fd);
        return -1;
    }
    if (listen(fd, 4) < 0) {
        close(fd);
        unlink(vp->path);
        goto fail_errno;
    }
    vp->listen_fd = fd;
    vp->listen_ev = event_new(vp->base, fd, EV_READ | EV_PERSIST, vp_on_accept, vp);
    if (!vp->listen_ev) {
        close(fd);
        unlink(vp->path);
        vp->listen_fd = -1;
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    event_add(vp->listen_ev, NULL);
    return 0;
fail_errno:
    snprintf(err, errlen, "cannot listen on %s: %s", vp->path, strerror(errno));
    return -1;
}

static void vp_free(struct vhost_port *vp)
{
    if (vp->conn_ev)
        event_free(vp->conn_ev);
    if (vp->dev) {
        vhost_dev_destroy(vp->dev);
    }
    if (vp->conn_fd >= 0)
        close(vp->conn_fd);
    if (vp->listen_ev)
        event_free(vp->listen_ev);
    if (vp->listen_fd >= 0) {
        close(vp->listen_fd);
        unlink(vp->path);
    }
    if (vp->retry_ev)
        event_free(vp->retry_ev);
    if (vp->fault_ev)
        event_free(vp->fault_ev);
    pthread_spin_destroy(&vp->tx_lock);
    free(vp);
}

static int vp_open(struct port *p, const struct conf_port *c, const struct port_env *env,
                   char *err, size_t errlen)
{
    struct vhost_port *vp = calloc(1, sizeof(*vp));
    unsigned queues = c->queues ? c->queues : 1;

    if (!vp) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    vp->port = p;
    vp->base = env->base;
    vp->client = c->client;
    vp->listen_fd = -1;
    vp->conn_fd = -1;
    pthread_spin_init(&vp->tx_lock, PTHREAD_PROCESS_PRIVATE);
    if (c->socket[0])
        snprintf(vp->path, sizeof(vp->path), "%s", c->socket);
    else if ((size_t)snprintf(vp->path, sizeof(vp->path), "%s/%s.sock", env->run_dir,
                              c->name) >= sizeof(vp->path)) {
        snprintf(err, errlen, "socket path %s/%s.sock is too long", env->run_dir,
                 c->name);
        goto fail;
    }
    if (!c->socket[0])
        mkdir(env->run_dir, 0755);
    if (vp->client && !c->socket[0]) {
        snprintf(err, errlen, "mode=client needs socket=PATH (the frontend's socket)");
        goto fail;
    }
    vp->dev = vhost_dev_create(c->name, queues,
                               (uint16_t)(c->mtu ? c->mtu : CONF_MTU_DEFAULT),
                               &vp_dev_ops, vp);
    vp->retry_ev = event_new(env->base, -1, 0, vp_try_connect, vp);
    vp->fault_ev = event_new(env->base, -1, 0, vp_on_fault, vp);
    if (!vp->dev || !vp->retry_ev || !vp->fault_ev) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    p->priv = vp;
    p->n_rxq = queues;
    if (vp->client) {
        vp_try_connect(-1, 0, vp);
    } else if (vp_listen(vp, err, errlen) < 0) {
        goto fail;
    }
    return 0;
fail:
    p->priv = NULL;
    p->n_rxq = 0;
    vp_free(vp);
    return -1;
}

static void vp_close(struct port *p)
{
    struct vhost_port *vp = p->priv;

    if (!vp)
        return;
    port_quiesce(p);
    vp_free(vp);
    p->priv = NULL;
    p->n_rxq = 0;
}

static bool vp_same_options(const struct conf_port *a, const struct conf_port *b)
{
    return strcmp(a->socket, b->socket) == 0 && a->client == b->client &&
           a->queues == b->queues && a->mtu == b->mtu;
}

static int vp_rx_burst(struct port *p, unsigned q, struct pkt *pkts, int max)
{
    struct vhost_port *vp = p->priv;
    struct vring *vq = vhost_dev_vring(vp->dev, 2 * q + 1);
    struct vhost_rxq *rq = &vp->rxq[q];
    uint64_t bytes = 0;
    int n = 0;

    if (vq->broken)
        return 0;
    while (n < max) {
        struct pkt *pk = &pkts[n];
        enum vring_err e = vring_pop(vq, false, &rq->chain);
        int nframe, flen;
        uint16_t tci;

        if (e == VRING_EMPTY || e == VRING_ERR_NOT_READY)
            break;
        if (e != VRING_OK) {
            port_count_drop(p, DROP_DESC_INVALID, 1);
            if (vq->broken)
                break;
            continue;
        }
        if (rq->chain.len > PKT_FRAME_MAX + vp->hdr_len) {
            port_count_drop(p, DROP_OVERSIZED, 1);
            vring_push(vq, rq->chain.head, 0);
            continue;
        }
        flen = vhost_net_tx_split(&rq->chain, vp->hdr_len, &pk->vnet, rq->frame,
                                  &nframe);
        if (flen < 0) {
            port_count_drop(p, DROP_VNET_HDR, 1);
            vring_push(vq, rq->chain.head, 0);
            continue;
        }
        if (!pkt_from_bufs(pk, rq->frame, (unsigned)nframe, (uint32_t)flen, &tci)) {
            port_count_drop(p, DROP_RUNT, 1);
            vring_push(vq, rq->chain.head, 0);
            continue;
        }
        if (!pkt_vnet_untag(pk, tci)) {
            port_count_drop(p, DROP_BAD_OFFLOAD, 1);
            vring_push(vq, rq->chain.head, 0);
            continue;
        }
        pk->vlan = tci;
        pk->cookie = rq->chain.head;
        bytes += pk->len;
        n++;
    }
    if (n)
        port_count_rx(p, n, bytes);
    else if (vq->pending_used)
        vring_flush(vq);
    return n;
}

static void vp_rx_done(struct port *p, unsigned q, struct pkt *pkts, int n)
{
    struct vhost_port *vp = p->priv;
    struct vring *vq = vhost_dev_vring(vp->dev, 2 * q + 1);

    for (int i = 0; i < n; i++)
        vring_push(vq, (uint16_t)pkts[i].cookie, 0);
    vring_flush(vq);
}

static bool vp_gso_ok(const struct vhost_port *vp, const struct virtio_net_hdr *h)
{
    switch (h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN) {
    case VIRTIO_NET_HDR_GSO_NONE:
        return true;
    case VIRTIO_NET_HDR_GSO_TCPV4:
        return vp->guest_tso4 && (!(h->gso_type & VIRTIO_NET_HDR_GSO_ECN) || vp->guest_ecn);
    case VIRTIO_NET_HDR_GSO_TCPV6:
        return vp->guest_tso6 && (!(h->gso_type & VIRTIO_NET_HDR_GSO_ECN) || vp->guest_ecn);
    default:
        return false;
    }
}

/* One frame into the guest's receive ring; false if it was dropped (counted). */
static bool vp_tx_one(struct port *p, struct vhost_port *vp, struct vring *vq,
                      struct pkt *pk, uint16_t tci, uint64_t *bytes)
{
    struct iovec iov[PKT_IOV_MAX];
    struct virtio_net_hdr h;
    enum vhost_net_rx_err e;
    uint8_t tag[4];
    uint32_t len = pk->len + (tci ? VLAN_HLEN : 0);
    int niov;

    if ((pk->vnet.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !vp->guest_csum &&
        !pkt_finish_csum(pk)) {
        port_count_drop(p, DROP_BAD_OFFLOAD, 1);
        return false;
    }
    pkt_vnet_for_egress(pk, tci, &h);
    if (!vp->guest_csum)
        h.flags = 0;
    niov = pkt_gather(pk, tci, tag, iov);
    e = vhost_net_rx_copy(vq, vp->mrg_rxbuf, vp->hdr_len, &h, iov, niov, len);
    if (e != VHOST_NET_RX_OK) {
        port_count_drop(p,
                        e == VHOST_NET_RX_NO_BUF   ? DROP_NO_BUFFER
                        : e == VHOST_NET_RX_TOO_BIG ? DROP_TOO_BIG
                                                    : DROP_DESC_INVALID,
                        1);
        return false;
    }
    *bytes += len;
    return true;
}

static void vp_tx_frames(struct port *p, struct pkt *const *pkts, const uint16_t *tcis,
                         int n)
{
    struct vhost_port *vp = p->priv;
    struct vring *vq = vhost_dev_vring(vp->dev, 0);
    uint64_t bytes = 0;
    int sent = 0;

    pthread_spin_lock(&vp->tx_lock);
    guest_guard.held = &vp->tx_lock;
    for (int i = 0; i < n; i++)
        sent += vp_tx_one(p, vp, vq, pkts[i], tcis[i], &bytes);
    if (sent)
        vring_flush(vq);
    guest_guard.held = NULL;
    pthread_spin_unlock(&vp->tx_lock);
    if (sent)
        port_count_tx(p, sent, bytes);
}

static bool vp_takes_gso(struct port *p, const struct pkt *pk)
{
    return vp_gso_ok(p->priv, &pk->vnet);
}

/* A guest without TSO gets super-frames segmented in software. */
static void vp_tx_burst(struct port *p, struct pkt *const *pkts, const uint16_t *tcis,
                        int n)
{
    gso_tx_burst(p, pkts, tcis, n, vp_takes_gso, vp_tx_frames);
}

static int vp_wait_fd(struct port *p, unsigned q, bool *is_eventfd)
{
    struct vhost_port *vp = p->priv;

    *is_eventfd = true;
    return vhost_dev_vring(vp->dev, 2 * q + 1)->kick_fd;
}

static void vp_set_notify(struct port *p, unsigned q, bool enable)
{
    struct vhost_port *vp = p->priv;

    vring_set_notify(vhost_dev_vring(vp->dev, 2 * q + 1), enable);
}

static bool vp_rx_pending(struct port *p, unsigned q)
{
    struct vhost_port *vp = p->priv;

    return vring_avail_count(vhost_dev_vring(vp->dev, 2 * q + 1)) != 0;
}

static bool vp_owns_addr(struct port *p, const void *addr)
{
    struct vhost_port *vp = p->priv;

    return vp && vhost_dev_owns_addr(vp->dev, addr);
}

/* On a PMD thread: stop using the port at once; the control thread drops the
 * frontend (event_active is thread-safe with libevent's pthreads locking). */
static void vp_fault(struct port *p)
{
    struct vhost_port *vp = p->priv;

    __atomic_store_n(&vp->faulted, true, __ATOMIC_RELEASE);
    for (unsigned q = 0; q < PORT_RXQ_MAX; q++)
        __atomic_store_n(&p->rxq_ready[q], false, __ATOMIC_RELEASE);
    __atomic_store_n(&p->tx_ready, false, __ATOMIC_RELEASE);
    event_active(vp->fault_ev, EV_TIMEOUT, 1);
}

static json_t *vp_status(struct port *p)
{
    struct vhost_port *vp = p->priv;
    json_t *j = json_object();
    json_t *perr = json_object();
    json_t *rerr = json_object();
    const uint64_t *de;

    if (!vp)
        return j;
    json_object_set_new(j, "socket", json_string(vp->path));
    json_object_set_new(j, "mode", json_string(vp->client ? "client" : "server"));
    json_object_set_new(j, "connected", json_boolean(vp->conn_fd >= 0));
    json_object_set_new(j, "link", json_string(vhost_dev_running(vp->dev) ? "up" : "down"));
    if (vp->conn_fd >= 0) {
        char feat[32];
        snprintf(feat, sizeof(feat), "0x%016llx",
                 (unsigned long long)vhost_dev_features(vp->dev));
        json_object_set_new(j, "features", json_string(feat));
        json_object_set_new(j, "mrg_rxbuf", json_boolean(vp->mrg_rxbuf));
        json_object_set_new(j, "guest_csum", json_boolean(vp->guest_csum));
        json_object_set_new(j, "guest_tso", json_boolean(vp->guest_tso4));
    }
    de = vhost_dev_errors(vp->dev);
    for (int i = 0; i < VHOST_DEV_ERR__COUNT; i++)
        if (de[i])
            json_object_set_new(perr, vhost_dev_err_name(i), json_integer((json_int_t)de[i]));
    for (unsigned v = 0; v < vhost_dev_num_vrings(vp->dev); v++) {
        struct vring *vq = vhost_dev_vring(vp->dev, v);
        for (int i = VRING_ERR_AVAIL_IDX; i < VRING_ERR__COUNT; i++) {
            uint64_t c = __atomic_load_n(&vq->errors[i], __ATOMIC_RELAXED);
            json_t *old;
            if (!c)
                continue;
            old = json_object_get(rerr, vring_err_name(i));
            json_object_set_new(rerr, vring_err_name(i),
                                json_integer((json_int_t)c +
                                             (old ? json_integer_value(old) : 0)));
        }
    }
    json_object_set_new(j, "protocol_errors", perr);
    json_object_set_new(j, "descriptor_errors", rerr);
    return j;
}

const struct port_ops port_vhost_ops = {
    .type = "vhost-user",
    .open = vp_open,
    .close = vp_close,
    .same_options = vp_same_options,
    .rx_burst = vp_rx_burst,
    .rx_done = vp_rx_done,
    .tx_burst = vp_tx_burst,
    .wait_fd = vp_wait_fd,
    .set_notify = vp_set_notify,
    .rx_pending = vp_rx_pending,
    .owns_addr = vp_owns_addr,
    .fault = vp_fault,
    .status = vp_status,
};

__attribute__((constructor)) static void vp_init_log(void)
{
    vhost_set_log(vhost_log);
}
