/* MAC learning table: learn, lookup, ageing, moves, flush, set eviction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fdb.h"

static const uint8_t mac_a[6] = {0x52, 0x54, 0, 0, 0, 0x0a};
static const uint8_t mac_b[6] = {0x52, 0x54, 0, 0, 0, 0x0b};

static void test_learn_lookup(void **state)
{
    struct fdb *f = fdb_create(300);
    (void)state;
    assert_int_equal(fdb_lookup(f, 10, mac_a, 1000), -1);
    fdb_learn(f, 10, mac_a, 3, 1000);
    assert_int_equal(fdb_lookup(f, 10, mac_a, 1000), 3);
    /* per VLAN: the same MAC in another VLAN is unknown */
    assert_int_equal(fdb_lookup(f, 20, mac_a, 1000), -1);
    assert_int_equal(fdb_lookup(f, 10, mac_b, 1000), -1);
    fdb_destroy(f);
}

static void test_ageing(void **state)
{
    struct fdb *f = fdb_create(300);
    (void)state;
    fdb_learn(f, 1, mac_a, 2, 1000);
    assert_int_equal(fdb_lookup(f, 1, mac_a, 1300), 2);
    assert_int_equal(fdb_lookup(f, 1, mac_a, 1301), -1);
    /* refreshed by traffic */
    fdb_learn(f, 1, mac_a, 2, 1250);
    assert_int_equal(fdb_lookup(f, 1, mac_a, 1500), 2);
    assert_int_equal(fdb_expire(f, 1549), 0);
    assert_int_equal(fdb_expire(f, 1551), 1);
    assert_int_equal(fdb_lookup(f, 1, mac_a, 1551), -1);
    /* ageing 0: never */
    fdb_set_ageing(f, 0);
    fdb_learn(f, 1, mac_b, 4, 10);
    assert_int_equal(fdb_lookup(f, 1, mac_b, 1000000), 4);
    fdb_destroy(f);
}

static void test_move(void **state)
{
    struct fdb *f = fdb_create(300);
    (void)state;
    fdb_learn(f, 5, mac_a, 1, 100);
    fdb_learn(f, 5, mac_a, 7, 101);
    assert_int_equal(fdb_lookup(f, 5, mac_a, 101), 7);
    assert_int_equal(f->moves, 1);
    assert_int_equal(f->learned, 1);
    fdb_destroy(f);
}

struct dump_ctx {
    int n;
    uint16_t port;
    uint32_t age;
};

static void dump_cb(void *ctx, uint16_t vid, const uint8_t *mac, uint16_t port,
                    uint32_t age)
{
    struct dump_ctx *c = ctx;
    (void)vid;
    (void)mac;
    c->n++;
    c->port = port;
    c->age = age;
}

static void test_flush_and_dump(void **state)
{
    struct fdb *f = fdb_create(300);
    struct dump_ctx c = {0};
    (void)state;
    fdb_learn(f, 1, mac_a, 1, 100);
    fdb_learn(f, 2, mac_b, 2, 100);
    assert_int_equal(fdb_dump(f, -1, 110, dump_cb, &c), 2);
    c.n = 0;
    assert_int_equal(fdb_dump(f, 2, 110, dump_cb, &c), 1);
    assert_int_equal(c.port, 2);
    assert_int_equal(c.age, 10);
    fdb_flush_port(f, 1);
    assert_int_equal(fdb_lookup(f, 1, mac_a, 110), -1);
    assert_int_equal(fdb_lookup(f, 2, mac_b, 110), 2);
    fdb_flush(f);
    assert_int_equal(fdb_lookup(f, 2, mac_b, 110), -1);
    fdb_destroy(f);
}

static void test_many_macs_bounded(void **state)
{
    struct fdb *f = fdb_create(300);
    uint8_t mac[6] = {0x02, 0, 0, 0, 0, 0};
    int found = 0;
    (void)state;
    /* more MACs than entries: the table keeps learning, evicting the stalest */
    for (uint32_t i = 0; i < FDB_SETS * FDB_WAYS * 2; i++) {
        mac[2] = i >> 24;
        mac[3] = i >> 16;
        mac[4] = i >> 8;
        mac[5] = i;
        fdb_learn(f, 1, mac, 1 + i % 100, 1000 + i / 1000);
    }
    assert_true(f->evictions > 0);
    /* the most recent ones are there */
    for (uint32_t i = FDB_SETS * FDB_WAYS * 2 - 100; i < FDB_SETS * FDB_WAYS * 2; i++) {
        mac[2] = i >> 24;
        mac[3] = i >> 16;
        mac[4] = i >> 8;
        mac[5] = i;
        found += fdb_lookup(f, 1, mac, 1000 + i / 1000) == (int)(1 + i % 100);
    }
    assert_true(found >= 90);
    fdb_destroy(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_learn_lookup),
        cmocka_unit_test(test_ageing),
        cmocka_unit_test(test_move),
        cmocka_unit_test(test_flush_and_dump),
        cmocka_unit_test(test_many_macs_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
