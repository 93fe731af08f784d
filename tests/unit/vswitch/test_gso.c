/* Software TCP segmentation: segment count and sizes, IPv4/IPv6 header
 * fix-ups, sequence numbers, flags, payload order across buffers, and a
 * checksum that verifies once finished. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "gso.h"
#include "parse.h"

static uint8_t frame[70000];

static uint32_t sum(const uint8_t *p, size_t n, uint32_t s)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        s += rd16(p + i);
    if (n & 1)
        s += (uint32_t)p[n - 1] << 8;
    return s;
}

static uint16_t fold(uint32_t s)
{
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)s;
}

/* Ethernet + IPv4 (or IPv6) + TCP with options (32 bytes) + payload. */
static size_t build(bool v6, uint32_t payload, uint8_t flags)
{
    size_t o = 0, l3, l4;
    memset(frame, 0, sizeof(frame));
    memcpy(frame, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01", 12);
    frame[12] = v6 ? 0x86 : 0x08;
    frame[13] = v6 ? 0xdd : 0x00;
    o = l3 = 14;
    if (!v6) {
        frame[o] = 0x45;
        frame[o + 2] = (uint8_t)((20 + 32 + payload) >> 8);
        frame[o + 3] = (uint8_t)(20 + 32 + payload);
        frame[o + 4] = 0x12;
        frame[o + 5] = 0x34;
        frame[o + 8] = 64;
        frame[o + 9] = 6;
        memcpy(frame + o + 12, "\x0a\x00\x00\x01\x0a\x00\x00\x02", 8);
        o += 20;
    } else {
        frame[o] = 0x60;
        frame[o + 4] = (uint8_t)((32 + payload) >> 8);
        frame[o + 5] = (uint8_t)(32 + payload);
        frame[o + 6] = 6;
        frame[o + 7] = 64;
        frame[o + 8 + 15] = 1;
        frame[o + 24 + 15] = 2;
        o += 40;
    }
    l4 = o;
    frame[l4 + 0] = 0x30;
    frame[l4 + 2] = 0x14;
    memcpy(frame + l4 + 4, "\x10\x00\x00\x00", 4); /* seq 0x10000000 */
    frame[l4 + 12] = 8 << 4;                         /* 32-byte header */
    frame[l4 + 13] = flags;
    o = l4 + 32;
    for (uint32_t i = 0; i < payload; i++)
        frame[o + i] = (uint8_t)(i * 13 + 7);
    (void)l3;
    return o + payload;
}

static void check_segments(bool v6)
{
    const uint32_t payload = 3000, mss = 1000;
    size_t len = build(v6, payload, 0x19 /* FIN PSH ACK */);
    size_t l4 = v6 ? 54 : 34, hlen = l4 + 32;
    /* buffers split inside the payload at odd places */
    struct vring_buf b[3] = {{frame, 150}, {frame + 150, 1111}, {frame + 1261, (uint32_t)len - 1261}};
    struct pkt p, *out = gso_scratch();
    uint16_t tci;
    uint8_t got[3000];
    size_t at = 0;
    int n;

    assert_true(pkt_from_bufs(&p, b, 3, (uint32_t)len, &tci));
    memset(&p.vnet, 0, sizeof(p.vnet));
    p.vnet.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    p.vnet.gso_type = v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4;
    p.vnet.gso_size = (uint16_t)mss;
    p.vnet.csum_start = (uint16_t)l4;
    p.vnet.csum_offset = 16;
    n = pkt_gso_segment(&p, out, GSO_SEGS_MAX);
    assert_int_equal(n, 3);
    for (int i = 0; i < n; i++) {
        struct pkt *o = &out[i];
        uint8_t *ip = o->head + 14, *tcp = o->head + l4;
        assert_int_equal(o->len, hlen + mss);
        assert_int_equal(o->vnet.gso_type, VIRTIO_NET_HDR_GSO_NONE);
        if (!v6) {
            assert_int_equal(rd16(ip + 2), 20 + 32 + mss);
            assert_int_equal(rd16(ip + 4), 0x1234 + i);
            assert_int_equal(fold(sum(ip, 20, 0)), 0xffff); /* header checksum valid */
        } else {
            assert_int_equal(rd16(ip + 4), 32 + mss);
        }
        assert_int_equal(rd32(tcp + 4), 0x10000000u + (uint32_t)i * mss);
        /* FIN and PSH only on the last segment */
        assert_int_equal(tcp[13], i + 1 < n ? 0x10 : 0x19);
        /* finish the checksum as an egress without offload would */
        assert_true(pkt_finish_csum(o));
        {
            uint8_t seg[2000];
            size_t k = 0;
            memcpy(seg, o->head, o->head_len);
            k = o->head_len;
            for (unsigned s = 0; s < o->nsegs; s++) {
                memcpy(seg + k, o->segs[s].addr, o->segs[s].len);
                k += o->segs[s].len;
            }
            assert_int_equal(k, o->len);
            uint32_t ps = v6 ? sum(seg + 14 + 8, 32, 0) : sum(seg + 14 + 12, 8, 0);
            ps += 6 + (uint32_t)(o->len - l4);
            assert_int_equal(fold(sum(seg + l4, o->len - l4, ps)), 0xffff);
            memcpy(got + at, seg + hlen, o->len - hlen);
            at += o->len - hlen;
        }
    }
    assert_int_equal(at, payload);
    assert_memory_equal(got, frame + hlen, payload);
}

static void test_tcpv4(void **state)
{
    (void)state;
    check_segments(false);
}

static void test_tcpv6(void **state)
{
    (void)state;
    check_segments(true);
}

static void test_last_segment_short(void **state)
{
    size_t len = build(false, 2500, 0x10);
    struct vring_buf b = {frame, (uint32_t)len};
    struct pkt p, *out = gso_scratch();
    uint16_t tci;
    (void)state;
    assert_true(pkt_from_bufs(&p, &b, 1, (uint32_t)len, &tci));
    memset(&p.vnet, 0, sizeof(p.vnet));
    p.vnet.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
    p.vnet.gso_size = 1448;
    assert_int_equal(pkt_gso_segment(&p, out, GSO_SEGS_MAX), 2);
    assert_int_equal(out[1].len, 14 + 20 + 32 + 2500 - 1448);
}

static void test_refusals(void **state)
{
    size_t len = build(false, 3000, 0x10);
    struct vring_buf b = {frame, (uint32_t)len};
    struct pkt p, *out = gso_scratch();
    uint16_t tci;
    (void)state;
    assert_true(pkt_from_bufs(&p, &b, 1, (uint32_t)len, &tci));
    memset(&p.vnet, 0, sizeof(p.vnet));
    p.vnet.gso_type = VIRTIO_NET_HDR_GSO_UDP;
    p.vnet.gso_size = 1000;
    assert_int_equal(pkt_gso_segment(&p, out, GSO_SEGS_MAX), -1);
    p.vnet.gso_type = VIRTIO_NET_HDR_GSO_TCPV6; /* but the frame is IPv4 */
    assert_int_equal(pkt_gso_segment(&p, out, GSO_SEGS_MAX), -1);
    p.vnet.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
    p.vnet.gso_size = 0;
    assert_int_equal(pkt_gso_segment(&p, out, GSO_SEGS_MAX), -1);
    p.vnet.gso_size = 10; /* 300 segments: more than allowed */
    assert_int_equal(pkt_gso_segment(&p, out, GSO_SEGS_MAX), -1);
    p.vnet.gso_size = 1000;
    p.head[14 + 9] = 17; /* not TCP */
    assert_int_equal(pkt_gso_segment(&p, out, GSO_SEGS_MAX), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcpv4),
        cmocka_unit_test(test_tcpv6),
        cmocka_unit_test(test_last_segment_short),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
