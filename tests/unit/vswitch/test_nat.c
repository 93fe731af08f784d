/* nat.c and the IPv4 validation of l3.c: malformed and truncated IPv4/TCP/UDP/
 * ICMP are refused with their reason and never read past the frame; rewrites
 * keep every checksum valid (full, UDP zero, virtio NEEDS_CSUM partial); ICMP
 * errors about a tracked connection are translated, inner header included;
 * errors about nothing are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <urcu-qsbr.h>

#include "drop.h"
#include "l3_testpkt.h"

static void test_parse_malformed(void **state)
{
    struct pkt p, q;
    (void)state;
    for (int proto = 0; proto < 3; proto++) {
        uint8_t pr = (uint8_t[]){6, 17, 1}[proto];
        tp_build(&p, pr, IP4(10, 0, 0, 5), 1025, IP4(1, 1, 1, 1), 80, 10);
        q = p;
        assert_int_equal(l3_parse_ipv4(&q), -1);
        assert_int_equal(q.l4_ofs, 34);
        /* every truncation of the frame is refused, with the IP length past it */
        for (unsigned k = 0; k < p.len; k++) {
            q = p;
            q.len = q.head_len = (uint16_t)k;
            assert_true(l3_parse_ipv4(&q) >= 0);
        }
        /* and an IP length that leaves the L4 header short */
        q = p;
        q.head[14 + 3] = 20 + 4;
        q.head[14 + 10] = q.head[14 + 11] = 0;
        uint16_t cs = ipv4_csum(q.head + 14, 20);
        memcpy(q.head + 24, &cs, 2);
        assert_int_equal(l3_parse_ipv4(&q), DROP_L4_TRUNCATED);
    }
    tp_build(&p, 6, IP4(10, 0, 0, 5), 1, IP4(1, 1, 1, 1), 2, 0);
    q = p;
    q.head[14] = 0x65; /* version 6 */
    assert_int_equal(l3_parse_ipv4(&q), DROP_IP_INVALID);
    q = p;
    q.head[14] = 0x44; /* IHL 4 */
    assert_int_equal(l3_parse_ipv4(&q), DROP_IP_INVALID);
    q = p;
    q.head[14 + 8] = 3; /* TTL changed, checksum not */
    assert_int_equal(l3_parse_ipv4(&q), DROP_IP_CHECKSUM);
    q = p;
    q.head[34 + 12] = 0x40; /* data offset 4 */
    assert_int_equal(l3_parse_ipv4(&q), DROP_L4_TRUNCATED);
    const uint8_t odd[] = {0x03, 0x06, 0x00, 0x3f, 0x01, 0x29};
    for (size_t i = 0; i < sizeof odd; i++) {
        q = p;
        q.head[34 + 13] = odd[i];
        assert_int_equal(l3_parse_ipv4(&q), DROP_TCP_BAD_FLAGS);
    }
    tp_build(&p, 17, IP4(10, 0, 0, 5), 1, IP4(1, 1, 1, 1), 2, 0);
    p.head[34 + 5] = 4; /* UDP length 4 */
    assert_int_equal(l3_parse_ipv4(&p), DROP_L4_TRUNCATED);
    /* a later fragment: valid, but no L4 header */
    tp_build(&p, 17, IP4(10, 0, 0, 5), 1, IP4(1, 1, 1, 1), 2, 0);
    p.head[14 + 7] = 10;
    p.head[24] = p.head[25] = 0;
    uint16_t cs = ipv4_csum(p.head + 14, 20);
    memcpy(p.head + 24, &cs, 2);
    assert_int_equal(l3_parse_ipv4(&p), -1);
    assert_int_equal(p.l4_ofs, 0);
}

static void check_valid(struct pkt *p)
{
    uint8_t *ip = p->head + 14;
    assert_int_equal(ipv4_csum(ip, 20), 0);
    assert_int_equal(tp_l4_verify(ip, p->len - 34u), 0);
}

