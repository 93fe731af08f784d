/* conntrack.c: TCP state transitions, lookups both ways, port preservation,
 * endpoint-independent mapping, collision and exhaustion of the port range,
 * the table limit, expiry and flush by network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <urcu-qsbr.h>

#include "drop.h"
#include "l3_testpkt.h"

#define SYN 0x02
#define ACK 0x10
#define FIN 0x01
#define RST 0x04

static void test_tcp_states(void **state)
{
    (void)state;
    assert_int_equal(ct_tcp_next(CT_NONE, 0, SYN), CT_SYN_SENT);
    assert_int_equal(ct_tcp_next(CT_NONE, 0, ACK), CT_INVALID);
    assert_int_equal(ct_tcp_next(CT_NONE, 1, SYN), CT_INVALID);
    assert_int_equal(ct_tcp_next(CT_SYN_SENT, 0, SYN), CT_SYN_SENT);
    assert_int_equal(ct_tcp_next(CT_SYN_SENT, 1, SYN | ACK), CT_SYN_RECV);
    assert_int_equal(ct_tcp_next(CT_SYN_SENT, 0, SYN | ACK), CT_SYN_SENT);
    assert_int_equal(ct_tcp_next(CT_SYN_RECV, 0, ACK), CT_ESTABLISHED);
    assert_int_equal(ct_tcp_next(CT_ESTABLISHED, 1, ACK), CT_ESTABLISHED);
    assert_int_equal(ct_tcp_next(CT_ESTABLISHED, 0, FIN | ACK), CT_FIN_WAIT);
    assert_int_equal(ct_tcp_next(CT_ESTABLISHED, 1, FIN | ACK), CT_CLOSE_WAIT);
    assert_int_equal(ct_tcp_next(CT_FIN_WAIT, 0, ACK), CT_FIN_WAIT);
    assert_int_equal(ct_tcp_next(CT_FIN_WAIT, 1, FIN | ACK), CT_LAST_ACK);
    assert_int_equal(ct_tcp_next(CT_CLOSE_WAIT, 0, FIN | ACK), CT_LAST_ACK);
    assert_int_equal(ct_tcp_next(CT_LAST_ACK, 0, ACK), CT_TIME_WAIT);
    assert_int_equal(ct_tcp_next(CT_TIME_WAIT, 0, SYN), CT_SYN_SENT); /* reuse */
    assert_int_equal(ct_tcp_next(CT_ESTABLISHED, 1, RST), CT_CLOSE);
}

static struct l3_net_state owner, owner2;

static void init_owner(struct l3_net_state *o, const char *name)
{
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", name);
    memcpy(o->ct_timeouts, conf_ct_timeout_defaults, sizeof o->ct_timeouts);
}

static struct ct_conn *snat(struct ct_table *t, uint8_t proto, uint32_t src, uint16_t sport,
                            uint32_t dst, uint16_t dport, uint32_t limit, int *why,
                            struct ct_tuple *reply)
{
    struct ct_tuple k = {.src = src, .dst = dst, .sport = sport, .dport = dport,
                         .proto = proto};
    int dir;
    memset(reply, 0, sizeof *reply);
    reply->proto = proto;
    reply->src = dst;
    reply->sport = dport;
    reply->dst = IP4(192, 168, 77, 2);
    return ct_create_conn(t, &owner, limit, &k, reply, true, NULL, 100, why, &dir);
}

static void test_snat_ports(void **state)
{
    struct ct_table *t = ct_create(1024, 1031); /* 8 ports */
    struct ct_tuple r, r2;
    struct ct_conn *c;
    int why = -1, dir;
    (void)state;
    init_owner(&owner, "n1");
    /* preserved */
    c = snat(t, 6, IP4(10, 0, 0, 5), 1025, IP4(1, 1, 1, 1), 80, 100, &why, &r);
    assert_non_null(c);
    assert_int_equal(r.dport, 1025);
    /* both directions find it */
    struct ct_tuple back = {.src = IP4(1, 1, 1, 1), .dst = IP4(192, 168, 77, 2), .sport = 80,
                            .dport = 1025, .proto = 6};
    assert_ptr_equal(ct_lookup(t, &back, &dir), c);
    assert_int_equal(dir, 1);
    assert_ptr_equal(ct_lookup(t, ct_conn_tuple(c, 0), &dir), c);
    assert_int_equal(dir, 0);
    /* endpoint-independent: same internal endpoint, other remote, same port */
    c = snat(t, 6, IP4(10, 0, 0, 5), 1025, IP4(2, 2, 2, 2), 443, 100, &why, &r2);
    assert_non_null(c);
    assert_int_equal(r2.dport, 1025);
    /* collision: another host with the same source port gets another port */
    c = snat(t, 6, IP4(10, 0, 0, 6), 1025, IP4(1, 1, 1, 1), 80, 100, &why, &r2);
    assert_non_null(c);
    assert_int_not_equal(r2.dport, 1025);
    assert_true(r2.dport >= 1024 && r2.dport <= 1031);
    /* exhaustion: 8 ports, 2 in use; 6 more hosts fit, the 7th does not */
    for (int i = 0; i < 6; i++)
        assert_non_null(snat(t, 6, IP4(10, 0, 1, i), 5000, IP4(1, 1, 1, 1), 80, 100, &why,
                             &r2));
    assert_null(snat(t, 6, IP4(10, 0, 2, 1), 5000, IP4(1, 1, 1, 1), 80, 100, &why, &r2));
    assert_int_equal(why, DROP_NAT_PORTS_EXHAUSTED);
    /* UDP has its own ports */
    assert_non_null(snat(t, 17, IP4(10, 0, 2, 1), 5000, IP4(1, 1, 1, 1), 53, 100, &why, &r2));
    assert_int_equal(ct_count(t), 10);
    /* flush frees the ports again */
    assert_int_equal(ct_expire(t, 0, true, NULL), 10);
    assert_int_equal(owner.ct_count, 0);
    rcu_thread_offline();
    rcu_barrier();
    rcu_thread_online();
    assert_non_null(snat(t, 6, IP4(10, 0, 2, 1), 5000, IP4(1, 1, 1, 1), 80, 100, &why, &r2));
    ct_destroy(t);
}

