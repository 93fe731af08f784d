/* vhost_frontend.c against the project's own backend (vhost_dev, run by a
 * thread on the other end of a socketpair) and against a scripted fake
 * backend that misbehaves on purpose: one library, both ends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>

#include "fake_guest.h" /* count_open_fds */
#include "vhost_dev.h"
#include "vhost_frontend.h"
#include "vhost_net.h"

#define TIMEOUT_MS  2000
#define QSIZE       256
#define MEM_SIZE    (2u << 20)
#define MEM_GPA     0x40000000ULL /* guest-physical base, unlike any uva */
#define RING_OFF(i) ((uint64_t)(i)*0x4000)
#define BUF_OFF     0x40000ULL
#define BUF_SIZE    2048

#define PF_WANTED                                                                        \
    ((1ULL << VHOST_USER_PROTOCOL_F_MQ) | (1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK) |    \
     (1ULL << VHOST_USER_PROTOCOL_F_STATUS) | (1ULL << VHOST_USER_PROTOCOL_F_NET_MTU))

static void quiet_log(int level, const char *fmt, ...)
{
}

/* ---- the real backend, on a thread ---- */

struct backend {
    struct vhost_dev *dev;
    int sock;
    int stop_fd;
    pthread_t th;
    bool running;
    bool gone; /* vhost_dev_handle_msg said close */
};

static void *backend_main(void *arg)
{
    struct backend *b = arg;

    for (;;) {
        struct pollfd p[2] = {{.fd = b->sock, .events = POLLIN},
                              {.fd = b->stop_fd, .events = POLLIN}};

        if (poll(p, 2, -1) < 0)
            continue;
        /* messages first: a stop request finds every sent message handled */
        if (p[0].revents) {
            if (vhost_dev_handle_msg(b->dev, b->sock) < 0) {
                b->gone = true;
                return NULL;
            }
            continue;
        }
        if (p[1].revents) {
            eventfd_t v;
            eventfd_read(b->stop_fd, &v);
            return NULL;
        }
    }
}

static void backend_run(struct backend *b)
{
    assert_false(b->running);
    assert_int_equal(pthread_create(&b->th, NULL, backend_main, b), 0);
    b->running = true;
}

/* Joins the thread: the test may then look at (and drive) the device alone. */
static void backend_pause(struct backend *b)
{
    if (!b->running)
        return;
    eventfd_write(b->stop_fd, 1);
    pthread_join(b->th, NULL);
    b->running = false;
}

/* Creates a backend thread and a frontend on two ends of a socketpair. */
static struct vhost_fe *backend_pair(struct backend *b, unsigned qps)
{
    int sv[2];
    struct vhost_fe *fe;

    memset(b, 0, sizeof(*b));
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    b->dev = vhost_dev_create("be0", qps, 1500, NULL, NULL);
    assert_non_null(b->dev);
    b->sock = sv[1];
    b->stop_fd = eventfd(0, EFD_CLOEXEC);
    assert_true(b->stop_fd >= 0);
    fe = vhost_fe_create("fe0", sv[0], TIMEOUT_MS);
    assert_non_null(fe);
    backend_run(b);
    return fe;
}

static void backend_fini(struct backend *b)
{
    backend_pause(b);
    vhost_dev_destroy(b->dev);
    close(b->sock);
    close(b->stop_fd);
}

/* ---- guest memory and rings, as the VMM lays them out ---- */

struct guest {
    int fd;
    uint8_t *base; /* the "VMM's" mapping: uvas are real pointers into it */
    struct vhost_fe_region region;
    struct vhost_fe_vring rings[2];
    uint16_t avail_idx[2], last_used[2];
};

static uint64_t g_gpa(uint64_t off)
{
    return MEM_GPA + off;
}

static struct vring_desc *g_desc(struct guest *g, unsigned q)
{
    return (struct vring_desc *)(g->base + RING_OFF(q));
}

static struct vring_avail *g_avail(struct guest *g, unsigned q)
{
    return (struct vring_avail *)(g->base + RING_OFF(q) + 0x1000);
}

static struct vring_used *g_used(struct guest *g, unsigned q)
{
    return (struct vring_used *)(g->base + RING_OFF(q) + 0x2000);
}

static uint64_t g_buf_off(unsigned q, unsigned i)
{
    return BUF_OFF + ((uint64_t)q * QSIZE + i) * BUF_SIZE;
}

static void guest_init(struct guest *g)
{
    memset(g, 0, sizeof(*g));
    g->fd = memfd_create("fe-guest", MFD_CLOEXEC);
    assert_true(g->fd >= 0);
    assert_int_equal(ftruncate(g->fd, MEM_SIZE), 0);
    g->base = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, g->fd, 0);
    assert_true(g->base != MAP_FAILED);
    g->region = (struct vhost_fe_region){.gpa = MEM_GPA,
                                         .size = MEM_SIZE,
                                         .uva = (uint64_t)(uintptr_t)g->base,
                                         .fd = g->fd,
                                         .fd_offset = 0};
    for (unsigned q = 0; q < 2; q++) {
        struct vhost_fe_vring *v = &g->rings[q];

        v->index = q;
        v->num = QSIZE;
        v->desc_uva = (uint64_t)(uintptr_t)g_desc(g, q);
        v->avail_uva = (uint64_t)(uintptr_t)g_avail(g, q);
        v->used_uva = (uint64_t)(uintptr_t)g_used(g, q);
        v->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        v->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        assert_true(v->kick_fd >= 0 && v->call_fd >= 0);
    }
}

