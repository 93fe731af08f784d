/* vxlan port: header fields, outer UDP header and source-port entropy, the
 * remote VTEP table, configuration words, and the port itself over loopback
 * (encap, decap, malformed outer packets, learning, a socket shared by two
 * ports). */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "conf.h"
#include "port_vxlan.h"

static const uint8_t mac_a[6] = {0x52, 0x54, 0, 0, 0, 0x0a};
static const uint8_t mac_b[6] = {0x52, 0x54, 0, 0, 0, 0x0b};

/* ---- header ---- */

static void test_hdr(void **state)
{
    uint8_t h[8];
    uint32_t vni;

    (void)state;
    vxlan_hdr_write(h, 0x123456);
    assert_int_equal(h[0], 0x08); /* I flag only */
    assert_int_equal(h[1] | h[2] | h[3] | h[7], 0);
    assert_int_equal(h[4], 0x12);
    assert_int_equal(h[5], 0x34);
    assert_int_equal(h[6], 0x56);

    uint8_t d[8 + 14] = {0};
    memcpy(d, h, 8);
    assert_int_equal(vxlan_hdr_parse(d, sizeof(d), &vni), -1);
    assert_int_equal(vni, 0x123456);
    /* reserved bits are ignored on receive */
    d[0] |= 0xf7 & ~0x08;
    d[1] = d[2] = d[3] = d[7] = 0xff;
    assert_int_equal(vxlan_hdr_parse(d, sizeof(d), &vni), -1);
    assert_int_equal(vni, 0x123456);
    /* I flag clear */
    d[0] = 0;
    assert_int_equal(vxlan_hdr_parse(d, sizeof(d), &vni), DROP_VXLAN_BAD_FLAGS);
    /* short: no room for the header and an Ethernet header */
    d[0] = 0x08;
    assert_int_equal(vxlan_hdr_parse(d, 8, &vni), DROP_VXLAN_SHORT);
    assert_int_equal(vxlan_hdr_parse(d, 8 + 13, &vni), DROP_VXLAN_SHORT);
    assert_int_equal(vxlan_hdr_parse(d, 3, &vni), DROP_VXLAN_SHORT);
}

static void test_udp_hdr(void **state)
{
    uint8_t h[8];

    (void)state;
    vxlan_udp_write(h, 50000, 4789, 100);
    assert_int_equal(h[0] << 8 | h[1], 50000);
    assert_int_equal(h[2] << 8 | h[3], 4789);
    assert_int_equal(h[4] << 8 | h[5], 8 + 8 + 100);
    assert_int_equal(h[6] | h[7], 0); /* checksum zero over IPv4, RFC 7348 §5 */
}

/* An IPv4/UDP frame in a pkt's head. */
static void make_udp_pkt(struct pkt *p, const uint8_t *dst, const uint8_t *src,
                         uint32_t sip, uint32_t dip, uint16_t sport, uint16_t dport)
{
    uint8_t *h = p->head;

    memset(p, 0, sizeof(*p));
    memcpy(h, dst, 6);
    memcpy(h + 6, src, 6);
    h[12] = 0x08;
    h[13] = 0x00;
    h[14] = 0x45;
    h[14 + 9] = 17;
    memcpy(h + 14 + 12, &sip, 4);
    memcpy(h + 14 + 16, &dip, 4);
    h[34] = (uint8_t)(sport >> 8);
    h[35] = (uint8_t)sport;
    h[36] = (uint8_t)(dport >> 8);
    h[37] = (uint8_t)dport;
    p->head_len = 14 + 20 + 8;
    p->len = p->head_len;
    p->ethertype = ETH_TYPE_IP;
}

