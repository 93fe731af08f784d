/* The configuration model: names, KEY=VALUE options, VLAN rules, JSON. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "conf.h"
#include "config.h"

static char err[512];

/* add-port with opts given as a NULL-terminated list */
static int add_port(struct conf *c, const char *br, const char *name, ...)
{
    const char *opts[16];
    size_t n = 0;
    va_list ap;
    va_start(ap, name);
    for (const char *o; (o = va_arg(ap, const char *));)
        opts[n++] = o;
    va_end(ap);
    err[0] = '\0';
    return conf_add_port(c, br, name, opts, n, err, sizeof err);
}

static int set_port(struct conf *c, const char *name, ...)
{
    const char *opts[16];
    size_t n = 0;
    va_list ap;
    va_start(ap, name);
    for (const char *o; (o = va_arg(ap, const char *));)
        opts[n++] = o;
    va_end(ap);
    err[0] = '\0';
    return conf_set_port(c, name, opts, n, err, sizeof err);
}

static int setup(void **state)
{
    static struct conf c;
    conf_init(&c);
    assert_int_equal(conf_add_bridge(&c, "br0", err, sizeof err), 0);
    *state = &c;
    return 0;
}

static int teardown(void **state)
{
    conf_free(*state);
    return 0;
}

static void test_names(void **state)
{
    (void)state;
    assert_int_equal(conf_check_name("port", "a", err, sizeof err), 0);
    assert_int_equal(conf_check_name("port", "Az09_.-", err, sizeof err), 0);
    assert_int_equal(conf_check_name("port", "0123456789012345678901234567890", err,
                                     sizeof err),
                     0); /* 31 */
    assert_int_equal(conf_check_name("port", "01234567890123456789012345678901", err,
                                     sizeof err),
                     -EINVAL); /* 32 */
    assert_int_equal(conf_check_name("port", "", err, sizeof err), -EINVAL);
    assert_int_equal(conf_check_name("bridge", "a b", err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "bridge name"));
    assert_int_equal(conf_check_name("port", "a/b", err, sizeof err), -EINVAL);
    assert_int_equal(conf_check_name("port", "é", err, sizeof err), -EINVAL);
}

static void test_bridges(void **state)
{
    struct conf *c = *state;
    assert_int_equal(conf_add_bridge(c, "br0", err, sizeof err), -EEXIST);
    assert_string_equal(err, "bridge br0 already exists");
    assert_int_equal(conf_add_bridge(c, "bad name", err, sizeof err), -EINVAL);
    assert_int_equal(conf_add_bridge(c, "br1", err, sizeof err), 0);
    assert_int_equal(add_port(c, "br1", "p1", NULL), 0);
    assert_int_equal(add_port(c, "br0", "p0", NULL), 0);
    assert_int_equal(conf_del_bridge(c, "br1", err, sizeof err), 0);
    assert_null(conf_find_bridge(c, "br1"));
    assert_null(conf_find_port(c, "p1")); /* del-br takes its ports along */
    assert_non_null(conf_find_port(c, "p0"));
    assert_int_equal(conf_del_bridge(c, "br1", err, sizeof err), -ENOENT);
    assert_string_equal(err, "bridge br1 does not exist");
}

static void test_set_bridge(void **state)
{
    struct conf *c = *state;
    const char *ok[] = {"ageing=60"}, *zero[] = {"ageing=0"}, *bad[] = {"ageing=-1"},
               *big[] = {"ageing=604801"}, *unk[] = {"color=red"}, *noeq[] = {"ageing"},
               *twice[] = {"ageing=1", "ageing=2"};
    assert_int_equal(conf_find_bridge(c, "br0")->ageing, CONF_AGEING_DEFAULT);
    assert_int_equal(conf_set_bridge(c, "br0", ok, 1, err, sizeof err), 0);
    assert_int_equal(conf_find_bridge(c, "br0")->ageing, 60);
    assert_int_equal(conf_set_bridge(c, "br0", zero, 1, err, sizeof err), 0);
    assert_int_equal(conf_find_bridge(c, "br0")->ageing, 0);
    assert_int_equal(conf_set_bridge(c, "br0", bad, 1, err, sizeof err), -EINVAL);
    assert_int_equal(conf_set_bridge(c, "br0", big, 1, err, sizeof err), -EINVAL);
    assert_int_equal(conf_set_bridge(c, "br0", unk, 1, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "color"));
    assert_int_equal(conf_set_bridge(c, "br0", noeq, 1, err, sizeof err), -EINVAL);
    assert_int_equal(conf_set_bridge(c, "br0", twice, 2, err, sizeof err), -EINVAL);
    assert_int_equal(conf_set_bridge(c, "nope", ok, 1, err, sizeof err), -ENOENT);
    assert_int_equal(conf_find_bridge(c, "br0")->ageing, 0);
}