static void guest_fini(struct guest *g)
{
    for (unsigned q = 0; q < 2; q++) {
        close(g->rings[q].kick_fd);
        close(g->rings[q].call_fd);
    }
    munmap(g->base, MEM_SIZE);
    close(g->fd);
}

/* Driver side: one buffer per chain, descriptor i uses buffer i. */
static void guest_post(struct guest *g, unsigned q, uint16_t i, uint32_t len,
                       uint16_t flags)
{
    struct vring_desc *d = &g_desc(g, q)[i];
    struct vring_avail *a = g_avail(g, q);

    d->addr = g_gpa(g_buf_off(q, i));
    d->len = len;
    d->flags = flags;
    d->next = 0;
    a->ring[g->avail_idx[q] % QSIZE] = i;
    g->avail_idx[q]++;
    __atomic_store_n(&a->idx, g->avail_idx[q], __ATOMIC_RELEASE);
}

static bool eventfd_fired(int fd)
{
    eventfd_t v;

    return eventfd_read(fd, &v) == 0 && v > 0;
}

static const uint64_t START_FEATURES =
    VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF);

/* ---- handshake and start against vhost_dev ---- */

static void test_handshake(void **state)
{
    struct backend b;
    struct vhost_fe *fe = backend_pair(&b, 4);
    char err[256] = "";

    assert_int_equal(vhost_fe_handshake(fe, err, sizeof(err)), 0);
    assert_true(vhost_fe_backend_features(fe) == VHOST_DEV_FEATURES);
    assert_true(vhost_fe_protocol_features(fe) ==
                (VHOST_DEV_PROTOCOL_FEATURES & PF_WANTED));
    assert_int_equal(vhost_fe_max_queue_pairs(fe), 4);
    assert_string_equal(vhost_fe_last_error(fe), "");
    backend_pause(&b);
    assert_true(vhost_dev_protocol_features(b.dev) ==
                (VHOST_DEV_PROTOCOL_FEATURES & PF_WANTED));
    assert_int_equal(vhost_dev_errors(b.dev)[VHOST_DEV_ERR_BAD_VALUE], 0);
    vhost_fe_destroy(fe);
    backend_fini(&b);
}

