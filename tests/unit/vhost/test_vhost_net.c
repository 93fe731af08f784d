/* vhost_net.c: virtio-net header split on TX, copy into RX chains. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "fake_guest.h"
#include "vhost_net.h"

#define QSIZE 16

static int setup(void **state)
{
    struct fake_guest *g = calloc(1, sizeof(*g));

    if (!g || fg_init(g, QSIZE) < 0)
        return -1;
    *state = g;
    return 0;
}

static int teardown(void **state)
{
    struct fake_guest *g = *state;

    fg_fini(g);
    free(g);
    return 0;
}

static const struct virtio_net_hdr test_hdr = {
    .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
    .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
    .hdr_len = 54,
    .gso_size = 1448,
    .csum_start = 34,
    .csum_offset = 16,
    .num_buffers = 0x5555, /* must be overwritten on RX */
};

static void test_tx_header_spans(void **state)
{
    struct fake_guest *g = *state;
    struct vring_chain c;
    struct virtio_net_hdr h;
    struct vring_buf frame[VRING_CHAIN_MAX];
    uint8_t *b0 = fg_ptr(g, FG_BUF), *b1 = fg_ptr(g, FG_BUF + 0x100);
    int n = -1;

    memcpy(b0, &test_hdr, 5);
    memcpy(b1, (uint8_t *)&test_hdr + 5, 7);
    memcpy(b1 + 7, "abc", 3);
    fg_desc(g->desc, 0, FG_BUF, 5, VRING_DESC_F_NEXT, 1);
    fg_desc(g->desc, 1, FG_BUF + 0x100, 10, VRING_DESC_F_NEXT, 2);
    fg_desc(g->desc, 2, FG_BUF + 0x200, 100, 0, 0);
    fg_avail(g, 0);
    assert_int_equal(vring_pop(&g->vq, false, &c), VRING_OK);
    assert_int_equal(vhost_net_tx_split(&c, 12, &h, frame, &n), 103);
    assert_memory_equal(&h, &test_hdr, 12);
    assert_int_equal(n, 2);
    assert_ptr_equal(frame[0].addr, fg_hva(g, FG_BUF + 0x100 + 7));
    assert_int_equal(frame[0].len, 3);
    assert_memory_equal(frame[0].addr, "abc", 3);
    assert_ptr_equal(frame[1].addr, fg_hva(g, FG_BUF + 0x200));
    assert_int_equal(frame[1].len, 100);
}

static void test_tx_legacy_header(void **state)
{
    struct fake_guest *g = *state;
    struct vring_chain c;
    struct virtio_net_hdr h;
    struct vring_buf frame[VRING_CHAIN_MAX];
    int n = -1;

    memcpy(fg_ptr(g, FG_BUF), &test_hdr, 12); /* only 10 belong to the header */
    fg_desc(g->desc, 0, FG_BUF, 10, VRING_DESC_F_NEXT, 1);
    fg_desc(g->desc, 1, FG_BUF + 0x100, 60, 0, 0);
    fg_avail(g, 0);
    assert_int_equal(vring_pop(&g->vq, false, &c), VRING_OK);
    assert_int_equal(vhost_net_tx_split(&c, 10, &h, frame, &n), 60);
    assert_int_equal(h.gso_size, 1448);
    assert_int_equal(h.num_buffers, 0);
    assert_int_equal(n, 1);
}

static void test_tx_header_only(void **state)
{
    struct fake_guest *g = *state;
    struct vring_chain c;
    struct virtio_net_hdr h;
    struct vring_buf frame[VRING_CHAIN_MAX];
    int n = -1;

    fg_desc(g->desc, 0, FG_BUF, 12, 0, 0);
    fg_avail(g, 0);
    assert_int_equal(vring_pop(&g->vq, false, &c), VRING_OK);
    assert_int_equal(vhost_net_tx_split(&c, 12, &h, frame, &n), 0);
    assert_int_equal(n, 0);
}

static void test_tx_too_short(void **state)
{
    struct fake_guest *g = *state;
    struct vring_chain c;
    struct virtio_net_hdr h;
    struct vring_buf frame[VRING_CHAIN_MAX];
    int n = -1;

    fg_desc(g->desc, 0, FG_BUF, 4, VRING_DESC_F_NEXT, 1);
    fg_desc(g->desc, 1, FG_BUF + 0x100, 7, 0, 0);
    fg_avail(g, 0);
    assert_int_equal(vring_pop(&g->vq, false, &c), VRING_OK);
    assert_int_equal(vhost_net_tx_split(&c, 12, &h, frame, &n), -1);
}

/* A frame of len bytes, pattern i & 0xff, given in two iovecs. */
static uint8_t frame_data[4096];

