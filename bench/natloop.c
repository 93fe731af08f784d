/* natloop: a closed-loop UDP source for bench/nat.py — many flows through a NAT,
 * both directions, without the loop draining.
 *
 * It owns two DPDK ports (EAL vdevs, normally virtio-user on a middle's
 * vhost-user sockets) and polls both from one lcore:
 *
 *   port 0 "guests"  a received frame (an un-NATed reply) is rewritten in place
 *                    into the outbound frame of the NEXT flow of the table (round
 *                    robin), TTL restored, sent back out of port 0;
 *   port 1 "server"  a received frame is turned into its reply (MACs, IPv4
 *                    addresses and UDP ports swapped, TTL restored), sent back out
 *                    of port 1;
 *   both             answer every ARP request with their own MAC.
 *
 * So every frame crosses the middle outbound and its reply inbound, every pass
 * of the guest side touches another of the F flows (F conntrack entries in the
 * middle), and a router's TTL decrement cannot drain the loop. testpmd's 5tswap
 * cannot do this (it keeps each frame's flow and TTL).
 *
 *   natloop EAL-ARGS -- --peer0 MAC [--flows F] [--inflight N] [--guests G]
 *           [--guest-net CIDR] [--server IP:PORT] [--sport N] [--size BYTES] [--warmup S]
 *           [--seconds S] [--timeout S] [--go-file PATH]
 *
 * Progress goes to stderr once a second; the result is one JSON line on stdout.
 * See bench/README.md (nat.py). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_arp.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#define BURST     32
#define BACKLOG   1024 /* per port: frames a full ring refused, retried */
#define RING_DESC 1024
#define LOOP_TTL  64
#define HDR_LEN                                                                          \
    (RTE_ETHER_HDR_LEN + sizeof(struct rte_ipv4_hdr) + sizeof(struct rte_udp_hdr))
#define MAX_FLOWS    (1u << 22)
#define MAX_INFLIGHT 4096

struct natloop_opts {
    struct rte_ether_addr peer0;
    bool have_peer0;
    uint32_t flows, inflight, guests;
    uint32_t guest_net, guest_mask; /* host order */
    uint32_t server_ip;             /* host order */
    uint16_t server_port, sport_base, size;
    double warmup, seconds;
    uint32_t timeout;    /* s without a frame coming round: give up */
    const char *go_file; /* send nothing before it exists (the middle is set up) */
};

struct loop_port_stats {
    uint64_t rx, tx, tx_refused, arp_replies, stray;
    uint64_t unexpected; /* port 0: IPv4 that is not a reply from the server */
    uint64_t natted;     /* port 1: source outside the guest network */
};

struct loop_port {
    uint16_t id;
    struct rte_ether_addr mac;
    struct rte_mbuf *backlog[BACKLOG];
    unsigned nbacklog;
    struct loop_port_stats st;
};

struct natloop {
    struct natloop_opts o;
    struct loop_port port[2];
    struct rte_mempool *pool;
    uint8_t (*hdr)[HDR_LEN]; /* the outbound headers of every flow */
    uint64_t *sent_map;      /* flows sent at least once */
    uint32_t next_flow;
    uint64_t injected;
    uint64_t flows_sent; /* distinct flows sent so far */
};

static volatile sig_atomic_t quit;

static void on_signal(int sig)
{
    (void)sig;
    quit = 1;
}

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: natloop EAL-ARGS -- --peer0 MAC [options]\n"
        "  --peer0 MAC          destination MAC of port 0's frames (the gateway,\n"
        "                       or port 1's MAC through a plain bridge)\n"
        "  --flows F            flows in the table, 1-%u (8192)\n"
        "  --inflight N         frames put into the loop, 1-%u (512)\n"
        "  --guests G           guest addresses the flows are spread over (256)\n"
        "  --guest-net CIDR     the guests' network (10.254.64.0/18)\n"
        "  --server IP:PORT     the server every flow talks to (198.51.100.9:5001)\n"
        "  --sport BASE         first guest UDP port (10000)\n"
        "  --size BYTES         frame length without FCS, 60-1514 (64)\n"
        "  --warmup S           seconds after the loop is filled, before measuring, and\n"
        "                       not before every flow has been sent once (2)\n"
        "  --seconds S          measuring window (5)\n"
        "  --timeout S          give up when no frame has come round for S s, at the\n"
        "                       start or later (the loop emptied) (20)\n"
        "  --go-file PATH       send nothing until PATH exists (the middle is set up)\n",
        MAX_FLOWS, MAX_INFLIGHT);
}

