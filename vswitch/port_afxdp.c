/* The afxdp port type: one AF_XDP socket bound to queue `queue=` of interface
 * `dev=`, with libxdp's default XSK program (through its dispatcher) steering
 * that queue's frames to the socket.
 *
 * Memory: one UMEM per port, a preallocated area of UMEM_FRAMES frames split
 * in two pools (uplink.h): receive frames live in the fill ring, the rx ring
 * or a batch in flight; transmit frames on a free stack, the tx ring or the
 * completion ring. A received frame is parsed in place (head copied, the rest
 * a segment in the UMEM frame) and goes back to the fill ring in rx_done,
 * after the batch has been transmitted. Transmit copies the gathered frame
 * into a free transmit frame and kicks the kernel with one sendto() per
 * batch.
 *
 * Attach: native (driver) XDP with zero-copy if the driver has it, else
 * native in copy mode, else generic (SKB) mode. veth has native XDP but no
 * zero-copy, so there it runs native copy mode. */
#include <errno.h>
#include <net/if.h>
#include <stdarg.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>
#include <xdp/xsk.h>

#include "guest_fault.h"
#include "log.h"
#include "port.h"
#include "gso.h"
#include "uplink.h"

#define XSK_FRAME_SIZE XSK_UMEM__DEFAULT_FRAME_SIZE /* 4096 */
#define XSK_RX_FRAMES 2048 /* = fill ring size: every rx frame fits in it */
#define XSK_TX_FRAMES 2048 /* = completion ring size */
#define XSK_RING_SIZE 2048
#define UMEM_FRAMES (XSK_RX_FRAMES + XSK_TX_FRAMES)

struct afxdp {
    char dev[IF_NAMESIZE];
    unsigned queue;
    int ifindex;
    void *area;
    size_t area_len;
    struct xsk_umem *umem;
    struct xsk_socket *xsk;
    struct xsk_ring_prod fill;
    struct xsk_ring_cons comp;
    struct xsk_ring_cons rx;
    struct xsk_ring_prod tx;
    int fd;
    const char *mode;   /* "native zero-copy", "native copy", "generic copy" */
    bool need_wakeup;
    /* receive side: PMD thread of queue 0 only */
    uint64_t held[PKT_BATCH]; /* frames of the batch in flight */
    unsigned n_held;
    /* transmit side: any PMD thread, under tx_lock */
    pthread_spinlock_t tx_lock;
    struct umem_frames tx_frames;
    uint32_t tx_outstanding; /* in the tx or completion ring */
    bool tx_error_logged;
};

/* libbpf and libxdp talk through our log: their warnings (e.g. no bpffs, so
 * no dispatcher) at info, the rest at debug. */
static void xdp_lib_vlog(bool warn, const char *fmt, va_list ap)
{
    char buf[256];
    size_t n;

    vsnprintf(buf, sizeof buf, fmt, ap);
    n = strlen(buf);
    while (n && buf[n - 1] == '\n')
        buf[--n] = '\0';
    if (warn)
        log_info("afxdp: %s", buf);
    else
        log_debug("afxdp: %s", buf);
}

static int libxdp_print(enum libxdp_print_level level, const char *fmt, va_list ap)
{
    xdp_lib_vlog(level == LIBXDP_WARN, fmt, ap);
    return 0;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    xdp_lib_vlog(level == LIBBPF_WARN, fmt, ap);
    return 0;
}

/* Gives frames back to the kernel for receiving. The fill ring is as large
 * as the receive pool, so there is always room. */
static void xsk_refill(struct afxdp *x, const uint64_t *addrs, unsigned n)
{
    uint32_t idx;

    if (!n)
        return;
    if (xsk_ring_prod__reserve(&x->fill, n, &idx) != n) {
        log_warn("afxdp %s: fill ring full: %u frames lost", x->dev, n); /* cannot happen */
        return;
    }
    for (unsigned i = 0; i < n; i++)
        *xsk_ring_prod__fill_addr(&x->fill, idx + i) = addrs[i];
    xsk_ring_prod__submit(&x->fill, n);
}

static void afxdp_free(struct afxdp *x)
{
    if (!x)
        return;
    if (x->xsk)
        xsk_socket__delete(x->xsk); /* the last socket on dev detaches the program */
    if (x->umem)
        xsk_umem__delete(x->umem);
    if (x->area)
        munmap(x->area, x->area_len);
    umem_frames_free(&x->tx_frames);
    pthread_spin_destroy(&x->tx_lock);
    free(x);
}

