/* etcd discovery: the v3 gateway's JSON (base64 keys and values, int64 as
 * strings), the key layout, VTEP values, lease answers and the URL. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "etcd.h"

static void test_b64(void **state)
{
    const char *in[] = {"", "f", "fo", "foo", "foob", "/vswitch/vni/100/10.0.0.1"};
    (void)state;
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        char *e = etcd_b64_encode(in[i], strlen(in[i]));
        size_t n;
        char *d = etcd_b64_decode(e, &n);
        assert_non_null(d);
        assert_int_equal(n, strlen(in[i]));
        assert_string_equal(d, in[i]);
        free(e);
        free(d);
    }
    char *e = etcd_b64_encode("foob", 4);
    assert_string_equal(e, "Zm9vYg==");
    free(e);
    size_t n;
    assert_null(etcd_b64_decode("Zm9", &n));     /* not a multiple of 4 */
    assert_null(etcd_b64_decode("Zm9v!A==", &n)); /* not base64 */
    assert_null(etcd_b64_decode("Z=9v", &n));     /* padding inside */
}

static void test_keys(void **state)
{
    char k[128];
    uint32_t vni, ip, want;
    (void)state;
    inet_pton(AF_INET, "192.168.50.3", &want);
    etcd_key(k, sizeof(k), "/vs", 4096, want);
    assert_string_equal(k, "/vs/vni/4096/192.168.50.3");
    assert_int_equal(etcd_parse_key(k, "/vs", &vni, &ip), 0);
    assert_int_equal(vni, 4096);
    assert_int_equal(ip, want);
    assert_int_equal(etcd_parse_key(k, "/other", &vni, &ip), -1);
    assert_int_equal(etcd_parse_key("/vs/vni/x/1.2.3.4", "/vs", &vni, &ip), -1);
    assert_int_equal(etcd_parse_key("/vs/vni/16777216/1.2.3.4", "/vs", &vni, &ip), -1);
    assert_int_equal(etcd_parse_key("/vs/vni/5/1.2.3", "/vs", &vni, &ip), -1);
    assert_int_equal(etcd_parse_key("/vs/vni/5", "/vs", &vni, &ip), -1);
}