static void test_start_rings_ready(void **state)
{
    struct backend b;
    struct vhost_fe *fe = backend_pair(&b, 2);
    struct guest g;
    char err[256] = "";
    eventfd_t v = 0;

    guest_init(&g);
    assert_int_equal(vhost_fe_handshake(fe, err, sizeof(err)), 0);
    assert_false(
        vhost_fe_start(fe, START_FEATURES, &g.region, 1, g.rings, 2, err, sizeof(err)));
    backend_pause(&b);

    assert_true(vhost_dev_features(b.dev) ==
                (START_FEATURES | VIRTIO_BIT(VHOST_USER_F_PROTOCOL_FEATURES)));
    assert_int_equal(vhost_dev_status(b.dev),
                     VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                         VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
    assert_true(vhost_dev_running(b.dev));
    for (unsigned q = 0; q < 2; q++) {
        struct vring *vq = vhost_dev_vring(b.dev, q);

        assert_true(vhost_dev_vring_ready(b.dev, q));
        assert_int_equal(vq->size, QSIZE);
        /* the backend's own mapping of the same pages: what the guest
         * writes through ours shows through its translated pointers */
        assert_true((void *)vq->desc != (void *)g_desc(&g, q));
        g_desc(&g, q)[3].addr = 0x1234500 + q;
        assert_true(vq->desc[3].addr == 0x1234500 + q);
        g_avail(&g, q)->flags = 0x5a;
        assert_int_equal(vq->avail->flags, 0x5a);
        g_avail(&g, q)->flags = 0;
        g_used(&g, q)->ring[7].len = 77;
        assert_int_equal(vq->used->ring[7].len, 77);
        g_used(&g, q)->ring[7].len = 0;
        /* the fds arrived: our kick is its kick, its call is our call */
        eventfd_write(g.rings[q].kick_fd, 5);
        assert_int_equal(eventfd_read(vq->kick_fd, &v), 0);
        assert_int_equal(v, 5);
        eventfd_write(vq->call_fd, 1);
        assert_true(eventfd_fired(g.rings[q].call_fd));
    }
    assert_false(vhost_dev_vring_ready(b.dev, 2)); /* pair 2 not started */
    for (int e = 0; e < VHOST_DEV_ERR__COUNT; e++)
        assert_int_equal(vhost_dev_errors(b.dev)[e], 0);

    vhost_fe_destroy(fe);
    backend_fini(&b);
    guest_fini(&g);
}

static void make_frame(uint8_t *f, unsigned n, size_t len)
{
    static const uint8_t dst[6] = {0x02, 0, 0, 0, 0xbb, 0x02};
    static const uint8_t src[6] = {0x02, 0, 0, 0, 0xaa, 0x01};

    memcpy(f, dst, 6);
    memcpy(f + 6, src, 6);
    f[12] = 0x88;
    f[13] = 0xb5;
    for (size_t i = 14; i < len; i++)
        f[i] = (uint8_t)(n * 31 + i);
}

/* Frames a guest puts on its TX ring come out of the backend's vring and
 * vhost_net API intact, and frames the backend copies into the RX ring reach
 * the guest: both halves of the library, end to end. */
static void test_frames_end_to_end(void **state)
{
    struct backend b;
    struct vhost_fe *fe = backend_pair(&b, 1);
    struct guest g;
    char err[256] = "";
    const unsigned nframes = 40;
    const unsigned indices[2] = {0, 1};
    uint16_t bases[2] = {0xffff, 0xffff};

    guest_init(&g);
    assert_int_equal(vhost_fe_handshake(fe, err, sizeof(err)), 0);
    assert_int_equal(
        vhost_fe_start(fe, START_FEATURES, &g.region, 1, g.rings, 2, err, sizeof(err)),
        0);
    backend_pause(&b);

    /* guest: RX buffers posted, frames on TX */
    for (uint16_t i = 0; i < nframes; i++)
        guest_post(&g, 0, i, BUF_SIZE, VRING_DESC_F_WRITE);
    for (uint16_t i = 0; i < nframes; i++) {
        uint8_t *buf = g.base + g_buf_off(1, i);
        size_t len = 60 + i * 37;

        memset(buf, 0, VIRTIO_NET_HDR_LEN_V1);
        make_frame(buf + VIRTIO_NET_HDR_LEN_V1, i, len);
        guest_post(&g, 1, i, (uint32_t)(VIRTIO_NET_HDR_LEN_V1 + len), 0);
    }
    eventfd_write(g.rings[1].kick_fd, 1);

    /* backend datapath: a port that sends every frame back */
    struct vring *tx = vhost_dev_vring(b.dev, 1), *rx = vhost_dev_vring(b.dev, 0);
    struct vring_chain c;
    unsigned got = 0;
    size_t hdr_len = vhost_dev_hdr_len(b.dev);

    assert_int_equal(hdr_len, VIRTIO_NET_HDR_LEN_V1);
    while (vring_pop(tx, false, &c) == VRING_OK) {
        struct virtio_net_hdr hdr, zero = {0};
        struct vring_buf frame[VRING_CHAIN_MAX];
        struct iovec iov[VRING_CHAIN_MAX];
        uint8_t want[2048];
        int nf, len = vhost_net_tx_split(&c, hdr_len, &hdr, frame, &nf);

        assert_int_equal(len, 60 + got * 37);
        make_frame(want, got, (size_t)len);
        assert_int_equal(nf, 1);
        assert_memory_equal(frame[0].addr, want, (size_t)len);
        for (int k = 0; k < nf; k++)
            iov[k] = (struct iovec){frame[k].addr, frame[k].len};
        assert_int_equal(
            vhost_net_rx_copy(rx, true, hdr_len, &zero, iov, nf, (size_t)len),
            VHOST_NET_RX_OK);
        vring_push(tx, c.head, 0);
        got++;
    }
    assert_int_equal(got, nframes);
    vring_flush(tx);
    vring_flush(rx);

    /* guest: every TX chain back, every frame in RX, interrupts raised */
    assert_int_equal(g_used(&g, 1)->idx, nframes);
    assert_true(eventfd_fired(g.rings[1].call_fd));
    assert_true(eventfd_fired(g.rings[0].call_fd));
    assert_int_equal(g_used(&g, 0)->idx, nframes);
    for (unsigned i = 0; i < nframes; i++) {
        struct vring_used_elem *e = &g_used(&g, 0)->ring[i];
        const uint8_t *buf = g.base + g_buf_off(0, (uint16_t)e->id);
        const struct virtio_net_hdr *h = (const void *)buf;
        uint8_t want[2048];
        size_t len = 60 + i * 37;

        assert_int_equal(e->id, i);
        assert_int_equal(e->len, VIRTIO_NET_HDR_LEN_V1 + len);
        assert_int_equal(h->num_buffers, 1);
        make_frame(want, i, len);
        assert_memory_equal(buf + VIRTIO_NET_HDR_LEN_V1, want, len);
    }

    /* stop: the bases are where the backend got to */
    backend_run(&b);
    assert_int_equal(vhost_fe_stop(fe, indices, 2, bases), 0);
    assert_int_equal(bases[0], nframes);
    assert_int_equal(bases[1], nframes);
    backend_pause(&b);
    assert_false(vhost_dev_vring_ready(b.dev, 0));
    assert_false(vhost_dev_vring_ready(b.dev, 1));

    /* and a restart from those bases resumes there */
    for (unsigned q = 0; q < 2; q++)
        g.rings[q].base = bases[q];
    backend_run(&b);
    assert_int_equal(
        vhost_fe_start(fe, START_FEATURES, &g.region, 1, g.rings, 2, err, sizeof(err)),
        0);
    backend_pause(&b);
    assert_true(vhost_dev_running(b.dev));
    assert_int_equal(vhost_dev_vring(b.dev, 1)->last_avail_idx, nframes);
    assert_int_equal(vring_avail_count(vhost_dev_vring(b.dev, 1)), 0);

    vhost_fe_destroy(fe);
    backend_fini(&b);
    guest_fini(&g);
}

/* REPLY_ACK: a request the backend refuses stops the start with a sentence
 * that names the step, and the frontend is disconnected from then on. */
static void test_reply_ack_refusal(void **state)
{
    struct backend b;
    struct vhost_fe *fe = backend_pair(&b, 1);
    struct guest g;
    char err[256] = "";

    guest_init(&g);
    assert_int_equal(vhost_fe_handshake(fe, err, sizeof(err)), 0);
    g.rings[1].used_uva = g.region.uva + MEM_SIZE - 8; /* runs off the region */
    assert_int_equal(
        vhost_fe_start(fe, START_FEATURES, &g.region, 1, g.rings, 2, err, sizeof(err)),
        -EREMOTEIO);
    assert_non_null(strstr(err, "SET_VRING_ADDR (vring 1)"));
    assert_non_null(strstr(err, "refused"));
    assert_string_equal(vhost_fe_last_error(fe), err);
    assert_int_equal(vhost_fe_handshake(fe, err, sizeof(err)), -ENOTCONN);
    backend_pause(&b);
    assert_int_equal(vhost_dev_errors(b.dev)[VHOST_DEV_ERR_RING_ADDR], 1);
    vhost_fe_destroy(fe);
    backend_fini(&b);
    guest_fini(&g);
}

/* Arguments checked before anything is sent; the frontend stays usable. */
static void test_start_bad_args(void **state)
{
    struct backend b;
    struct vhost_fe *fe = backend_pair(&b, 1);
    struct guest g;
    struct vhost_fe_vring bad[2];
    char err[256] = "";

    guest_init(&g);
    assert_int_equal(
        vhost_fe_start(fe, START_FEATURES, &g.region, 1, g.rings, 2, err, sizeof(err)),
        -EINVAL);
    assert_non_null(strstr(err, "handshake"));
    assert_int_equal(vhost_fe_handshake(fe, err, sizeof(err)), 0);
    assert_int_equal(vhost_fe_start(fe, START_FEATURES | VIRTIO_BIT(VIRTIO_F_RING_PACKED),
                                    &g.region, 1, g.rings, 2, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "not offered"));
    memcpy(bad, g.rings, sizeof(bad));
    bad[1].index = 2; /* one queue pair: vrings 0 and 1 only */
    assert_int_equal(
        vhost_fe_start(fe, START_FEATURES, &g.region, 1, bad, 2, err, sizeof(err)),
        -EINVAL);
    memcpy(bad, g.rings, sizeof(bad));
    bad[0].num = 100;
    assert_int_equal(
        vhost_fe_start(fe, START_FEATURES, &g.region, 1, bad, 2, err, sizeof(err)),
        -EINVAL);
    assert_int_equal(
        vhost_fe_start(fe, START_FEATURES, &g.region, 0, g.rings, 2, err, sizeof(err)),
        -EINVAL);
    assert_int_equal(
        vhost_fe_start(fe, START_FEATURES, &g.region, 1, g.rings, 2, err, sizeof(err)),
        0);
    backend_pause(&b);
    for (int e = 0; e < VHOST_DEV_ERR__COUNT; e++)
        assert_int_equal(vhost_dev_errors(b.dev)[e], 0);
    vhost_fe_destroy(fe);
    backend_fini(&b);
    guest_fini(&g);
}

/* No fds: polling rings without interrupts are still started. */
static void test_start_nofd(void **state)
{
    struct backend b;
    struct vhost_fe *fe = backend_pair(&b, 1);
    struct guest g;
    struct vhost_fe_vring r[2];
    char err[256] = "";

    guest_init(&g);
    memcpy(r, g.rings, sizeof(r));
    r[0].kick_fd = r[1].kick_fd = r[0].call_fd = r[1].call_fd = -1;
    assert_int_equal(vhost_fe_handshake(fe, err, sizeof(err)), 0);
    assert_int_equal(
        vhost_fe_start(fe, START_FEATURES, &g.region, 1, r, 2, err, sizeof(err)), 0);
    backend_pause(&b);
    assert_true(vhost_dev_running(b.dev));
    assert_int_equal(vhost_dev_vring(b.dev, 0)->kick_fd, -1);
    assert_int_equal(vhost_dev_vring(b.dev, 1)->call_fd, -1);
    vhost_fe_destroy(fe);
    backend_fini(&b);
    guest_fini(&g);
}

/* MTU and a raw request (GET_CONFIG) through the generic path. */
static void test_mtu_and_request(void **state)
{
    struct backend b;
    struct vhost_fe *fe = backend_pair(&b, 2);
    struct vhost_user_msg msg, reply;
    struct virtio_net_config cfg;
    char err[256] = "";

    assert_int_equal(vhost_fe_handshake(fe, err, sizeof(err)), 0);
    assert_int_equal(vhost_fe_set_mtu(fe, 9000), 0);
    memset(&msg, 0, sizeof(msg));
    msg.hdr.request = VHOST_USER_GET_CONFIG;
    msg.hdr.size = offsetof(struct vhost_user_config, region) + sizeof(cfg);
    msg.payload.config.size = sizeof(cfg);
    assert_int_equal(vhost_fe_request(fe, &msg, NULL, 0, true, &reply), 0);
    assert_int_equal(reply.hdr.size, msg.hdr.size);
    memcpy(&cfg, reply.payload.config.region, sizeof(cfg));
    assert_int_equal(cfg.mtu, 9000);
    assert_int_equal(cfg.max_virtqueue_pairs, 2);
    /* a refused MTU, acked as such */
    assert_int_equal(vhost_fe_set_mtu(fe, 10), -EREMOTEIO);
    assert_non_null(strstr(vhost_fe_last_error(fe), "NET_SET_MTU"));
    backend_pause(&b);
    assert_int_equal(vhost_dev_mtu(b.dev), 9000);
    vhost_fe_destroy(fe);
    backend_fini(&b);
}

/* The backend goes away; a new connection replays the setup. A backend whose
 * offer shrank below what the guest accepted is refused. */
static void test_reconnect(void **state)
{
    struct backend b;
    struct vhost_fe *fe = backend_pair(&b, 1);
    struct guest g;
    char err[256] = "";
    int sv[2];

    guest_init(&g);
    assert_int_equal(vhost_fe_handshake(fe, err, sizeof(err)), 0);
    assert_int_equal(
        vhost_fe_start(fe, START_FEATURES, &g.region, 1, g.rings, 2, err, sizeof(err)),
        0);
    /* the switch restarts */
    backend_pause(&b);
    close(b.sock);
    vhost_dev_disconnect(b.dev);
    assert_int_equal(vhost_fe_handshake(fe, err, sizeof(err)), -ECONNRESET);
    assert_non_null(strstr(err, "closed"));

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    b.sock = sv[1];
    assert_int_equal(vhost_fe_reconnect(fe, sv[0]), 0);
    backend_run(&b);
    assert_int_equal(vhost_fe_handshake(fe, err, sizeof(err)), 0);
    assert_int_equal(
        vhost_fe_start(fe, START_FEATURES, &g.region, 1, g.rings, 2, err, sizeof(err)),
        0);
    backend_pause(&b);
    assert_true(vhost_dev_running(b.dev));
    vhost_fe_destroy(fe);
    backend_fini(&b);
    guest_fini(&g);
}

/* ---- a scripted backend that misbehaves on cue ---- */

enum fake_act {
    ACT_OK,
    ACT_CLOSE,      /* close the connection instead of answering */
    ACT_SILENT,     /* never answer */
    ACT_WRONG_ID,   /* answer as if to another request */
    ACT_BAD_SIZE,   /* answer with 4 payload bytes */
    ACT_NO_FLAG,    /* answer without the reply flag */
    ACT_NACK,       /* ack with status 1 */
    ACT_HALF,       /* send the header, never the payload */
    ACT_WRONG_RING, /* GET_VRING_BASE: answer for another vring */
    ACT_VALUE,      /* answer with `value` */
};

struct fake {
    int sock;
    pthread_t th;
    uint64_t features, protocol_features, queue_num;
    uint32_t cue; /* request that triggers act */
    enum fake_act act;
    uint64_t value;
    uint32_t seen[256]; /* request ids in order, with NEED_REPLY in bit 31 */
    unsigned nseen;
    uint64_t pf_set;
};

static void fake_reply(struct fake *f, uint32_t request, uint32_t size, uint64_t v)
{
    struct vhost_user_msg r;

    memset(&r, 0, sizeof(r));
    r.hdr.request = request;
    r.hdr.flags = VHOST_USER_VERSION | VHOST_USER_REPLY_MASK;
    r.hdr.size = size;
    r.payload.u64 = v;
    vhost_user_send(f->sock, &r, NULL, 0);
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    struct vhost_user_msg m;

    while (vhost_user_recv(f->sock, &m) == 1) {
        uint32_t req = m.hdr.request;
        bool need = m.hdr.flags & VHOST_USER_NEED_REPLY;
        bool has_reply =
            req == VHOST_USER_GET_FEATURES || req == VHOST_USER_GET_PROTOCOL_FEATURES ||
            req == VHOST_USER_GET_QUEUE_NUM || req == VHOST_USER_GET_VRING_BASE;
        uint64_t v = 0;
        uint32_t size = 8;

        vhost_user_close_fds(&m);
        if (f->nseen < 256)
            f->seen[f->nseen++] = req | (need ? 1u << 31 : 0);
        switch (req) {
        case VHOST_USER_GET_FEATURES:
            v = f->features;
            break;
        case VHOST_USER_GET_PROTOCOL_FEATURES:
            v = f->protocol_features;
            break;
        case VHOST_USER_GET_QUEUE_NUM:
            v = f->queue_num;
            break;
        case VHOST_USER_GET_VRING_BASE:
            v = m.payload.state.index | (uint64_t)42 << 32;
            break;
        case VHOST_USER_SET_PROTOCOL_FEATURES:
            f->pf_set = m.payload.u64;
            break;
        }
        if (req == f->cue) {
            switch (f->act) {
            case ACT_OK:
                break;
            case ACT_CLOSE:
                goto out;
            case ACT_SILENT:
                continue;
            case ACT_WRONG_ID:
                req = req == VHOST_USER_GET_FEATURES ? VHOST_USER_GET_PROTOCOL_FEATURES
                                                     : VHOST_USER_GET_FEATURES;
                break;
            case ACT_BAD_SIZE:
                size = 4;
                break;
            case ACT_NO_FLAG: {
                struct vhost_user_msg r;
                memset(&r, 0, sizeof(r));
                r.hdr.request = req;
                r.hdr.flags = VHOST_USER_VERSION;
                r.hdr.size = 8;
                vhost_user_send(f->sock, &r, NULL, 0);
                continue;
            }
            case ACT_NACK:
                v = 1;
                break;
            case ACT_HALF: {
                struct vhost_user_hdr h = {req,
                                           VHOST_USER_VERSION | VHOST_USER_REPLY_MASK, 8};
                if (write(f->sock, &h, sizeof(h)) < 0)
                    goto out;
                continue;
            }
            case ACT_WRONG_RING:
                v = (m.payload.state.index + 1) | (uint64_t)42 << 32;
                break;
            case ACT_VALUE:
                v = f->value;
                break;
            }
        }
        if (has_reply || need)
            fake_reply(f, req, size, v);
    }
out:
    close(f->sock);
    f->sock = -1;
    return NULL;
}

static struct vhost_fe *fake_pair(struct fake *f, uint32_t cue, enum fake_act act,
                                  int timeout_ms)
{
    int sv[2];
    struct vhost_fe *fe;

    memset(f, 0, sizeof(*f));
    f->features = VHOST_DEV_FEATURES;
    f->protocol_features = VHOST_DEV_PROTOCOL_FEATURES;
    f->queue_num = 1;
    f->cue = cue;
    f->act = act;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    f->sock = sv[1];
    fe = vhost_fe_create("fake", sv[0], timeout_ms);
    assert_non_null(fe);
    assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
    return fe;
}

/* Destroys the frontend (closing its end), which ends the fake. */
static void fake_fini(struct fake *f, struct vhost_fe *fe)
{
    vhost_fe_destroy(fe);
    pthread_join(f->th, NULL);
}

static int fake_handshake(uint32_t cue, enum fake_act act, char *err, size_t errlen)
{
    struct fake f;
    struct vhost_fe *fe = fake_pair(&f, cue, act, 300);
    int r = vhost_fe_handshake(fe, err, errlen);

    if (r < 0)
        assert_int_equal(vhost_fe_handshake(fe, NULL, 0), -ENOTCONN);
    fake_fini(&f, fe);
    return r;
}

static void test_exact_message_sequence(void **state)
{
    struct fake f;
    struct vhost_fe *fe = fake_pair(&f, 0, ACT_OK, TIMEOUT_MS);
    struct guest g;
    char err[256] = "";
    const unsigned idx[2] = {0, 1};
    uint16_t bases[2];
    const uint32_t A = 1u << 31;
    const uint32_t want[] = {
        VHOST_USER_SET_OWNER, VHOST_USER_GET_FEATURES, VHOST_USER_GET_PROTOCOL_FEATURES,
        VHOST_USER_SET_PROTOCOL_FEATURES, VHOST_USER_GET_QUEUE_NUM,
        /* start */
        VHOST_USER_SET_FEATURES | A, VHOST_USER_SET_STATUS | A,
        VHOST_USER_SET_MEM_TABLE | A, VHOST_USER_SET_VRING_NUM | A,
        VHOST_USER_SET_VRING_BASE | A, VHOST_USER_SET_VRING_ADDR | A,
        VHOST_USER_SET_VRING_CALL | A, VHOST_USER_SET_VRING_KICK | A,
        VHOST_USER_SET_VRING_NUM | A, VHOST_USER_SET_VRING_BASE | A,
        VHOST_USER_SET_VRING_ADDR | A, VHOST_USER_SET_VRING_CALL | A,
        VHOST_USER_SET_VRING_KICK | A, VHOST_USER_SET_VRING_ENABLE | A,
        VHOST_USER_SET_VRING_ENABLE | A, VHOST_USER_SET_STATUS | A,
        /* stop */
        VHOST_USER_SET_VRING_ENABLE | A, VHOST_USER_SET_VRING_ENABLE | A,
        VHOST_USER_GET_VRING_BASE, VHOST_USER_GET_VRING_BASE};

    guest_init(&g);
    assert_int_equal(vhost_fe_handshake(fe, err, sizeof(err)), 0);
    assert_true(f.pf_set == (VHOST_DEV_PROTOCOL_FEATURES & PF_WANTED));
    assert_int_equal(
        vhost_fe_start(fe, START_FEATURES, &g.region, 1, g.rings, 2, err, sizeof(err)),
        0);
    assert_int_equal(vhost_fe_stop(fe, idx, 2, bases), 0);
    assert_int_equal(bases[0], 42);
    assert_int_equal(bases[1], 42);
    fake_fini(&f, fe);
    assert_int_equal(f.nseen, sizeof(want) / sizeof(want[0]));
    for (unsigned i = 0; i < f.nseen; i++) {
        if (f.seen[i] != want[i])
            fail_msg("message %u: %s%s, expected %s%s", i,
                     vhost_user_request_name(f.seen[i] & ~A),
                     f.seen[i] & A ? " (ack)" : "", vhost_user_request_name(want[i] & ~A),
                     want[i] & A ? " (ack)" : "");
    }
    guest_fini(&g);
}

/* A backend without REPLY_ACK, STATUS or MQ: nothing asks for an ack, no
 * status is sent, and start ends with a GET_FEATURES barrier. */
static void test_minimal_backend(void **state)
{
    struct fake f;
    struct vhost_fe *fe;
    struct guest g;
    char err[256] = "";

    fe = fake_pair(&f, 0, ACT_OK, TIMEOUT_MS);
    f.protocol_features = 0;
    guest_init(&g);
    assert_int_equal(vhost_fe_handshake(fe, err, sizeof(err)), 0);
    assert_int_equal(vhost_fe_protocol_features(fe), 0);
    assert_int_equal(vhost_fe_max_queue_pairs(fe), 1);
    assert_int_equal(vhost_fe_set_mtu(fe, 1500), -EOPNOTSUPP);
    assert_int_equal(
        vhost_fe_start(fe, START_FEATURES, &g.region, 1, g.rings, 2, err, sizeof(err)),
        0);
    fake_fini(&f, fe);
    for (unsigned i = 0; i < f.nseen; i++) {
        assert_int_equal(f.seen[i] >> 31, 0);
        assert_int_not_equal(f.seen[i], VHOST_USER_SET_STATUS);
        assert_int_not_equal(f.seen[i], VHOST_USER_GET_QUEUE_NUM);
    }
    assert_int_equal(f.seen[f.nseen - 1], VHOST_USER_GET_FEATURES);

    /* and without PROTOCOL_FEATURES at all: no SET_VRING_ENABLE either */
    fe = fake_pair(&f, 0, ACT_OK, TIMEOUT_MS);
    f.features = VHOST_DEV_FEATURES & ~VIRTIO_BIT(VHOST_USER_F_PROTOCOL_FEATURES);
    assert_int_equal(vhost_fe_handshake(fe, err, sizeof(err)), 0);
    assert_int_equal(
        vhost_fe_start(fe, START_FEATURES, &g.region, 1, g.rings, 2, err, sizeof(err)),
        0);
    fake_fini(&f, fe);
    for (unsigned i = 0; i < f.nseen; i++) {
        assert_int_not_equal(f.seen[i], VHOST_USER_GET_PROTOCOL_FEATURES);
        assert_int_not_equal(f.seen[i], VHOST_USER_SET_VRING_ENABLE);
    }
    guest_fini(&g);
}

/* The backend hangs up mid-handshake or mid-start: -ECONNRESET, and every fd
 * (socket, the copies the fake received) is gone afterwards. */
static void test_backend_closes(void **state)
{
    static const uint32_t cues[] = {VHOST_USER_SET_OWNER, VHOST_USER_GET_FEATURES,
                                    VHOST_USER_GET_PROTOCOL_FEATURES,
                                    VHOST_USER_GET_QUEUE_NUM};
    char err[256];
    int fds0;
    struct guest g;

    vhost_set_log(quiet_log);
    guest_init(&g);
    fds0 = count_open_fds();
    for (unsigned i = 0; i < sizeof(cues) / sizeof(cues[0]); i++) {
        int r = fake_handshake(cues[i], ACT_CLOSE, err, sizeof(err));

        /* SET_OWNER has no reply: the hang-up shows at the next request */
        assert_true(r == -ECONNRESET);
        assert_non_null(strstr(err, "closed"));
        assert_int_equal(count_open_fds(), fds0);
    }
    /* mid-start, on the message that carries the memory fd */
    {
        struct fake f;
        struct vhost_fe *fe = fake_pair(&f, VHOST_USER_SET_MEM_TABLE, ACT_CLOSE, 500);

        assert_int_equal(vhost_fe_handshake(fe, err, sizeof(err)), 0);
        assert_int_equal(vhost_fe_start(fe, START_FEATURES, &g.region, 1, g.rings, 2, err,
                                        sizeof(err)),
                         -ECONNRESET);
        assert_non_null(strstr(err, "SET_MEM_TABLE"));
        fake_fini(&f, fe);
        assert_int_equal(count_open_fds(), fds0);
    }
    guest_fini(&g);
}

static void test_bad_replies(void **state)
{
    char err[256];

    assert_int_equal(
        fake_handshake(VHOST_USER_GET_FEATURES, ACT_WRONG_ID, err, sizeof(err)), -EPROTO);
    assert_non_null(strstr(err, "GET_FEATURES: got a reply to GET_PROTOCOL_FEATURES"));
    assert_int_equal(
        fake_handshake(VHOST_USER_GET_PROTOCOL_FEATURES, ACT_BAD_SIZE, err, sizeof(err)),
        -EPROTO);
    assert_non_null(strstr(err, "4 bytes"));
    assert_int_equal(
        fake_handshake(VHOST_USER_GET_FEATURES, ACT_NO_FLAG, err, sizeof(err)), -EPROTO);
    assert_non_null(strstr(err, "flags"));
    /* values: no VERSION_1, zero or absurd queue counts */
    {
        struct fake f;
        struct vhost_fe *fe = fake_pair(&f, VHOST_USER_GET_FEATURES, ACT_VALUE, 300);

        f.value = VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF);
        assert_int_equal(vhost_fe_handshake(fe, err, sizeof(err)), -EPROTO);
        assert_non_null(strstr(err, "VERSION_1"));
        fake_fini(&f, fe);
    }
    for (int i = 0; i < 2; i++) {
        struct fake f;
        struct vhost_fe *fe = fake_pair(&f, VHOST_USER_GET_QUEUE_NUM, ACT_VALUE, 300);

        f.value = i == 0 ? 0 : 0x10000;
        assert_int_equal(vhost_fe_handshake(fe, err, sizeof(err)), -EPROTO);
        assert_non_null(strstr(err, "GET_QUEUE_NUM"));
        fake_fini(&f, fe);
    }
}

