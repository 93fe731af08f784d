/* What the uplink port types share (uplink.c): UMEM frame accounting, copying
 * a gathered frame into a fixed buffer, the egress checks, ip= as the uplink
 * address; and the conf model's afxdp/dpdk keys. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "conf.h"
#include "config.h"
#include "uplink.h"

#define FRAME 4096

static void test_frames_lowest_first_and_bounded(void **state)
{
    struct umem_frames f;
    (void)state;
    assert_int_equal(umem_frames_init(&f, 8 * FRAME, 4, FRAME), 0);
    assert_int_equal(f.n, 4);
    assert_int_equal(umem_frames_peek(&f), 8 * FRAME);
    assert_int_equal(umem_frames_pop(&f), 8 * FRAME);
    assert_int_equal(umem_frames_pop(&f), 9 * FRAME);
    assert_int_equal(umem_frames_pop(&f), 10 * FRAME);
    assert_int_equal(umem_frames_pop(&f), 11 * FRAME);
    assert_true(umem_frames_empty(&f));
    for (int i = 0; i < 4; i++)
        assert_true(umem_frames_push(&f, (uint64_t)(8 + i) * FRAME));
    /* a fifth frame cannot belong to a pool of four: refused, not stored */
    assert_false(umem_frames_push(&f, 12 * FRAME));
    assert_int_equal(f.n, 4);
    umem_frames_free(&f);
}

/* The tx pool as port_afxdp.c drives it: frames go out to a simulated tx ring,
 * come back through a completion ring in bursts, and none is ever lost or
 * handed out twice. */
static void test_frames_conserved_through_tx_and_completion(void **state)
{
    enum { N = 64 };
    struct umem_frames f;
    uint64_t ring[N];
    unsigned in_ring = 0;
    bool out[N] = {0};
    unsigned seed = 1;
    (void)state;
    assert_int_equal(umem_frames_init(&f, 0, N, FRAME), 0);
    for (int round = 0; round < 10000; round++) {
        seed = seed * 1103515245 + 12345;
        if ((seed >> 16) % 3 && !umem_frames_empty(&f)) {
            uint64_t a = umem_frames_peek(&f);
            assert_int_equal(a % FRAME, 0);
            assert_false(out[a / FRAME]);
            assert_int_equal(umem_frames_pop(&f), a);
            out[a / FRAME] = true;
            ring[in_ring++] = a;
        } else {
            unsigned k = in_ring ? (seed >> 8) % (in_ring + 1) : 0;
            for (unsigned i = 0; i < k; i++) {
                uint64_t a = ring[--in_ring];
                out[a / FRAME] = false;
                assert_true(umem_frames_push(&f, a));
            }
        }
        assert_int_equal(f.n + in_ring, N);
    }
    umem_frames_free(&f);
}

static void test_iov_copy(void **state)
{
    uint8_t a[5] = {1, 2, 3, 4, 5}, b[3] = {6, 7, 8}, dst[8];
    struct iovec iov[2] = {{a, 5}, {b, 3}};
    (void)state;
    assert_int_equal(uplink_iov_len(iov, 2), 8);
    memset(dst, 0, sizeof dst);
    assert_int_equal(uplink_iov_copy(dst, 8, iov, 2), 8);
    assert_memory_equal(dst, "\1\2\3\4\5\6\7\10", 8);
    /* one byte short: nothing copied */
    memset(dst, 0xee, sizeof dst);
    assert_int_equal(uplink_iov_copy(dst, 7, iov, 2), 0);
    assert_int_equal(dst[0], 0xee);
}

static void test_tx_prepare(void **state)
{
    struct pkt p;
    (void)state;
    memset(&p, 0, sizeof p);
    assert_int_equal(uplink_tx_prepare(&p), DROP__COUNT);
    p.vnet.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
    assert_int_equal(uplink_tx_prepare(&p), DROP_GSO_UNSUPPORTED);
    p.vnet.gso_type = VIRTIO_NET_HDR_GSO_NONE;
    p.vnet.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM; /* csum_start beyond the frame */
    p.vnet.csum_start = 200;
    p.len = p.head_len = 60;
    assert_int_equal(uplink_tx_prepare(&p), DROP_BAD_OFFLOAD);
}