static bool parse_u32_arg(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool parse_seconds(const char *s, double lo, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo) || v > 86400)
        return false;
    *out = v;
    return true;
}

/* "IP<sep>N": an IPv4 address (host order) and a number in [lo, hi]. */
static bool parse_ip_and_u32(const char *s, char sep, uint32_t lo, uint32_t hi,
                             uint32_t *ip, uint32_t *n)
{
    char buf[INET_ADDRSTRLEN];
    const char *at = strchr(s, sep);
    struct in_addr a;

    if (!at || (size_t)(at - s) >= sizeof buf)
        return false;
    memcpy(buf, s, (size_t)(at - s));
    buf[at - s] = '\0';
    if (inet_pton(AF_INET, buf, &a) != 1 || !parse_u32_arg(at + 1, lo, hi, n))
        return false;
    *ip = ntohl(a.s_addr);
    return true;
}

/* The application's options (after EAL's "--"). 0, or 2 with a sentence said. */
static int parse_opts(int argc, char **argv, struct natloop_opts *o)
{
    static const struct option longopts[] = {
        {"peer0", required_argument, NULL, 'p'},
        {"flows", required_argument, NULL, 'f'},
        {"inflight", required_argument, NULL, 'n'},
        {"guests", required_argument, NULL, 'g'},
        {"guest-net", required_argument, NULL, 'G'},
        {"server", required_argument, NULL, 's'},
        {"sport", required_argument, NULL, 'b'},
        {"size", required_argument, NULL, 'z'},
        {"warmup", required_argument, NULL, 'w'},
        {"seconds", required_argument, NULL, 't'},
        {"timeout", required_argument, NULL, 'T'},
        {"go-file", required_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    uint32_t v;
    int c, li = -1;

    *o = (struct natloop_opts){.flows = 8192,
                               .inflight = 512,
                               .guests = 256,
                               .guest_net = 0x0afe4000,
                               .guest_mask = 0xffffc000,
                               .server_ip = 0xc6336409,
                               .server_port = 5001,
                               .sport_base = 10000,
                               .size = 64,
                               .warmup = 2,
                               .seconds = 5,
                               .timeout = 20};
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, &li)) != -1) {
        const char *a = optarg;
        switch (c) {
        case 'p':
            if (rte_ether_unformat_addr(a, &o->peer0) < 0)
                goto bad;
            o->have_peer0 = true;
            break;
        case 'f':
            if (!parse_u32_arg(a, 1, MAX_FLOWS, &o->flows))
                goto bad;
            break;
        case 'n':
            if (!parse_u32_arg(a, 1, MAX_INFLIGHT, &o->inflight))
                goto bad;
            break;
        case 'g':
            if (!parse_u32_arg(a, 1, 1u << 22, &o->guests))
                goto bad;
            break;
        case 'G':
            if (!parse_ip_and_u32(a, '/', 8, 30, &o->guest_net, &v))
                goto bad;
            o->guest_mask = ~0u << (32 - v);
            o->guest_net &= o->guest_mask;
            break;
        case 's':
            if (!parse_ip_and_u32(a, ':', 1, 65535, &o->server_ip, &v))
                goto bad;
            o->server_port = (uint16_t)v;
            break;
        case 'b':
            if (!parse_u32_arg(a, 1, 65535, &v))
                goto bad;
            o->sport_base = (uint16_t)v;
            break;
        case 'z':
            if (!parse_u32_arg(a, 60, 1514, &v))
                goto bad;
            o->size = (uint16_t)v;
            break;
        case 'w':
            if (!parse_seconds(a, 0, &o->warmup))
                goto bad;
            break;
        case 't':
            if (!parse_seconds(a, 0.1, &o->seconds))
                goto bad;
            break;
        case 'T':
            if (!parse_u32_arg(a, 1, 3600, &o->timeout))
                goto bad;
            break;
        case 'F':
            o->go_file = a;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return 2;
        }
        continue;
    bad:
        fprintf(stderr, "natloop: --%s %s is not valid (see --help)\n",
                li >= 0 ? longopts[li].name : "?", a);
        return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "natloop: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!o->have_peer0) {
        fprintf(stderr,
                "natloop: --peer0 MAC is required (the middle's MAC for port 0)\n");
        return 2;
    }
    /* guest hosts .2 onwards of the network, below its broadcast address */
    if ((uint64_t)o->guests + 2 > (uint64_t)~o->guest_mask) {
        fprintf(stderr,
                "natloop: --guests %" PRIu32 " does not fit in the guest network\n",
                o->guests);
        return 2;
    }
    if ((uint64_t)o->sport_base + (o->flows + o->guests - 1) / o->guests > 65536) {
        fprintf(stderr,
                "natloop: --flows %" PRIu32 " over %" PRIu32 " guests from port %" PRIu16
                " runs past port 65535: raise --guests or lower --sport\n",
                o->flows, o->guests, o->sport_base);
        return 2;
    }
    if ((o->server_ip & o->guest_mask) == o->guest_net) {
        fprintf(stderr, "natloop: the server must lie outside the guest network\n");
        return 2;
    }
    return 0;
}