static void test_bad_acks_and_bases(void **state)
{
    struct guest g;
    char err[256];
    const unsigned idx[1] = {1};
    uint16_t base;

    guest_init(&g);
    /* a nack and a short ack, mid-start */
    for (int i = 0; i < 2; i++) {
        struct fake f;
        struct vhost_fe *fe =
            fake_pair(&f, VHOST_USER_SET_VRING_KICK, i ? ACT_BAD_SIZE : ACT_NACK, 300);

        assert_int_equal(vhost_fe_handshake(fe, err, sizeof(err)), 0);
        assert_int_equal(vhost_fe_start(fe, START_FEATURES, &g.region, 1, g.rings, 2, err,
                                        sizeof(err)),
                         i ? -EPROTO : -EREMOTEIO);
        assert_non_null(strstr(err, "SET_VRING_KICK (vring 0)"));
        fake_fini(&f, fe);
    }
    /* GET_VRING_BASE for the wrong ring, or a short one */
    for (int i = 0; i < 2; i++) {
        struct fake f;
        struct vhost_fe *fe = fake_pair(&f, VHOST_USER_GET_VRING_BASE,
                                        i ? ACT_BAD_SIZE : ACT_WRONG_RING, 300);

        assert_int_equal(vhost_fe_handshake(fe, err, sizeof(err)), 0);
        assert_int_equal(vhost_fe_stop(fe, idx, 1, &base), -EPROTO);
        assert_non_null(strstr(vhost_fe_last_error(fe), "GET_VRING_BASE (vring 1)"));
        fake_fini(&f, fe);
    }
    guest_fini(&g);
}

