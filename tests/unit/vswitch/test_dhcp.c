/* dhcp.c: message parsing (good, truncated, bad options, wrong magic) and
 * the server's decisions: offer from the range, the requested address, a
 * reservation, ACK/NAK, another server chosen, RELEASE, DECLINE, exhaustion,
 * INIT-REBOOT after the lease table was lost; and the reply frame. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "l3_testpkt.h"

static size_t msg(uint8_t *b, uint8_t type, const uint8_t mac[6], uint32_t requested,
                  uint32_t server, uint32_t ciaddr)
{
    size_t o;
    uint32_t x;
    memset(b, 0, 400);
    b[0] = 1;
    b[1] = 1;
    b[2] = 6;
    memcpy(b + 4, "\x12\x34\x56\x78", 4);
    x = htonl(ciaddr);
    memcpy(b + 12, &x, 4);
    memcpy(b + 28, mac, 6);
    memcpy(b + 236, "\x63\x82\x53\x63", 4);
    o = 240;
    b[o++] = 53;
    b[o++] = 1;
    b[o++] = type;
    if (requested) {
        b[o++] = 50;
        b[o++] = 4;
        x = htonl(requested);
        memcpy(b + o, &x, 4);
        o += 4;
    }
    if (server) {
        b[o++] = 54;
        b[o++] = 4;
        x = htonl(server);
        memcpy(b + o, &x, 4);
        o += 4;
    }
    b[o++] = 12;
    b[o++] = 3;
    memcpy(b + o, "vm1", 3);
    o += 3;
    b[o++] = 255;
    return o;
}

static struct conf_net net;
static struct l3_net_state st;
static const uint8_t m1[6] = {0x52, 0x54, 0, 0, 0, 1}, m2[6] = {0x52, 0x54, 0, 0, 0, 2},
                     m3[6] = {0x52, 0x54, 0, 0, 0, 3};

static int setup(void **state)
{
    (void)state;
    memset(&net, 0, sizeof net);
    memset(&st, 0, sizeof st);
    net.subnet = IP4(10, 0, 0, 0);
    net.plen = 24;
    net.gateway = IP4(10, 0, 0, 1);
    net.dhcp = true;
    net.dhcp_first = IP4(10, 0, 0, 100);
    net.dhcp_last = IP4(10, 0, 0, 101);
    net.lease = 3600;
    return 0;
}

static struct dhcp_answer ask(uint8_t type, const uint8_t *mac, uint32_t req, uint32_t srv,
                              uint32_t ci, int64_t now)
{
    uint8_t b[400];
    struct dhcp_msg m;
    size_t n = msg(b, type, mac, req, srv, ci);
    assert_true(dhcp_parse(b, n, &m));
    return dhcp_decide(&st, &net, &m, now);
}

static void test_parse(void **state)
{
    uint8_t b[400];
    struct dhcp_msg m;
    size_t n = msg(b, 1, m1, IP4(10, 0, 0, 7), 0, 0);
    (void)state;
    assert_true(dhcp_parse(b, n, &m));
    assert_int_equal(m.type, 1);
    assert_int_equal(m.requested, IP4(10, 0, 0, 7));
    assert_int_equal(m.xid, 0x12345678);
    assert_memory_equal(m.chaddr, m1, 6);
    assert_string_equal(m.hostname, "vm1");
    /* every truncation is refused or parsed within bounds, never read past */
    for (size_t k = 0; k < n; k++) {
        uint8_t *c = malloc(k ? k : 1);
        memcpy(c, b, k);
        bool ok = dhcp_parse(c, k, &m);
        assert_true(!ok || k >= 243);
        free(c);
    }
    b[236] = 0; /* magic */
    assert_false(dhcp_parse(b, n, &m));
    msg(b, 1, m1, 0, 0, 0);
    b[241] = 4; /* option 53 with length 4 */
    assert_false(dhcp_parse(b, n, &m));
    msg(b, 1, m1, 0, 0, 0);
    b[0] = 2; /* a reply */
    assert_false(dhcp_parse(b, n, &m));
    msg(b, 1, m1, 0, 0, 0);
    b[244] = 200; /* hostname longer than the message */
    assert_false(dhcp_parse(b, n, &m));
}