/* Flow i: guest (net + 2 + i % G, sport + i / G) -> server, as the frame port 0
 * sends: Ethernet to peer0, IPv4 with TTL and checksum set, UDP without checksum. */
static void flow_header(const struct natloop *nl, uint32_t i, uint8_t *h)
{
    const struct natloop_opts *o = &nl->o;
    struct rte_ether_hdr *eth = (struct rte_ether_hdr *)h;
    struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(h + RTE_ETHER_HDR_LEN);
    struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
    uint16_t l3len = (uint16_t)(o->size - RTE_ETHER_HDR_LEN);

    rte_ether_addr_copy(&o->peer0, &eth->dst_addr);
    rte_ether_addr_copy(&nl->port[0].mac, &eth->src_addr);
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    *ip = (struct rte_ipv4_hdr){
        .version_ihl = RTE_IPV4_VHL_DEF,
        .total_length = rte_cpu_to_be_16(l3len),
        .time_to_live = LOOP_TTL,
        .next_proto_id = IPPROTO_UDP,
        .src_addr = rte_cpu_to_be_32(o->guest_net + 2 + i % o->guests),
        .dst_addr = rte_cpu_to_be_32(o->server_ip),
    };
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    *udp = (struct rte_udp_hdr){
        .src_port = rte_cpu_to_be_16((uint16_t)(o->sport_base + i / o->guests)),
        .dst_port = rte_cpu_to_be_16(o->server_port),
        .dgram_len = rte_cpu_to_be_16((uint16_t)(l3len - sizeof *ip)),
    };
}

/* Rewrite m into the outbound frame of the next flow. false: no room for it. */
static bool next_flow_frame(struct natloop *nl, struct rte_mbuf *m)
{
    uint32_t i = nl->next_flow;

    if (m->nb_segs != 1 || m->buf_len < m->data_off + nl->o.size)
        return false;
    m->data_len = nl->o.size;
    m->pkt_len = nl->o.size;
    m->ol_flags = 0;
    memcpy(rte_pktmbuf_mtod(m, uint8_t *), nl->hdr[i], HDR_LEN);
    if (!(nl->sent_map[i / 64] & 1ull << (i % 64))) {
        nl->sent_map[i / 64] |= 1ull << (i % 64);
        nl->flows_sent++;
    }
    nl->next_flow = i + 1 == nl->o.flows ? 0 : i + 1;
    return true;
}