static void test_rewrite_checksums(void **state)
{
    struct pkt p;
    struct ct_tuple from, to;
    uint8_t fl;
    (void)state;
    for (int proto = 0; proto < 3; proto++) {
        uint8_t pr = (uint8_t[]){6, 17, 1}[proto];
        tp_build(&p, pr, IP4(10, 0, 0, 5), 1025, IP4(1, 1, 1, 1), 80, 33);
        assert_int_equal(l3_parse_ipv4(&p), -1);
        assert_true(nat_tuple(&p, &from, &fl));
        to = from;
        to.src = IP4(192, 168, 77, 2);
        to.sport = 40000;
        if (pr == 1)
            to.dport = 40000;
        nat_rewrite(&p, &from, &to);
        check_valid(&p);
        assert_true(nat_tuple(&p, &from, &fl));
        assert_int_equal(from.src, IP4(192, 168, 77, 2));
        assert_int_equal(from.sport, 40000);
    }
    /* UDP without a checksum stays without one */
    tp_build(&p, 17, IP4(10, 0, 0, 5), 1025, IP4(1, 1, 1, 1), 53, 5);
    p.head[34 + 6] = p.head[34 + 7] = 0;
    assert_int_equal(l3_parse_ipv4(&p), -1);
    nat_tuple(&p, &from, &fl);
    to = from;
    to.src = IP4(192, 168, 77, 2);
    nat_rewrite(&p, &from, &to);
    assert_int_equal(p.head[40] | p.head[41], 0);
    assert_int_equal(ipv4_csum(p.head + 14, 20), 0);
}

static void test_rewrite_needs_csum(void **state)
{
    struct pkt p;
    struct ct_tuple from, to;
    uint8_t fl, ph[12];
    unsigned l4len = 20 + 60;
    (void)state;
    tp_build(&p, 6, IP4(10, 0, 0, 5), 1025, IP4(1, 1, 1, 1), 80, 60);
    /* what a guest that offloads puts there: the pseudo-header sum only */
    memcpy(ph, p.head + 26, 8);
    ph[8] = 0;
    ph[9] = 6;
    ph[10] = 0;
    ph[11] = (uint8_t)l4len;
    uint16_t part = (uint16_t)csum_partial(ph, 12, 0);
    memcpy(p.head + 34 + 16, &part, 2);
    p.vnet.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    p.vnet.csum_start = 34;
    p.vnet.csum_offset = 16;
    assert_int_equal(l3_parse_ipv4(&p), -1);
    nat_tuple(&p, &from, &fl);
    to = from;
    to.src = IP4(192, 168, 77, 2);
    to.sport = 50000;
    nat_rewrite(&p, &from, &to);
    /* the device completes it: sum from csum_start, complemented */
    uint16_t done = csum_fold(csum_partial(p.head + 34, l4len, 0));
    memcpy(p.head + 34 + 16, &done, 2);
    check_valid(&p);
}

/* Found by fuzz_nat: an ICMP message that becomes all zeros (echo reply with
 * identifier 0, sequence 0, no data) verifies only with checksum 0xffff,
 * which the incremental update (RFC 1624 eqn. 3) never gives. */
static void test_icmp_all_zero_checksum(void **state)
{
    struct pkt p;
    struct ct_tuple from, to;
    uint8_t fl;
    (void)state;
    tp_build(&p, 1, IP4(10, 0, 0, 5), 0, IP4(10, 0, 0, 1), 0, 0);
    assert_int_equal(l3_parse_ipv4(&p), -1);
    assert_true(icmp_echo_reply_in_place(&p));
    check_valid(&p);
    /* a reply from outside whose identifier goes back to 0 */
    tp_build(&p, 1, IP4(1, 1, 1, 1), 5000, IP4(192, 168, 77, 2), 0, 0);
    p.head[34] = 0;
    tp_l4_fill_csum(p.head + 14, 8);
    assert_int_equal(l3_parse_ipv4(&p), -1);
    assert_true(nat_tuple(&p, &from, &fl));
    to = from;
    to.dst = IP4(10, 0, 0, 5);
    to.sport = to.dport = 0;
    nat_rewrite(&p, &from, &to);
    check_valid(&p);
    /* and a checksum of 0x0000 that is right stays */
    tp_build(&p, 1, IP4(1, 1, 1, 1), 0xf7ff, IP4(192, 168, 77, 2), 0, 0);
    assert_int_equal(l3_parse_ipv4(&p), -1);
    assert_int_equal(p.head[36] | p.head[37], 0);
    icmp_csum_fix_zero(&p);
    assert_int_equal(p.head[36] | p.head[37], 0);
}

static void set_ttl_frag(struct pkt *p, uint8_t ttl, uint16_t frag)
{
    uint8_t *ip = p->head + 14;
    uint16_t cs;
    ip[6] = (uint8_t)(frag >> 8);
    ip[7] = (uint8_t)frag;
    ip[8] = ttl;
    ip[10] = ip[11] = 0;
    cs = ipv4_csum(ip, 20);
    memcpy(ip + 10, &cs, 2);
}

/* The gateway's time exceeded: back to the sender's MAC and address, from the
 * gateway's, the datagram quoted, both checksums valid; none about an ICMP
 * error, a later fragment or a multicast or zero source. */
