/* vhost_dev.c: the backend state machine, driven over a socketpair the way
 * DPDK virtio-user, QEMU and Cloud Hypervisor drive it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include "fake_guest.h"
#include "vhost_dev.h"

#define QSIZE 256
#define RING_STRIDE 0x4000 /* per vring: desc, avail, used inside the memfd */

struct ctx {
    int front, back;
    struct vhost_dev *dev;
    int quiesces, resumes, depth;
    bool bad_nesting;
    int memfd;
    uint8_t *guest; /* the test's mapping of guest memory */
    int fds_at_start;
};

static int log_lines;

static void quiet_log(int level, const char *fmt, ...)
{
    log_lines++;
}

static void on_quiesce(void *opaque)
{
    struct ctx *c = opaque;

    if (c->depth)
        c->bad_nesting = true;
    c->depth++;
    c->quiesces++;
}

static void on_resume(void *opaque)
{
    struct ctx *c = opaque;

    c->depth = 0;
    c->resumes++;
}

static const struct vhost_dev_ops test_ops = {on_quiesce, on_resume};

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));
    int sv[2];

    if (!c)
        return -1;
    vhost_set_log(quiet_log);
    c->fds_at_start = count_open_fds();
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
    c->front = sv[0];
    c->back = sv[1];
    c->dev = vhost_dev_create("test0", 2, 1500, &test_ops, c);
    c->memfd = memfd_create("guest", MFD_CLOEXEC);
    if (!c->dev || c->memfd < 0 || ftruncate(c->memfd, FG_SIZE) < 0)
        return -1;
    c->guest = mmap(NULL, FG_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, c->memfd, 0);
    if (c->guest == MAP_FAILED)
        return -1;
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;

    vhost_dev_destroy(c->dev);
    munmap(c->guest, FG_SIZE);
    close(c->memfd);
    if (c->front >= 0)
        close(c->front);
    close(c->back);
    /* every fd the device was given has been closed */
    int left = count_open_fds(), at_start = c->fds_at_start;
    free(c);
    assert_int_equal(left, at_start);
    return 0;
}

/* ---- the frontend side ---- */

static void send_msg(struct ctx *c, uint32_t req, uint32_t flags, const void *payload,
                     uint32_t size, const int *fds, int nfds)
{
    struct vhost_user_msg m;

    memset(&m, 0, sizeof(m));
    m.hdr.request = req;
    m.hdr.flags = VHOST_USER_VERSION | flags;
    m.hdr.size = size;
    if (size)
        memcpy(&m.payload, payload, size);
    assert_int_equal(vhost_user_send(c->front, &m, fds, nfds), 0);
}

/* Sends a message, lets the device handle it, and checks that the balance
 * of quiesce/resume holds when it returns. */
static void xfer(struct ctx *c, uint32_t req, uint32_t flags, const void *payload,
                 uint32_t size, const int *fds, int nfds)
{
    send_msg(c, req, flags, payload, size, fds, nfds);
    assert_int_equal(vhost_dev_handle_msg(c->dev, c->back), 0);
    assert_int_equal(c->depth, 0); /* never left quiesced */
    assert_false(c->bad_nesting);
}

static bool reply_pending(struct ctx *c)
{
    char b;

    return recv(c->front, &b, 1, MSG_DONTWAIT | MSG_PEEK) == 1;
}

static void get_reply(struct ctx *c, uint32_t req, struct vhost_user_msg *r)
{
    assert_true(reply_pending(c));
    assert_int_equal(vhost_user_recv(c->front, r), 1);
    assert_int_equal(r->hdr.request, req);
    assert_int_equal(r->hdr.flags, VHOST_USER_VERSION | VHOST_USER_REPLY_MASK);
    assert_int_equal(r->nfds, 0);
}

static uint64_t get_u64(struct ctx *c, uint32_t req)
{
    struct vhost_user_msg r;

    xfer(c, req, 0, NULL, 0, NULL, 0);
    get_reply(c, req, &r);
    assert_int_equal(r.hdr.size, 8);
    return r.payload.u64;
}

static void xfer_u64(struct ctx *c, uint32_t req, uint32_t flags, uint64_t v)
{
    xfer(c, req, flags, &v, sizeof(v), NULL, 0);
}

/* With REPLY_ACK negotiated and NEED_REPLY: the ack's value. */
static uint64_t ack_of(struct ctx *c, uint32_t req)
{
    struct vhost_user_msg r;

    get_reply(c, req, &r);
    assert_int_equal(r.hdr.size, 8);
    return r.payload.u64;
}

static void no_reply(struct ctx *c)
{
    assert_false(reply_pending(c));
}

static void set_state(struct ctx *c, uint32_t req, uint32_t flags, uint32_t index,
                      uint32_t num)
{
    struct vhost_user_vring_state s = {index, num};

    xfer(c, req, flags, &s, sizeof(s), NULL, 0);
}

static uint64_t ring_gpa(unsigned ring)
{
    return FG_GPA + ring * RING_STRIDE;
}

static void set_addr(struct ctx *c, uint32_t flags, unsigned ring)
{
    struct vhost_user_vring_addr a = {
        .index = ring,
        .desc_user_addr = fg_uva(ring_gpa(ring)),
        .avail_user_addr = fg_uva(ring_gpa(ring) + 0x1000),
        .used_user_addr = fg_uva(ring_gpa(ring) + 0x2000),
        .log_guest_addr = 0xdeadbeef,
    };

    xfer(c, VHOST_USER_SET_VRING_ADDR, flags, &a, sizeof(a), NULL, 0);
}

static void set_ring_fd(struct ctx *c, uint32_t req, uint32_t flags, unsigned ring)
{
    uint64_t v = ring;
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

    xfer(c, req, flags, &v, sizeof(v), &fd, 1);
    close(fd); /* the device has its own copy */
}

static void set_mem_table(struct ctx *c, uint32_t flags, int memfd, uint64_t uva)
{
    struct vhost_user_memory m = {.nregions = 1};

    m.regions[0].guest_phys_addr = FG_GPA;
    m.regions[0].memory_size = FG_SIZE;
    m.regions[0].userspace_addr = uva;
    m.regions[0].mmap_offset = 0;
    xfer(c, VHOST_USER_SET_MEM_TABLE, flags, &m, 8 + sizeof(m.regions[0]), &memfd, 1);
}

#define NET_FEATURES                                                           \
    (VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) | VIRTIO_BIT(VIRTIO_RING_F_INDIRECT_DESC) | \
     VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_RING_F_EVENT_IDX))