static long elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* A silent backend: the call fails after the timeout, not before, not much
 * after. Half a message fails within vhost_user.c's 1 s on top. */
static void test_timeouts(void **state)
{
    struct timespec t0;
    char err[256];
    long ms;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(
        fake_handshake(VHOST_USER_GET_FEATURES, ACT_SILENT, err, sizeof(err)),
        -ETIMEDOUT);
    ms = elapsed_ms(&t0);
    assert_true(ms >= 290 && ms < 1500);
    assert_non_null(strstr(err, "GET_FEATURES: no reply within 300 ms"));

    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(fake_handshake(VHOST_USER_GET_FEATURES, ACT_HALF, err, sizeof(err)),
                     -ETIMEDOUT);
    ms = elapsed_ms(&t0);
    assert_true(ms < 2500);

    /* an ack that never comes */
    {
        struct fake f;
        struct vhost_fe *fe = fake_pair(&f, VHOST_USER_SET_FEATURES, ACT_SILENT, 200);
        struct guest g;

        guest_init(&g);
        assert_int_equal(vhost_fe_handshake(fe, err, sizeof(err)), 0);
        assert_int_equal(vhost_fe_start(fe, START_FEATURES, &g.region, 1, g.rings, 2, err,
                                        sizeof(err)),
                         -ETIMEDOUT);
        assert_non_null(strstr(err, "SET_FEATURES"));
        fake_fini(&f, fe);
        guest_fini(&g);
    }
}