/* One attempt at UMEM + socket in the given mode; cleans up after itself. */
static int xsk_try_open(struct afxdp *x, uint32_t xdp_flags, uint16_t bind_flags)
{
    struct xsk_umem_config ucfg = {
        .fill_size = XSK_RX_FRAMES,
        .comp_size = XSK_TX_FRAMES,
        .frame_size = XSK_FRAME_SIZE,
        .frame_headroom = 0,
        .flags = 0,
    };
    struct xsk_socket_config scfg = {
        .rx_size = XSK_RING_SIZE,
        .tx_size = XSK_RING_SIZE,
        .libxdp_flags = 0, /* libxdp loads its default XSK program */
        .xdp_flags = xdp_flags,
        .bind_flags = bind_flags | XDP_USE_NEED_WAKEUP,
    };
    int r;

    r = xsk_umem__create(&x->umem, x->area, x->area_len, &x->fill, &x->comp, &ucfg);
    if (r) {
        x->umem = NULL;
        return r;
    }
    r = xsk_socket__create(&x->xsk, x->dev, x->queue, x->umem, &x->rx, &x->tx, &scfg);
    if (r) {
        x->xsk = NULL;
        xsk_umem__delete(x->umem);
        x->umem = NULL;
        return r;
    }
    return 0;
}