#define PROTO (VIRTIO_BIT(VHOST_USER_F_PROTOCOL_FEATURES))
#define PF(b) (1ULL << VHOST_USER_PROTOCOL_F_##b)
#define ACK VHOST_USER_NEED_REPLY

/* DPDK 22.11 virtio-user, queues=1 (ENVIRONMENT.md). */
static void dpdk_setup(struct ctx *c)
{
    xfer(c, VHOST_USER_SET_OWNER, 0, NULL, 0, NULL, 0);
    assert_int_equal(get_u64(c, VHOST_USER_GET_FEATURES), VHOST_DEV_FEATURES);
    assert_int_equal(get_u64(c, VHOST_USER_GET_PROTOCOL_FEATURES),
                     VHOST_DEV_PROTOCOL_FEATURES);
    xfer_u64(c, VHOST_USER_SET_PROTOCOL_FEATURES, 0, PF(MQ) | PF(REPLY_ACK) | PF(STATUS));
    no_reply(c);
    set_ring_fd(c, VHOST_USER_SET_VRING_CALL, 0, 0);
    set_ring_fd(c, VHOST_USER_SET_VRING_CALL, 0, 1);
    no_reply(c);
    xfer_u64(c, VHOST_USER_SET_FEATURES, ACK, NET_FEATURES | PROTO);
    assert_int_equal(ack_of(c, VHOST_USER_SET_FEATURES), 0);
    xfer_u64(c, VHOST_USER_SET_STATUS, ACK,
             VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                 VIRTIO_CONFIG_S_FEATURES_OK);
    assert_int_equal(ack_of(c, VHOST_USER_SET_STATUS), 0);
    assert_int_equal(get_u64(c, VHOST_USER_GET_STATUS), 0xb);
    set_mem_table(c, ACK, c->memfd, FG_UVA);
    assert_int_equal(ack_of(c, VHOST_USER_SET_MEM_TABLE), 0);
    for (unsigned r = 0; r < 2; r++) {
        set_state(c, VHOST_USER_SET_VRING_NUM, ACK, r, QSIZE);
        assert_int_equal(ack_of(c, VHOST_USER_SET_VRING_NUM), 0);
        set_state(c, VHOST_USER_SET_VRING_BASE, ACK, r, 0);
        assert_int_equal(ack_of(c, VHOST_USER_SET_VRING_BASE), 0);
        set_addr(c, ACK, r);
        assert_int_equal(ack_of(c, VHOST_USER_SET_VRING_ADDR), 0);
        set_ring_fd(c, VHOST_USER_SET_VRING_KICK, ACK, r);
        assert_int_equal(ack_of(c, VHOST_USER_SET_VRING_KICK), 0);
    }
    for (unsigned r = 0; r < 2; r++) {
        set_state(c, VHOST_USER_SET_VRING_ENABLE, ACK, r, 1);
        assert_int_equal(ack_of(c, VHOST_USER_SET_VRING_ENABLE), 0);
    }
    /* enabled, but the driver is not OK yet */
    assert_false(vhost_dev_running(c->dev));
    xfer_u64(c, VHOST_USER_SET_STATUS, ACK, 0xf);
    assert_int_equal(ack_of(c, VHOST_USER_SET_STATUS), 0);
}

static void test_dpdk_order(void **state)
{
    struct ctx *c = *state;

    dpdk_setup(c);
    assert_true(vhost_dev_running(c->dev));
    assert_true(vhost_dev_vring_ready(c->dev, 0));
    assert_true(vhost_dev_vring_ready(c->dev, 1));
    assert_false(vhost_dev_vring_ready(c->dev, 2));
    assert_int_equal(vhost_dev_num_vrings(c->dev), 2);
    assert_int_equal(vhost_dev_features(c->dev), NET_FEATURES | PROTO);
    assert_int_equal(vhost_dev_hdr_len(c->dev), 12);
    assert_int_equal(vhost_dev_status(c->dev), 0xf);
    /* nothing was in use during setup: no quiesce; one resume to say so */
    assert_int_equal(c->quiesces, 0);
    assert_int_equal(c->resumes, 1);
    for (int i = 0; i < VHOST_DEV_ERR__COUNT; i++)
        assert_int_equal(vhost_dev_errors(c->dev)[i], 0);

    struct vring *vq = vhost_dev_vring(c->dev, 1);
    assert_true(vq->event_idx);
    assert_true(vq->indirect);
    assert_true(vq->kick_fd >= 0);
    assert_true(vq->call_fd >= 0);
    assert_int_equal(vq->size, QSIZE);
    /* the ring is the one in guest memory: a chain the guest posts pops */
    struct vring_desc *desc = (void *)(c->guest + (ring_gpa(1) - FG_GPA));
    struct vring_avail *avail = (void *)(c->guest + (ring_gpa(1) + 0x1000 - FG_GPA));
    struct vring_chain ch;
    fg_desc(desc, 7, FG_BUF, 60, 0, 0);
    avail->ring[0] = 7;
    avail->idx = 1;
    assert_int_equal(vring_pop(vq, false, &ch), VRING_OK);
    assert_int_equal(ch.head, 7);
    assert_int_equal(ch.len, 60);
}

/* QEMU 7.2 vhost-user-net: queue count asked, CALL after KICK, no status
 * unless negotiated. */
static void test_qemu_order(void **state)
{
    struct ctx *c = *state;

    xfer(c, VHOST_USER_SET_OWNER, 0, NULL, 0, NULL, 0);
    assert_int_equal(get_u64(c, VHOST_USER_GET_FEATURES), VHOST_DEV_FEATURES);
    assert_int_equal(get_u64(c, VHOST_USER_GET_PROTOCOL_FEATURES),
                     VHOST_DEV_PROTOCOL_FEATURES);
    xfer_u64(c, VHOST_USER_SET_PROTOCOL_FEATURES, 0,
             PF(MQ) | PF(REPLY_ACK) | PF(NET_MTU) | PF(RESET_DEVICE));
    assert_int_equal(get_u64(c, VHOST_USER_GET_QUEUE_NUM), 2);
    xfer_u64(c, VHOST_USER_NET_SET_MTU, ACK, 9000);
    assert_int_equal(ack_of(c, VHOST_USER_NET_SET_MTU), 0);
    assert_int_equal(vhost_dev_mtu(c->dev), 9000);
    xfer_u64(c, VHOST_USER_SET_FEATURES, 0, NET_FEATURES | PROTO);
    set_mem_table(c, ACK, c->memfd, FG_UVA);
    assert_int_equal(ack_of(c, VHOST_USER_SET_MEM_TABLE), 0);
    for (unsigned r = 0; r < 4; r++) {
        set_state(c, VHOST_USER_SET_VRING_NUM, 0, r, QSIZE);
        set_state(c, VHOST_USER_SET_VRING_BASE, 0, r, 0);
        set_addr(c, ACK, r);
        assert_int_equal(ack_of(c, VHOST_USER_SET_VRING_ADDR), 0);
        set_ring_fd(c, VHOST_USER_SET_VRING_KICK, 0, r);
        set_ring_fd(c, VHOST_USER_SET_VRING_CALL, 0, r);
    }
    no_reply(c);
    assert_false(vhost_dev_running(c->dev)); /* not enabled yet */
    for (unsigned r = 0; r < 4; r++)
        set_state(c, VHOST_USER_SET_VRING_ENABLE, 0, r, 1);
    assert_true(vhost_dev_running(c->dev));
    assert_true(vhost_dev_vring_ready(c->dev, 3));
    assert_int_equal(vhost_dev_num_vrings(c->dev), 4);
    assert_int_equal(c->quiesces, 0);
    /* one resume per change of the ready set: rings 0, 1, 2, 3 */
    assert_int_equal(c->resumes, 4);

    /* the guest turns a queue pair off: the datapath must stop first */
    set_state(c, VHOST_USER_SET_VRING_ENABLE, 0, 3, 0);
    assert_int_equal(c->quiesces, 1);
    assert_int_equal(c->resumes, 5);
    assert_false(vhost_dev_vring_ready(c->dev, 3));
}