static void test_addr_from_conf(void **state)
{
    struct conf_port c;
    uint32_t a;
    uint8_t plen;
    (void)state;
    memset(&c, 0, sizeof c);
    assert_int_equal(uplink_addr_from_conf(&c, &a, &plen), -1);
    strcpy(c.ip, "192.0.2.7/25");
    assert_int_equal(uplink_addr_from_conf(&c, &a, &plen), 0);
    assert_int_equal(a, inet_addr("192.0.2.7"));
    assert_int_equal(plen, 25);
    strcpy(c.ip, "fd00::1/64");
    assert_int_equal(uplink_addr_from_conf(&c, &a, &plen), -1);
    assert_int_equal(uplink_addr_of_ifname("no-such-if0", &a, &plen), -1);
}

static int add_port(struct conf *c, const char *name, const char *o1, const char *o2,
                    const char *o3, char *err)
{
    const char *opts[3];
    size_t n = 0;
    if (o1)
        opts[n++] = o1;
    if (o2)
        opts[n++] = o2;
    if (o3)
        opts[n++] = o3;
    return conf_add_port(c, "br0", name, opts, n, err, 256);
}

static void test_conf_keys(void **state)
{
    struct conf c;
    char err[256];
    (void)state;
    conf_init(&c);
    assert_int_equal(conf_add_bridge(&c, "br0", err, sizeof err), 0);
#ifdef HAVE_AFXDP
    assert_int_equal(add_port(&c, "u0", "type=afxdp", NULL, NULL, err), -EINVAL);
    assert_non_null(strstr(err, "needs dev=IFNAME"));
    assert_int_equal(add_port(&c, "u0", "type=afxdp", "dev=eth0", "queue=1024", err),
                     -EINVAL);
    assert_int_equal(add_port(&c, "u0", "type=afxdp", "dev=eth0", "queue=3", err), 0);
    assert_string_equal(conf_find_port(&c, "u0")->dev, "eth0");
    assert_int_equal(conf_find_port(&c, "u0")->queue, 3);
    assert_int_equal(add_port(&c, "u1", "type=afxdp", "dev=eth0", "queue=3", err), -EEXIST);
    assert_non_null(strstr(err, "already used by port u0"));
    assert_int_equal(add_port(&c, "u1", "type=afxdp", "dev=eth0", NULL, err), 0);
    assert_int_equal(conf_find_port(&c, "u1")->queue, 0);
    /* set-port moves it; the db form round-trips */
    const char *set[] = {"dev=eth1"};
    assert_int_equal(conf_set_port(&c, "u1", set, 1, err, sizeof err), 0);
    assert_string_equal(conf_find_port(&c, "u1")->dev, "eth1");
#else
    assert_int_equal(add_port(&c, "u0", "type=afxdp", "dev=eth0", NULL, err), -ENOTSUP);
#endif
#ifdef HAVE_DPDK
    assert_int_equal(add_port(&c, "d0", "type=dpdk", NULL, NULL, err), -EINVAL);
    assert_non_null(strstr(err, "needs devargs=STRING"));
    assert_int_equal(add_port(&c, "d0", "type=dpdk", "devargs=net_tap0,iface=x", NULL, err),
                     0);
    assert_int_equal(add_port(&c, "d1", "type=dpdk", "devargs=net_tap0,iface=y", NULL, err),
                     -EEXIST);
    assert_int_equal(add_port(&c, "d1", "type=dpdk", "devargs=net_tap1", NULL, err), 0);
#else
    assert_int_equal(add_port(&c, "d0", "type=dpdk", "devargs=net_null0", NULL, err),
                     -ENOTSUP);
#endif
    char big[CONF_DEVARGS_MAX + 16];
    memset(big, 'a', sizeof big);
    memcpy(big, "devargs=", 8);
    big[sizeof big - 1] = '\0';
    assert_int_equal(add_port(&c, "d2", "type=dpdk", big, NULL, err), -EINVAL);

    json_t *j = conf_to_json(&c);
    struct conf back;
    assert_int_equal(conf_from_json(&back, j, err, sizeof err), 0);
    assert_int_equal(back.n_ports, c.n_ports);
    for (size_t i = 0; i < c.n_ports; i++) {
        assert_string_equal(back.ports[i].dev, c.ports[i].dev);
        assert_int_equal(back.ports[i].queue, c.ports[i].queue);
        assert_string_equal(back.ports[i].devargs, c.ports[i].devargs);
    }
    json_decref(j);
    conf_free(&back);
    conf_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames_lowest_first_and_bounded),
        cmocka_unit_test(test_frames_conserved_through_tx_and_completion),
        cmocka_unit_test(test_iov_copy),
        cmocka_unit_test(test_tx_prepare),
        cmocka_unit_test(test_addr_from_conf),
        cmocka_unit_test(test_conf_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
