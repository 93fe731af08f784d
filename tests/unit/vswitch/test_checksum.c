/* checksum.c: the Internet checksum and RFC 1624 incremental updates agree
 * with a full recomputation, including the 0x0000/0xffff corner, and the
 * partial (virtio NEEDS_CSUM) pseudo-header form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "l3_testpkt.h"

static void test_rfc1071_example(void **state)
{
    /* RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2 */
    const uint8_t d[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    uint16_t s = (uint16_t)csum_partial(d, sizeof d, 0);
    (void)state;
    assert_int_equal(ntohs(s), 0xddf2);
    /* odd length pads with a zero byte */
    const uint8_t o[] = {0x01};
    assert_int_equal(ntohs((uint16_t)csum_partial(o, 1, 0)), 0x0100);
}

static void test_incremental_matches_full(void **state)
{
    uint8_t ip[20];
    (void)state;
    srand(7);
    for (int i = 0; i < 2000; i++) {
        uint32_t src = (uint32_t)rand() * 2654435761u, dst = (uint32_t)rand();
        uint32_t nsrc = (uint32_t)rand() ^ ((uint32_t)rand() << 16);
        tp_ip(ip, 6, src, dst, 20);
        uint16_t cs, old;
        uint32_t o, n = htonl(nsrc);
        memcpy(&cs, ip + 10, 2);
        memcpy(&o, ip + 12, 4);
        cs = csum_update32(cs, o, n);
        memcpy(ip + 12, &n, 4);
        memcpy(ip + 10, &cs, 2);
        assert_int_equal(ipv4_csum(ip, 20), 0);
        /* 16-bit form on the TTL/proto word */
        memcpy(&old, ip + 8, 2);
        ip[8] = (uint8_t)(rand() & 0xff);
        uint16_t nw;
        memcpy(&nw, ip + 8, 2);
        cs = csum_update16(cs, old, nw);
        memcpy(ip + 10, &cs, 2);
        assert_int_equal(ipv4_csum(ip, 20), 0);
    }
}

static void test_partial_pseudo_header(void **state)
{
    /* a NEEDS_CSUM field holds the pseudo-header sum: after an address
     * change it must equal the sum computed for the new addresses */
    uint8_t ph[12] = {10, 0, 0, 5, 192, 168, 1, 9, 0, 6, 0, 40};
    uint16_t field = (uint16_t)csum_partial(ph, 12, 0), expect;
    uint32_t o, n;
    (void)state;
    memcpy(&o, ph, 4);
    ph[0] = 203;
    ph[1] = 0;
    ph[2] = 113;
    ph[3] = 7;
    memcpy(&n, ph, 4);
    expect = (uint16_t)csum_partial(ph, 12, 0);
    assert_int_equal(csum_partial_update32(field, o, n), expect);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc1071_example),
        cmocka_unit_test(test_incremental_matches_full),
        cmocka_unit_test(test_partial_pseudo_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
