/* arp.c: replies in place for the gateway's address only, malformed ARP is
 * flagged, requests are well formed, the neighbour table learns and looks up
 * (and a slot reused by another address does not answer for the old one). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "l3_testpkt.h"

static const uint8_t gw_mac[6] = {0x02, 0x76, 1, 2, 3, 4};
static const uint8_t host_mac[6] = {0x52, 0x54, 0, 0, 0, 9};

static void make_request(struct pkt *p, uint32_t sender, uint32_t target)
{
    memset(p, 0, sizeof *p);
    arp_build_request(p, host_mac, sender, target);
}

static void test_reply_for_gateway(void **state)
{
    struct pkt p;
    bool bad;
    uint32_t ip;
    uint8_t mac[6];
    (void)state;
    make_request(&p, IP4(10, 0, 0, 5), IP4(10, 0, 0, 1));
    assert_true(arp_sender(&p, &ip, mac));
    assert_int_equal(ip, IP4(10, 0, 0, 5));
    assert_memory_equal(mac, host_mac, 6);
    assert_true(arp_reply_in_place(&p, gw_mac, IP4(10, 0, 0, 1), &bad));
    assert_false(bad);
    assert_memory_equal(p.head, host_mac, 6);          /* to the asker */
    assert_memory_equal(p.head + 6, gw_mac, 6);
    assert_int_equal(p.head[21], 2);                   /* op reply */
    assert_memory_equal(p.head + 22, gw_mac, 6);       /* sender = us */
    assert_memory_equal(p.head + 32, host_mac, 6);     /* target = asker */
    assert_true(arp_sender(&p, &ip, mac));
    assert_int_equal(ip, IP4(10, 0, 0, 1));
    assert_int_equal(p.len, 42);
}

static void test_not_for_us_or_bad(void **state)
{
    struct pkt p;
    bool bad;
    (void)state;
    make_request(&p, IP4(10, 0, 0, 5), IP4(10, 0, 0, 7));
    assert_false(arp_reply_in_place(&p, gw_mac, IP4(10, 0, 0, 1), &bad));
    assert_false(bad);
    make_request(&p, IP4(10, 0, 0, 5), IP4(10, 0, 0, 1));
    p.head[19] = 16; /* hlen 16: not Ethernet/IPv4 */
    assert_false(arp_reply_in_place(&p, gw_mac, IP4(10, 0, 0, 1), &bad));
    assert_true(bad);
    make_request(&p, IP4(10, 0, 0, 5), IP4(10, 0, 0, 1));
    p.len = p.head_len = 30; /* truncated */
    assert_false(arp_reply_in_place(&p, gw_mac, IP4(10, 0, 0, 1), &bad));
    assert_true(bad);
}

static void test_neighbours(void **state)
{
    static struct neigh_table t;
    uint8_t mac[6], m2[6] = {0x52, 0x54, 0, 0, 0, 0x10};
    (void)state;
    memset(&t, 0, sizeof t);
    assert_false(neigh_lookup(&t, IP4(10, 0, 0, 5), mac));
    neigh_learn(&t, IP4(10, 0, 0, 5), host_mac, 100);
    assert_true(neigh_lookup(&t, IP4(10, 0, 0, 5), mac));
    assert_memory_equal(mac, host_mac, 6);
    neigh_learn(&t, IP4(10, 0, 0, 5), m2, 101); /* moved */
    assert_true(neigh_lookup(&t, IP4(10, 0, 0, 5), mac));
    assert_memory_equal(mac, m2, 6);
    /* find an address sharing the slot: the old one no longer answers */
    for (uint32_t ip = IP4(10, 0, 1, 0);; ip++) {
        neigh_learn(&t, ip, host_mac, 102);
        if (!neigh_lookup(&t, IP4(10, 0, 0, 5), mac))
            break;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_for_gateway),
        cmocka_unit_test(test_not_for_us_or_bad),
        cmocka_unit_test(test_neighbours),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