static int make_iov(struct iovec *iov, size_t len)
{
    for (size_t i = 0; i < sizeof(frame_data); i++)
        frame_data[i] = (uint8_t)(i * 7 + 3);
    iov[0].iov_base = frame_data;
    iov[0].iov_len = len / 3;
    iov[1].iov_base = frame_data + len / 3;
    iov[1].iov_len = len - len / 3;
    return 2;
}

static void test_rx_single_chain(void **state)
{
    struct fake_guest *g = *state;
    struct iovec iov[2];
    struct virtio_net_hdr h;
    int n = make_iov(iov, 100);

    /* header split over 8 + 4 bytes */
    fg_desc(g->desc, 5, FG_BUF, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 6);
    fg_desc(g->desc, 6, FG_BUF + 0x100, 2000, VRING_DESC_F_WRITE, 0);
    fg_avail(g, 5);
    assert_int_equal(vhost_net_rx_copy(&g->vq, false, 12, &test_hdr, iov, n, 100),
                     VHOST_NET_RX_OK);
    vring_flush(&g->vq);
    assert_int_equal(g->used->idx, 1);
    assert_int_equal(g->used->ring[0].id, 5);
    assert_int_equal(g->used->ring[0].len, 112);
    memcpy(&h, fg_ptr(g, FG_BUF), 8);
    memcpy((uint8_t *)&h + 8, fg_ptr(g, FG_BUF + 0x100), 4);
    assert_int_equal(h.num_buffers, 1);
    assert_int_equal(h.gso_size, 1448);
    assert_int_equal(h.csum_start, 34);
    assert_memory_equal(fg_ptr(g, FG_BUF + 0x100 + 4), frame_data, 100);
}

static void test_rx_legacy_header(void **state)
{
    struct fake_guest *g = *state;
    struct iovec iov[2];
    int n = make_iov(iov, 60);
    uint8_t *b = fg_ptr(g, FG_BUF);

    fg_desc(g->desc, 0, FG_BUF, 1000, VRING_DESC_F_WRITE, 0);
    fg_avail(g, 0);
    assert_int_equal(vhost_net_rx_copy(&g->vq, false, 10, &test_hdr, iov, n, 60),
                     VHOST_NET_RX_OK);
    vring_flush(&g->vq);
    assert_int_equal(g->used->ring[0].len, 70);
    assert_memory_equal(b, &test_hdr, 10);
    assert_memory_equal(b + 10, frame_data, 60);
}

static void test_rx_too_big(void **state)
{
    struct fake_guest *g = *state;
    struct iovec iov[2];
    int n = make_iov(iov, 100);

    fg_desc(g->desc, 0, FG_BUF, 64, VRING_DESC_F_WRITE, 0);
    fg_desc(g->desc, 1, FG_BUF + 0x100, 64, VRING_DESC_F_WRITE, 0);
    fg_avail(g, 0);
    fg_avail(g, 1);
    assert_int_equal(vhost_net_rx_copy(&g->vq, false, 12, &test_hdr, iov, n, 100),
                     VHOST_NET_RX_TOO_BIG);
    assert_int_equal(g->vq.last_avail_idx, 0);
    assert_int_equal(g->vq.pending_used, 0);
    vring_flush(&g->vq);
    assert_int_equal(g->used->idx, 0);
    /* a frame that fits still goes */
    assert_int_equal(vhost_net_rx_copy(&g->vq, false, 12, &test_hdr, iov, n, 52),
                     VHOST_NET_RX_OK);
}

static void test_rx_no_buffer(void **state)
{
    struct fake_guest *g = *state;
    struct iovec iov[2];
    int n = make_iov(iov, 100);

    assert_int_equal(vhost_net_rx_copy(&g->vq, true, 12, &test_hdr, iov, n, 100),
                     VHOST_NET_RX_NO_BUF);
    assert_int_equal(g->vq.last_avail_idx, 0);
    assert_int_equal(g->vq.pending_used, 0);
    assert_int_equal(g->used->idx, 0);
}

static void post_rx(struct fake_guest *g, uint16_t n, uint32_t len)
{
    for (uint16_t i = 0; i < n; i++) {
        uint16_t d = (uint16_t)(g->avail_idx % QSIZE);
        fg_desc(g->desc, d, FG_BUF + d * 0x1000, len, VRING_DESC_F_WRITE, 0);
        fg_avail(g, d);
    }
}