/* Across a reconnect the offer must not lose what the guest accepted. */
static void test_features_shrink(void **state)
{
    struct fake f;
    struct vhost_fe *fe = fake_pair(&f, 0, ACT_OK, TIMEOUT_MS);
    struct guest g;
    char err[256];
    int sv[2];

    guest_init(&g);
    assert_int_equal(vhost_fe_handshake(fe, err, sizeof(err)), 0);
    assert_int_equal(
        vhost_fe_start(fe, START_FEATURES, &g.region, 1, g.rings, 2, err, sizeof(err)),
        0);
    /* a new backend on a new socket, offering less */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(vhost_fe_reconnect(fe, sv[0]), 0); /* closes the old one */
    pthread_join(f.th, NULL);
    f.sock = sv[1];
    f.nseen = 0;
    f.features = VHOST_DEV_FEATURES & ~VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF);
    assert_int_equal(pthread_create(&f.th, NULL, fake_main, &f), 0);
    assert_int_equal(vhost_fe_handshake(fe, err, sizeof(err)), -EPROTO);
    assert_non_null(strstr(err, "no longer offers features 0x8000"));
    fake_fini(&f, fe);
    guest_fini(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake),
        cmocka_unit_test(test_start_rings_ready),
        cmocka_unit_test(test_frames_end_to_end),
        cmocka_unit_test(test_reply_ack_refusal),
        cmocka_unit_test(test_start_bad_args),
        cmocka_unit_test(test_start_nofd),
        cmocka_unit_test(test_mtu_and_request),
        cmocka_unit_test(test_reconnect),
        cmocka_unit_test(test_exact_message_sequence),
        cmocka_unit_test(test_minimal_backend),
        cmocka_unit_test(test_backend_closes),
        cmocka_unit_test(test_bad_replies),
        cmocka_unit_test(test_bad_acks_and_bases),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_features_shrink),
    };

    vhost_set_log(quiet_log);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
