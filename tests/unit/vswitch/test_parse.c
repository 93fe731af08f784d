/* Parse stage and offload helpers: building a head from scattered buffers,
 * stripping the 802.1Q tag, L3/L4 offsets of truncated or bogus headers,
 * software checksum, offload fields across tag removal and insertion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "parse.h"

static size_t make_udp(uint8_t *f, bool tagged, size_t payload)
{
    size_t o = 0;
    memcpy(f, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01", 12);
    o = 12;
    if (tagged) {
        memcpy(f + o, "\x81\x00\x20\x0a", 4); /* PCP 1, VID 10 */
        o += 4;
    }
    memcpy(f + o, "\x08\x00", 2);
    o += 2;
    uint8_t *ip = f + o;
    memset(ip, 0, 20);
    ip[0] = 0x45;
    ip[2] = (uint8_t)((20 + 8 + payload) >> 8);
    ip[3] = (uint8_t)(20 + 8 + payload);
    ip[8] = 64;
    ip[9] = 17;
    memcpy(ip + 12, "\x0a\x00\x00\x01\x0a\x00\x00\x02", 8);
    o += 20;
    uint8_t *udp = f + o;
    udp[0] = 0x30;
    udp[1] = 0x39;
    udp[2] = 0x00;
    udp[3] = 0x35;
    udp[4] = (uint8_t)((8 + payload) >> 8);
    udp[5] = (uint8_t)(8 + payload);
    udp[6] = udp[7] = 0;
    o += 8;
    for (size_t i = 0; i < payload; i++)
        f[o + i] = (uint8_t)(i * 7);
    return o + payload;
}

static void test_untagged_single_buf(void **state)
{
    uint8_t f[256];
    size_t len = make_udp(f, false, 100);
    struct vring_buf b = {f, (uint32_t)len};
    struct pkt p;
    uint16_t tci = 99;
    (void)state;
    assert_true(pkt_from_bufs(&p, &b, 1, (uint32_t)len, &tci));
    assert_int_equal(tci, 0);
    assert_int_equal(p.len, len);
    assert_int_equal(p.head_len, PKT_HEAD_MAX);
    assert_int_equal(p.nsegs, 1);
    assert_ptr_equal(p.segs[0].addr, f + PKT_HEAD_MAX);
    assert_int_equal(p.segs[0].len, len - PKT_HEAD_MAX);
    assert_int_equal(p.ethertype, ETH_TYPE_IP);
    pkt_parse_l3(&p);
    assert_int_equal(p.l3_ofs, 14);
    assert_int_equal(p.l4_ofs, 34);
    assert_int_equal(p.l4_proto, 17);
}

static void test_tagged_scattered(void **state)
{
    uint8_t f[256];
    size_t len = make_udp(f, true, 20);
    /* split at awkward places: inside the MACs and inside the tag */
    struct vring_buf b[3] = {{f, 5}, {f + 5, 9}, {f + 14, (uint32_t)len - 14}};
    struct pkt p;
    uint16_t tci;
    (void)state;
    assert_true(pkt_from_bufs(&p, b, 3, (uint32_t)len, &tci));
    assert_int_equal(tci, 0x200a);
    assert_int_equal(p.len, len - 4);
    assert_int_equal(p.head_len, len - 4);
    assert_int_equal(p.nsegs, 0);
    assert_int_equal(p.ethertype, ETH_TYPE_IP);
    assert_memory_equal(p.head, f, 12);
    assert_memory_equal(p.head + 12, f + 16, len - 16);
}

static void test_runts(void **state)
{
    uint8_t f[64] = {0};
    struct vring_buf b = {f, 13};
    struct pkt p;
    uint16_t tci;
    (void)state;
    assert_false(pkt_from_bufs(&p, &b, 1, 13, &tci));
    /* a tag with nothing after it */
    f[12] = 0x81;
    f[13] = 0x00;
    b.len = 16;
    assert_false(pkt_from_bufs(&p, &b, 1, 16, &tci));
}