static void test_icmp_time_exceeded(void **state)
{
    static const uint8_t gw[6] = {0x02, 0x76, 0, 0, 0, 1};
    uint8_t buf[L3_BUF_SIZE];
    struct pkt p;
    size_t n;
    (void)state;

    tp_build(&p, 17, IP4(10, 0, 0, 5), 33434, IP4(192, 168, 77, 1), 33435, 40);
    set_ttl_frag(&p, 1, 0);
    assert_int_equal(l3_parse_ipv4(&p), -1);
    n = icmp_error_build(&p, 11, 0, gw, IP4(10, 0, 0, 1), buf, sizeof buf);
    assert_int_equal(n, 14 + 20 + 8 + 20 + 8 + 40);
    assert_memory_equal(buf, p.head + 6, 6);
    assert_memory_equal(buf + 6, gw, 6);
    assert_int_equal(buf[12] << 8 | buf[13], 0x0800);
    assert_int_equal(ipv4_csum(buf + 14, 20), 0);
    assert_int_equal(buf[14 + 2] << 8 | buf[14 + 3], n - 14);
    assert_int_equal(buf[14 + 9], 1);
    assert_int_equal(rd32(buf + 14 + 12), IP4(10, 0, 0, 1));
    assert_int_equal(rd32(buf + 14 + 16), IP4(10, 0, 0, 5));
    assert_int_equal(buf[34], 11);
    assert_int_equal(buf[35], 0);
    assert_int_equal(csum_fold(csum_partial(buf + 34, n - 34, 0)), 0);
    assert_memory_equal(buf + 42, p.head + 14, 20 + 8 + 40);
    assert_int_equal(icmp_error_build(&p, 11, 0, gw, IP4(10, 0, 0, 1), buf, 100), 0);

    /* an echo request gets one; an ICMP error does not */
    tp_build(&p, 1, IP4(10, 0, 0, 5), 7, IP4(192, 168, 77, 1), 0, 8);
    set_ttl_frag(&p, 1, 0);
    assert_int_equal(l3_parse_ipv4(&p), -1);
    assert_int_not_equal(icmp_error_build(&p, 11, 0, gw, IP4(10, 0, 0, 1), buf, sizeof buf), 0);
    p.head[34] = 3;
    tp_l4_fill_csum(p.head + 14, 16);
    assert_int_equal(l3_parse_ipv4(&p), -1);
    assert_int_equal(icmp_error_build(&p, 11, 0, gw, IP4(10, 0, 0, 1), buf, sizeof buf), 0);

    /* a later fragment, a multicast source MAC, a zero source address */
    tp_build(&p, 17, IP4(10, 0, 0, 5), 1, IP4(192, 168, 77, 1), 2, 8);
    set_ttl_frag(&p, 1, 0x0010);
    assert_int_equal(l3_parse_ipv4(&p), -1);
    assert_int_equal(icmp_error_build(&p, 11, 0, gw, IP4(10, 0, 0, 1), buf, sizeof buf), 0);
    tp_build(&p, 17, IP4(10, 0, 0, 5), 1, IP4(192, 168, 77, 1), 2, 8);
    set_ttl_frag(&p, 1, 0);
    p.head[6] |= 1;
    assert_int_equal(l3_parse_ipv4(&p), -1);
    assert_int_equal(icmp_error_build(&p, 11, 0, gw, IP4(10, 0, 0, 1), buf, sizeof buf), 0);
    tp_build(&p, 17, 0, 68, IP4(192, 168, 77, 1), 67, 8);
    set_ttl_frag(&p, 1, 0);
    assert_int_equal(l3_parse_ipv4(&p), -1);
    assert_int_equal(icmp_error_build(&p, 11, 0, gw, IP4(10, 0, 0, 1), buf, sizeof buf), 0);
}

/* ICMP port unreachable from `from` about the UDP datagram (src:sport ->
 * dst:dport) it was sent, to `to` */
static void build_icmp_error(struct pkt *p, uint32_t from, uint32_t to, uint32_t src,
                             uint16_t sport, uint32_t dst, uint16_t dport)
{
    struct pkt inner;
    tp_build(&inner, 17, src, sport, dst, dport, 4);
    unsigned ilen = inner.len - 14u; /* 32 */
    memset(p, 0, sizeof *p);
    memcpy(p->head, inner.head, 14);
    uint8_t *ip = p->head + 14, *ic = ip + 20;
    memset(ic, 0, 8);
    ic[0] = 3;
    ic[1] = 3;
    memcpy(ic + 8, inner.head + 14, ilen);
    tp_ip(ip, 1, from, to, 8 + ilen);
    uint16_t cs = csum_fold(csum_partial(ic, 8 + ilen, 0));
    memcpy(ic + 2, &cs, 2);
    p->len = p->head_len = (uint16_t)(14 + 20 + 8 + ilen);
    p->ethertype = ETH_TYPE_IP;
}

