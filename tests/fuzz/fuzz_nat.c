/* The L3 gateway, NAT and connection tracking, through bridge_input() of a
 * configured switch: guests g1 (a trunk of every VLAN) and g2 on bridge br0,
 * the routed uplink `up` (192.0.2.2/24, gateway .1), network net0
 * (10.0.0.0/24, DHCP, SNAT to up, port forwards tcp 8080 -> 10.0.0.5:80 and
 * udp 5353 -> 10.0.0.6:53) and net1 (VLAN 20, 10.1.0.0/24, SNAT to up).
 * Conntrack is small (ct_max 4 and 3) and timeouts short, so a few packets
 * fill it and a few clock steps empty it.
 *
 * Input: records [ctl][len hi][len lo][frame]. ctl bits 0-1: the receiving
 * port (g1, g2, up, g1); 2-3: seconds the clock moves first (0, 1, 9, 130);
 * 4: the frame comes with a virtio NEEDS_CSUM request for its L4 checksum;
 * 5: keep the frame's checksums as they are (else they are made valid, so
 * the fuzzer gets past the checksum check); 6: received in two buffers;
 * 7: the control thread's expiry tick runs first. Consecutive records for
 * one port with neither clock step nor tick form one batch.
 *
 * Checked after every batch and at the end of an input: every transmitted
 * packet lies within its buffers and is as long as it says; a checksum that
 * was valid when the packet came in is valid when it leaves (our own
 * checksum, over the whole frame; a NEEDS_CSUM request completed as a
 * device would); the connection count of the table is the sum of the
 * networks' and within their ct_max; ct-show lists as many; expiry empties
 * the table and every count. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <urcu-qsbr.h>

#include "fuzz_world.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fw_world world;
static struct pkt batch[FW_BATCH];
static unsigned csum_in[FW_BATCH];
static uint64_t sent;

/* Checksum state of p as it would be on the wire (offload completed). */
static unsigned pkt_csum_state(const struct pkt *p)
{
    static uint8_t f[FW_FRAME_MAX + 64];
    size_t n = fw_flatten(p, 0, f, sizeof f);

    fw_complete_csum(&p->vnet, f, n);
    return fw_csum_state(f, n);
}

static void on_tx(struct port *out, struct pkt *p, uint16_t tci)
{
    static uint8_t f[FW_FRAME_MAX + 64];
    size_t n;

    (void)out;
    sent++;
    FW_CHECK(fw_pkt_in_bounds(&world, p));
    n = fw_flatten(p, tci, f, sizeof f);
    FW_CHECK(n == p->len + (tci ? VLAN_HLEN : 0u));
    if (tci)
        FW_CHECK(rd16(f + 12) == ETH_TYPE_VLAN && rd16(f + 14) == tci);
    if (p >= batch && p < batch + FW_BATCH) {
        unsigned before = csum_in[p - batch];
        unsigned now = pkt_csum_state(p);
        /* only an IPv4 packet that stayed one is compared (an ARP request
         * for its next hop takes its place while that is unknown) */
        if (p->ethertype == ETH_TYPE_IP)
            FW_CHECK((before & ~now) == 0);
    }
}

static void build_world(void)
{
    static const char *const up[] = {"type=tap", "ifname=fzup0", "ip=192.0.2.2/24",
                                     "gw=192.0.2.1"};
    static const char *const g1[] = {"mac=02:00:00:00:00:01"};
    static const char *const n0[] = {
        "bridge=br0", "subnet=10.0.0.0/24", "gateway=10.0.0.1", "dhcp=10.0.0.100-10.0.0.103",
        "nat=up", "ct_max=4", "reserve=02:00:00:00:00:05=10.0.0.5",
        "ct_timeout_udp=5", "ct_timeout_udp_stream=20", "ct_timeout_icmp=5",
        "ct_timeout_tcp_syn_sent=5", "ct_timeout_tcp_syn_recv=5",
        "ct_timeout_tcp_established=100", "ct_timeout_tcp_fin_wait=10",
        "ct_timeout_tcp_close_wait=10", "ct_timeout_tcp_last_ack=10",
        "ct_timeout_tcp_time_wait=10", "ct_timeout_tcp_close=2"};
    static const char *const n1[] = {"bridge=br0", "vlan=20", "subnet=10.1.0.0/24",
                                     "gateway=10.1.0.1", "nat=up", "ct_max=3"};
    static const char *const f1[] = {"proto=tcp", "port=8080", "to=10.0.0.5:80"};
    static const char *const f2[] = {"proto=udp", "port=5353", "to=10.0.0.6:53"};
    struct conf c;
    char err[256];

    conf_init(&c);
    if (conf_add_bridge(&c, "br0", err, sizeof err) ||
        conf_add_port(&c, "br0", "g1", g1, 1, err, sizeof err) ||
        conf_add_port(&c, "br0", "g2", NULL, 0, err, sizeof err) ||
        conf_add_port(&c, "br0", "up", up, 4, err, sizeof err) ||
        conf_add_net(&c, "net0", n0, sizeof n0 / sizeof *n0, err, sizeof err) ||
        conf_add_net(&c, "net1", n1, sizeof n1 / sizeof *n1, err, sizeof err) ||
        conf_add_forward(&c, "net0", f1, 3, err, sizeof err) ||
        conf_add_forward(&c, "net0", f2, 3, err, sizeof err)) {
        fprintf(stderr, "fuzz_nat: configuration: %s\n", err);
        abort();
    }
    fw_build(&world, &c, on_tx);
}