static void test_port_defaults(void **state)
{
    struct conf *c = *state;
    assert_int_equal(add_port(c, "br0", "vm1", NULL), 0);
    struct conf_port *p = conf_find_port(c, "vm1");
    assert_non_null(p);
    assert_int_equal(p->type, PORT_TYPE_VHOST_USER);
    assert_int_equal(p->queues, 1);
    assert_false(p->client);
    assert_string_equal(p->socket, "");
    assert_int_equal(p->vlan.mode, VLAN_MODE_TRUNK);
    assert_true(p->vlan.trunks_all);
    assert_true(conf_vlan_trunks(&p->vlan, 0));
    assert_true(conf_vlan_trunks(&p->vlan, 4094));
    assert_int_equal(p->mtu, 0);

    assert_int_equal(add_port(c, "br0", "tap0", "type=tap", NULL), 0);
    assert_string_equal(conf_find_port(c, "tap0")->ifname, "tap0");
    assert_int_equal(add_port(c, "br0", "t", "type=internal", "ifname=vsw-int", NULL), 0);
    assert_string_equal(conf_find_port(c, "t")->ifname, "vsw-int");
}

static void test_port_errors(void **state)
{
    struct conf *c = *state;
    assert_int_equal(add_port(c, "br0", "vm1", NULL), 0);
    assert_int_equal(add_port(c, "br0", "vm1", NULL), -EEXIST);
    assert_string_equal(err, "port vm1 already exists (on bridge br0)");
    assert_int_equal(conf_add_bridge(c, "br1", err, sizeof err), 0);
    /* names are unique across the switch, not per bridge */
    assert_int_equal(add_port(c, "br1", "vm1", NULL), -EEXIST);
    assert_int_equal(add_port(c, "nobr", "x", NULL), -ENOENT);
    assert_string_equal(err, "bridge nobr does not exist");
    assert_int_equal(add_port(c, "br0", "bad/name", NULL), -EINVAL);

    struct {
        const char *opt;
        int code;
        const char *says;
    } cases[] = {
        {"type=vhost", -EINVAL, "unknown port type"},
        {"colour=blue", -EINVAL, "unknown port option"},
        {"novalue", -EINVAL, "not KEY=VALUE"},
        {"=x", -EINVAL, "not KEY=VALUE"},
        {"type=", -EINVAL, "needs a value"},
        {"socket=relative.sock", -EINVAL, "absolute"},
        {"mode=both", -EINVAL, "mode=both"},
        {"queues=0", -EINVAL, "queues=0"},
        {"queues=9", -EINVAL, "queues=9"},
        {"queues=x", -EINVAL, "queues=x"},
        {"ifname=x", -EINVAL, "does not apply to a vhost-user port"},
        {"ip=10.0.0.1", -EINVAL, "prefix"},
        {"ip=10.0.0.1/33", -EINVAL, "prefix"},
        {"ip=10.0.0.256/24", -EINVAL, "prefix"},
        {"ip=fd00::1/129", -EINVAL, "prefix"},
        {"gw=10.0.0.1", -EINVAL, "needs ip="},
        {"gw=nope", -EINVAL, "not an IP"},
        {"vlan_mode=hybrid", -EINVAL, "vlan_mode=hybrid"},
        {"vlan_mode=access", -EINVAL, "needs tag=N"},
        {"tag=0", -EINVAL, "1-4094"},
        {"tag=4095", -EINVAL, "1-4094"},
        {"tag=-1", -EINVAL, "1-4094"},
        {"tag=10x", -EINVAL, "1-4094"},
        {"trunks=0", -EINVAL, "trunks="},
        {"trunks=10,", -EINVAL, "comma"},
        {"trunks=,10", -EINVAL, "trunks="},
        {"trunks=20-10", -EINVAL, "backwards"},
        {"trunks=1-4095", -EINVAL, "trunks="},
        {"native=4095", -EINVAL, "1-4094"},
        {"mtu=67", -EINVAL, "68-65535"},
        {"mtu=65536", -EINVAL, "68-65535"},
        {"mac=52:54:00:00:00", -EINVAL, "not a MAC"},
        {"mac=52:54:00:00:00:0g", -EINVAL, "not a MAC"},
        {"mac=52-54-00-00-00-01", -EINVAL, "not a MAC"},
        {"mac=01:00:5e:00:00:01", -EINVAL, "multicast"},
        {"mac=00:00:00:00:00:00", -EINVAL, "all-zero"},
#ifdef HAVE_AFXDP
        {"type=afxdp", -EINVAL, "needs dev=IFNAME"},
#else
        {"type=afxdp", -ENOTSUP, "port type afxdp is not supported by this build"},
#endif
#ifdef HAVE_DPDK
        {"type=dpdk", -EINVAL, "needs devargs=STRING"},
#else
        {"type=dpdk", -ENOTSUP, "port type dpdk is not supported by this build"},
#endif
        {"type=vxlan", -EINVAL, "needs vni=N"},
        {"dev=eth0", -EINVAL, "does not apply to a vhost-user port"},
        {"mode=client", -EINVAL, "client mode needs socket=PATH"},
    };
    size_t n_before = c->n_ports;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int r = add_port(c, "br0", "x", cases[i].opt, NULL);
        if (r != cases[i].code || !strstr(err, cases[i].says))
            fail_msg("%s: got %d \"%s\", expected %d \"...%s...\"", cases[i].opt, r, err,
                     cases[i].code, cases[i].says);
        assert_int_equal(c->n_ports, n_before);
    }
    /* keys of the later types are still checked */
    assert_int_equal(add_port(c, "br0", "x", "type=vxlan", "vni=16777216", NULL), -EINVAL);
    assert_int_equal(add_port(c, "br0", "x", "type=vxlan", "remote=1.2.3.4,", NULL), -EINVAL);
    assert_int_equal(add_port(c, "br0", "x", "type=vxlan", "vni=1", "remote=1.2.3.4,fd00::1",
                              "local=1.1.1.1", "dstport=4789", NULL),
                     -EINVAL); /* the underlay is IPv4 */
    assert_int_equal(add_port(c, "br0", "x", "type=afxdp", "dev=eth0", "queue=x", NULL),
                     -EINVAL);
    assert_int_equal(add_port(c, "br0", "x", "type=tap", "socket=/a", NULL), -EINVAL);
    assert_string_equal(err, "socket= does not apply to a tap port");
    assert_int_equal(add_port(c, "br0", "x", "tag=1", "tag=2", NULL), -EINVAL);
    assert_non_null(strstr(err, "twice"));
    /* a tap port's name is its ifname by default: too long for one */
    assert_int_equal(add_port(c, "br0", "a-name-longer-than-15", "type=tap", NULL), -EINVAL);
    assert_non_null(strstr(err, "ifname=NAME"));
    assert_int_equal(add_port(c, "br0", "a-name-longer-than-15", "type=tap", "ifname=short",
                              NULL),
                     0);
    assert_int_equal(add_port(c, "br0", "t2", "type=tap", "ifname=0123456789abcdef", NULL),
                     -EINVAL);
    assert_int_equal(add_port(c, "br0", "t3", "type=tap", "ifname=short", NULL), -EEXIST);
    assert_int_equal(add_port(c, "br0", "v1", "socket=/tmp/a.sock", NULL), 0);
    assert_int_equal(add_port(c, "br0", "v2", "socket=/tmp/a.sock", NULL), -EEXIST);
    char longpath[200];
    memset(longpath, 'a', sizeof longpath);
    memcpy(longpath, "socket=/", 8);
    longpath[8 + 108] = '\0';
    assert_int_equal(add_port(c, "br0", "v3", longpath, NULL), -EINVAL);
}