static void test_icmp_error_translation(void **state)
{
    struct ct_table *t = ct_create(1024, 65535);
    struct l3_net_state owner;
    struct ct_tuple k = {.src = IP4(10, 0, 0, 5), .sport = 1025, .dst = IP4(1, 1, 1, 1),
                         .dport = 53, .proto = 17};
    struct ct_tuple r = {.src = IP4(1, 1, 1, 1), .sport = 53, .dst = IP4(192, 168, 77, 2),
                         .proto = 17};
    struct pkt p;
    int why, dir;
    uint64_t busy[1024] = {0};
    (void)state;
    memset(&owner, 0, sizeof owner);
    busy[1025 / 64] |= 1ull << (1025 % 64); /* forwarded: not to be preserved */
    assert_non_null(ct_create_conn(t, &owner, 10, &k, &r, true, busy, 5, &why, &dir));
    assert_int_not_equal(r.dport, 1025);

    /* from the remote itself, and from a router on the way */
    for (int hop = 0; hop < 2; hop++) {
        uint32_t from = hop ? IP4(172, 16, 0, 1) : IP4(1, 1, 1, 1);
        build_icmp_error(&p, from, IP4(192, 168, 77, 2), IP4(192, 168, 77, 2), r.dport,
                         IP4(1, 1, 1, 1), 53);
        assert_int_equal(l3_parse_ipv4(&p), -1);
        assert_int_equal(nat_icmp_error(t, &p), -1);
        uint8_t *ip = p.head + 14, *ic = ip + 20, *in = ic + 8;
        assert_int_equal(ipv4_csum(ip, 20), 0);
        assert_int_equal(csum_fold(csum_partial(ic, p.len - 34u, 0)), 0);
        assert_int_equal(ipv4_csum(in, 20), 0);
        assert_int_equal(tp_l4_verify(in, 12), 0);
        assert_int_equal(rd32(ip + 16), IP4(10, 0, 0, 5)); /* outer dst */
        assert_int_equal(rd32(ip + 12), from);              /* untouched */
        assert_int_equal(rd32(in + 12), IP4(10, 0, 0, 5));  /* inner src */
        assert_int_equal(in[20] << 8 | in[21], 1025);                       /* inner sport */
    }
    /* about no connection */
    build_icmp_error(&p, IP4(1, 1, 1, 1), IP4(192, 168, 77, 2), IP4(192, 168, 77, 2), 999,
                     IP4(1, 1, 1, 1), 53);
    assert_int_equal(l3_parse_ipv4(&p), -1);
    assert_int_equal(nat_icmp_error(t, &p), DROP_ICMP_INVALID);
    /* embedded header cut short */
    build_icmp_error(&p, IP4(1, 1, 1, 1), IP4(192, 168, 77, 2), IP4(192, 168, 77, 2),
                     r.dport, IP4(1, 1, 1, 1), 53);
    p.len = p.head_len = 14 + 20 + 8 + 20 + 4;
    assert_int_equal(nat_icmp_error(t, &p), DROP_ICMP_INVALID);
    /* found by fuzz_nat: cut short by the IP length, the frame padded out to
     * the whole header. What follows the IP length is not covered by the
     * ICMP checksum: translating it broke the checksum. */
    build_icmp_error(&p, IP4(1, 1, 1, 1), IP4(192, 168, 77, 2), IP4(192, 168, 77, 2),
                     r.dport, IP4(1, 1, 1, 1), 53);
    {
        uint8_t *ip = p.head + 14, *ic = ip + 20;
        unsigned icmp_len = 8 + 20 + 6;
        uint16_t cs;
        ip[2] = 0;
        ip[3] = (uint8_t)(20 + icmp_len);
        ip[10] = ip[11] = 0;
        cs = ipv4_csum(ip, 20);
        memcpy(ip + 10, &cs, 2);
        ic[2] = ic[3] = 0;
        cs = csum_fold(csum_partial(ic, icmp_len, 0));
        memcpy(ic + 2, &cs, 2);
        assert_int_equal(l3_parse_ipv4(&p), -1);
        assert_int_equal(nat_icmp_error(t, &p), DROP_ICMP_INVALID);
        assert_int_equal(csum_fold(csum_partial(ic, icmp_len, 0)), 0);
    }
    ct_destroy(t);
}

int main(void)
{
    rcu_register_thread();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_malformed),
        cmocka_unit_test(test_rewrite_checksums),
        cmocka_unit_test(test_rewrite_needs_csum),
        cmocka_unit_test(test_icmp_error_translation),
        cmocka_unit_test(test_icmp_all_zero_checksum),
        cmocka_unit_test(test_icmp_time_exceeded),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    rcu_unregister_thread();
    return r;
}