/* Legacy frontend without PROTOCOL_FEATURES: the kick starts the ring. */
static void test_no_protocol_features(void **state)
{
    struct ctx *c = *state;

    xfer(c, VHOST_USER_SET_OWNER, 0, NULL, 0, NULL, 0);
    xfer_u64(c, VHOST_USER_SET_FEATURES, 0, VIRTIO_BIT(VIRTIO_NET_F_CSUM));
    assert_int_equal(vhost_dev_hdr_len(c->dev), 10);
    set_mem_table(c, 0, c->memfd, FG_UVA);
    for (unsigned r = 0; r < 2; r++) {
        set_state(c, VHOST_USER_SET_VRING_NUM, 0, r, 64);
        set_state(c, VHOST_USER_SET_VRING_BASE, 0, r, 0);
        set_addr(c, 0, r);
        assert_false(vhost_dev_vring_ready(c->dev, r));
        set_ring_fd(c, VHOST_USER_SET_VRING_KICK, 0, r);
        assert_true(vhost_dev_vring_ready(c->dev, r));
    }
    assert_true(vhost_dev_running(c->dev));
    assert_false(vhost_dev_vring(c->dev, 0)->event_idx);
    no_reply(c);
}

/* Cloud Hypervisor: ADDR before BASE, CALL before KICK, kick without fd. */
static void test_cloud_hypervisor_order(void **state)
{
    struct ctx *c = *state;

    xfer(c, VHOST_USER_SET_OWNER, 0, NULL, 0, NULL, 0);
    assert_int_equal(get_u64(c, VHOST_USER_GET_FEATURES), VHOST_DEV_FEATURES);
    xfer_u64(c, VHOST_USER_SET_FEATURES, 0, NET_FEATURES | PROTO);
    assert_int_equal(get_u64(c, VHOST_USER_GET_PROTOCOL_FEATURES),
                     VHOST_DEV_PROTOCOL_FEATURES);
    xfer_u64(c, VHOST_USER_SET_PROTOCOL_FEATURES, 0, PF(MQ) | PF(REPLY_ACK));
    assert_int_equal(get_u64(c, VHOST_USER_GET_QUEUE_NUM), 2);
    assert_int_equal(get_u64(c, VHOST_USER_GET_MAX_MEM_SLOTS), 8);
    set_mem_table(c, ACK, c->memfd, FG_UVA);
    assert_int_equal(ack_of(c, VHOST_USER_SET_MEM_TABLE), 0);
    for (unsigned r = 0; r < 2; r++) {
        set_state(c, VHOST_USER_SET_VRING_NUM, ACK, r, QSIZE);
        assert_int_equal(ack_of(c, VHOST_USER_SET_VRING_NUM), 0);
        set_addr(c, ACK, r);
        assert_int_equal(ack_of(c, VHOST_USER_SET_VRING_ADDR), 0);
        set_state(c, VHOST_USER_SET_VRING_BASE, ACK, r, 0);
        assert_int_equal(ack_of(c, VHOST_USER_SET_VRING_BASE), 0);
        set_ring_fd(c, VHOST_USER_SET_VRING_CALL, ACK, r);
        assert_int_equal(ack_of(c, VHOST_USER_SET_VRING_CALL), 0);
        uint64_t v = r | VHOST_USER_VRING_NOFD;
        xfer(c, VHOST_USER_SET_VRING_KICK, ACK, &v, 8, NULL, 0);
        assert_int_equal(ack_of(c, VHOST_USER_SET_VRING_KICK), 0);
        set_state(c, VHOST_USER_SET_VRING_ENABLE, ACK, r, 1);
        assert_int_equal(ack_of(c, VHOST_USER_SET_VRING_ENABLE), 0);
    }
    assert_true(vhost_dev_running(c->dev));
    assert_int_equal(vhost_dev_vring(c->dev, 0)->kick_fd, -1); /* to be polled */
}

/* Memory arriving last still makes the rings ready. */
static void test_mem_table_last(void **state)
{
    struct ctx *c = *state;

    xfer_u64(c, VHOST_USER_SET_FEATURES, 0, NET_FEATURES);
    for (unsigned r = 0; r < 2; r++) {
        set_addr(c, 0, r);
        set_state(c, VHOST_USER_SET_VRING_NUM, 0, r, QSIZE);
        set_ring_fd(c, VHOST_USER_SET_VRING_KICK, 0, r);
    }
    assert_false(vhost_dev_running(c->dev));
    set_mem_table(c, 0, c->memfd, FG_UVA);
    assert_true(vhost_dev_running(c->dev));
    assert_int_equal(c->resumes, 1);
}

