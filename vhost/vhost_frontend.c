/* vhost-user frontend: synchronous request/reply over the socket, each reply
 * waited for with poll() and checked before anything in it is used (the
 * backend is another program, not trusted more than a guest). Any failure on
 * the wire marks the connection broken: a reply may still be in flight, so
 * the stream cannot be trusted to line up with the next request. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vhost_frontend.h"
#include "virtio_net.h"

/* Protocol features this frontend uses when the backend offers them. */
#define FE_PROTOCOL_FEATURES                                                             \
    ((1ULL << VHOST_USER_PROTOCOL_F_MQ) | (1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK) |    \
     (1ULL << VHOST_USER_PROTOCOL_F_STATUS) | (1ULL << VHOST_USER_PROTOCOL_F_NET_MTU))

/* virtio-net's limit on queue pairs (VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX). */
#define FE_MAX_QUEUE_PAIRS 0x8000

#define FE_PROTOCOL_BIT VIRTIO_BIT(VHOST_USER_F_PROTOCOL_FEATURES)

struct vhost_fe {
    char name[64];
    int sock;
    int timeout_ms;
    bool broken;     /* a call failed: only vhost_fe_reconnect() helps */
    bool handshaken; /* the offer below is valid */
    uint64_t backend_features;
    uint64_t protocol_features; /* negotiated */
    unsigned max_queue_pairs;
    uint64_t started_features; /* of the last successful start, for reconnects */
    char last_err[300];
};

/* ---- errors ---- */