static void test_port_values(void **state)
{
    struct conf *c = *state;
    assert_int_equal(add_port(c, "br0", "vm1", "type=vhost-user", "socket=/tmp/vm1.sock",
                              "mode=client", "queues=8", "mtu=9000", "mac=52:54:00:AB:cd:01",
                              "ip=10.0.0.2/24", "gw=10.0.0.1", NULL),
                     0);
    struct conf_port *p = conf_find_port(c, "vm1");
    assert_string_equal(p->socket, "/tmp/vm1.sock");
    assert_true(p->client);
    assert_int_equal(p->queues, 8);
    assert_int_equal(p->mtu, 9000);
    assert_true(p->has_mac);
    assert_int_equal(p->mac[3], 0xab);
    assert_string_equal(p->ip, "10.0.0.2/24");
    assert_string_equal(p->gw, "10.0.0.1");
    /* gateway outside the subnet, or of the other family */
    assert_int_equal(set_port(c, "vm1", "gw=10.0.1.1", NULL), -EINVAL);
    assert_non_null(strstr(err, "not inside"));
    assert_int_equal(set_port(c, "vm1", "gw=fd00::1", NULL), -EINVAL);
    assert_int_equal(set_port(c, "vm1", "ip=fd00::2/64", "gw=fd00::1", NULL), 0);
    /* KEY= puts optional keys back */
    assert_int_equal(set_port(c, "vm1", "mtu=", "mac=", "ip=", "queues=", NULL), 0);
    assert_int_equal(p->mtu, 0);
    assert_false(p->has_mac);
    assert_string_equal(p->ip, "");
    assert_string_equal(p->gw, ""); /* no gateway without an address */
    assert_int_equal(p->queues, 1);
    /* client mode without a socket is refused, and nothing changes */
    assert_int_equal(set_port(c, "vm1", "socket=", NULL), -EINVAL);
    assert_string_equal(p->socket, "/tmp/vm1.sock");
    assert_int_equal(set_port(c, "vm1", "mode=server", "socket=", NULL), 0);
    /* the type does not change */
    assert_int_equal(set_port(c, "vm1", "type=tap", NULL), -EINVAL);
    assert_non_null(strstr(err, "cannot change"));
    assert_int_equal(set_port(c, "vm1", "type=vhost-user", NULL), 0);
    assert_int_equal(set_port(c, "nope", "mtu=1500", NULL), -ENOENT);
    assert_int_equal(set_port(c, "vm1", NULL), -EINVAL);
}

