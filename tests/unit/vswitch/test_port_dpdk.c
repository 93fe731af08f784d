/* The dpdk port type against a DPDK net_ring device, whose transmit ring is
 * its receive ring: frames sent through port_dpdk_ops come back through it, so
 * both conversions (gathered frame -> mbufs, mbufs -> packet) are checked on
 * real mbufs, single- and multi-segment, tagged and untagged. Needs root
 * (the EAL); skipped otherwise. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "dpdk_mbuf.h"
#include "port.h"

static struct port port;

static int open_port(void **state)
{
    struct conf_port c;
    struct port_env env;
    char err[256];
    (void)state;
    if (geteuid() != 0) {
        fprintf(stderr, "test_port_dpdk: not root, the EAL cannot start: skipped\n");
        return -1;
    }
    memset(&c, 0, sizeof c);
    memset(&env, 0, sizeof env);
    memset(&port, 0, sizeof port);
    strcpy(c.name, "d0");
    c.type = PORT_TYPE_DPDK;
    strcpy(c.devargs, "net_ring0");
    port.conf = c;
    port.ops = port_ops_for(PORT_TYPE_DPDK);
    assert_non_null(port.ops);
    if (port.ops->open(&port, &c, &env, err, sizeof err) < 0) {
        fprintf(stderr, "cannot open net_ring0: %s\n", err);
        return -1;
    }
    return 0;
}

static int close_port(void **state)
{
    (void)state;
    port.ops->close(&port);
    return 0;
}

/* A frame of len bytes: broadcast destination, a known source, payload i*13. */
static void make_frame(uint8_t *f, size_t len)
{
    memset(f, 0xff, 6);
    memcpy(f + 6, "\x02\x00\x00\x00\x00\x07", 6);
    f[12] = 0x08;
    f[13] = 0x00;
    for (size_t i = 14; i < len; i++)
        f[i] = (uint8_t)(i * 13);
}

/* pkt -> flat bytes, as a transmit would gather it (tag left out) */
static size_t flatten(const struct pkt *p, uint8_t *out)
{
    size_t n = p->head_len;
    memcpy(out, p->head, p->head_len);
    for (unsigned i = 0; i < p->nsegs; i++) {
        memcpy(out + n, p->segs[i].addr, p->segs[i].len);
        n += p->segs[i].len;
    }
    return n;
}

static void test_loopback(void **state)
{
    static const size_t lens[] = {60, 1514, 4000, 9000};
    static uint8_t frames[4][9000], got[9100];
    struct pkt in[4], out[PKT_BATCH];
    struct pkt *ptrs[4];
    uint16_t tcis[4] = {0, 0x2005, 0, 0};
    struct vring_buf b;
    uint16_t tci;
    int n;
    (void)state;
    for (int i = 0; i < 4; i++) {
        make_frame(frames[i], lens[i]);
        b.addr = frames[i];
        b.len = (uint32_t)lens[i];
        assert_true(pkt_from_bufs(&in[i], &b, 1, b.len, &tci));
        memset(&in[i].vnet, 0, sizeof in[i].vnet);
        ptrs[i] = &in[i];
    }
    port.ops->tx_burst(&port, ptrs, tcis, 4);
    n = port.ops->rx_burst(&port, 0, out, PKT_BATCH);
    /* 4000 and 9000 bytes need chained mbufs; a device without multi-segment
     * transmit drops them as mtu */
    assert_int_equal((uint64_t)n + port.stats.drops[DROP_MTU], 4);
    assert_int_equal(port.stats.tx_packets, (uint64_t)n);
    assert_int_equal(port.stats.rx_packets, (uint64_t)n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(out[i].len, lens[i]);
        assert_int_equal(out[i].vlan, tcis[i]);
        assert_int_equal(flatten(&out[i], got), lens[i]);
        assert_memory_equal(got, frames[i], lens[i]);
        if (lens[i] > RTE_MBUF_DEFAULT_DATAROOM)
            assert_true(out[i].nsegs >= 2);
    }
    port.ops->rx_done(&port, 0, out, n);
    fprintf(stderr, "net_ring0: %d of 4 frames back (multi-segment: %s)\n", n,
            n == 4 ? "yes" : "no");
}

static void test_mbuf_conversion(void **state)
{
    struct rte_mempool *mp = rte_pktmbuf_pool_create("t_conv", 63, 0, 0,
                                                     RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
    static uint8_t a[3000], bb[2500], flat[5600];
    struct iovec iov[2] = {{a, sizeof a}, {bb, sizeof bb}};
    struct rte_mbuf *m = NULL;
    struct pkt p;
    (void)state;
    assert_non_null(mp);
    make_frame(a, sizeof a);
    memset(bb, 0x5a, sizeof bb);
    /* single-segment device: 5500 bytes do not fit one mbuf */
    assert_int_equal(dpdk_mbuf_from_iov(mp, iov, 2, false, &m), DROP_MTU);
    assert_int_equal(dpdk_mbuf_from_iov(mp, iov, 2, true, &m), DROP__COUNT);
    assert_int_equal(m->pkt_len, 5500);
    assert_int_equal(m->nb_segs, 3);
    assert_int_equal(dpdk_mbuf_to_pkt(m, &p), DROP__COUNT);
    assert_int_equal(p.len, 5500);
    assert_int_equal(flatten(&p, flat), 5500);
    assert_memory_equal(flat, a, sizeof a);
    assert_memory_equal(flat + sizeof a, bb, sizeof bb);
    rte_pktmbuf_free(m);
    /* a runt */
    struct iovec small = {a, 10};
    assert_int_equal(dpdk_mbuf_from_iov(mp, &small, 1, true, &m), DROP__COUNT);
    assert_int_equal(dpdk_mbuf_to_pkt(m, &p), DROP_RUNT);
    rte_pktmbuf_free(m);
    /* pool exhausted: no_buffer, nothing leaked */
    struct rte_mbuf *all[63];
    unsigned k = 0;
    while (k < 63 && (all[k] = rte_pktmbuf_alloc(mp)))
        k++;
    assert_int_equal(dpdk_mbuf_from_iov(mp, iov, 2, true, &m), DROP_NO_BUFFER);
    rte_pktmbuf_free(all[--k]); /* one free: the head fits, the chain does not */
    assert_int_equal(dpdk_mbuf_from_iov(mp, iov, 2, true, &m), DROP_NO_BUFFER);
    assert_int_equal(rte_mempool_avail_count(mp), 1);
    while (k)
        rte_pktmbuf_free(all[--k]);
    rte_mempool_free(mp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loopback),
        cmocka_unit_test(test_mbuf_conversion),
    };
    return cmocka_run_group_tests(tests, open_port, close_port);
}