static void test_discover_request_ack(void **state)
{
    struct dhcp_answer a;
    (void)state;
    a = ask(1, m1, 0, 0, 0, 1000);
    assert_int_equal(a.type, 2);
    assert_int_equal(a.yiaddr, IP4(10, 0, 0, 100));
    a = ask(3, m1, IP4(10, 0, 0, 100), IP4(10, 0, 0, 1), 0, 1001);
    assert_int_equal(a.type, 5);
    assert_int_equal(st.leases[0].state, LEASE_BOUND);
    assert_int_equal(st.leases[0].expires, 1001 + 3600);
    assert_true(st.leases_dirty);
    /* the same client asks again: same address */
    a = ask(1, m1, 0, 0, 0, 1002);
    assert_int_equal(a.yiaddr, IP4(10, 0, 0, 100));
    /* another client gets the other one, then the range is exhausted */
    a = ask(1, m2, IP4(10, 0, 0, 100), 0, 0, 1003);
    assert_int_equal(a.yiaddr, IP4(10, 0, 0, 101));
    a = ask(3, m2, IP4(10, 0, 0, 101), IP4(10, 0, 0, 1), 0, 1003);
    assert_int_equal(a.type, 5);
    a = ask(1, m3, 0, 0, 0, 1004);
    assert_int_equal(a.type, 0); /* silence */
    /* m3 asks for m1's address: NAK */
    a = ask(3, m3, IP4(10, 0, 0, 100), IP4(10, 0, 0, 1), 0, 1004);
    assert_int_equal(a.type, 6);
    /* m1 releases: m3 can have it */
    a = ask(7, m1, 0, 0, IP4(10, 0, 0, 100), 1005);
    assert_int_equal(a.type, 0);
    a = ask(1, m3, 0, 0, 0, 1006);
    assert_int_equal(a.yiaddr, IP4(10, 0, 0, 100));
    /* leases that expired are reused */
    a = ask(1, m1, 0, 0, 0, 1003 + 3600 + 1);
    assert_int_equal(a.type, 2);
}

static void test_reservation_other_server_decline(void **state)
{
    struct dhcp_answer a;
    (void)state;
    net.n_reserve = 1;
    memcpy(net.reserve[0].mac, m2, 6);
    net.reserve[0].ip = IP4(10, 0, 0, 50);
    a = ask(1, m2, 0, 0, 0, 10);
    assert_int_equal(a.yiaddr, IP4(10, 0, 0, 50));
    /* nobody else is offered a reserved address even if asking for it */
    a = ask(1, m1, IP4(10, 0, 0, 50), 0, 0, 10);
    assert_int_equal(a.yiaddr, IP4(10, 0, 0, 100));
    /* m1 took another server's offer: ours is released */
    a = ask(3, m1, IP4(10, 0, 0, 100), IP4(10, 0, 0, 254), 0, 11);
    assert_int_equal(a.type, 0);
    a = ask(1, m3, 0, 0, 0, 12);
    assert_int_equal(a.yiaddr, IP4(10, 0, 0, 100));
    /* m3 finds it in use: declined, m3 gets the next */
    a = ask(3, m3, IP4(10, 0, 0, 100), IP4(10, 0, 0, 1), 0, 13);
    assert_int_equal(a.type, 5);
    a = ask(4, m3, IP4(10, 0, 0, 100), IP4(10, 0, 0, 1), 0, 14);
    a = ask(1, m3, 0, 0, 0, 15);
    assert_int_equal(a.yiaddr, IP4(10, 0, 0, 101));
}

static void test_init_reboot(void **state)
{
    struct dhcp_answer a;
    (void)state;
    /* no record (the table was lost): a free address in the range is kept */
    a = ask(3, m1, IP4(10, 0, 0, 101), 0, 0, 10);
    assert_int_equal(a.type, 5);
    /* another subnet: NAK */
    a = ask(3, m2, IP4(192, 168, 0, 5), 0, 0, 10);
    assert_int_equal(a.type, 6);
}

static void test_reply_frame(void **state)
{
    uint8_t b[400], f[L3_BUF_SIZE];
    struct dhcp_msg m;
    struct dhcp_answer a = {5, IP4(10, 0, 0, 100)};
    const uint8_t gw[6] = {2, 0x76, 0, 0, 0, 1};
    (void)state;
    size_t n = msg(b, 3, m1, IP4(10, 0, 0, 100), 0, 0);
    assert_true(dhcp_parse(b, n, &m));
    m.flags = 0x8000;
    size_t len = dhcp_build_reply(f, sizeof f, &net, gw, &m, &a);
    assert_true(len >= 14 + 20 + 8 + 300);
    assert_memory_equal(f, "\xff\xff\xff\xff\xff\xff", 6);
    assert_int_equal(ipv4_csum(f + 14, 20), 0);
    assert_int_equal(tp_l4_verify(f + 14, (unsigned)len - 34), 0);
    struct dhcp_msg r;
    f[42] = 1; /* parse it back as if a request */
    assert_true(dhcp_parse(f + 42, len - 42, &r));
    assert_int_equal(r.type, 5);
    assert_int_equal(r.yiaddr, IP4(10, 0, 0, 100));
    assert_int_equal(r.server_id, IP4(10, 0, 0, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_parse, setup),
        cmocka_unit_test_setup(test_discover_request_ack, setup),
        cmocka_unit_test_setup(test_reservation_other_server_decline, setup),
        cmocka_unit_test_setup(test_init_reboot, setup),
        cmocka_unit_test_setup(test_reply_frame, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