static void test_vtep_value(void **state)
{
    uint8_t macs[2][6] = {{0x52, 0x54, 0, 0, 0, 1}, {0x52, 0x54, 0, 0, 0, 2}};
    struct etcd_vtep *v = calloc(1, sizeof(*v));
    uint32_t ip;
    (void)state;
    inet_pton(AF_INET, "10.1.2.3", &ip);
    char *s = etcd_vtep_value(ip, (const uint8_t(*)[6])macs, 2);
    assert_string_equal(s, "{\"vtep\":\"10.1.2.3\",\"macs\":[\"52:54:00:00:00:01\","
                           "\"52:54:00:00:00:02\"]}");
    assert_int_equal(etcd_parse_vtep_value(s, strlen(s), v), 0);
    assert_int_equal(v->ip, ip);
    assert_int_equal(v->n_macs, 2);
    assert_memory_equal(v->macs[1], macs[1], 6);
    free(s);
    /* bad MACs and multicast MACs are skipped, a bad vtep refuses the value */
    const char *t = "{\"vtep\":\"10.1.2.3\",\"macs\":[\"zz\",\"01:00:5e:00:00:01\",7,"
                    "\"52:54:00:00:00:09\"]}";
    assert_int_equal(etcd_parse_vtep_value(t, strlen(t), v), 0);
    assert_int_equal(v->n_macs, 1);
    const char *bad[] = {"", "[]", "{\"vtep\":\"fe80::1\"}", "{\"macs\":[]}",
                         "{\"vtep\":\"1.2.3.4\",\"macs\":{}}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(etcd_parse_vtep_value(bad[i], strlen(bad[i]), v), -1);
    free(v);
}

/* a range response as etcd 3.4's gateway writes it */
static char *range_body(const char *key, const char *value)
{
    char *k = etcd_b64_encode(key, strlen(key));
    char *v = etcd_b64_encode(value, strlen(value));
    char *b = malloc(2048);
    snprintf(b, 2048,
             "{\"header\":{\"cluster_id\":\"14841639068965178418\",\"member_id\":"
             "\"10276657743932975437\",\"revision\":\"42\",\"raft_term\":\"2\"},"
             "\"kvs\":[{\"key\":\"%s\",\"create_revision\":\"40\",\"mod_revision\":\"42\","
             "\"version\":\"3\",\"value\":\"%s\",\"lease\":\"7587869301329467652\"},"
             "{\"key\":\"Zm9v\",\"value\":\"YmFy\"}],\"count\":\"2\"}",
             k, v);
    free(k);
    free(v);
    return b;
}

static void test_range(void **state)
{
    struct etcd_view view;
    (void)state;
    char *b = range_body("/vs/vni/100/10.0.0.2",
                         "{\"vtep\":\"10.0.0.2\",\"macs\":[\"52:54:00:00:00:02\"]}");
    assert_int_equal(etcd_parse_range(b, strlen(b), "/vs", &view), 0);
    assert_int_equal(view.revision, 42);
    assert_int_equal(view.n, 1); /* "foo" is not ours */
    assert_int_equal(view.vteps[0].vni, 100);
    assert_int_equal(view.vteps[0].n_macs, 1);
    etcd_view_free(&view);
    free(b);
    /* a key and a value that disagree on the VTEP are not trusted */
    b = range_body("/vs/vni/100/10.0.0.2", "{\"vtep\":\"10.0.0.9\",\"macs\":[]}");
    assert_int_equal(etcd_parse_range(b, strlen(b), "/vs", &view), 0);
    assert_int_equal(view.n, 0);
    etcd_view_free(&view);
    free(b);
    /* empty prefix: no kvs at all */
    const char *empty = "{\"header\":{\"revision\":\"7\"}}";
    assert_int_equal(etcd_parse_range(empty, strlen(empty), "/vs", &view), 0);
    assert_int_equal(view.revision, 7);
    assert_int_equal(view.n, 0);
    etcd_view_free(&view);
    const char *bad[] = {"", "nope", "{}", "{\"header\":{\"revision\":\"x\"}}",
                         "{\"header\":{\"revision\":\"1\"},\"kvs\":{}}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(etcd_parse_range(bad[i], strlen(bad[i]), "/vs", &view), -1);
}

static void test_lease(void **state)
{
    int64_t v;
    (void)state;
    const char *grant = "{\"header\":{\"revision\":\"5\"},\"ID\":\"7587869301329467652\","
                        "\"TTL\":\"5\"}";
    assert_int_equal(etcd_parse_lease_grant(grant, strlen(grant), &v), 0);
    assert_int_equal(v, 7587869301329467652LL);
    const char *ka = "{\"result\":{\"header\":{},\"ID\":\"1\",\"TTL\":\"5\"}}";
    assert_int_equal(etcd_parse_keepalive(ka, strlen(ka), &v), 0);
    assert_int_equal(v, 5);
    const char *gone = "{\"result\":{\"header\":{},\"ID\":\"1\"}}";
    assert_int_equal(etcd_parse_keepalive(gone, strlen(gone), &v), 0);
    assert_int_equal(v, 0);
    const char *err = "{\"error\":\"etcdserver: requested lease not found\",\"code\":5}";
    assert_int_equal(etcd_parse_keepalive(err, strlen(err), &v), -1);
    assert_int_equal(etcd_parse_lease_grant(err, strlen(err), &v), -1);
}

static void test_url(void **state)
{
    struct etcd_url u;
    char err[256];
    (void)state;
    assert_int_equal(etcd_parse_url("http://127.0.0.1:2379", &u, err, sizeof(err)), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 2379);
    assert_string_equal(u.prefix, ETCD_PREFIX_DEFAULT);
    assert_int_equal(u.ttl, ETCD_TTL_DEFAULT);
    assert_int_equal(etcd_parse_url("http://10.0.0.1:3000/lab/a/?ttl=3", &u, err, sizeof(err)),
                     0);
    assert_string_equal(u.prefix, "/lab/a");
    assert_int_equal(u.ttl, 3);
    const char *bad[] = {"127.0.0.1:2379", "https://127.0.0.1:2379", "http://etcd:2379",
                         "http://127.0.0.1:2379/?ttl=1", "http://127.0.0.1:2379/?x=1", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(etcd_parse_url(bad[i], &u, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "http://IP:PORT"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64),   cmocka_unit_test(test_keys),
        cmocka_unit_test(test_vtep_value), cmocka_unit_test(test_range),
        cmocka_unit_test(test_lease), cmocka_unit_test(test_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