static void test_rx_mergeable(void **state)
{
    struct fake_guest *g = *state;
    struct iovec iov[2];
    struct virtio_net_hdr h;
    int n = make_iov(iov, 150);

    post_rx(g, 4, 64);
    assert_int_equal(vhost_net_rx_copy(&g->vq, true, 12, &test_hdr, iov, n, 150),
                     VHOST_NET_RX_OK);
    vring_flush(&g->vq);
    assert_int_equal(g->used->idx, 3);
    assert_int_equal(g->used->ring[0].id, 0);
    assert_int_equal(g->used->ring[0].len, 64);
    assert_int_equal(g->used->ring[1].id, 1);
    assert_int_equal(g->used->ring[1].len, 64);
    assert_int_equal(g->used->ring[2].id, 2);
    assert_int_equal(g->used->ring[2].len, 162 - 128);
    memcpy(&h, fg_ptr(g, FG_BUF), sizeof(h));
    assert_int_equal(h.num_buffers, 3);
    assert_int_equal(h.hdr_len, 54);
    assert_memory_equal(fg_ptr(g, FG_BUF + 12), frame_data, 52);
    assert_memory_equal(fg_ptr(g, FG_BUF + 0x1000), frame_data + 52, 64);
    assert_memory_equal(fg_ptr(g, FG_BUF + 0x2000), frame_data + 116, 34);
    assert_int_equal(vring_avail_count(&g->vq), 1);
}

static void test_rx_mergeable_one_chain(void **state)
{
    struct fake_guest *g = *state;
    struct iovec iov[2];
    struct virtio_net_hdr h;
    int n = make_iov(iov, 40);

    post_rx(g, 2, 1500);
    assert_int_equal(vhost_net_rx_copy(&g->vq, true, 12, &test_hdr, iov, n, 40),
                     VHOST_NET_RX_OK);
    vring_flush(&g->vq);
    assert_int_equal(g->used->idx, 1);
    assert_int_equal(g->used->ring[0].len, 52);
    memcpy(&h, fg_ptr(g, FG_BUF), sizeof(h));
    assert_int_equal(h.num_buffers, 1);
}

static void test_rx_mergeable_not_enough(void **state)
{
    struct fake_guest *g = *state;
    struct iovec iov[2];
    int n = make_iov(iov, 150);

    post_rx(g, 2, 64);
    assert_int_equal(vhost_net_rx_copy(&g->vq, true, 12, &test_hdr, iov, n, 150),
                     VHOST_NET_RX_NO_BUF);
    assert_int_equal(g->vq.last_avail_idx, 0);
    assert_int_equal(g->vq.pending_used, 0);
    post_rx(g, 1, 64);
    assert_int_equal(vhost_net_rx_copy(&g->vq, true, 12, &test_hdr, iov, n, 150),
                     VHOST_NET_RX_OK);
    vring_flush(&g->vq);
    assert_int_equal(g->used->idx, 3);
}

static void test_rx_mergeable_bad_chain(void **state)
{
    struct fake_guest *g = *state;
    struct iovec iov[2];
    int n = make_iov(iov, 150);

    post_rx(g, 3, 64);
    g->desc[1].flags = 0; /* device-readable in an RX ring */
    assert_int_equal(vhost_net_rx_copy(&g->vq, true, 12, &test_hdr, iov, n, 150),
                     VHOST_NET_RX_BAD_DESC);
    assert_int_equal(g->vq.errors[VRING_ERR_DIRECTION], 1);
    vring_flush(&g->vq);
    /* both chains go back empty: the bad one, and ours behind it */
    assert_int_equal(g->used->idx, 2);
    assert_int_equal(g->used->ring[0].id, 1);
    assert_int_equal(g->used->ring[0].len, 0);
    assert_int_equal(g->used->ring[1].id, 0);
    assert_int_equal(g->used->ring[1].len, 0);
    assert_int_equal(g->vq.last_avail_idx, 2);
}

static void test_rx_chain_shorter_than_header(void **state)
{
    struct fake_guest *g = *state;
    struct iovec iov[2];
    int n = make_iov(iov, 10);

    post_rx(g, 1, 8);
    assert_int_equal(vhost_net_rx_copy(&g->vq, true, 12, &test_hdr, iov, n, 10),
                     VHOST_NET_RX_BAD_DESC);
    vring_flush(&g->vq);
    assert_int_equal(g->used->idx, 1);
    assert_int_equal(g->used->ring[0].len, 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_tx_header_spans),
        T(test_tx_legacy_header),
        T(test_tx_header_only),
        T(test_tx_too_short),
        T(test_rx_single_chain),
        T(test_rx_legacy_header),
        T(test_rx_too_big),
        T(test_rx_no_buffer),
        T(test_rx_mergeable),
        T(test_rx_mergeable_one_chain),
        T(test_rx_mergeable_not_enough),
        T(test_rx_mergeable_bad_chain),
        T(test_rx_chain_shorter_than_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