static void test_src_port_entropy(void **state)
{
    struct pkt *p = calloc(1, sizeof(*p));
    uint16_t first, seen[256];
    unsigned distinct = 0;

    (void)state;
    make_udp_pkt(p, mac_a, mac_b, htonl(0x0a000001), htonl(0x0a000002), 1000, 53);
    first = vxlan_src_port(p);
    /* one flow, one port: the underlay keeps it in order */
    assert_int_equal(vxlan_src_port(p), first);
    for (unsigned i = 0; i < 256; i++) {
        make_udp_pkt(p, mac_a, mac_b, htonl(0x0a000001), htonl(0x0a000002),
                     (uint16_t)(1000 + i), 53);
        uint16_t s = vxlan_src_port(p);
        bool dup = false;
        assert_true(s >= VXLAN_SPORT_MIN);
        for (unsigned k = 0; k < distinct; k++)
            dup |= seen[k] == s;
        if (!dup)
            seen[distinct++] = s;
    }
    /* L4 ports alone spread flows over many source ports */
    assert_true(distinct > 240);
    /* and the addresses count too */
    make_udp_pkt(p, mac_a, mac_b, htonl(0x0a000003), htonl(0x0a000002), 1000, 53);
    assert_int_not_equal(vxlan_src_port(p), first);
    free(p);
}

/* ---- VTEP table ---- */

static void test_vtep_table(void **state)
{
    struct vtep_table *t = calloc(1, sizeof(*t));
    uint32_t ip1 = htonl(0x0a000001), ip2 = htonl(0x0a000002);

    (void)state;
    t->ageing = 300;
    assert_int_equal(vtep_lookup(t, 0, mac_a, 1000), 0);
    vtep_learn(t, 0, mac_a, ip1, 1000);
    assert_int_equal(vtep_lookup(t, 0, mac_a, 1000), ip1);
    /* per VNI index */
    assert_int_equal(vtep_lookup(t, 1, mac_a, 1000), 0);
    /* moves */
    vtep_learn(t, 0, mac_a, ip2, 1001);
    assert_int_equal(vtep_lookup(t, 0, mac_a, 1001), ip2);
    assert_int_equal(t->moves, 1);
    /* ages */
    assert_int_equal(vtep_lookup(t, 0, mac_a, 1302), 0);
    /* pinned entries from discovery do not age, and learning moves them */
    vtep_pin(t, 0, mac_b, ip1);
    assert_int_equal(vtep_lookup(t, 0, mac_b, 1000000), ip1);
    vtep_learn(t, 0, mac_b, ip2, 5000);
    assert_int_equal(vtep_lookup(t, 0, mac_b, 5000), ip2);
    /* forgetting a VTEP drops what pointed at it */
    vtep_learn(t, 3, mac_a, ip1, 5000);
    assert_int_equal(vtep_forget_ip(t, ip1), 1);
    assert_int_equal(vtep_lookup(t, 3, mac_a, 5000), 0);
    assert_int_equal(vtep_lookup(t, 0, mac_b, 5000), ip2);
    /* a full set replaces the stalest, never allocates */
    for (unsigned i = 0; i < 20000; i++) {
        uint8_t m[6] = {0x52, 0, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i, 1};
        vtep_learn(t, 0, m, ip1, 6000 + i);
    }
    free(t);
}

/* ---- decapsulation (the receive path's pure part) ---- */

static void test_decap(void **state)
{
    struct vtep_table *t = calloc(1, sizeof(*t));
    uint16_t vlans[2] = {10, 20};
    struct vxlan_rx_map plain = {.map = false, .vlan = vlans, .vteps = t};
    struct vxlan_rx_map map = {.map = true, .vlan = vlans, .vteps = t};
    uint32_t src = htonl(0xc0000201);
    uint8_t d[8 + 18 + 46];
    struct pkt pk;

    (void)state;
    t->ageing = 300;
    memset(d, 0, sizeof(d));
    vxlan_hdr_write(d, 100);
    memcpy(d + 8, mac_b, 6);
    memcpy(d + 8 + 6, mac_a, 6);
    d[8 + 12] = 0x08;
    /* untagged: the frame stays in the datagram, its source's VTEP learned */
    assert_int_equal(vxlan_decap(d, 8 + 60, &plain, 1, src, 1000, &pk), -1);
    assert_int_equal(pk.len, 60);
    assert_int_equal(pk.vlan, 0);
    assert_int_equal(vtep_lookup(t, 1, mac_a, 1000), src);
    assert_int_equal(vxlan_decap(d, 8 + 60, &map, 1, src, 1000, &pk), -1);
    assert_int_equal(pk.vlan, 20);
    /* tagged: kept as the received TCI, refused on a map port */
    memmove(d + 8 + 16, d + 8 + 12, 46);
    d[8 + 12] = 0x81;
    d[8 + 13] = 0x00;
    d[8 + 14] = 0xa0;
    d[8 + 15] = 7;
    assert_int_equal(vxlan_decap(d, sizeof(d), &plain, 0, src, 1000, &pk), -1);
    assert_int_equal(pk.vlan, 0xa007);
    assert_int_equal(pk.len, 60);
    assert_int_equal(vxlan_decap(d, sizeof(d), &map, 0, src, 1000, &pk),
                     DROP_VLAN_TAGGED_ACCESS);
    /* short: no Ethernet header, or a tag cut off */
    assert_int_equal(vxlan_decap(d, 8 + 13, &plain, 0, src, 1000, &pk), DROP_VXLAN_SHORT);
    assert_int_equal(vxlan_decap(d, 8 + 16, &plain, 0, src, 1000, &pk), DROP_VXLAN_SHORT);
    free(t);
}