static void test_get_vring_base_stops(void **state)
{
    struct ctx *c = *state;
    struct vhost_user_msg r;
    struct vring_chain ch;

    dpdk_setup(c);
    struct vring *vq = vhost_dev_vring(c->dev, 1);
    struct vring_desc *desc = (void *)(c->guest + (ring_gpa(1) - FG_GPA));
    struct vring_avail *avail = (void *)(c->guest + (ring_gpa(1) + 0x1000 - FG_GPA));
    struct vring_used *used = (void *)(c->guest + (ring_gpa(1) + 0x2000 - FG_GPA));
    fg_desc(desc, 0, FG_BUF, 60, 0, 0);
    avail->ring[0] = 0;
    avail->ring[1] = 0;
    avail->idx = 2;
    assert_int_equal(vring_pop(vq, false, &ch), VRING_OK);
    vring_push(vq, ch.head, 0);
    vring_flush(vq);
    assert_int_equal(vring_pop(vq, false, &ch), VRING_OK);
    vring_push(vq, ch.head, 0); /* not flushed: GET_VRING_BASE publishes it */

    int q = c->quiesces;
    struct vhost_user_vring_state s = {1, 0};
    xfer(c, VHOST_USER_GET_VRING_BASE, 0, &s, sizeof(s), NULL, 0);
    get_reply(c, VHOST_USER_GET_VRING_BASE, &r);
    assert_int_equal(r.hdr.size, sizeof(s));
    assert_int_equal(r.payload.state.index, 1);
    assert_int_equal(r.payload.state.num, 2);
    assert_int_equal(used->idx, 2);
    assert_int_equal(c->quiesces, q + 1);
    assert_false(vhost_dev_vring_ready(c->dev, 1));
    assert_true(vhost_dev_vring_ready(c->dev, 0));
    assert_false(vhost_dev_running(c->dev));

    /* restart as QEMU does: base, addr, kick */
    set_state(c, VHOST_USER_SET_VRING_BASE, ACK, 1, 2);
    assert_int_equal(ack_of(c, VHOST_USER_SET_VRING_BASE), 0);
    assert_false(vhost_dev_vring_ready(c->dev, 1));
    set_ring_fd(c, VHOST_USER_SET_VRING_KICK, ACK, 1);
    assert_int_equal(ack_of(c, VHOST_USER_SET_VRING_KICK), 0);
    assert_true(vhost_dev_running(c->dev));
    assert_int_equal(vq->last_avail_idx, 2);
    assert_int_equal(vq->last_used_idx, 2);
}

static void test_mem_table_moves_rings_away(void **state)
{
    struct ctx *c = *state;
    int memfd2 = memfd_create("guest2", MFD_CLOEXEC);

    dpdk_setup(c);
    int q = c->quiesces;

    /* new frontend addresses: the rings' old uvas are not in the new table;
     * the table is taken, the rings wait for new addresses */
    assert_int_equal(ftruncate(memfd2, FG_SIZE), 0);
    set_mem_table(c, ACK, memfd2, FG_UVA + 0x40000000);
    close(memfd2);
    assert_int_equal(ack_of(c, VHOST_USER_SET_MEM_TABLE), 0);
    assert_int_equal(c->quiesces, q + 1);
    assert_false(vhost_dev_running(c->dev));
    assert_int_equal(vhost_dev_errors(c->dev)[VHOST_DEV_ERR_RING_ADDR], 2);
    for (unsigned r = 0; r < 2; r++) {
        struct vhost_user_vring_addr a = {
            .index = r,
            .desc_user_addr = fg_uva(ring_gpa(r)) + 0x40000000,
            .avail_user_addr = fg_uva(ring_gpa(r) + 0x1000) + 0x40000000,
            .used_user_addr = fg_uva(ring_gpa(r) + 0x2000) + 0x40000000,
        };
        xfer(c, VHOST_USER_SET_VRING_ADDR, ACK, &a, sizeof(a), NULL, 0);
        assert_int_equal(ack_of(c, VHOST_USER_SET_VRING_ADDR), 0);
    }
    assert_true(vhost_dev_running(c->dev));
}

static void test_mem_table_replaced_ok(void **state)
{
    struct ctx *c = *state;
    int memfd2 = memfd_create("guest2", MFD_CLOEXEC);
    uint8_t *g2;

    dpdk_setup(c);
    struct vring *vq = vhost_dev_vring(c->dev, 0);
    void *old_map = vq->mem->regions[0].mmap_addr;
    size_t old_len = (size_t)vq->mem->regions[0].mmap_size;
    void *old_desc = vq->desc;
    int q = c->quiesces, r = c->resumes;

    assert_int_equal(ftruncate(memfd2, FG_SIZE), 0);
    g2 = mmap(NULL, FG_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd2, 0);
    assert_true(g2 != MAP_FAILED);
    set_mem_table(c, ACK, memfd2, FG_UVA);
    assert_int_equal(ack_of(c, VHOST_USER_SET_MEM_TABLE), 0);
    close(memfd2);
    assert_int_equal(c->quiesces, q + 1);
    assert_int_equal(c->resumes, r + 1);
    assert_true(vhost_dev_running(c->dev));
    /* the old mapping is gone, the ring points into the new one */
    assert_int_equal(msync(old_map, old_len, MS_ASYNC), -1);
    assert_int_equal(errno, ENOMEM);
    assert_ptr_not_equal(vq->desc, old_desc);
    assert_ptr_equal((void *)vq->desc, vq->mem->regions[0].host_addr + (ring_gpa(0) - FG_GPA));
    ((struct vring_desc *)(g2 + (ring_gpa(0) - FG_GPA)))[3].len = 1234;
    assert_int_equal(vq->desc[3].len, 1234);
    munmap(g2, FG_SIZE);
}