/* An ARP request (for any address) answered in place with our MAC. */
static bool arp_answer(const struct loop_port *lp, struct rte_mbuf *m)
{
    struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
    struct rte_arp_hdr *arp = (struct rte_arp_hdr *)(eth + 1);
    uint32_t sip;

    if (rte_pktmbuf_data_len(m) < sizeof *eth + sizeof *arp ||
        eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP) ||
        arp->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) ||
        arp->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
        arp->arp_opcode != rte_cpu_to_be_16(RTE_ARP_OP_REQUEST))
        return false;
    arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);
    rte_ether_addr_copy(&arp->arp_data.arp_sha, &arp->arp_data.arp_tha);
    rte_ether_addr_copy(&lp->mac, &arp->arp_data.arp_sha);
    sip = arp->arp_data.arp_sip;
    arp->arp_data.arp_sip = arp->arp_data.arp_tip;
    arp->arp_data.arp_tip = sip;
    rte_ether_addr_copy(&eth->src_addr, &eth->dst_addr);
    rte_ether_addr_copy(&lp->mac, &eth->src_addr);
    return true;
}

/* The IPv4 header and UDP header of m, or NULL when m is something else. */
static struct rte_ipv4_hdr *udp4_of(struct rte_mbuf *m, struct rte_udp_hdr **udp)
{
    struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
    struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
    unsigned ihl;

    if (m->nb_segs != 1 || rte_pktmbuf_data_len(m) < HDR_LEN ||
        eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
        ip->next_proto_id != IPPROTO_UDP)
        return NULL;
    ihl = rte_ipv4_hdr_len(ip);
    if (ihl < sizeof *ip ||
        rte_pktmbuf_data_len(m) < RTE_ETHER_HDR_LEN + ihl + sizeof **udp)
        return NULL;
    *udp = (struct rte_udp_hdr *)((uint8_t *)ip + ihl);
    return ip;
}

/* Port 1: the server's reply, in place. */
static void server_reply(const struct loop_port *lp, struct rte_mbuf *m,
                         struct rte_ipv4_hdr *ip, struct rte_udp_hdr *udp)
{
    struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
    uint32_t a = ip->src_addr;
    uint16_t p = udp->src_port;

    rte_ether_addr_copy(&eth->src_addr, &eth->dst_addr);
    rte_ether_addr_copy(&lp->mac, &eth->src_addr);
    ip->src_addr = ip->dst_addr;
    ip->dst_addr = a;
    udp->src_port = udp->dst_port;
    udp->dst_port = p;
    udp->dgram_cksum = 0;
    ip->time_to_live = LOOP_TTL;
    ip->hdr_checksum = 0;
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    m->ol_flags = 0;
}

/* What a frame received on port `pi` becomes: true, it goes back out of that port. */
static bool loop_turn(struct natloop *nl, unsigned pi, struct rte_mbuf *m)
{
    struct loop_port *lp = &nl->port[pi];
    const struct natloop_opts *o = &nl->o;
    struct rte_udp_hdr *udp;
    struct rte_ipv4_hdr *ip;

    if (arp_answer(lp, m)) {
        lp->st.arp_replies++;
        return true;
    }
    ip = udp4_of(m, &udp);
    if (!ip) {
        lp->st.stray++;
        return false;
    }
    if (pi == 1) {
        if ((rte_be_to_cpu_32(ip->src_addr) & o->guest_mask) != o->guest_net)
            lp->st.natted++;
        server_reply(lp, m, ip, udp);
        return true;
    }
    if (rte_be_to_cpu_32(ip->src_addr) != o->server_ip ||
        rte_be_to_cpu_16(udp->src_port) != o->server_port ||
        (rte_be_to_cpu_32(ip->dst_addr) & o->guest_mask) != o->guest_net)
        lp->st.unexpected++;
    if (!next_flow_frame(nl, m)) {
        lp->st.stray++;
        return false;
    }
    return true;
}

static void port_flush(struct loop_port *lp)
{
    uint16_t sent;

    if (!lp->nbacklog)
        return;
    sent = rte_eth_tx_burst(lp->id, 0, lp->backlog, (uint16_t)lp->nbacklog);
    lp->st.tx += sent;
    lp->st.tx_refused += lp->nbacklog - sent;
    if (sent) {
        memmove(lp->backlog, lp->backlog + sent, (lp->nbacklog - sent) * sizeof(void *));
        lp->nbacklog -= sent;
    }
}