static void test_limit_expiry_owner(void **state)
{
    struct ct_table *t = ct_create(1024, 65535);
    struct ct_tuple r;
    struct ct_conn *c;
    int why = -1;
    (void)state;
    init_owner(&owner, "n1");
    init_owner(&owner2, "n2");
    assert_non_null(snat(t, 17, IP4(10, 0, 0, 5), 1000, IP4(1, 1, 1, 1), 53, 2, &why, &r));
    c = snat(t, 17, IP4(10, 0, 0, 5), 1001, IP4(1, 1, 1, 1), 53, 2, &why, &r);
    assert_non_null(c);
    assert_null(snat(t, 17, IP4(10, 0, 0, 5), 1002, IP4(1, 1, 1, 1), 53, 2, &why, &r));
    assert_int_equal(why, DROP_NAT_TABLE_FULL);
    /* UDP: 30 s unreplied, 120 s once replied */
    assert_true(ct_conn_update(c, 0, 0, 100, 1000));
    assert_int_equal(ct_expire(t, 1029, false, NULL), 1); /* the other one, never updated */
    assert_int_equal(ct_expire(t, 1031, false, NULL), 1);
    c = snat(t, 17, IP4(10, 0, 0, 5), 1003, IP4(1, 1, 1, 1), 53, 2, &why, &r);
    assert_true(ct_conn_update(c, 1, 0, 100, 1000));
    assert_int_equal(ct_expire(t, 1100, false, NULL), 0);
    assert_int_equal(ct_expire(t, 1121, false, NULL), 1);
    /* TCP: a SYN in the reply direction of a new connection is invalid */
    c = snat(t, 6, IP4(10, 0, 0, 5), 1004, IP4(1, 1, 1, 1), 80, 2, &why, &r);
    assert_false(ct_conn_update(c, 1, SYN, 60, 1000));
    assert_true(ct_conn_update(c, 0, SYN, 60, 1000));
    assert_true(ct_conn_update(c, 1, SYN | ACK, 60, 1000));
    assert_true(ct_conn_update(c, 0, ACK, 60, 1000));
    assert_int_equal(ct_expire(t, 1000 + 431999, false, NULL), 0); /* established: 5 days */
    json_t *d = ct_dump(t, 1000, NULL);
    assert_int_equal(json_array_size(d), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(d, 0), "state")),
                        "ESTABLISHED");
    json_decref(d);
    /* flush by owner */
    assert_int_equal(ct_expire(t, 0, true, &owner2), 0);
    assert_int_equal(ct_expire(t, 0, true, &owner), 1);
    ct_destroy(t);
}

/* Found by fuzz_nat: walking an empty table (expiry, ct-show) took
 * container_of a NULL node, undefined behaviour. */
static void test_empty_table_walks(void **state)
{
    struct ct_table *t = ct_create(1024, 65535);
    (void)state;
    assert_int_equal(ct_expire(t, 1000, false, NULL), 0);
    assert_int_equal(ct_expire(t, 0, true, NULL), 0);
    json_t *d = ct_dump(t, 1000, NULL);
    assert_int_equal(json_array_size(d), 0);
    json_decref(d);
    ct_destroy(t);
}

/* A range found full is not searched again until a mapping is freed: each
 * further attempt used to try every port (64K hash inserts per packet, a PMD
 * stall of milliseconds once a guest had used up the uplink's ports). */