static void test_bad_sizes(void **state)
{
    struct ctx *c = *state;
    static const uint32_t fixed[][2] = {
        {VHOST_USER_SET_FEATURES, 8},      {VHOST_USER_SET_OWNER, 0},
        {VHOST_USER_RESET_OWNER, 0},       {VHOST_USER_SET_VRING_NUM, 8},
        {VHOST_USER_SET_VRING_ADDR, 40},   {VHOST_USER_SET_VRING_BASE, 8},
        {VHOST_USER_SET_VRING_KICK, 8},    {VHOST_USER_SET_VRING_CALL, 8},
        {VHOST_USER_SET_VRING_ERR, 8},     {VHOST_USER_SET_PROTOCOL_FEATURES, 8},
        {VHOST_USER_SET_VRING_ENABLE, 8},  {VHOST_USER_SEND_RARP, 8},
        {VHOST_USER_NET_SET_MTU, 8},       {VHOST_USER_RESET_DEVICE, 0},
        {VHOST_USER_SET_STATUS, 8},
    };
    static const uint32_t replying[][2] = {
        {VHOST_USER_GET_FEATURES, 0},      {VHOST_USER_GET_PROTOCOL_FEATURES, 0},
        {VHOST_USER_GET_QUEUE_NUM, 0},     {VHOST_USER_GET_VRING_BASE, 8},
        {VHOST_USER_GET_STATUS, 0},        {VHOST_USER_GET_MAX_MEM_SLOTS, 0},
    };
    uint8_t junk[64] = {0};
    uint64_t n = 0;

    xfer_u64(c, VHOST_USER_SET_PROTOCOL_FEATURES, 0, PF(REPLY_ACK));
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        xfer(c, fixed[i][0], ACK, junk, fixed[i][1] + 4, NULL, 0);
        assert_int_not_equal(ack_of(c, fixed[i][0]), 0);
        assert_int_equal(vhost_dev_errors(c->dev)[VHOST_DEV_ERR_BAD_SIZE], ++n);
        if (fixed[i][1]) {
            xfer(c, fixed[i][0], ACK, junk, fixed[i][1] - 1, NULL, 0);
            assert_int_not_equal(ack_of(c, fixed[i][0]), 0);
            assert_int_equal(vhost_dev_errors(c->dev)[VHOST_DEV_ERR_BAD_SIZE], ++n);
        }
    }
    for (size_t i = 0; i < sizeof(replying) / sizeof(replying[0]); i++) {
        struct vhost_user_msg r;

        xfer(c, replying[i][0], 0, junk, replying[i][1] + 8, NULL, 0);
        /* an empty reply: the frontend fails instead of waiting */
        get_reply(c, replying[i][0], &r);
        assert_int_equal(r.hdr.size, 0);
        assert_int_equal(vhost_dev_errors(c->dev)[VHOST_DEV_ERR_BAD_SIZE], ++n);
    }
    /* memory table: size disagreeing with nregions */
    struct vhost_user_memory m = {.nregions = 2};
    xfer(c, VHOST_USER_SET_MEM_TABLE, ACK, &m, 8 + 32, &c->memfd, 1);
    assert_int_not_equal(ack_of(c, VHOST_USER_SET_MEM_TABLE), 0);
    assert_int_equal(vhost_dev_errors(c->dev)[VHOST_DEV_ERR_BAD_SIZE], ++n);
    /* config: size field disagreeing with the payload */
    struct vhost_user_config cfg = {.offset = 0, .size = 20};
    xfer(c, VHOST_USER_SET_CONFIG, ACK, &cfg, 12 + 8, NULL, 0);
    assert_int_not_equal(ack_of(c, VHOST_USER_SET_CONFIG), 0);
    assert_int_equal(vhost_dev_errors(c->dev)[VHOST_DEV_ERR_BAD_SIZE], ++n);
    no_reply(c);
    assert_false(vhost_dev_running(c->dev));
}

static void test_bad_index(void **state)
{
    struct ctx *c = *state;
    struct vhost_user_msg r;
    uint64_t n = 0;

    xfer_u64(c, VHOST_USER_SET_PROTOCOL_FEATURES, 0, PF(REPLY_ACK));
    set_state(c, VHOST_USER_SET_VRING_NUM, ACK, 4, 256); /* 2 queue pairs */
    assert_int_not_equal(ack_of(c, VHOST_USER_SET_VRING_NUM), 0);
    assert_int_equal(vhost_dev_errors(c->dev)[VHOST_DEV_ERR_BAD_INDEX], ++n);
    set_state(c, VHOST_USER_SET_VRING_BASE, ACK, UINT32_MAX, 0);
    assert_int_not_equal(ack_of(c, VHOST_USER_SET_VRING_BASE), 0);
    assert_int_equal(vhost_dev_errors(c->dev)[VHOST_DEV_ERR_BAD_INDEX], ++n);
    set_state(c, VHOST_USER_SET_VRING_ENABLE, ACK, 16, 1);
    assert_int_not_equal(ack_of(c, VHOST_USER_SET_VRING_ENABLE), 0);
    assert_int_equal(vhost_dev_errors(c->dev)[VHOST_DEV_ERR_BAD_INDEX], ++n);
    struct vhost_user_vring_addr a = {.index = 5};
    xfer(c, VHOST_USER_SET_VRING_ADDR, ACK, &a, sizeof(a), NULL, 0);
    assert_int_not_equal(ack_of(c, VHOST_USER_SET_VRING_ADDR), 0);
    assert_int_equal(vhost_dev_errors(c->dev)[VHOST_DEV_ERR_BAD_INDEX], ++n);
    int before = count_open_fds();
    set_ring_fd(c, VHOST_USER_SET_VRING_KICK, ACK, 200);
    assert_int_not_equal(ack_of(c, VHOST_USER_SET_VRING_KICK), 0);
    assert_int_equal(vhost_dev_errors(c->dev)[VHOST_DEV_ERR_BAD_INDEX], ++n);
    assert_int_equal(count_open_fds(), before); /* the refused fd was closed */
    struct vhost_user_vring_state s = {9, 0};
    xfer(c, VHOST_USER_GET_VRING_BASE, 0, &s, sizeof(s), NULL, 0);
    get_reply(c, VHOST_USER_GET_VRING_BASE, &r);
    assert_int_equal(r.hdr.size, 0);
    assert_int_equal(vhost_dev_errors(c->dev)[VHOST_DEV_ERR_BAD_INDEX], ++n);
    assert_int_equal(vhost_dev_num_vrings(c->dev), 0);
}