static void port_poll(struct natloop *nl, unsigned pi)
{
    struct loop_port *lp = &nl->port[pi];
    struct rte_mbuf *pkts[BURST];
    uint16_t n;

    if (BACKLOG - lp->nbacklog >= BURST) {
        n = rte_eth_rx_burst(lp->id, 0, pkts, BURST);
        lp->st.rx += n;
        for (uint16_t k = 0; k < n; k++) {
            if (loop_turn(nl, pi, pkts[k]))
                lp->backlog[lp->nbacklog++] = pkts[k];
            else
                rte_pktmbuf_free(pkts[k]);
        }
    }
    port_flush(lp);
}

/* Up to `want` fresh frames of the next flows into port 0's backlog. */
static unsigned inject(struct natloop *nl, unsigned want)
{
    struct loop_port *lp = &nl->port[0];
    struct rte_mbuf *pkts[BURST];
    unsigned n = want < BURST ? want : BURST;

    if (BACKLOG - lp->nbacklog < n || rte_pktmbuf_alloc_bulk(nl->pool, pkts, n) != 0)
        return 0;
    for (unsigned k = 0; k < n; k++) {
        memset(rte_pktmbuf_mtod(pkts[k], uint8_t *) + HDR_LEN, 0, nl->o.size - HDR_LEN);
        next_flow_frame(nl, pkts[k]); /* a fresh mbuf always has room */
        lp->backlog[lp->nbacklog++] = pkts[k];
    }
    nl->injected += n;
    return n;
}

static int port_init(struct natloop *nl, unsigned pi, uint16_t id)
{
    struct rte_eth_conf conf = {0};
    struct loop_port *lp = &nl->port[pi];
    int r;

    lp->id = id;
    if ((r = rte_eth_dev_configure(id, 1, 1, &conf)) < 0 ||
        (r = rte_eth_rx_queue_setup(id, 0, RING_DESC, rte_eth_dev_socket_id(id), NULL,
                                    nl->pool)) < 0 ||
        (r = rte_eth_tx_queue_setup(id, 0, RING_DESC, rte_eth_dev_socket_id(id), NULL)) <
            0 ||
        (r = rte_eth_macaddr_get(id, &lp->mac)) < 0 || (r = rte_eth_dev_start(id)) < 0) {
        fprintf(stderr, "natloop: port %u: %s\n", pi, rte_strerror(-r));
        return -1;
    }
    return 0;
}

static double mpps(uint64_t n, uint64_t cycles)
{
    return cycles ? (double)n * (double)rte_get_tsc_hz() / (double)cycles / 1e6 : 0.0;
}

enum phase { PH_WAIT, PH_PRIME, PH_FILL, PH_WARMUP, PH_MEASURE, PH_DONE };

static const char *const phase_name[] = {"wait",   "prime",   "fill",
                                         "warmup", "measure", "done"};

static void print_result(const struct natloop *nl, enum phase ph,
                         const struct loop_port_stats w0[2], uint64_t t0, uint64_t t1)
{
    uint64_t cyc = t1 > t0 ? t1 - t0 : 0;
    char mac[RTE_ETHER_ADDR_FMT_SIZE];
    double total = 0;

    for (unsigned pi = 0; pi < 2; pi++)
        total += mpps(nl->port[pi].st.rx - w0[pi].rx, cyc);
    printf("{\"natloop\": {\"complete\": %s, \"phase\": \"%s\", \"flows\": %" PRIu32
           ", \"distinct_flows\": %" PRIu64 ", \"inflight\": %" PRIu32
           ", \"injected\": %" PRIu64 ", \"size\": %" PRIu16 ", \"seconds\": %.3f"
           ", \"rx_mpps\": %.4f, \"ports\": [",
           ph == PH_DONE ? "true" : "false", phase_name[ph], nl->o.flows, nl->flows_sent,
           nl->o.inflight, nl->injected, nl->o.size,
           (double)cyc / (double)rte_get_tsc_hz(), total);
    for (unsigned pi = 0; pi < 2; pi++) {
        const struct loop_port *lp = &nl->port[pi];
        rte_ether_format_addr(mac, sizeof mac, &lp->mac);
        printf("%s{\"port\": %u, \"mac\": \"%s\", \"rx_mpps\": %.4f, \"tx_mpps\": %.4f, "
               "\"rx\": %" PRIu64 ", \"tx\": %" PRIu64 ", \"tx_refused\": %" PRIu64
               ", \"arp_replies\": %" PRIu64 ", \"stray\": %" PRIu64 ", \"%s\": %" PRIu64
               "}",
               pi ? ", " : "", pi, mac, mpps(lp->st.rx - w0[pi].rx, cyc),
               mpps(lp->st.tx - w0[pi].tx, cyc), lp->st.rx, lp->st.tx, lp->st.tx_refused,
               lp->st.arp_replies, lp->st.stray, pi ? "natted" : "unexpected",
               pi ? lp->st.natted : lp->st.unexpected);
    }
    printf("]}}\n");
    fflush(stdout);
}