static void check_tables(void)
{
    struct l3_state *st = world.l3;
    const struct l3_snapshot *l3 = world.snap.l3;
    uint64_t sum = 0;

    for (unsigned i = 0; i < l3->n_nets; i++) {
        uint32_t n = __atomic_load_n(&l3->nets[i].st->ct_count, __ATOMIC_RELAXED);
        FW_CHECK(n <= l3->nets[i].conf->ct_max);
        sum += n;
    }
    FW_CHECK(ct_count(st->ct) == sum);
}

static void run_batch(unsigned port, unsigned n)
{
    if (!n)
        return;
    fw_input(&world, port, batch, n);
    check_tables();
}

/* A NEEDS_CSUM request for the TCP/UDP checksum of frame f: csum_start at
 * the L4 header, the field holding the pseudo-header sum (what a guest's
 * stack leaves there). */
static bool offload_request(uint8_t *f, size_t len, bool fix, struct virtio_net_hdr *vh)
{
    size_t l3 = len >= 18 && rd16(f + 12) == ETH_TYPE_VLAN ? 18 : 14;
    uint8_t *ip = f + l3;
    unsigned ihl, at;

    if (len < l3 + 20 || rd16(f + l3 - 2) != ETH_TYPE_IP)
        return false;
    ihl = (ip[0] & 0xfu) * 4;
    if (ip[9] != 6 && ip[9] != 17)
        return false;
    at = ip[9] == 6 ? 16 : 6;
    memset(vh, 0, sizeof *vh);
    vh->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    vh->csum_start = (uint16_t)(l3 + ihl);
    vh->csum_offset = (uint16_t)at;
    if (fix && l3 + ihl + at + 2 <= len && rd16(ip + 2) >= ihl) {
        uint32_t s = 0;
        for (int i = 12; i < 20; i += 2)
            s += rd16(ip + i);
        s += ip[9] + (uint32_t)(rd16(ip + 2) - ihl);
        while (s >> 16)
            s = (s & 0xffff) + (s >> 16);
        ip[ihl + at] = (uint8_t)(s >> 8);
        ip[ihl + at + 1] = (uint8_t)s;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t f[FW_FRAME_MAX];
    unsigned port = 0, n = 0;
    uint32_t now = 1000;

    if (!world.pmd)
        build_world();
    fw_reset(&world);
    world.pmd->now = now;

    while (size >= 3) {
        static const uint32_t steps[4] = {0, 1, 9, 130};
        uint8_t ctl = data[0];
        size_t len = (size_t)data[1] << 8 | data[2];
        unsigned in = 1 + (ctl & 3) % 3;
        uint32_t step = steps[ctl >> 2 & 3];
        struct virtio_net_hdr vh;
        bool offload;

        data += 3;
        size -= 3;
        if (len > size)
            len = size;
        if (len > sizeof f)
            len = sizeof f;
        memcpy(f, data, len);
        data += len;
        size -= len;

        if (in != port || step || (ctl & 0x80) || n == FW_BATCH) {
            run_batch(port, n);
            n = 0;
        }
        port = in;
        now += step;
        world.pmd->now = now;
        if (ctl & 0x80) {
            ct_expire(world.l3->ct, now, false, NULL);
            check_tables();
        }
        if (!(ctl & 0x20))
            fw_fix_csums(f, len);
        offload = (ctl & 0x10) && offload_request(f, len, !(ctl & 0x20), &vh);
        if (!fw_receive(&world, n, f, len, (ctl & 0x40) ? len / 2 : 0,
                        offload ? &vh : NULL, &batch[n]))
            continue;
        csum_in[n] = pkt_csum_state(&batch[n]);
        n++;
    }
    run_batch(port, n);

    /* ct-show sees every connection; expiry ends them all */
    json_t *dump = ct_dump(world.l3->ct, now, NULL);
    FW_CHECK(json_array_size(dump) == ct_count(world.l3->ct));
    json_decref(dump);
    ct_expire(world.l3->ct, now + 1000, false, NULL);
    FW_CHECK(ct_count(world.l3->ct) == 0);
    check_tables();
    /* the connections are freed after a grace period (call_rcu), in a later
     * input: run libFuzzer with -detect_leaks=0 (docs/fuzzing.md) */
    rcu_quiescent_state();
    return 0;
}