static void test_vlans(void **state)
{
    struct conf *c = *state;
    struct conf_port *p;

    /* inferred from tag= */
    assert_int_equal(add_port(c, "br0", "a", "tag=10", NULL), 0);
    p = conf_find_port(c, "a");
    assert_int_equal(p->vlan.mode, VLAN_MODE_ACCESS);
    assert_int_equal(p->vlan.tag, 10);
    assert_true(conf_vlan_trunks(&p->vlan, 10));
    assert_false(conf_vlan_trunks(&p->vlan, 11));
    assert_false(conf_vlan_trunks(&p->vlan, 0));
    /* inferred from trunks= */
    assert_int_equal(add_port(c, "br0", "t", "trunks=10,20,30-40", "native=5", NULL), 0);
    p = conf_find_port(c, "t");
    assert_int_equal(p->vlan.mode, VLAN_MODE_TRUNK);
    assert_false(p->vlan.trunks_all);
    assert_true(conf_vlan_trunks(&p->vlan, 10));
    assert_true(conf_vlan_trunks(&p->vlan, 35));
    assert_true(conf_vlan_trunks(&p->vlan, 5)); /* native */
    assert_false(conf_vlan_trunks(&p->vlan, 21));
    assert_false(conf_vlan_trunks(&p->vlan, 0));
    /* conflicts are refused with the reason */
    assert_int_equal(set_port(c, "t", "tag=7", NULL), -EINVAL);
    assert_non_null(strstr(err, "tag= cannot be used on trunk port t"));
    assert_int_equal(set_port(c, "a", "trunks=7", NULL), -EINVAL);
    assert_non_null(strstr(err, "trunks= cannot be used on access port a"));
    assert_int_equal(set_port(c, "a", "native=7", NULL), -EINVAL);
    assert_int_equal(add_port(c, "br0", "x", "vlan_mode=access", "tag=3", "trunks=4", NULL),
                     -EINVAL);
    assert_int_equal(add_port(c, "br0", "x", "vlan_mode=trunk", "tag=3", NULL), -EINVAL);
    assert_int_equal(add_port(c, "br0", "x", "tag=3", "trunks=4", NULL), -EINVAL);
    /* changes of mode when asked */
    assert_int_equal(set_port(c, "a", "tag=11", NULL), 0);
    assert_int_equal(conf_find_port(c, "a")->vlan.tag, 11);
    assert_int_equal(set_port(c, "a", "vlan_mode=trunk", NULL), 0);
    p = conf_find_port(c, "a");
    assert_int_equal(p->vlan.mode, VLAN_MODE_TRUNK);
    assert_true(p->vlan.trunks_all);
    assert_int_equal(p->vlan.tag, 0);
    assert_int_equal(set_port(c, "t", "vlan_mode=access", NULL), -EINVAL); /* needs tag */
    assert_int_equal(set_port(c, "t", "vlan_mode=access", "tag=4", NULL), 0);
    assert_int_equal(conf_find_port(c, "t")->vlan.tag, 4);
    /* a port without VLAN settings takes tag= as access */
    assert_int_equal(add_port(c, "br0", "d", NULL), 0);
    assert_int_equal(set_port(c, "d", "tag=9", NULL), 0);
    assert_int_equal(conf_find_port(c, "d")->vlan.mode, VLAN_MODE_ACCESS);
    /* trunks= resets to all */
    assert_int_equal(add_port(c, "br0", "e", "trunks=1", NULL), 0);
    assert_int_equal(set_port(c, "e", "trunks=", "native=", NULL), 0);
    assert_true(conf_find_port(c, "e")->vlan.trunks_all);
}