/* The loop: prime (one frame at a time until one comes round: the middle has
 * learnt and resolved what it needs), fill, warm up, measure. */
static int natloop_run(struct natloop *nl)
{
    const uint64_t hz = rte_get_tsc_hz();
    struct loop_port_stats w0[2] = {0}, last[2] = {0};
    uint64_t now = rte_rdtsc(), start = now,
             phase_end = now + (uint64_t)(nl->o.timeout * hz);
    uint64_t next_prime = now, next_report = now + hz, t0 = now, t1 = now;
    unsigned to_fill = nl->o.inflight, stalled = 0;
    enum phase ph = nl->o.go_file ? PH_WAIT : PH_PRIME;

    while (!quit && ph != PH_DONE) {
        port_poll(nl, 0);
        port_poll(nl, 1);
        now = rte_rdtsc();
        switch (ph) {
        case PH_WAIT:
            if (now >= next_prime) {
                next_prime = now + hz / 10;
                if (access(nl->o.go_file, F_OK) == 0) {
                    phase_end = now + (uint64_t)nl->o.timeout * hz;
                    ph = PH_PRIME;
                }
            }
            break;
        case PH_PRIME:
            if (nl->port[0].st.rx - nl->port[0].st.stray - nl->port[0].st.arp_replies >
                0) {
                to_fill -= to_fill > nl->injected ? (unsigned)nl->injected : to_fill;
                ph = PH_FILL;
            } else if (now >= phase_end) {
                fprintf(stderr,
                        "natloop: no frame came round within %" PRIu32
                        " s (port 0 sent %" PRIu64 ", port 1 received %" PRIu64
                        " and sent %" PRIu64
                        "): is the middle forwarding, and is --peer0 its MAC?\n",
                        nl->o.timeout, nl->port[0].st.tx, nl->port[1].st.rx,
                        nl->port[1].st.tx);
                print_result(nl, ph, w0, now, now);
                return 1;
            } else if (now >= next_prime) {
                inject(nl, 1);
                next_prime = now + hz / 10;
            }
            break;
        case PH_FILL:
            to_fill -= inject(nl, to_fill);
            if (!to_fill) {
                ph = PH_WARMUP;
                phase_end = now + (uint64_t)(nl->o.warmup * hz);
            }
            break;
        case PH_WARMUP: /* and every flow sent once: all conntrack entries made */
            if (now >= phase_end && nl->flows_sent == nl->o.flows) {
                w0[0] = nl->port[0].st;
                w0[1] = nl->port[1].st;
                t0 = now;
                fprintf(stderr, "natloop: measuring\n"); /* nat.py samples the middle */
                phase_end = now + (uint64_t)(nl->o.seconds * hz);
                ph = PH_MEASURE;
            }
            break;
        case PH_MEASURE:
            if (now >= phase_end) {
                t1 = now;
                ph = PH_DONE;
                fprintf(stderr, "natloop: measured\n");
            }
            break;
        case PH_DONE:
            break;
        }
        if (now >= next_report) {
            uint64_t rx = nl->port[0].st.rx + nl->port[1].st.rx;
            stalled = ph > PH_PRIME && rx == last[0].rx + last[1].rx ? stalled + 1 : 0;
            if (stalled >= nl->o.timeout) {
                fprintf(
                    stderr,
                    "natloop: the loop emptied: nothing received for %u s in phase %s "
                    "(%" PRIu64 " flows sent); the middle dropped every frame in "
                    "flight\n",
                    stalled, phase_name[ph], nl->flows_sent);
                print_result(nl, ph, w0, t0, ph == PH_MEASURE ? now : t0);
                return 1;
            }
            fprintf(stderr,
                    "natloop: %5.1fs %-7s rx %.3f + %.3f Mpps, tx refused %" PRIu64
                    " + %" PRIu64 ", flows %" PRIu64 "\n",
                    (double)(now - start) / (double)hz, phase_name[ph],
                    mpps(nl->port[0].st.rx - last[0].rx, hz),
                    mpps(nl->port[1].st.rx - last[1].rx, hz),
                    nl->port[0].st.tx_refused - last[0].tx_refused,
                    nl->port[1].st.tx_refused - last[1].tx_refused, nl->flows_sent);
            last[0] = nl->port[0].st;
            last[1] = nl->port[1].st;
            next_report += hz;
        }
    }
    if (ph != PH_DONE) {
        fprintf(stderr, "natloop: stopped by a signal in phase %s\n", phase_name[ph]);
        t1 = now;
        if (ph != PH_MEASURE)
            t0 = t1;
    }
    print_result(nl, ph, w0, t0, t1);
    return ph == PH_DONE ? 0 : 1;
}