static void test_bad_values(void **state)
{
    struct ctx *c = *state;
    uint64_t n = 0;

    xfer_u64(c, VHOST_USER_SET_PROTOCOL_FEATURES, ACK, PF(REPLY_ACK) | PF(BACKEND_REQ));
    no_reply(c); /* REPLY_ACK not negotiated: this was refused */
    assert_int_equal(vhost_dev_errors(c->dev)[VHOST_DEV_ERR_BAD_VALUE], ++n);
    xfer_u64(c, VHOST_USER_SET_PROTOCOL_FEATURES, 0, PF(REPLY_ACK));
    assert_int_equal(vhost_dev_protocol_features(c->dev), PF(REPLY_ACK));

    xfer_u64(c, VHOST_USER_SET_FEATURES, ACK, VIRTIO_BIT(VIRTIO_F_RING_PACKED));
    assert_int_not_equal(ack_of(c, VHOST_USER_SET_FEATURES), 0);
    assert_int_equal(vhost_dev_errors(c->dev)[VHOST_DEV_ERR_BAD_VALUE], ++n);
    assert_int_equal(vhost_dev_features(c->dev), 0);
    /* the driver learns through FEATURES_OK not sticking */
    xfer_u64(c, VHOST_USER_SET_STATUS, 0, 0xb);
    assert_int_equal(get_u64(c, VHOST_USER_GET_STATUS), 0x3);

    uint32_t sizes[] = {0, 3, 100, 65536};
    for (size_t i = 0; i < 4; i++) {
        set_state(c, VHOST_USER_SET_VRING_NUM, ACK, 0, sizes[i]);
        assert_int_not_equal(ack_of(c, VHOST_USER_SET_VRING_NUM), 0);
        assert_int_equal(vhost_dev_errors(c->dev)[VHOST_DEV_ERR_BAD_VALUE], ++n);
    }
    set_state(c, VHOST_USER_SET_VRING_NUM, ACK, 0, 32768);
    assert_int_equal(ack_of(c, VHOST_USER_SET_VRING_NUM), 0);
    set_state(c, VHOST_USER_SET_VRING_BASE, ACK, 0, 0x10000);
    assert_int_not_equal(ack_of(c, VHOST_USER_SET_VRING_BASE), 0);
    set_state(c, VHOST_USER_SET_VRING_ENABLE, ACK, 0, 2);
    assert_int_not_equal(ack_of(c, VHOST_USER_SET_VRING_ENABLE), 0);
    xfer_u64(c, VHOST_USER_NET_SET_MTU, ACK, 20);
    assert_int_not_equal(ack_of(c, VHOST_USER_NET_SET_MTU), 0);
    assert_int_equal(vhost_dev_mtu(c->dev), 1500);
    xfer_u64(c, VHOST_USER_SET_STATUS, ACK, 0x100);
    assert_int_not_equal(ack_of(c, VHOST_USER_SET_STATUS), 0);
    assert_int_equal(vhost_dev_errors(c->dev)[VHOST_DEV_ERR_BAD_VALUE], n + 4);
    /* a wrong protocol version */
    struct vhost_user_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr.request = VHOST_USER_SET_FEATURES;
    m.hdr.flags = 2 | ACK;
    m.hdr.size = 8;
    assert_int_equal(vhost_user_send(c->front, &m, NULL, 0), 0);
    assert_int_equal(vhost_dev_handle_msg(c->dev, c->back), 0);
    assert_int_not_equal(ack_of(c, VHOST_USER_SET_FEATURES), 0);
    assert_int_equal(vhost_dev_errors(c->dev)[VHOST_DEV_ERR_BAD_VALUE], n + 5);
}

static void test_ring_addr_outside(void **state)
{
    struct ctx *c = *state;
    struct vhost_user_vring_addr a = {
        .index = 0,
        .desc_user_addr = fg_uva(FG_GPA + FG_SIZE - 0x100), /* runs off the end */
        .avail_user_addr = fg_uva(FG_GPA + 0x1000),
        .used_user_addr = fg_uva(FG_GPA + 0x2000),
    };

    xfer_u64(c, VHOST_USER_SET_PROTOCOL_FEATURES, 0, PF(REPLY_ACK));
    set_mem_table(c, 0, c->memfd, FG_UVA);
    set_state(c, VHOST_USER_SET_VRING_NUM, 0, 0, QSIZE);
    xfer(c, VHOST_USER_SET_VRING_ADDR, ACK, &a, sizeof(a), NULL, 0);
    assert_int_not_equal(ack_of(c, VHOST_USER_SET_VRING_ADDR), 0);
    assert_int_equal(vhost_dev_errors(c->dev)[VHOST_DEV_ERR_RING_ADDR], 1);
    set_ring_fd(c, VHOST_USER_SET_VRING_KICK, 0, 0);
    assert_false(vhost_dev_vring_ready(c->dev, 0));
    assert_null(vhost_dev_vring(c->dev, 0)->desc);
}

static void test_unexpected_and_missing_fds(void **state)
{
    struct ctx *c = *state;
    int fd = eventfd(0, EFD_CLOEXEC);
    int before = count_open_fds();
    uint64_t v;

    xfer_u64(c, VHOST_USER_SET_PROTOCOL_FEATURES, 0, PF(REPLY_ACK));
    v = NET_FEATURES;
    xfer(c, VHOST_USER_SET_FEATURES, ACK, &v, 8, &fd, 1);
    assert_int_not_equal(ack_of(c, VHOST_USER_SET_FEATURES), 0);
    assert_int_equal(vhost_dev_features(c->dev), 0);
    assert_int_equal(vhost_dev_errors(c->dev)[VHOST_DEV_ERR_BAD_FDS], 1);
    /* a kick without its fd */
    v = 0;
    xfer(c, VHOST_USER_SET_VRING_KICK, ACK, &v, 8, NULL, 0);
    assert_int_not_equal(ack_of(c, VHOST_USER_SET_VRING_KICK), 0);
    assert_int_equal(vhost_dev_errors(c->dev)[VHOST_DEV_ERR_BAD_FDS], 2);
    /* the no-fd flag, with an fd */
    v = 1 | VHOST_USER_VRING_NOFD;
    xfer(c, VHOST_USER_SET_VRING_CALL, ACK, &v, 8, &fd, 1);
    assert_int_not_equal(ack_of(c, VHOST_USER_SET_VRING_CALL), 0);
    assert_int_equal(vhost_dev_errors(c->dev)[VHOST_DEV_ERR_BAD_FDS], 3);
    assert_int_equal(vhost_dev_vring(c->dev, 1)->call_fd, -1);
    /* two fds for one ring */
    int two[2] = {fd, fd};
    v = 0;
    xfer(c, VHOST_USER_SET_VRING_ERR, ACK, &v, 8, two, 2);
    assert_int_not_equal(ack_of(c, VHOST_USER_SET_VRING_ERR), 0);
    assert_int_equal(vhost_dev_errors(c->dev)[VHOST_DEV_ERR_BAD_FDS], 4);
    /* memory table with one fd too few */
    struct vhost_user_memory m = {.nregions = 2};
    m.regions[0].memory_size = 0x1000;
    m.regions[1].guest_phys_addr = 0x1000;
    m.regions[1].userspace_addr = 0x1000;
    m.regions[1].memory_size = 0x1000;
    xfer(c, VHOST_USER_SET_MEM_TABLE, ACK, &m, 8 + 64, &c->memfd, 1);
    assert_int_not_equal(ack_of(c, VHOST_USER_SET_MEM_TABLE), 0);
    assert_int_equal(vhost_dev_errors(c->dev)[VHOST_DEV_ERR_BAD_FDS], 5);
    /* a memory table that cannot be mapped */
    m.nregions = 1;
    m.regions[0].memory_size = FG_SIZE * 2; /* longer than the file */
    xfer(c, VHOST_USER_SET_MEM_TABLE, ACK, &m, 8 + 32, &c->memfd, 1);
    assert_int_not_equal(ack_of(c, VHOST_USER_SET_MEM_TABLE), 0);
    assert_int_equal(vhost_dev_errors(c->dev)[VHOST_DEV_ERR_MEM_TABLE], 1);
    /* every fd the device received was closed */
    assert_int_equal(count_open_fds(), before);
    close(fd);
}

