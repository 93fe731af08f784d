/* 802.1Q ingress and egress rules: access, trunk, native, VLAN 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vlan.h"

static struct conf_vlan access_vlan(uint16_t tag)
{
    struct conf_vlan v;
    memset(&v, 0, sizeof(v));
    v.mode = VLAN_MODE_ACCESS;
    v.tag = tag;
    return v;
}

static struct conf_vlan trunk(const uint16_t *vids, int n, uint16_t native)
{
    struct conf_vlan v;
    memset(&v, 0, sizeof(v));
    v.mode = VLAN_MODE_TRUNK;
    v.trunks_all = n < 0;
    for (int i = 0; i < n; i++)
        v.trunks[vids[i] >> 6] |= 1ULL << (vids[i] & 63);
    v.native = native;
    return v;
}

static void test_access_ingress(void **state)
{
    struct conf_vlan v = access_vlan(10);
    uint16_t vid = 0;
    (void)state;
    assert_int_equal(vlan_ingress(&v, 0, &vid), -1);
    assert_int_equal(vid, 10);
    /* priority-tagged (VID 0) counts as untagged */
    assert_int_equal(vlan_ingress(&v, 0xa000, &vid), -1);
    assert_int_equal(vid, 10);
    assert_int_equal(vlan_ingress(&v, 10, &vid), DROP_VLAN_TAGGED_ACCESS);
    assert_int_equal(vlan_ingress(&v, 20, &vid), DROP_VLAN_TAGGED_ACCESS);
}

static void test_access_egress(void **state)
{
    struct conf_vlan v = access_vlan(10);
    uint16_t tci = 1234;
    (void)state;
    assert_true(vlan_egress(&v, 10, 0x2000, &tci));
    assert_int_equal(tci, 0);
    assert_false(vlan_egress(&v, 20, 0, &tci));
    assert_false(vlan_egress(&v, 0, 0, &tci));
}

static void test_trunk_list(void **state)
{
    const uint16_t vids[] = {10, 20};
    struct conf_vlan v = trunk(vids, 2, 0);
    uint16_t vid = 0, tci = 0;
    (void)state;
    assert_int_equal(vlan_ingress(&v, 10, &vid), -1);
    assert_int_equal(vid, 10);
    assert_int_equal(vlan_ingress(&v, 0x6000 | 20, &vid), -1);
    assert_int_equal(vid, 20);
    assert_int_equal(vlan_ingress(&v, 30, &vid), DROP_VLAN_NOT_ALLOWED);
    assert_int_equal(vlan_ingress(&v, 4095, &vid), DROP_VLAN_NOT_ALLOWED);
    /* a trunk with a list and no native VLAN takes no untagged frames (OVS) */
    assert_int_equal(vlan_ingress(&v, 0, &vid), DROP_VLAN_NOT_ALLOWED);
    assert_int_equal(vlan_ingress(&v, 0x2000, &vid), DROP_VLAN_NOT_ALLOWED);
    assert_true(vlan_egress(&v, 20, 0x6000, &tci));
    assert_int_equal(tci, 0x6000 | 20);
    assert_false(vlan_egress(&v, 30, 0, &tci));
    assert_false(vlan_egress(&v, 0, 0, &tci));
}

static void test_trunk_native(void **state)
{
    const uint16_t vids[] = {20};
    struct conf_vlan v = trunk(vids, 1, 10);
    uint16_t vid = 0, tci = 0;
    (void)state;
    assert_int_equal(vlan_ingress(&v, 0, &vid), -1);
    assert_int_equal(vid, 10);
    /* the native VLAN tagged is accepted too */
    assert_int_equal(vlan_ingress(&v, 10, &vid), -1);
    assert_int_equal(vid, 10);
    /* native leaves untagged, others tagged */
    assert_true(vlan_egress(&v, 10, 0, &tci));
    assert_int_equal(tci, 0);
    assert_true(vlan_egress(&v, 20, 0, &tci));
    assert_int_equal(tci, 20);
    /* VLAN 0 is not carried when another VLAN is native */
    assert_false(vlan_egress(&v, 0, 0, &tci));
}

static void test_trunk_all(void **state)
{
    struct conf_vlan v = trunk(NULL, -1, 0);
    uint16_t vid = 0, tci = 0;
    (void)state;
    assert_int_equal(vlan_ingress(&v, 4094, &vid), -1);
    assert_int_equal(vid, 4094);
    assert_true(vlan_egress(&v, 4094, 0, &tci));
    assert_int_equal(tci, 4094);
    assert_true(vlan_egress(&v, 0, 0, &tci));
    assert_int_equal(tci, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_access_ingress),
        cmocka_unit_test(test_access_egress),
        cmocka_unit_test(test_trunk_list),
        cmocka_unit_test(test_trunk_native),
        cmocka_unit_test(test_trunk_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