/* ---- configuration ---- */

static int add_port(struct conf *c, const char *name, const char *const *opts, size_t n,
                    char *err)
{
    return conf_add_port(c, "br0", name, opts, n, err, 256);
}

static void test_conf_words(void **state)
{
    struct conf c;
    char err[256];
    (void)state;
    conf_init(&c);
    assert_int_equal(conf_add_bridge(&c, "br0", err, sizeof(err)), 0);

    const char *ok1[] = {"type=vxlan", "vni=100", "remote=10.0.0.2,10.0.0.3",
                         "local=10.0.0.1", "tag=10"};
    assert_int_equal(add_port(&c, "vx1", ok1, 5, err), 0);
    struct conf_port *p = conf_find_port(&c, "vx1");
    assert_int_equal(p->vni, 100);
    assert_int_equal(p->dstport, 4789);
    assert_int_equal(p->vlan.mode, VLAN_MODE_ACCESS);
    assert_int_equal(p->vlan.tag, 10);

    /* the same VNI on the same socket is taken */
    const char *dup[] = {"type=vxlan", "vni=100", "local=10.0.0.1"};
    assert_int_equal(add_port(&c, "vx2", dup, 3, err), -EEXIST);
    /* another dstport is another socket */
    const char *other[] = {"type=vxlan", "vni=100", "local=10.0.0.1", "dstport=8472"};
    assert_int_equal(add_port(&c, "vx2", other, 4, err), 0);

    /* a trunk of VNIs: the map is the VLAN list */
    const char *map[] = {"type=vxlan", "vni=200:20,300:30", "dstport=4790", "native=20"};
    if (add_port(&c, "vx3", map, 4, err))
        fail_msg("%s", err);
    p = conf_find_port(&c, "vx3");
    assert_int_equal(p->n_vni_map, 2);
    assert_int_equal(p->vni_map[1].vni, 300);
    assert_int_equal(p->vni_map[1].vlan, 30);
    assert_false(p->vlan.trunks_all);
    assert_true(conf_vlan_trunks(&p->vlan, 30));
    assert_false(conf_vlan_trunks(&p->vlan, 40));

    /* JSON round trip keeps the map */
    json_t *j = conf_to_json(&c);
    struct conf c2;
    assert_int_equal(conf_from_json(&c2, j, err, sizeof(err)), 0);
    p = conf_find_port(&c2, "vx3");
    assert_non_null(p);
    assert_int_equal(p->n_vni_map, 2);
    assert_int_equal(conf_find_port(&c2, "vx1")->vni, 100);
    conf_free(&c2);
    json_decref(j);

    /* refusals, each with a sentence */
    const char *bad[][3] = {
        {"type=vxlan", "remote=10.0.0.2", NULL},             /* no vni */
        {"type=vxlan", "vni=16777216", NULL},                /* too big */
        {"type=vxlan", "vni=1", "remote=10.0.0.2,"},         /* trailing comma */
        {"type=vxlan", "vni=1", "remote=fe80::1"},           /* IPv6 underlay */
        {"type=vxlan", "vni=1", "remote=224.0.0.1"},         /* multicast */
        {"type=vxlan", "vni=1:10,2:10", NULL},               /* VLAN twice */
        {"type=vxlan", "vni=1:10", "tag=5"},                 /* map on access */
        {"type=vxlan", "vni=1:10", "trunks=10,20"},          /* map and trunks */
        {"type=vxlan", "vni=1:5000", NULL},                  /* VLAN range */
        {"type=vxlan", "vni=1", "dstport=0"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n = bad[i][2] ? 3 : 2;
        err[0] = '\0';
        assert_int_equal(add_port(&c, "bad", bad[i], n, err), -EINVAL);
        assert_true(strlen(err) > 10);
    }
    assert_null(conf_find_port(&c, "bad"));
    conf_free(&c);
}

/* ---- the port over loopback ---- */

struct peer {
    int fd;
    uint32_t ip;
};

static uint16_t test_port; /* dstport of this run */

static void peer_open(struct peer *pe, const char *ip)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(test_port)};
    inet_pton(AF_INET, ip, &sa.sin_addr);
    pe->ip = sa.sin_addr.s_addr;
    pe->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    assert_true(pe->fd >= 0);
    assert_int_equal(bind(pe->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
}

static void peer_send(struct peer *pe, const void *d, size_t len)
{
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(test_port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    assert_int_equal(sendto(pe->fd, d, len, 0, (struct sockaddr *)&to, sizeof(to)),
                     (ssize_t)len);
}

/* Receives one datagram within 1 s; returns its length or -1. */
static ssize_t peer_recv(struct peer *pe, uint8_t *buf, size_t len, uint16_t *sport)
{
    struct pollfd pfd = {.fd = pe->fd, .events = POLLIN};
    struct sockaddr_in from;
    socklen_t fl = sizeof(from);
    ssize_t r;

    if (poll(&pfd, 1, 1000) <= 0)
        return -1;
    r = recvfrom(pe->fd, buf, len, 0, (struct sockaddr *)&from, &fl);
    if (sport)
        *sport = ntohs(from.sin_port);
    return r;
}

static struct port *open_port(struct conf *c, const char *name, const char *const *opts,
                              size_t n)
{
    char err[256];
    struct port *p = calloc(1, sizeof(*p));
    struct port_env env = {0};

    if (conf_add_port(c, "br0", name, opts, n, err, sizeof(err)))
        fail_msg("%s: %s", name, err);
    p->conf = *conf_find_port(c, name);
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->ops = &port_vxlan_ops;
    if (p->ops->open(p, &p->conf, &env, err, sizeof(err)) < 0)
        fail_msg("open %s: %s", name, err);
    return p;
}

static void close_port(struct port *p)
{
    p->ops->close(p);
    free(p);
}

/* A frame as a VXLAN payload: header for vni, then dst, src, ethertype, body. */
static size_t make_payload(uint8_t *d, uint32_t vni, const uint8_t *dst, const uint8_t *src,
                           size_t body)
{
    vxlan_hdr_write(d, vni);
    memcpy(d + 8, dst, 6);
    memcpy(d + 14, src, 6);
    d[20] = 0x08;
    d[21] = 0x00;
    memset(d + 22, 0xab, body);
    return 22 + body;
}

static int rx_wait(struct port *p, struct pkt *pkts, int max)
{
    for (int i = 0; i < 100; i++) {
        int n = p->ops->rx_burst(p, 0, pkts, max);
        if (n)
            return n;
        usleep(10000);
    }
    return 0;
}

static void test_port_loopback(void **state)
{
    struct conf c;
    char err[256], opt_port[32];
    struct peer a, b;
    uint8_t buf[2048], d[256];
    struct pkt *pkts = calloc(PKT_BATCH, sizeof(*pkts));
    struct pkt *tx = calloc(1, sizeof(*tx));
    uint16_t sport, tci = 0;
    ssize_t r;

    (void)state;
    test_port = (uint16_t)(40000 + getpid() % 9000);
    snprintf(opt_port, sizeof(opt_port), "dstport=%u", test_port);
    conf_init(&c);
    conf_add_bridge(&c, "br0", err, sizeof(err));
    peer_open(&a, "127.0.0.2");
    peer_open(&b, "127.0.0.3");
    const char *opts[] = {"type=vxlan", "vni=5000", "local=127.0.0.1",
                          "remote=127.0.0.2,127.0.0.3", opt_port};
    struct port *p = open_port(&c, "vx", opts, 5);

    /* encap: an unknown destination is flooded to both remotes */
    make_udp_pkt(tx, mac_b, mac_a, htonl(0x0a000001), htonl(0x0a000002), 1234, 80);
    const struct pkt *txp = tx;
    p->ops->tx_burst(p, (struct pkt *const *)&txp, &tci, 1);
    for (int i = 0; i < 2; i++) {
        struct peer *pe = i ? &b : &a;
        r = peer_recv(pe, buf, sizeof(buf), &sport);
        assert_int_equal(r, 8 + 42);
        assert_int_equal(buf[0], 0x08);
        assert_int_equal(buf[1] | buf[2] | buf[3] | buf[7], 0);
        assert_int_equal(buf[4] << 16 | buf[5] << 8 | buf[6], 5000);
        assert_memory_equal(buf + 8, tx->head, 42);
        /* the source port carries the flow (raw socket; else dstport) */
        assert_true(sport == vxlan_src_port(tx) || sport == test_port);
    }
    assert_int_equal(p->stats.tx_packets, 2);

    /* malformed outer packets, each dropped and counted */
    size_t n = make_payload(d, 5000, mac_a, mac_b, 30);
    peer_send(&a, d, 5);                       /* short */
    peer_send(&a, d, 8 + 10);                  /* truncated inner frame */
    d[0] = 0;
    peer_send(&a, d, n);                       /* I flag clear */
    d[0] = 0x08;
    d[6] = 0x77;                               /* unknown VNI */
    peer_send(&a, d, n);
    make_payload(d, 5000, mac_a, mac_b, 30);
    d[1] = 0xff;                               /* reserved bits: ignored */
    peer_send(&b, d, n);                       /* the good one, from .3 */
    usleep(50000);
    int got = rx_wait(p, pkts, PKT_BATCH);
    assert_int_equal(got, 1);
    assert_int_equal(pkts[0].len, 14 + 30);
    assert_memory_equal(pkt_src_mac(&pkts[0]), mac_b, 6);
    assert_int_equal(pkts[0].vlan, 0);
    p->ops->rx_done(p, 0, pkts, got);
    assert_int_equal(p->stats.drops[DROP_VXLAN_SHORT], 2);
    assert_int_equal(p->stats.drops[DROP_VXLAN_BAD_FLAGS], 1);
    assert_int_equal(p->stats.drops[DROP_VXLAN_UNKNOWN_VNI], 1);
    assert_int_equal(p->stats.rx_packets, 1);

    /* learning: mac_b is behind .3 now, so a frame to it goes only there */
    make_udp_pkt(tx, mac_b, mac_a, htonl(0x0a000001), htonl(0x0a000002), 1, 2);
    p->ops->tx_burst(p, (struct pkt *const *)&txp, &tci, 1);
    assert_true(peer_recv(&b, buf, sizeof(buf), NULL) > 0);
    assert_int_equal(peer_recv(&a, buf, sizeof(buf), NULL), -1);

    /* an inner 802.1Q tag is carried on a single-VNI port */
    tci = 0x2007;
    make_udp_pkt(tx, mac_b, mac_a, htonl(0x0a000001), htonl(0x0a000002), 1, 2);
    p->ops->tx_burst(p, (struct pkt *const *)&txp, &tci, 1);
    r = peer_recv(&b, buf, sizeof(buf), NULL);
    assert_int_equal(r, 8 + 42 + 4);
    assert_int_equal(buf[8 + 12] << 8 | buf[8 + 13], 0x8100);
    assert_int_equal(buf[8 + 14] << 8 | buf[8 + 15], 0x2007);
    tci = 0;

    /* a TSO super-frame is refused before encapsulation */
    tx->vnet.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
    p->ops->tx_burst(p, (struct pkt *const *)&txp, &tci, 1);
    assert_int_equal(p->stats.drops[DROP_GSO_UNSUPPORTED], 1);
    tx->vnet.gso_type = 0;

    /* a second port on the same socket: datagrams of its VNI reach it even
     * when the first port reads the socket */
    const char *opts2[] = {"type=vxlan", "vni=6000", "local=127.0.0.1", opt_port};
    struct port *p2 = open_port(&c, "vx2", opts2, 4);
    make_payload(d, 6000, mac_a, mac_b, 30);
    peer_send(&a, d, n);
    usleep(50000);
    assert_int_equal(p->ops->rx_burst(p, 0, pkts, PKT_BATCH), 0);
    assert_true(p2->ops->rx_pending(p2, 0));
    got = rx_wait(p2, pkts, PKT_BATCH);
    assert_int_equal(got, 1);
    assert_memory_equal(pkt_src_mac(&pkts[0]), mac_b, 6);
    p2->ops->rx_done(p2, 0, pkts, got);
    assert_false(p2->ops->rx_pending(p2, 0));
    assert_int_equal(p2->stats.rx_packets, 1);
    close_port(p2);

    close_port(p);
    close(a.fd);
    close(b.fd);
    conf_free(&c);
    free(pkts);
    free(tx);
}

/* A trunk of VNIs: each VNI is one bridge VLAN, inner frames untagged. */
static void test_port_vni_map(void **state)
{
    struct conf c;
    char err[256], opt_port[32];
    struct peer a;
    uint8_t buf[2048], d[256];
    struct pkt *pkts = calloc(PKT_BATCH, sizeof(*pkts));
    struct pkt *tx = calloc(1, sizeof(*tx));
    uint16_t tci = 30; /* what a trunk's egress rule gives */

    (void)state;
    test_port = (uint16_t)(30000 + getpid() % 9000);
    snprintf(opt_port, sizeof(opt_port), "dstport=%u", test_port);
    conf_init(&c);
    conf_add_bridge(&c, "br0", err, sizeof(err));
    peer_open(&a, "127.0.0.2");
    const char *opts[] = {"type=vxlan", "vni=200:20,300:30", "local=127.0.0.1",
                          "remote=127.0.0.2", opt_port};
    struct port *p = open_port(&c, "vx", opts, 5);

    make_udp_pkt(tx, mac_b, mac_a, 1, 2, 3, 4);
    tx->vlan = 30;
    const struct pkt *txp = tx;
    p->ops->tx_burst(p, (struct pkt *const *)&txp, &tci, 1);
    assert_int_equal(peer_recv(&a, buf, sizeof(buf), NULL), 8 + 42);
    assert_int_equal(buf[4] << 16 | buf[5] << 8 | buf[6], 300);
    assert_int_equal(buf[8 + 12], 0x08); /* untagged inside */
    /* a VLAN without a VNI */
    tx->vlan = 40;
    p->ops->tx_burst(p, (struct pkt *const *)&txp, &tci, 1);
    assert_int_equal(p->stats.drops[DROP_VXLAN_NO_VNI], 1);

    size_t n = make_payload(d, 200, mac_a, mac_b, 30);
    peer_send(&a, d, n);
    usleep(50000);
    int got = rx_wait(p, pkts, PKT_BATCH);
    assert_int_equal(got, 1);
    assert_int_equal(pkts[0].vlan, 20); /* VNI 200 is VLAN 20 */
    p->ops->rx_done(p, 0, pkts, got);

    close_port(p);
    close(a.fd);
    conf_free(&c);
    free(pkts);
    free(tx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hdr),
        cmocka_unit_test(test_udp_hdr),
        cmocka_unit_test(test_src_port_entropy),
        cmocka_unit_test(test_vtep_table),
        cmocka_unit_test(test_decap),
        cmocka_unit_test(test_conf_words),
        cmocka_unit_test(test_port_loopback),
        cmocka_unit_test(test_port_vni_map),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