static void test_unknown_request(void **state)
{
    struct ctx *c = *state;
    int fd = eventfd(0, EFD_CLOEXEC);
    int before = count_open_fds();
    uint64_t v = 0;

    xfer(c, 100, 0, &v, 8, NULL, 0);
    no_reply(c);
    xfer(c, VHOST_USER_SET_BACKEND_REQ_FD, ACK, NULL, 0, &fd, 1);
    assert_int_equal(ack_of(c, VHOST_USER_SET_BACKEND_REQ_FD), 1);
    xfer(c, VHOST_USER_NONE, ACK, NULL, 0, NULL, 0);
    assert_int_equal(ack_of(c, VHOST_USER_NONE), 1);
    assert_int_equal(vhost_dev_errors(c->dev)[VHOST_DEV_ERR_UNKNOWN_REQ], 3);
    assert_int_equal(count_open_fds(), before);
    close(fd);
    /* still talking */
    assert_int_equal(get_u64(c, VHOST_USER_GET_QUEUE_NUM), 2);
}

static void test_reply_ack_only_when_negotiated(void **state)
{
    struct ctx *c = *state;

    xfer(c, VHOST_USER_SET_OWNER, ACK, NULL, 0, NULL, 0);
    no_reply(c);
    xfer_u64(c, VHOST_USER_SET_PROTOCOL_FEATURES, 0, PF(REPLY_ACK));
    xfer(c, VHOST_USER_SET_OWNER, ACK, NULL, 0, NULL, 0);
    assert_int_equal(ack_of(c, VHOST_USER_SET_OWNER), 0);
    xfer(c, VHOST_USER_SET_OWNER, 0, NULL, 0, NULL, 0);
    no_reply(c);
    /* a request with its own reply gets that, not an ack as well */
    struct vhost_user_msg r;
    xfer(c, VHOST_USER_GET_FEATURES, ACK, NULL, 0, NULL, 0);
    get_reply(c, VHOST_USER_GET_FEATURES, &r);
    assert_int_equal(r.payload.u64, VHOST_DEV_FEATURES);
    no_reply(c);
}

static void test_log_messages(void **state)
{
    struct ctx *c = *state;
    int fd = eventfd(0, EFD_CLOEXEC);
    int before = count_open_fds();
    uint64_t log[2] = {0x1000, 0};

    xfer_u64(c, VHOST_USER_SET_PROTOCOL_FEATURES, 0, PF(REPLY_ACK));
    xfer(c, VHOST_USER_SET_LOG_BASE, ACK, log, sizeof(log), &fd, 1);
    assert_int_not_equal(ack_of(c, VHOST_USER_SET_LOG_BASE), 0);
    xfer(c, VHOST_USER_SET_LOG_FD, ACK, NULL, 0, &fd, 1);
    assert_int_equal(ack_of(c, VHOST_USER_SET_LOG_FD), 0);
    assert_int_equal(count_open_fds(), before);
    close(fd);
}

static void test_config(void **state)
{
    struct ctx *c = *state;
    struct vhost_user_config cfg = {.offset = 0, .size = 12, .flags = 0};
    struct vhost_user_msg r;
    struct virtio_net_config nc;

    xfer(c, VHOST_USER_GET_CONFIG, 0, &cfg, 12 + 12, NULL, 0);
    get_reply(c, VHOST_USER_GET_CONFIG, &r);
    assert_int_equal(r.hdr.size, 24);
    assert_int_equal(r.payload.config.size, 12);
    memcpy(&nc, r.payload.config.region, 12);
    static const uint8_t zero_mac[6];
    assert_memory_equal(nc.mac, zero_mac, 6);
    assert_int_equal(nc.status, VIRTIO_NET_S_LINK_UP);
    assert_int_equal(nc.max_virtqueue_pairs, 2);
    assert_int_equal(nc.mtu, 1500);
    /* a window into the middle */
    cfg.offset = 8;
    cfg.size = 2;
    xfer(c, VHOST_USER_GET_CONFIG, 0, &cfg, 12 + 2, NULL, 0);
    get_reply(c, VHOST_USER_GET_CONFIG, &r);
    assert_int_equal(r.payload.config.offset, 8);
    assert_int_equal(r.payload.config.region[0], 2);
    assert_int_equal(r.payload.config.region[1], 0);
    /* past the end of the space */
    cfg.offset = 250;
    cfg.size = 12;
    xfer(c, VHOST_USER_GET_CONFIG, 0, &cfg, 12 + 12, NULL, 0);
    get_reply(c, VHOST_USER_GET_CONFIG, &r);
    assert_int_equal(r.hdr.size, 0);
    assert_int_equal(vhost_dev_errors(c->dev)[VHOST_DEV_ERR_BAD_VALUE], 1);
    /* SET_CONFIG is accepted and changes nothing */
    xfer_u64(c, VHOST_USER_SET_PROTOCOL_FEATURES, 0, PF(REPLY_ACK));
    cfg.offset = 0;
    cfg.size = 6;
    memset(cfg.region, 0xaa, 6);
    xfer(c, VHOST_USER_SET_CONFIG, ACK, &cfg, 12 + 6, NULL, 0);
    assert_int_equal(ack_of(c, VHOST_USER_SET_CONFIG), 0);
    uint64_t rarp_mac = 0x5254001234ULL;
    xfer(c, VHOST_USER_SEND_RARP, ACK, &rarp_mac, 8, NULL, 0);
    assert_int_equal(ack_of(c, VHOST_USER_SEND_RARP), 0);
}

static void test_status_stops(void **state)
{
    struct ctx *c = *state;

    dpdk_setup(c);
    int q = c->quiesces;
    xfer_u64(c, VHOST_USER_SET_STATUS, ACK, 0);
    assert_int_equal(ack_of(c, VHOST_USER_SET_STATUS), 0);
    assert_false(vhost_dev_running(c->dev));
    assert_int_equal(c->quiesces, q + 1);
    /* features survive a status reset (DPDK sends one mid-setup) */
    assert_int_equal(vhost_dev_features(c->dev), NET_FEATURES | PROTO);
    xfer_u64(c, VHOST_USER_SET_STATUS, ACK, 0xf);
    assert_int_equal(ack_of(c, VHOST_USER_SET_STATUS), 0);
    assert_true(vhost_dev_running(c->dev));
}

static void test_broken_ring_not_ready(void **state)
{
    struct ctx *c = *state;

    dpdk_setup(c);
    vhost_dev_vring(c->dev, 1)->broken = true;
    assert_false(vhost_dev_vring_ready(c->dev, 1));
    assert_false(vhost_dev_running(c->dev));
    /* SET_VRING_BASE resets it */
    set_state(c, VHOST_USER_SET_VRING_BASE, ACK, 1, 0);
    assert_int_equal(ack_of(c, VHOST_USER_SET_VRING_BASE), 0);
    assert_true(vhost_dev_running(c->dev));
}