int main(int argc, char **argv)
{
    struct natloop *nl = NULL;
    uint16_t ids[2], id, n = 0;
    unsigned pool_size;
    int r, rc = 1;

    r = rte_eal_init(argc, argv);
    if (r < 0) {
        fprintf(stderr, "natloop: EAL: %s\n", rte_strerror(rte_errno));
        return 1;
    }
    argc -= r;
    argv += r;
    nl = calloc(1, sizeof *nl);
    if (!nl) {
        fprintf(stderr, "natloop: out of memory\n");
        goto out;
    }
    if (parse_opts(argc, argv, &nl->o)) {
        rc = 2;
        goto out;
    }
    RTE_ETH_FOREACH_DEV(id)
    {
        if (n < 2)
            ids[n] = id;
        n++;
    }
    if (n != 2) {
        fprintf(stderr, "natloop: needs exactly two ports (--vdev), found %u\n", n);
        rc = 2;
        goto out;
    }
    nl->hdr = calloc(nl->o.flows, HDR_LEN);
    nl->sent_map = calloc((nl->o.flows + 63) / 64, sizeof *nl->sent_map);
    if (!nl->hdr || !nl->sent_map) {
        fprintf(stderr, "natloop: out of memory for %" PRIu32 " flows\n", nl->o.flows);
        goto out;
    }
    /* both rx rings, both backlogs, the frames in flight, and the per-lcore cache */
    pool_size = 2 * RING_DESC + 2 * BACKLOG + nl->o.inflight + 2 * 256 + 1024;
    nl->pool = rte_pktmbuf_pool_create("natloop", pool_size, 256, 0,
                                       RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
    if (!nl->pool) {
        fprintf(stderr, "natloop: mbuf pool: %s\n", rte_strerror(rte_errno));
        goto out;
    }
    if (port_init(nl, 0, ids[0]) < 0 || port_init(nl, 1, ids[1]) < 0)
        goto stop;
    for (uint32_t i = 0; i < nl->o.flows; i++)
        flow_header(nl, i, nl->hdr[i]);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    fprintf(stderr, "natloop: ready: %" PRIu32 " flows, %" PRIu32 " frames in flight\n",
            nl->o.flows, nl->o.inflight);
    rc = natloop_run(nl);
stop:
    for (unsigned pi = 0; pi < 2; pi++) {
        struct loop_port *lp = &nl->port[pi];
        rte_pktmbuf_free_bulk(lp->backlog, lp->nbacklog);
        lp->nbacklog = 0;
        rte_eth_dev_stop(ids[pi]);
        rte_eth_dev_close(ids[pi]);
    }
    rte_mempool_free(nl->pool);
out:
    if (nl) {
        free(nl->hdr);
        free(nl->sent_map);
    }
    free(nl);
    rte_eal_cleanup();
    return rc;
}