static void test_vlan_list(void **state)
{
    (void)state;
    uint64_t b[64];
    char buf[256];
    assert_int_equal(conf_parse_vlan_list("10,20,30-40", b, err, sizeof err), 0);
    conf_format_vlan_list(b, buf, sizeof buf);
    assert_string_equal(buf, "10,20,30-40");
    assert_int_equal(conf_parse_vlan_list("5,3,4,1-2,4094", b, err, sizeof err), 0);
    conf_format_vlan_list(b, buf, sizeof buf);
    assert_string_equal(buf, "1-5,4094");
    assert_int_equal(conf_parse_vlan_list("7-7", b, err, sizeof err), 0);
    conf_format_vlan_list(b, buf, sizeof buf);
    assert_string_equal(buf, "7");
    const char *bad[] = {"", ",", "1,,2", "a", "1-", "-1", "1-2-3", "0", "4095", "1 ,2",
                         "99999999999999999999", "5-4"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (conf_parse_vlan_list(bad[i], b, err, sizeof err) != -EINVAL)
            fail_msg("\"%s\" accepted", bad[i]);
    assert_int_equal(conf_parse_vlan_list("1-4094", b, err, sizeof err), 0);
    conf_format_vlan_list(b, buf, sizeof buf);
    assert_string_equal(buf, "1-4094");
}

static void test_del_port(void **state)
{
    struct conf *c = *state;
    assert_int_equal(conf_add_bridge(c, "br1", err, sizeof err), 0);
    assert_int_equal(add_port(c, "br0", "p", NULL), 0);
    assert_int_equal(conf_del_port(c, "br1", "p", err, sizeof err), -ENOENT);
    assert_string_equal(err, "port p is not on bridge br1 (it is on br0)");
    assert_int_equal(conf_del_port(c, "brX", "p", err, sizeof err), -ENOENT);
    assert_int_equal(conf_del_port(c, NULL, "q", err, sizeof err), -ENOENT);
    assert_int_equal(conf_del_port(c, NULL, "p", err, sizeof err), 0);
    assert_null(conf_find_port(c, "p"));
}

static void build_full(struct conf *c)
{
    const char *age[] = {"ageing=0"};
    assert_int_equal(conf_add_bridge(c, "br1", err, sizeof err), 0);
    assert_int_equal(conf_set_bridge(c, "br1", age, 1, err, sizeof err), 0);
    assert_int_equal(add_port(c, "br0", "vm1", "socket=/tmp/x.sock", "mode=client",
                              "queues=4", "tag=100", "mac=52:54:00:00:00:01", "mtu=9000",
                              NULL),
                     0);
    assert_int_equal(add_port(c, "br0", "vm2", "trunks=10,20,30-40", "native=20", NULL), 0);
    assert_int_equal(add_port(c, "br1", "tap0", "type=tap", "ifname=vtap0", NULL), 0);
    assert_int_equal(add_port(c, "br1", "gw0", "type=internal", "ip=192.168.1.1/24",
                              "gw=192.168.1.254", NULL),
                     0);
}

static void test_json_roundtrip(void **state)
{
    struct conf *c = *state, d;
    build_full(c);
    json_t *j = conf_to_json(c);
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 1);
    assert_int_equal(conf_from_json(&d, j, err, sizeof err), 0);
    json_t *j2 = conf_to_json(&d);
    assert_true(json_equal(j, j2));
    assert_int_equal(d.n_ports, c->n_ports);
    assert_int_equal(d.n_bridges, c->n_bridges);
    assert_memory_equal(d.ports, c->ports, c->n_ports * sizeof *c->ports);
    assert_memory_equal(d.bridges, c->bridges, c->n_bridges * sizeof *c->bridges);
    json_decref(j);
    json_decref(j2);
    conf_free(&d);

    /* clone is deep and equal */
    assert_int_equal(conf_clone(&d, c), 0);
    assert_memory_equal(d.ports, c->ports, c->n_ports * sizeof *c->ports);
    assert_ptr_not_equal(d.ports, c->ports);
    conf_free(&d);
}