static void test_call_fd_replaced(void **state)
{
    struct ctx *c = *state;

    dpdk_setup(c);
    int before = count_open_fds();
    int q = c->quiesces;
    set_ring_fd(c, VHOST_USER_SET_VRING_CALL, ACK, 0);
    assert_int_equal(ack_of(c, VHOST_USER_SET_VRING_CALL), 0);
    assert_int_equal(c->quiesces, q + 1); /* the datapath writes it */
    assert_int_equal(count_open_fds(), before); /* old one closed */
    uint64_t v = 0 | VHOST_USER_VRING_NOFD;
    xfer(c, VHOST_USER_SET_VRING_CALL, ACK, &v, 8, NULL, 0);
    assert_int_equal(ack_of(c, VHOST_USER_SET_VRING_CALL), 0);
    assert_int_equal(vhost_dev_vring(c->dev, 0)->call_fd, -1);
    assert_int_equal(count_open_fds(), before - 1);
}

static void test_reset_device(void **state)
{
    struct ctx *c = *state;

    dpdk_setup(c);
    int before = count_open_fds();
    xfer_u64(c, VHOST_USER_SET_PROTOCOL_FEATURES, 0,
             PF(MQ) | PF(REPLY_ACK) | PF(STATUS) | PF(RESET_DEVICE));
    xfer(c, VHOST_USER_RESET_DEVICE, ACK, NULL, 0, NULL, 0);
    assert_int_equal(ack_of(c, VHOST_USER_RESET_DEVICE), 0);
    assert_false(vhost_dev_running(c->dev));
    assert_int_equal(vhost_dev_features(c->dev), 0);
    assert_int_equal(vhost_dev_vring(c->dev, 0)->mem->nregions, 0);
    /* 2 kick + 2 call fds are gone */
    assert_int_equal(count_open_fds(), before - 4);
    /* and the device takes a new setup */
    dpdk_setup(c);
    assert_true(vhost_dev_running(c->dev));
}

static void test_reset_owner(void **state)
{
    struct ctx *c = *state;

    dpdk_setup(c);
    xfer(c, VHOST_USER_RESET_OWNER, 0, NULL, 0, NULL, 0);
    assert_false(vhost_dev_running(c->dev));
    assert_int_equal(vhost_dev_num_vrings(c->dev), 0);
    assert_int_equal(c->depth, 0);
}

static void test_disconnect(void **state)
{
    struct ctx *c = *state;

    dpdk_setup(c);
    const struct vhost_mem *mem = vhost_dev_vring(c->dev, 0)->mem;
    void *map = mem->regions[0].mmap_addr;
    size_t len = (size_t)mem->regions[0].mmap_size;
    int q = c->quiesces, r = c->resumes;
    int before = count_open_fds();

    close(c->front);
    c->front = -1;
    assert_int_equal(vhost_dev_handle_msg(c->dev, c->back), -1);
    vhost_dev_disconnect(c->dev);
    assert_int_equal(c->quiesces, q + 1);
    assert_int_equal(c->resumes, r + 1);
    assert_int_equal(c->depth, 0);
    assert_false(vhost_dev_running(c->dev));
    assert_int_equal(vhost_dev_features(c->dev), 0);
    assert_int_equal(vhost_dev_protocol_features(c->dev), 0);
    assert_int_equal(vhost_dev_status(c->dev), 0);
    assert_int_equal(msync(map, len, MS_ASYNC), -1);
    assert_int_equal(count_open_fds(), before - 5); /* and the front end */
    for (unsigned i = 0; i < VHOST_DEV_MAX_VRINGS; i++) {
        assert_int_equal(vhost_dev_vring(c->dev, i)->kick_fd, -1);
        assert_int_equal(vhost_dev_vring(c->dev, i)->size, 0);
    }
    /* a second disconnect changes nothing and calls nobody */
    vhost_dev_disconnect(c->dev);
    assert_int_equal(c->quiesces, q + 1);
    assert_int_equal(c->resumes, r + 1);

    /* a new connection starts from scratch */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    close(c->back);
    c->front = sv[0];
    c->back = sv[1];
    dpdk_setup(c);
    assert_true(vhost_dev_running(c->dev));
}

static void test_framing_error_closes(void **state)
{
    struct ctx *c = *state;
    struct vhost_user_hdr h = {VHOST_USER_SET_FEATURES, VHOST_USER_VERSION, 4096};

    assert_int_equal(write(c->front, &h, sizeof(h)), sizeof(h));
    assert_int_equal(vhost_dev_handle_msg(c->dev, c->back), -1);
    assert_int_equal(vhost_dev_errors(c->dev)[VHOST_DEV_ERR_FRAMING], 1);
}

static void test_create_args(void **state)
{
    assert_null(vhost_dev_create("x", 0, 1500, NULL, NULL));
    assert_null(vhost_dev_create("x", VHOST_DEV_MAX_QUEUE_PAIRS + 1, 1500, NULL, NULL));
    struct vhost_dev *d = vhost_dev_create("x", VHOST_DEV_MAX_QUEUE_PAIRS, 1500, NULL,
                                           NULL);
    assert_non_null(d);
    assert_null(vhost_dev_vring(d, VHOST_DEV_MAX_VRINGS));
    assert_false(vhost_dev_vring_ready(d, 0));
    assert_int_equal(vhost_dev_hdr_len(d), 10);
    assert_string_equal(vhost_dev_err_name(VHOST_DEV_ERR_BAD_FDS), "bad fds");
    vhost_dev_destroy(d);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_dpdk_order),
        T(test_qemu_order),
        T(test_no_protocol_features),
        T(test_cloud_hypervisor_order),
        T(test_mem_table_last),
        T(test_get_vring_base_stops),
        T(test_mem_table_moves_rings_away),
        T(test_mem_table_replaced_ok),
        T(test_bad_sizes),
        T(test_bad_index),
        T(test_bad_values),
        T(test_ring_addr_outside),
        T(test_unexpected_and_missing_fds),
        T(test_unknown_request),
        T(test_reply_ack_only_when_negotiated),
        T(test_log_messages),
        T(test_config),
        T(test_status_stops),
        T(test_broken_ring_not_ready),
        T(test_call_fd_replaced),
        T(test_reset_device),
        T(test_reset_owner),
        T(test_disconnect),
        T(test_framing_error_closes),
        cmocka_unit_test(test_create_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