static void test_l3_bogus(void **state)
{
    uint8_t f[256];
    size_t len = make_udp(f, false, 10);
    struct vring_buf b = {f, (uint32_t)len};
    struct pkt p;
    uint16_t tci;
    (void)state;
    /* IHL below 5 */
    f[14] = 0x44;
    assert_true(pkt_from_bufs(&p, &b, 1, (uint32_t)len, &tci));
    pkt_parse_l3(&p);
    assert_int_equal(p.l3_ofs, 0);
    /* total length beyond the frame */
    f[14] = 0x45;
    f[16] = 0x10;
    assert_true(pkt_from_bufs(&p, &b, 1, (uint32_t)len, &tci));
    pkt_parse_l3(&p);
    assert_int_equal(p.l3_ofs, 0);
    /* truncated IPv4 header */
    f[16] = 0;
    b.len = 20;
    assert_true(pkt_from_bufs(&p, &b, 1, 20, &tci));
    pkt_parse_l3(&p);
    assert_int_equal(p.l3_ofs, 0);
    /* a later fragment has no L4 header */
    len = make_udp(f, false, 10);
    b.len = (uint32_t)len;
    f[14 + 6] = 0x00;
    f[14 + 7] = 0x10;
    assert_true(pkt_from_bufs(&p, &b, 1, (uint32_t)len, &tci));
    pkt_parse_l3(&p);
    assert_int_equal(p.l3_ofs, 14);
    assert_int_equal(p.l4_ofs, 0);
}

static uint16_t ref_csum(const uint8_t *d, size_t n, uint32_t sum)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += (uint32_t)(d[i] << 8 | d[i + 1]);
    if (n & 1)
        sum += (uint32_t)d[n - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static void test_sw_checksum(void **state)
{
    uint8_t f[512], copy[512];
    size_t len = make_udp(f, false, 301); /* odd length, spills into segments */
    struct pkt p;
    uint16_t tci;
    /* split so a segment boundary falls on an odd offset */
    struct vring_buf b[2] = {{f, 141}, {f + 141, (uint32_t)len - 141}};
    (void)state;
    memcpy(copy, f, len);
    assert_true(pkt_from_bufs(&p, b, 2, (uint32_t)len, &tci));
    p.vnet.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    p.vnet.csum_start = 34;
    p.vnet.csum_offset = 6;
    assert_true(pkt_finish_csum(&p));
    assert_int_equal(p.vnet.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM, 0);
    uint16_t got = (uint16_t)(p.head[40] << 8 | p.head[41]);
    uint16_t want = ref_csum(copy + 34, len - 34, 0);
    assert_int_equal(got, want == 0 ? 0xffff : want);
    /* a request outside the head is refused */
    p.vnet.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    p.vnet.csum_start = 300;
    assert_false(pkt_finish_csum(&p));
}

static void test_offload_tag_adjust(void **state)
{
    struct pkt p;
    struct virtio_net_hdr h;
    (void)state;
    memset(&p, 0, sizeof(p));
    p.len = 1000;
    p.vnet.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    p.vnet.csum_start = 38; /* tagged frame: 14 + 4 + 20 */
    p.vnet.csum_offset = 16;
    p.vnet.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
    p.vnet.gso_size = 1448;
    p.vnet.hdr_len = 58;
    assert_true(pkt_vnet_untag(&p, 0x000a));
    assert_int_equal(p.vnet.csum_start, 34);
    assert_int_equal(p.vnet.hdr_len, 54);
    pkt_vnet_for_egress(&p, 20, &h);
    assert_int_equal(h.csum_start, 38);
    assert_int_equal(h.hdr_len, 58);
    pkt_vnet_for_egress(&p, 0, &h);
    assert_int_equal(h.csum_start, 34);
    /* csum request into the tag, or past the frame, or GSO without csum */
    p.vnet.csum_start = 14;
    assert_false(pkt_vnet_untag(&p, 0x000a));
    p.vnet.csum_start = 990;
    assert_false(pkt_vnet_untag(&p, 0));
    p.vnet.csum_start = 34;
    p.vnet.flags = 0;
    assert_false(pkt_vnet_untag(&p, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_untagged_single_buf),
        cmocka_unit_test(test_tagged_scattered),
        cmocka_unit_test(test_runts),
        cmocka_unit_test(test_l3_bogus),
        cmocka_unit_test(test_sw_checksum),
        cmocka_unit_test(test_offload_tag_adjust),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