static int afxdp_open(struct port *p, const struct conf_port *c, const struct port_env *env,
                      char *err, size_t errlen)
{
    static const struct {
        uint32_t xdp_flags;
        uint16_t bind_flags;
        const char *mode;
    } modes[] = {
        {XDP_FLAGS_DRV_MODE, XDP_ZEROCOPY, "native zero-copy"},
        {XDP_FLAGS_DRV_MODE, XDP_COPY, "native copy"},
        {XDP_FLAGS_SKB_MODE, XDP_COPY, "generic copy"},
    };
    struct afxdp *x = calloc(1, sizeof(*x));
    uint64_t rx_addrs[XSK_RX_FRAMES];
    int r = -EINVAL;

    (void)env;
    if (!x) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pthread_spin_init(&x->tx_lock, PTHREAD_PROCESS_PRIVATE);
    snprintf(x->dev, sizeof x->dev, "%s", c->dev);
    x->queue = c->queue;
    x->ifindex = (int)if_nametoindex(x->dev);
    if (!x->ifindex) {
        snprintf(err, errlen, "afxdp: interface %s does not exist", x->dev);
        goto fail;
    }
    x->area_len = (size_t)UMEM_FRAMES * XSK_FRAME_SIZE;
    x->area = mmap(NULL, x->area_len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (x->area == MAP_FAILED) {
        x->area = NULL;
        snprintf(err, errlen, "afxdp %s: cannot map the UMEM (%zu MiB): %s", x->dev,
                 x->area_len >> 20, strerror(errno));
        goto fail;
    }
    if (umem_frames_init(&x->tx_frames, (uint64_t)XSK_RX_FRAMES * XSK_FRAME_SIZE,
                         XSK_TX_FRAMES, XSK_FRAME_SIZE) < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    libxdp_set_print(libxdp_print);
    libbpf_set_print(libbpf_print);
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        /* A socket just closed on this queue (set-port, del-port + add-port)
         * is released by the kernel a moment later: EBUSY until then. */
        for (int tries = 0; tries < 100; tries++) {
            r = xsk_try_open(x, modes[i].xdp_flags, modes[i].bind_flags);
            if (r != -EBUSY)
                break;
            usleep(10000);
        }
        if (!r) {
            x->mode = modes[i].mode;
            break;
        }
        log_debug("afxdp %s queue %u: %s mode refused: %s", x->dev, x->queue, modes[i].mode,
                  strerror(-r));
    }
    if (!x->xsk) {
        snprintf(err, errlen, "afxdp: cannot bind an AF_XDP socket to %s queue %u: %s%s",
                 x->dev, x->queue, strerror(-r),
                 r == -EINVAL ? " (does the interface have that queue?)" : "");
        goto fail;
    }
    x->fd = xsk_socket__fd(x->xsk);
    x->need_wakeup = true;
    for (uint32_t i = 0; i < XSK_RX_FRAMES; i++)
        rx_addrs[i] = (uint64_t)i * XSK_FRAME_SIZE;
    xsk_refill(x, rx_addrs, XSK_RX_FRAMES);
    log_info("afxdp %s queue %u: AF_XDP socket bound, %s mode", x->dev, x->queue, x->mode);

    p->priv = x;
    p->n_rxq = 1;
    __atomic_store_n(&p->rxq_ready[0], true, __ATOMIC_RELEASE);
    __atomic_store_n(&p->tx_ready, true, __ATOMIC_RELEASE);
    return 0;
fail:
    afxdp_free(x);
    return -1;
}

static void afxdp_close(struct port *p)
{
    afxdp_free(p->priv);
    p->priv = NULL;
    p->n_rxq = 0;
}

static void xsk_kick_rx(struct afxdp *x)
{
    if (xsk_ring_prod__needs_wakeup(&x->fill))
        (void)recvfrom(x->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
}

static int afxdp_rx_burst(struct port *p, unsigned q, struct pkt *pkts, int max)
{
    struct afxdp *x = p->priv;
    uint64_t dropped[PKT_BATCH];
    unsigned n_dropped = 0;
    uint64_t bytes = 0;
    uint32_t idx, got;
    int n = 0;

    (void)q;
    if (max > PKT_BATCH)
        max = PKT_BATCH;
    got = xsk_ring_cons__peek(&x->rx, (uint32_t)max, &idx);
    if (!got) {
        xsk_kick_rx(x);
        return 0;
    }
    x->n_held = 0;
    for (uint32_t i = 0; i < got; i++) {
        const struct xdp_desc *d = xsk_ring_cons__rx_desc(&x->rx, idx + i);
        uint64_t addr = xsk_umem__add_offset_to_addr(d->addr);
        uint64_t frame = xsk_umem__extract_addr(d->addr);
        struct pkt *pk = &pkts[n];
        struct vring_buf b = {.addr = xsk_umem__get_data(x->area, addr), .len = d->len};
        uint16_t tci;

        if (!pkt_from_bufs(pk, &b, 1, b.len, &tci)) {
            port_count_drop(p, DROP_RUNT, 1);
            dropped[n_dropped++] = frame;
            continue;
        }
        memset(&pk->vnet, 0, sizeof pk->vnet);
        pk->vlan = tci;
        pk->cookie = (uint32_t)(frame / XSK_FRAME_SIZE);
        x->held[x->n_held++] = frame;
        bytes += pk->len;
        n++;
    }
    xsk_ring_cons__release(&x->rx, got);
    xsk_refill(x, dropped, n_dropped);
    if (n)
        port_count_rx(p, (uint64_t)n, bytes);
    return n;
}

static void afxdp_rx_done(struct port *p, unsigned q, struct pkt *pkts, int n)
{
    struct afxdp *x = p->priv;

    (void)q;
    (void)pkts;
    (void)n;
    xsk_refill(x, x->held, x->n_held);
    x->n_held = 0;
}

/* Transmit frames the kernel has finished with go back on the free stack. */
static void xsk_reap_completions(struct afxdp *x)
{
    uint32_t idx, got = xsk_ring_cons__peek(&x->comp, XSK_TX_FRAMES, &idx);

    for (uint32_t i = 0; i < got; i++)
        umem_frames_push(&x->tx_frames, *xsk_ring_cons__comp_addr(&x->comp, idx + i));
    xsk_ring_cons__release(&x->comp, got);
    x->tx_outstanding -= got;
}

static void afxdp_tx_frames(struct port *p, struct pkt *const *pkts, const uint16_t *tcis,
                           int n)
{
    struct afxdp *x = p->priv;
    uint64_t bytes = 0;
    int sent = 0;

    pthread_spin_lock(&x->tx_lock);
    guest_guard.held = &x->tx_lock;
    xsk_reap_completions(x);
    for (int i = 0; i < n; i++) {
        struct iovec iov[PKT_IOV_MAX];
        enum drop_reason why = uplink_tx_prepare(pkts[i]);
        uint8_t tag[4];
        uint64_t frame;
        uint32_t idx;
        size_t len;
        int niov;

        if (why != DROP__COUNT) {
            port_count_drop(p, why, 1);
            continue;
        }
        if (umem_frames_empty(&x->tx_frames)) {
            port_count_drop(p, DROP_NO_BUFFER, 1);
            continue;
        }
        /* Copy first, then take the frame and a ring slot: a guest fault in
         * the copy leaves the pool and the ring as they were. */
        frame = umem_frames_peek(&x->tx_frames);
        niov = pkt_gather(pkts[i], tcis[i], tag, iov);
        len = uplink_iov_copy(xsk_umem__get_data(x->area, frame), XSK_FRAME_SIZE, iov, niov);
        if (!len) {
            port_count_drop(p, DROP_MTU, 1);
            continue;
        }
        if (xsk_ring_prod__reserve(&x->tx, 1, &idx) != 1) {
            port_count_drop(p, DROP_NO_BUFFER, 1);
            continue;
        }
        xsk_ring_prod__tx_desc(&x->tx, idx)->addr = frame;
        xsk_ring_prod__tx_desc(&x->tx, idx)->len = (uint32_t)len;
        xsk_ring_prod__tx_desc(&x->tx, idx)->options = 0;
        xsk_ring_prod__submit(&x->tx, 1);
        umem_frames_pop(&x->tx_frames);
        x->tx_outstanding++;
        sent++;
        bytes += len;
    }
    if (sent && (!x->need_wakeup || xsk_ring_prod__needs_wakeup(&x->tx))) {
        if (sendto(x->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0 && errno != EAGAIN &&
            errno != EBUSY && errno != ENOBUFS && errno != EINTR) {
            if (!x->tx_error_logged) /* once per port: the counters tell the rest */
                log_warn("afxdp %s: transmit kick failed: %s", x->dev, strerror(errno));
            x->tx_error_logged = true;
        }
    }
    guest_guard.held = NULL;
    pthread_spin_unlock(&x->tx_lock);
    if (sent)
        port_count_tx(p, (uint64_t)sent, bytes);
}

static int afxdp_wait_fd(struct port *p, unsigned q, bool *is_eventfd)
{
    struct afxdp *x = p->priv;

    (void)q;
    *is_eventfd = false;
    return x ? x->fd : -1;
}

static bool afxdp_rx_pending(struct port *p, unsigned q)
{
    struct afxdp *x = p->priv;

    (void)q;
    return xsk_cons_nb_avail(&x->rx, 1) > 0;
}

static int afxdp_uplink_addr(struct port *p, uint32_t *addr_be, uint8_t *prefix_len)
{
    if (uplink_addr_from_conf(&p->conf, addr_be, prefix_len) == 0)
        return 0;
    return uplink_addr_of_ifname(p->conf.dev, addr_be, prefix_len);
}

static json_t *afxdp_status(struct port *p)
{
    struct afxdp *x = p->priv;
    json_t *j = json_object();
    struct xdp_statistics st;
    socklen_t len = sizeof st;

    json_object_set_new(j, "dev", json_string(p->conf.dev));
    json_object_set_new(j, "queue", json_integer(p->conf.queue));
    json_object_set_new(j, "link", json_string(x ? "up" : "down"));
    if (!x)
        return j;
    json_object_set_new(j, "xdp_mode", json_string(x->mode));
    json_object_set_new(j, "umem_frames", json_integer(UMEM_FRAMES));
    if (getsockopt(x->fd, SOL_XDP, XDP_STATISTICS, &st, &len) == 0) {
        json_object_set_new(j, "kernel_rx_dropped", json_integer((json_int_t)st.rx_dropped));
        json_object_set_new(j, "kernel_rx_ring_full",
                            json_integer((json_int_t)st.rx_ring_full));
        json_object_set_new(j, "kernel_fill_ring_empty",
                            json_integer((json_int_t)st.rx_fill_ring_empty_descs));
        json_object_set_new(j, "kernel_tx_invalid",
                            json_integer((json_int_t)st.tx_invalid_descs));
    }
    return j;
}

static bool afxdp_same_options(const struct conf_port *a, const struct conf_port *b)
{
    return strcmp(a->dev, b->dev) == 0 && a->queue == b->queue;
}

/* Super-frames are cut into segments first: the wire takes MTU-sized frames. */
static void afxdp_tx_burst(struct port *p, struct pkt *const *pkts, const uint16_t *tcis,
                           int n)
{
    gso_tx_burst(p, pkts, tcis, n, NULL, afxdp_tx_frames);
}

const struct port_ops port_afxdp_ops = {
    .type = "afxdp",
    .open = afxdp_open,
    .close = afxdp_close,
    .same_options = afxdp_same_options,
    .rx_burst = afxdp_rx_burst,
    .rx_done = afxdp_rx_done,
    .tx_burst = afxdp_tx_burst,
    .wait_fd = afxdp_wait_fd,
    .rx_pending = afxdp_rx_pending,
    .uplink_addr = afxdp_uplink_addr,
    .status = afxdp_status,
};