static int fe_error(struct vhost_fe *fe, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records why a call failed; returns err (a negative errno). */
static int fe_error(struct vhost_fe *fe, int err, const char *fmt, ...)
{
    char why[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    snprintf(fe->last_err, sizeof(fe->last_err), "vhost-user %s: %s", fe->name, why);
    return err;
}

/* The same, for a failure on the wire: the connection is given up. */
#define fe_fail(fe, err, ...) ((fe)->broken = true, fe_error(fe, err, __VA_ARGS__))

static void copy_err(const struct vhost_fe *fe, char *err, size_t errlen)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", fe->last_err);
}

/* "SET_VRING_ADDR" or "SET_VRING_ADDR (vring 3)", for messages. */
struct what {
    char s[64];
};

static struct what what_of(uint32_t request, int vring)
{
    struct what w;

    if (vring >= 0)
        snprintf(w.s, sizeof(w.s), "%s (vring %d)", vhost_user_request_name(request),
                 vring);
    else
        snprintf(w.s, sizeof(w.s), "%s", vhost_user_request_name(request));
    return w;
}

/* ---- the wire ---- */

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void msg_init(struct vhost_user_msg *msg, uint32_t request, uint32_t size)
{
    memset(msg, 0, sizeof(*msg));
    msg->hdr.request = request;
    msg->hdr.flags = VHOST_USER_VERSION;
    msg->hdr.size = size;
    msg->nfds = 0;
}

static int fe_send(struct vhost_fe *fe, const struct vhost_user_msg *msg, const int *fds,
                   int nfds, const char *what)
{
    int r = vhost_user_send(fe->sock, msg, fds, nfds);

    if (r == -EPIPE || r == -ECONNRESET)
        return fe_fail(fe, -ECONNRESET, "%s: backend closed the connection", what);
    if (r < 0)
        return fe_fail(fe, r, "%s: send: %s", what, strerror(-r));
    return 0;
}

/* Waits (bounded by the timeout) for the reply to `request` and checks its
 * framing: reply flag, version, request id. Its fds stay in reply->fds. */
static int fe_recv_reply(struct vhost_fe *fe, uint32_t request,
                         struct vhost_user_msg *reply, const char *what)
{
    int64_t deadline = now_ms() + fe->timeout_ms;
    struct pollfd p = {.fd = fe->sock, .events = POLLIN};
    int r;

    for (;;) {
        int64_t left = deadline - now_ms();

        if (left < 0)
            left = 0;
        r = poll(&p, 1, (int)left);
        if (r > 0)
            break;
        if (r == 0)
            return fe_fail(fe, -ETIMEDOUT, "%s: no reply within %d ms", what,
                           fe->timeout_ms);
        if (errno != EINTR)
            return fe_fail(fe, -errno, "%s: poll: %s", what, strerror(errno));
    }

    r = vhost_user_recv(fe->sock, reply);
    if (r == 0)
        return fe_fail(fe, -ECONNRESET,
                       "%s: backend closed the connection instead of replying", what);
    if (r < 0) {
        if (r == -ECONNRESET || r == -EPIPE)
            return fe_fail(fe, -ECONNRESET, "%s: backend closed the connection", what);
        return fe_fail(fe, r == -ETIMEDOUT ? r : -EPROTO, "%s: broken reply (%s)", what,
                       strerror(-r));
    }
    if (reply->hdr.request != request) {
        vhost_user_close_fds(reply);
        return fe_fail(fe, -EPROTO, "%s: got a reply to %s (%u) instead", what,
                       vhost_user_request_name(reply->hdr.request), reply->hdr.request);
    }
    if (!(reply->hdr.flags & VHOST_USER_REPLY_MASK) ||
        (reply->hdr.flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION) {
        vhost_user_close_fds(reply);
        return fe_fail(fe, -EPROTO, "%s: reply with bad flags 0x%x", what,
                       reply->hdr.flags);
    }
    return 0;
}

static bool reply_ack(const struct vhost_fe *fe)
{
    return fe->protocol_features & (1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK);
}

/* A request without a reply of its own: with REPLY_ACK (and ack allowed) it
 * asks for one and checks it. */
static int fe_call_noreply(struct vhost_fe *fe, struct vhost_user_msg *msg,
                           const int *fds, int nfds, bool ack, int vring)
{
    struct what w = what_of(msg->hdr.request, vring);
    struct vhost_user_msg reply;
    int r;

    ack = ack && reply_ack(fe);
    if (ack)
        msg->hdr.flags |= VHOST_USER_NEED_REPLY;
    r = fe_send(fe, msg, fds, nfds, w.s);
    if (r < 0 || !ack)
        return r;
    r = fe_recv_reply(fe, msg->hdr.request, &reply, w.s);
    if (r < 0)
        return r;
    if (reply.nfds) {
        vhost_user_close_fds(&reply);
        return fe_fail(fe, -EPROTO, "%s: fds came with the ack", w.s);
    }
    if (reply.hdr.size != sizeof(uint64_t))
        return fe_fail(fe, -EPROTO, "%s: ack of %u bytes, 8 expected", w.s,
                       reply.hdr.size);
    if (reply.payload.u64 != 0)
        return fe_fail(fe, -EREMOTEIO, "%s: refused by the backend (status %llu)", w.s,
                       (unsigned long long)reply.payload.u64);
    return 0;
}

/* A request with a reply of its own, whose payload must be `size` bytes. */
static int fe_call_reply(struct vhost_fe *fe, struct vhost_user_msg *msg,
                         struct vhost_user_msg *reply, uint32_t size, int vring)
{
    struct what w = what_of(msg->hdr.request, vring);
    int r;

    r = fe_send(fe, msg, NULL, 0, w.s);
    if (r < 0)
        return r;
    r = fe_recv_reply(fe, msg->hdr.request, reply, w.s);
    if (r < 0)
        return r;
    if (reply->nfds) {
        vhost_user_close_fds(reply);
        return fe_fail(fe, -EPROTO, "%s: fds came with the reply", w.s);
    }
    /* our own backend answers a request it refuses with an empty reply */
    if (reply->hdr.size == 0)
        return fe_fail(fe, -EREMOTEIO, "%s: refused by the backend (empty reply)", w.s);
    if (reply->hdr.size != size)
        return fe_fail(fe, -EPROTO, "%s: reply of %u bytes, %u expected", w.s,
                       reply->hdr.size, size);
    return 0;
}

static int fe_get_u64(struct vhost_fe *fe, uint32_t request, uint64_t *v)
{
    struct vhost_user_msg msg, reply;
    int r;

    *v = 0;
    msg_init(&msg, request, 0);
    r = fe_call_reply(fe, &msg, &reply, sizeof(uint64_t), -1);
    if (r == 0)
        *v = reply.payload.u64;
    return r;
}

static int fe_set_u64(struct vhost_fe *fe, uint32_t request, uint64_t v, bool ack)
{
    struct vhost_user_msg msg;

    msg_init(&msg, request, sizeof(uint64_t));
    msg.payload.u64 = v;
    return fe_call_noreply(fe, &msg, NULL, 0, ack, -1);
}

static int fe_set_state(struct vhost_fe *fe, uint32_t request, unsigned index,
                        uint32_t num)
{
    struct vhost_user_msg msg;

    msg_init(&msg, request, sizeof(msg.payload.state));
    msg.payload.state.index = index;
    msg.payload.state.num = num;
    return fe_call_noreply(fe, &msg, NULL, 0, true, (int)index);
}

static int fe_set_vring_fd(struct vhost_fe *fe, uint32_t request, unsigned index, int fd)
{
    struct vhost_user_msg msg;

    msg_init(&msg, request, sizeof(uint64_t));
    msg.payload.u64 = index & VHOST_USER_VRING_IDX_MASK;
    if (fd < 0)
        msg.payload.u64 |= VHOST_USER_VRING_NOFD;
    return fe_call_noreply(fe, &msg, fd < 0 ? NULL : &fd, fd < 0 ? 0 : 1, true,
                           (int)index);
}

/* ---- lifetime ---- */

static int set_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

static void forget_session(struct vhost_fe *fe)
{
    fe->broken = false;
    fe->handshaken = false;
    fe->backend_features = 0;
    fe->protocol_features = 0;
    fe->max_queue_pairs = 1;
    fe->last_err[0] = '\0';
}

struct vhost_fe *vhost_fe_create(const char *name, int sock, int timeout_ms)
{
    struct vhost_fe *fe;
    int e;

    if (sock < 0 || timeout_ms <= 0) {
        e = EINVAL;
        goto fail;
    }
    e = -set_nonblocking(sock);
    if (e)
        goto fail;
    fe = calloc(1, sizeof(*fe));
    if (!fe) {
        e = ENOMEM;
        goto fail;
    }
    snprintf(fe->name, sizeof(fe->name), "%s", name ? name : "?");
    fe->sock = sock;
    fe->timeout_ms = timeout_ms;
    forget_session(fe);
    return fe;

fail:
    if (sock >= 0)
        close(sock);
    errno = e;
    return NULL;
}

void vhost_fe_destroy(struct vhost_fe *fe)
{
    if (!fe)
        return;
    if (fe->sock >= 0)
        close(fe->sock);
    free(fe);
}

int vhost_fe_socket(const struct vhost_fe *fe)
{
    return fe->sock;
}

int vhost_fe_reconnect(struct vhost_fe *fe, int sock)
{
    int r;

    if (fe->sock >= 0)
        close(fe->sock);
    fe->sock = -1;
    forget_session(fe);
    if (sock < 0) {
        fe->broken = true;
        return fe_error(fe, -EINVAL, "reconnect: no socket");
    }
    r = set_nonblocking(sock);
    if (r < 0) {
        close(sock);
        fe->broken = true;
        return fe_error(fe, r, "reconnect: %s", strerror(-r));
    }
    fe->sock = sock;
    return 0;
}

const char *vhost_fe_last_error(const struct vhost_fe *fe)
{
    return fe->last_err;
}

uint64_t vhost_fe_backend_features(const struct vhost_fe *fe)
{
    return fe->backend_features;
}

uint64_t vhost_fe_protocol_features(const struct vhost_fe *fe)
{
    return fe->protocol_features;
}

unsigned vhost_fe_max_queue_pairs(const struct vhost_fe *fe)
{
    return fe->max_queue_pairs;
}

static int check_connected(struct vhost_fe *fe)
{
    if (fe->broken || fe->sock < 0)
        return fe_error(fe, -ENOTCONN,
                        "not connected (an earlier request failed: reconnect first)");
    return 0;
}

/* ---- handshake ---- */

static int handshake(struct vhost_fe *fe)
{
    uint64_t offer = 0, lost, pf = 0, qn = 0;
    struct vhost_user_msg msg;
    int r;

    msg_init(&msg, VHOST_USER_SET_OWNER, 0);
    r = fe_call_noreply(fe, &msg, NULL, 0, false, -1);
    if (r < 0)
        return r;

    r = fe_get_u64(fe, VHOST_USER_GET_FEATURES, &offer);
    if (r < 0)
        return r;
    if (!(offer & VIRTIO_BIT(VIRTIO_F_VERSION_1)))
        return fe_fail(fe, -EPROTO,
                       "backend features 0x%llx lack VERSION_1 (modern virtio only)",
                       (unsigned long long)offer);
    lost = fe->started_features & ~offer & ~FE_PROTOCOL_BIT;
    if (lost)
        return fe_fail(fe, -EPROTO,
                       "backend no longer offers features 0x%llx the guest accepted "
                       "(offer 0x%llx)",
                       (unsigned long long)lost, (unsigned long long)offer);

    if (offer & FE_PROTOCOL_BIT) {
        uint64_t poffer = 0;

        r = fe_get_u64(fe, VHOST_USER_GET_PROTOCOL_FEATURES, &poffer);
        if (r < 0)
            return r;
        pf = poffer & FE_PROTOCOL_FEATURES;
        /* no ack asked: whether REPLY_ACK applies to the message that
         * negotiates it is read differently by different backends */
        r = fe_set_u64(fe, VHOST_USER_SET_PROTOCOL_FEATURES, pf, false);
        if (r < 0)
            return r;
    }
    fe->protocol_features = pf;

    fe->max_queue_pairs = 1;
    if (pf & (1ULL << VHOST_USER_PROTOCOL_F_MQ)) {
        r = fe_get_u64(fe, VHOST_USER_GET_QUEUE_NUM, &qn);
        if (r < 0)
            return r;
        if (qn < 1 || qn > FE_MAX_QUEUE_PAIRS)
            return fe_fail(fe, -EPROTO, "GET_QUEUE_NUM: %llu queue pairs",
                           (unsigned long long)qn);
        fe->max_queue_pairs = (unsigned)qn;
    }
    fe->backend_features = offer;
    fe->handshaken = true;
    return 0;
}

int vhost_fe_handshake(struct vhost_fe *fe, char *err, size_t errlen)
{
    int r = check_connected(fe);

    if (r == 0) {
        fe->handshaken = false;
        fe->backend_features = 0;
        fe->protocol_features = 0;
        fe->max_queue_pairs = 1;
        r = handshake(fe);
    }
    if (r < 0)
        copy_err(fe, err, errlen);
    return r;
}

/* ---- start / stop ---- */

static int check_start_args(struct vhost_fe *fe, uint64_t features,
                            const struct vhost_fe_region *regions, unsigned nregions,
                            const struct vhost_fe_vring *rings, unsigned nrings)
{
    uint64_t extra = features & ~fe->backend_features & ~FE_PROTOCOL_BIT;
    unsigned nvrings = 2 * fe->max_queue_pairs;

    if (!fe->handshaken)
        return fe_error(fe, -EINVAL, "start before a successful handshake");
    if (extra)
        return fe_error(fe, -EINVAL, "features 0x%llx were not offered by the backend",
                        (unsigned long long)extra);
    if (nregions < 1 || nregions > VHOST_USER_MAX_REGIONS || !regions)
        return fe_error(fe, -EINVAL, "%u memory regions (1..%d)", nregions,
                        VHOST_USER_MAX_REGIONS);
    for (unsigned i = 0; i < nregions; i++)
        if (regions[i].fd < 0 || regions[i].size == 0)
            return fe_error(fe, -EINVAL, "memory region %u: fd %d size %llu", i,
                            regions[i].fd, (unsigned long long)regions[i].size);
    if (nrings < 1 || nrings > nvrings || !rings)
        return fe_error(fe, -EINVAL, "%u vrings (1..%u)", nrings, nvrings);
    for (unsigned i = 0; i < nrings; i++) {
        const struct vhost_fe_vring *v = &rings[i];

        if (v->index >= nvrings)
            return fe_error(fe, -EINVAL, "vring %u: the backend has %u", v->index,
                            nvrings);
        if (v->num == 0 || v->num > 32768 || (v->num & (v->num - 1)))
            return fe_error(fe, -EINVAL, "vring %u: size %u", v->index, v->num);
        for (unsigned j = 0; j < i; j++)
            if (rings[j].index == v->index)
                return fe_error(fe, -EINVAL, "vring %u given twice", v->index);
    }
    return 0;
}

static int set_mem_table(struct vhost_fe *fe, const struct vhost_fe_region *regions,
                         unsigned nregions)
{
    struct vhost_user_msg msg;
    int fds[VHOST_USER_MAX_REGIONS];

    msg_init(&msg, VHOST_USER_SET_MEM_TABLE,
             (uint32_t)(offsetof(struct vhost_user_memory, regions) +
                        nregions * sizeof(struct vhost_user_mem_region)));
    msg.payload.memory.nregions = nregions;
    for (unsigned i = 0; i < nregions; i++) {
        struct vhost_user_mem_region *m = &msg.payload.memory.regions[i];

        m->guest_phys_addr = regions[i].gpa;
        m->memory_size = regions[i].size;
        m->userspace_addr = regions[i].uva;
        m->mmap_offset = regions[i].fd_offset;
        fds[i] = regions[i].fd;
    }
    return fe_call_noreply(fe, &msg, fds, (int)nregions, true, -1);
}

static int start_vring(struct vhost_fe *fe, const struct vhost_fe_vring *v)
{
    struct vhost_user_msg msg;
    int r;

    r = fe_set_state(fe, VHOST_USER_SET_VRING_NUM, v->index, v->num);
    if (r < 0)
        return r;
    r = fe_set_state(fe, VHOST_USER_SET_VRING_BASE, v->index, v->base);
    if (r < 0)
        return r;

    msg_init(&msg, VHOST_USER_SET_VRING_ADDR, sizeof(msg.payload.addr));
    msg.payload.addr.index = v->index;
    msg.payload.addr.flags = 0; /* no dirty logging */
    msg.payload.addr.desc_user_addr = v->desc_uva;
    msg.payload.addr.avail_user_addr = v->avail_uva;
    msg.payload.addr.used_user_addr = v->used_uva;
    r = fe_call_noreply(fe, &msg, NULL, 0, true, (int)v->index);
    if (r < 0)
        return r;

    r = fe_set_vring_fd(fe, VHOST_USER_SET_VRING_CALL, v->index, v->call_fd);
    if (r < 0)
        return r;
    return fe_set_vring_fd(fe, VHOST_USER_SET_VRING_KICK, v->index, v->kick_fd);
}

static int start(struct vhost_fe *fe, uint64_t features,
                 const struct vhost_fe_region *regions, unsigned nregions,
                 const struct vhost_fe_vring *rings, unsigned nrings)
{
    const uint8_t status = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                           VIRTIO_CONFIG_S_FEATURES_OK;
    bool status_pf = fe->protocol_features & (1ULL << VHOST_USER_PROTOCOL_F_STATUS);
    bool pf_negotiated = fe->backend_features & FE_PROTOCOL_BIT;
    uint64_t f = features & ~FE_PROTOCOL_BIT;
    int r;

    if (pf_negotiated)
        f |= FE_PROTOCOL_BIT;
    r = fe_set_u64(fe, VHOST_USER_SET_FEATURES, f, true);
    if (r < 0)
        return r;
    if (status_pf) {
        r = fe_set_u64(fe, VHOST_USER_SET_STATUS, status, true);
        if (r < 0)
            return r;
    }
    r = set_mem_table(fe, regions, nregions);
    if (r < 0)
        return r;
    for (unsigned i = 0; i < nrings; i++) {
        r = start_vring(fe, &rings[i]);
        if (r < 0)
            return r;
    }
    if (pf_negotiated) {
        for (unsigned i = 0; i < nrings; i++) {
            r = fe_set_state(fe, VHOST_USER_SET_VRING_ENABLE, rings[i].index, 1);
            if (r < 0)
                return r;
        }
    }
    if (status_pf) {
        r = fe_set_u64(fe, VHOST_USER_SET_STATUS, status | VIRTIO_CONFIG_S_DRIVER_OK,
                       true);
        if (r < 0)
            return r;
    }
    if (!reply_ack(fe)) {
        /* Nothing was acked: a request with a reply is the barrier that says
         * the backend has read (and not choked on) everything before it. */
        uint64_t offer = 0;

        r = fe_get_u64(fe, VHOST_USER_GET_FEATURES, &offer);
        if (r < 0)
            return r;
        if (offer != fe->backend_features)
            return fe_fail(fe, -EPROTO,
                           "GET_FEATURES: offer changed from 0x%llx to "
                           "0x%llx",
                           (unsigned long long)fe->backend_features,
                           (unsigned long long)offer);
    }
    fe->started_features = features & ~FE_PROTOCOL_BIT;
    return 0;
}

int vhost_fe_start(struct vhost_fe *fe, uint64_t features,
                   const struct vhost_fe_region *regions, unsigned nregions,
                   const struct vhost_fe_vring *rings, unsigned nrings, char *err,
                   size_t errlen)
{
    int r = check_connected(fe);

    if (r == 0)
        r = check_start_args(fe, features, regions, nregions, rings, nrings);
    if (r == 0)
        r = start(fe, features, regions, nregions, rings, nrings);
    if (r < 0)
        copy_err(fe, err, errlen);
    return r;
}

int vhost_fe_stop(struct vhost_fe *fe, const unsigned *indices, unsigned n,
                  uint16_t *bases)
{
    int r = check_connected(fe);

    if (r < 0)
        return r;
    if (n && (!indices || !bases))
        return fe_error(fe, -EINVAL, "stop: no vring list");
    for (unsigned i = 0; i < n; i++)
        if (indices[i] >= 2 * fe->max_queue_pairs)
            return fe_error(fe, -EINVAL, "stop: vring %u of %u", indices[i],
                            2 * fe->max_queue_pairs);

    if (fe->backend_features & FE_PROTOCOL_BIT) {
        for (unsigned i = 0; i < n; i++) {
            r = fe_set_state(fe, VHOST_USER_SET_VRING_ENABLE, indices[i], 0);
            if (r < 0)
                return r;
        }
    }
    for (unsigned i = 0; i < n; i++) {
        struct vhost_user_msg msg, reply;

        msg_init(&msg, VHOST_USER_GET_VRING_BASE, sizeof(msg.payload.state));
        msg.payload.state.index = indices[i];
        r = fe_call_reply(fe, &msg, &reply, sizeof(reply.payload.state), (int)indices[i]);
        if (r < 0)
            return r;
        if (reply.payload.state.index != indices[i])
            return fe_fail(fe, -EPROTO, "GET_VRING_BASE (vring %u): reply for vring %u",
                           indices[i], reply.payload.state.index);
        if (reply.payload.state.num > UINT16_MAX)
            return fe_fail(fe, -EPROTO, "GET_VRING_BASE (vring %u): base %u", indices[i],
                           reply.payload.state.num);
        bases[i] = (uint16_t)reply.payload.state.num;
    }
    return 0;
}

int vhost_fe_set_mtu(struct vhost_fe *fe, uint16_t mtu)
{
    int r = check_connected(fe);

    if (r < 0)
        return r;
    if (!(fe->protocol_features & (1ULL << VHOST_USER_PROTOCOL_F_NET_MTU)))
        return fe_error(fe, -EOPNOTSUPP, "NET_SET_MTU: NET_MTU not negotiated");
    return fe_set_u64(fe, VHOST_USER_NET_SET_MTU, mtu, true);
}

int vhost_fe_request(struct vhost_fe *fe, struct vhost_user_msg *msg, const int *fds,
                     int nfds, bool want_reply, struct vhost_user_msg *reply)
{
    struct what w;
    int r = check_connected(fe);

    if (r < 0)
        return r;
    if ((want_reply && !reply) || msg->hdr.size > sizeof(msg->payload) || nfds < 0 ||
        nfds > VHOST_USER_MAX_FDS || (nfds && !fds))
        return fe_error(fe, -EINVAL, "request: bad arguments");
    w = what_of(msg->hdr.request, -1);
    msg->hdr.flags =
        (msg->hdr.flags & ~(uint32_t)VHOST_USER_VERSION_MASK) | VHOST_USER_VERSION;
    r = fe_send(fe, msg, fds, nfds, w.s);
    if (r < 0 || !want_reply)
        return r;
    return fe_recv_reply(fe, msg->hdr.request, reply, w.s);
}