static void test_full_range_fails_fast(void **state)
{
    struct ct_table *t = ct_create(1024, 1031); /* 8 ports */
    struct ct_tuple r,
        k = {.dst = IP4(1, 1, 1, 1), .sport = 5000, .dport = 80, .proto = 6};
    static uint64_t reserved[1024];
    int why = -1, dir;
    uint64_t probes;
    (void)state;
    init_owner(&owner, "n1");
    init_owner(&owner2, "n2");
    for (int i = 0; i < 7; i++)
        assert_non_null(
            snat(t, 6, IP4(10, 0, 1, i), 5000, IP4(1, 1, 1, 1), 80, 100, &why, &r));
    k.src = IP4(10, 0, 1, 7); /* the eighth, owned by n2 */
    r = (struct ct_tuple){
        .proto = 6, .src = k.dst, .sport = 80, .dst = IP4(192, 168, 77, 2)};
    assert_non_null(ct_create_conn(t, &owner2, 100, &k, &r, true, NULL, 100, &why, &dir));
    probes = ct_port_probes(t);
    assert_null(snat(t, 6, IP4(10, 0, 2, 1), 5000, IP4(1, 1, 1, 1), 80, 100, &why, &r));
    assert_int_equal(why, DROP_NAT_PORTS_EXHAUSTED);
    assert_true(ct_port_probes(t) >= probes + 8); /* searched once */
    probes = ct_port_probes(t);
    for (int i = 2; i < 10; i++) {
        why = -1;
        assert_null(
            snat(t, 6, IP4(10, 0, 2, i), 5000, IP4(1, 1, 1, 1), 80, 100, &why, &r));
        assert_int_equal(why, DROP_NAT_PORTS_EXHAUSTED);
    }
    assert_int_equal(ct_port_probes(t), probes); /* not again */
    /* another protocol, or other reserved ports: another range, searched */
    assert_non_null(
        snat(t, 17, IP4(10, 0, 2, 1), 5000, IP4(1, 1, 1, 1), 53, 100, &why, &r));
    assert_true(ct_port_probes(t) > probes);
    probes = ct_port_probes(t);
    k.src = IP4(10, 0, 2, 1);
    r = (struct ct_tuple){
        .proto = 6, .src = k.dst, .sport = 80, .dst = IP4(192, 168, 77, 2)};
    assert_null(ct_create_conn(t, &owner, 100, &k, &r, true, reserved, 100, &why, &dir));
    assert_true(ct_port_probes(t) > probes);
    /* a mapping freed: the range is searched again and the port found */
    assert_int_equal(ct_expire(t, 0, true, &owner2), 1);
    assert_non_null(
        snat(t, 6, IP4(10, 0, 2, 1), 5000, IP4(1, 1, 1, 1), 80, 100, &why, &r));
    ct_destroy(t);
}

/* The tables grow with their content at the control thread's tick and
 * shrink once it is gone; every connection stays reachable both ways across
 * each resize. (liburcu's lazy auto-resize could stop growing at 2048.) */
static void test_buckets_follow_count(void **state)
{
    struct ct_table *t = ct_create(1024, 65535);
    const int n = 20000; /* 40000 nodes: 65536 buckets */
    struct ct_tuple r;
    int why = -1, dir;
    (void)state;
    init_owner(&owner, "n1");
    assert_int_equal(ct_buckets(t), 1024);
    for (int i = 0; i < n; i++)
        assert_non_null(snat(t, 17, IP4(10, 1, i >> 8, i & 255), 4000, IP4(1, 1, 1, 1),
                             53, n, &why, &r));
    assert_int_equal(ct_expire(t, 100, false, NULL), 0);
    assert_int_equal(ct_buckets(t), 65536);
    for (int i = 0; i < n; i++) {
        struct ct_tuple k = {.src = IP4(10, 1, i >> 8, i & 255),
                             .dst = IP4(1, 1, 1, 1),
                             .sport = 4000,
                             .dport = 53,
                             .proto = 17};
        struct ct_conn *c = ct_lookup(t, &k, &dir);
        assert_non_null(c);
        assert_int_equal(dir, 0);
        assert_ptr_equal(ct_lookup(t, ct_conn_tuple(c, 1), &dir), c);
        assert_int_equal(dir, 1);
    }
    /* all gone: back to the minimum */
    assert_int_equal(ct_expire(t, 0, true, NULL), n);
    assert_int_equal(ct_buckets(t), 1024);
    ct_destroy(t);
}

int main(void)
{
    rcu_register_thread();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_states),
        cmocka_unit_test(test_snat_ports),
        cmocka_unit_test(test_limit_expiry_owner),
        cmocka_unit_test(test_empty_table_walks),
        cmocka_unit_test(test_buckets_follow_count),
        cmocka_unit_test(test_full_range_fails_fast),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    rcu_unregister_thread();
    return r;
}