static void expect_refused(const char *text, const char *says)
{
    struct conf d;
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (!j)
        fail_msg("bad test JSON %s: %s", text, je.text);
    d.n_ports = 12345; /* untouched on failure */
    int r = conf_from_json(&d, j, err, sizeof err);
    json_decref(j);
    if (r == 0 || !strstr(err, says))
        fail_msg("%s: got %d \"%s\", expected \"...%s...\"", text, r, err, says);
    assert_int_equal(d.n_ports, 12345);
}

static void test_json_refused(void **state)
{
    (void)state;
    expect_refused("[]", "not a JSON object");
    expect_refused("{}", "no \"version\"");
    expect_refused("{\"version\":\"1\"}", "no \"version\"");
    expect_refused("{\"version\":3}", "schema version 3");
    expect_refused("{\"version\":1,\"extra\":1}", "unknown key \"extra\"");
    expect_refused("{\"version\":1,\"bridges\":{}}", "not an array");
    expect_refused("{\"version\":1,\"ports\":3}", "not an array");
    expect_refused("{\"version\":1,\"bridges\":[1]}", "bridges[0] is not an object");
    expect_refused("{\"version\":1,\"bridges\":[{}]}", "no \"name\"");
    expect_refused("{\"version\":1,\"bridges\":[{\"name\":\"a b\"}]}", "invalid");
    expect_refused("{\"version\":1,\"bridges\":[{\"name\":\"b\"},{\"name\":\"b\"}]}",
                   "already exists");
    expect_refused("{\"version\":1,\"bridges\":[{\"name\":\"b\",\"ageing\":\"5\"}]}",
                   "integer");
    expect_refused("{\"version\":1,\"bridges\":[{\"name\":\"b\",\"ageing\":-5}]}",
                   "ageing=-5");
    expect_refused("{\"version\":1,\"bridges\":[{\"name\":\"b\",\"x\":1}]}", "unknown key");
    expect_refused("{\"version\":1,\"ports\":[{\"name\":\"p\",\"bridge\":\"b\"}]}",
                   "bridge b does not exist");
    const char *pre = "{\"version\":1,\"bridges\":[{\"name\":\"b\"}],\"ports\":[";
    struct {
        const char *ports, *says;
    } cases[] = {
        {"{\"bridge\":\"b\"}", "no \"name\""},
        {"{\"name\":\"p\"}", "no \"bridge\""},
        {"{\"name\":\"p\",\"bridge\":\"b\",\"tag\":\"10\"}", "must be an integer"},
        {"{\"name\":\"p\",\"bridge\":\"b\",\"tag\":5000}", "tag=5000"},
        {"{\"name\":\"p\",\"bridge\":\"b\",\"type\":3}", "must be a string"},
        {"{\"name\":\"p\",\"bridge\":\"b\",\"type\":\"vxlan\"}", "needs vni=N"},
        {"{\"name\":\"p\",\"bridge\":\"b\",\"bogus\":1}", "unknown key"},
        {"{\"name\":\"p\",\"bridge\":\"b\"},{\"name\":\"p\",\"bridge\":\"b\"}", "already exists"},
        {"{\"name\":\"p\",\"bridge\":\"b\",\"vlan_mode\":\"access\"}", "needs tag"},
        {"{\"name\":\"p\",\"bridge\":\"b\",\"mtu\":1.5}", "must be an integer"},
        {"7", "ports[0] is not an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[512];
        snprintf(text, sizeof text, "%s%s]}", pre, cases[i].ports);
        expect_refused(text, cases[i].says);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_vlan_list),
        cmocka_unit_test(test_json_refused),
        cmocka_unit_test_setup_teardown(test_bridges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_bridge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vlans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_del_port, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_roundtrip, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
