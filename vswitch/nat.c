/* The NAT stage: connection tracking and address/port translation of IPv4
 * TCP, UDP and ICMP echo between a network and its uplink (SNAT to the
 * uplink's address), port forwards (DNAT), hairpinning (both), and the ICMP
 * errors that belong to a tracked connection.
 *
 * A connection's two tuples say everything: a packet of direction d leaves
 * with the inverse of the other direction's tuple. Rewrites happen in the
 * packet's head (never in guest memory), and checksums move incrementally
 * (RFC 1624). A packet whose L4 checksum the guest left to the device
 * (virtio NEEDS_CSUM) holds only the pseudo-header sum in that field: then
 * only an address change moves it; port changes are summed later by whoever
 * completes the checksum. */
#include <arpa/inet.h>
#include <string.h>

#include "dp.h"
#include "l3.h"

bool nat_tuple(const struct pkt *p, struct ct_tuple *k, uint8_t *tcp_flags)
{
    const uint8_t *ip = p->head + p->l3_ofs, *l4 = p->head + p->l4_ofs;

    memset(k, 0, sizeof *k);
    *tcp_flags = 0;
    if (!p->l4_ofs)
        return false;
    k->src = rd32(ip + 12);
    k->dst = rd32(ip + 16);
    k->proto = p->l4_proto;
    switch (p->l4_proto) {
    case IPPROTO_TCP_:
        *tcp_flags = l4[13];
        /* fall through */
    case IPPROTO_UDP_:
        k->sport = rd16(l4);
        k->dport = rd16(l4 + 2);
        return true;
    case IPPROTO_ICMP_:
        if (l4[0] != 8 && l4[0] != 0)
            return false;
        k->sport = k->dport = rd16(l4 + 4);
        return true;
    default:
        return false;
    }
}

static bool needs_csum(const struct pkt *p)
{
    return (p->vnet.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && p->vnet.csum_start == p->l4_ofs;
}

/* The L4 checksum field of p, or NULL (UDP without a checksum). */
static uint8_t *l4_csum_field(uint8_t *l4, uint8_t proto)
{
    switch (proto) {
    case IPPROTO_TCP_: return l4 + 16;
    case IPPROTO_UDP_: return (l4[6] | l4[7]) ? l4 + 6 : NULL;
    case IPPROTO_ICMP_: return l4 + 2;
    default: return NULL;
    }
}

/* Rewrites an address at ip+off and every checksum that covers it. */
static void rewrite_addr(uint8_t *ip, unsigned off, uint32_t to, uint8_t *l4cs,
                         bool pseudo, bool partial)
{
    uint32_t o, n = htonl(to);
    uint16_t cs;

    memcpy(&o, ip + off, 4);
    if (o == n)
        return;
    memcpy(&cs, ip + 10, 2);
    cs = csum_update32(cs, o, n);
    memcpy(ip + 10, &cs, 2);
    if (l4cs && pseudo) {
        memcpy(&cs, l4cs, 2);
        cs = partial ? csum_partial_update32(cs, o, n) : csum_update32(cs, o, n);
        memcpy(l4cs, &cs, 2);
    }
    memcpy(ip + off, &n, 4);
}

static void rewrite_port(uint8_t *at, uint16_t to, uint8_t *l4cs, bool partial)
{
    uint16_t o, n = htons(to), cs;

    memcpy(&o, at, 2);
    if (o == n)
        return;
    if (l4cs && !partial) {
        memcpy(&cs, l4cs, 2);
        cs = csum_update16(cs, o, n);
        memcpy(l4cs, &cs, 2);
    }
    memcpy(at, &n, 2);
}

static void fix_udp_zero(uint8_t *l4cs, uint8_t proto, bool partial)
{
    /* a UDP checksum that computes to 0 is sent as all ones */
    if (proto == IPPROTO_UDP_ && l4cs && !partial && l4cs[0] == 0 && l4cs[1] == 0)
        l4cs[0] = l4cs[1] = 0xff;
}

void nat_rewrite(struct pkt *p, const struct ct_tuple *from, const struct ct_tuple *to)
{
    uint8_t *ip = p->head + p->l3_ofs, *l4 = p->head + p->l4_ofs;
    bool partial = needs_csum(p);
    uint8_t *cs = l4_csum_field(l4, p->l4_proto);
    bool pseudo = p->l4_proto != IPPROTO_ICMP_;

    (void)from;
    rewrite_addr(ip, 12, to->src, cs, pseudo, partial);
    rewrite_addr(ip, 16, to->dst, cs, pseudo, partial);
    if (p->l4_proto == IPPROTO_ICMP_) {
        rewrite_port(l4 + 4, to->sport, cs, partial);
    } else {
        rewrite_port(l4, to->sport, cs, partial);
        rewrite_port(l4 + 2, to->dport, cs, partial);
    }
    fix_udp_zero(cs, p->l4_proto, partial);
    if (p->l4_proto == IPPROTO_ICMP_)
        icmp_csum_fix_zero(p); /* an echo whose identifier became 0 */
}

/* How a packet of direction d of c leaves: the inverse of the other tuple. */
static void leaving_tuple(const struct ct_conn *c, int d, struct ct_tuple *out)
{
    const struct ct_tuple *o = ct_conn_tuple(c, !d);
    memset(out, 0, sizeof *out);
    out->src = o->dst;
    out->dst = o->src;
    out->sport = o->dport;
    out->dport = o->sport;
    out->proto = o->proto;
}

int nat_icmp_error(struct ct_table *t, struct pkt *p)
{
    uint8_t *ip = p->head + p->l3_ofs, *ic = p->head + p->l4_ofs;
    uint8_t *in = ic + 8, *il4, old[80];
    unsigned ihl, region, avail;
    struct ct_tuple key, out;
    struct ct_conn *c;
    int dir;

    /* the embedded bytes: those the IP length covers (what follows is
     * padding, outside the ICMP checksum) and that are in the head */
    avail = rd16(ip + 2) - (p->l4_ofs - p->l3_ofs) - 8u;
    if (p->head_len < p->l4_ofs + 8 + 20 || rd16(ip + 2) < p->l4_ofs - p->l3_ofs + 8u)
        return DROP_ICMP_INVALID;
    if (avail > p->head_len - p->l4_ofs - 8u)
        avail = p->head_len - p->l4_ofs - 8u;
    ihl = (in[0] & 0xf) * 4u;
    if ((in[0] >> 4) != 4 || ihl < 20 || avail < ihl + 8)
        return DROP_ICMP_INVALID;
    il4 = in + ihl;
    memset(&key, 0, sizeof key);
    key.proto = in[9];
    key.src = rd32(in + 16); /* the error travels against the embedded packet */
    key.dst = rd32(in + 12);
    switch (key.proto) {
    case IPPROTO_TCP_:
    case IPPROTO_UDP_:
        key.sport = rd16(il4 + 2);
        key.dport = rd16(il4);
        break;
    case IPPROTO_ICMP_:
        if (il4[0] != 8 && il4[0] != 0)
            return DROP_ICMP_INVALID;
        key.sport = key.dport = rd16(il4 + 4);
        break;
    default:
        return DROP_ICMP_INVALID;
    }
    c = ct_lookup(t, &key, &dir);
    if (!c)
        return DROP_ICMP_INVALID;
    leaving_tuple(c, dir, &out);

    /* the embedded packet: inner L4 checksum when it is in the head */
    region = ihl + 8;
    if (key.proto == IPPROTO_TCP_ && avail >= ihl + 18)
        region = ihl + 18;
    memcpy(old, in, region);
    {
        bool udp_cs = key.proto == IPPROTO_UDP_ && (il4[6] | il4[7]);
        uint8_t *ics = key.proto == IPPROTO_TCP_ ? (region == ihl + 18 ? il4 + 16 : NULL)
                       : key.proto == IPPROTO_UDP_ ? (udp_cs ? il4 + 6 : NULL)
                                                   : il4 + 2;
        bool pseudo = key.proto != IPPROTO_ICMP_;
        rewrite_addr(in, 12, out.dst, ics, pseudo, false);
        rewrite_addr(in, 16, out.src, ics, pseudo, false);
        if (key.proto == IPPROTO_ICMP_) {
            rewrite_port(il4 + 4, out.dport, ics, false);
        } else {
            rewrite_port(il4, out.dport, ics, false);
            rewrite_port(il4 + 2, out.sport, ics, false);
        }
        fix_udp_zero(ics, key.proto, false);
    }
    /* the outer ICMP checksum covers the embedded bytes that changed */
    {
        uint16_t cs;
        memcpy(&cs, ic + 2, 2);
        uint32_t sum_old = csum_partial(old, region, 0);
        uint32_t sum_new = csum_partial(in, region, 0);
        uint32_t acc = (uint16_t)~cs;
        acc += (uint16_t)~(uint16_t)sum_old;
        acc += (uint16_t)sum_new;
        cs = csum_fold(acc);
        memcpy(ic + 2, &cs, 2);
    }
    /* outer header: to the inside host; the source only if it was the peer */
    if (rd32(ip + 12) == key.src)
        rewrite_addr(ip, 12, out.src, NULL, false, false);
    rewrite_addr(ip, 16, out.dst, NULL, false, false);
    return -1;
}

static const struct conf_forward *find_forward(const struct l3_snapshot *l3,
                                               const struct l3_uplink *up, uint8_t proto,
                                               uint16_t port, const struct l3_net **net)
{
    for (unsigned i = 0; i < l3->n_nets; i++) {
        const struct l3_net *n = &l3->nets[i];
        if (n->uplink != up)
            continue;
        for (size_t f = 0; f < n->conf->n_forwards; f++) {
            const struct conf_forward *fw = &n->conf->forwards[f];
            if (fw->proto == proto && fw->port == port) {
                *net = n;
                return fw;
            }
        }
    }
    return NULL;
}

int nat_process(struct pmd *pmd, struct l3_snapshot *l3, const struct l3_net *n,
                const struct l3_uplink *up, struct pkt *p)
{
    struct ct_table *t = l3->state->ct;
    const uint8_t *ip = p->head + p->l3_ofs;
    struct ct_tuple k, reply, out;
    const struct l3_net *owner = n;
    const struct conf_forward *fw;
    struct ct_conn *c;
    uint8_t flags;
    int dir, why = DROP_NAT_NO_MAPPING;
    bool alloc = false;

    if ((rd16(ip + 6) & 0x3fff) != 0)
        return DROP_IP_FRAGMENT; /* ports only in the first, and not reassembled */
    if (p->l4_proto == IPPROTO_ICMP_ && icmp_is_error(p->head[p->l4_ofs]))
        return nat_icmp_error(t, p);
    if (!nat_tuple(p, &k, &flags))
        return p->l4_proto == IPPROTO_ICMP_ ? DROP_ICMP_INVALID : DROP_L3_UNSUPPORTED;

    c = ct_lookup(t, &k, &dir);
    if (!c) {
        const struct l3_uplink *via = n ? n->uplink : up;
        if (!via)
            return DROP_NO_ROUTE;
        if (k.proto == IPPROTO_TCP_ && (flags & 0x12) != 0x02)
            return DROP_NAT_INVALID; /* a connection starts with a SYN */
        if (k.proto == IPPROTO_ICMP_ && p->head[p->l4_ofs] != 8)
            return DROP_NAT_NO_MAPPING;
        uint8_t fi = k.proto == IPPROTO_TCP_ ? 0 : 1;
        fw = k.dst == via->addr && k.proto != IPPROTO_ICMP_
                 ? find_forward(l3, via, k.proto, k.dport, &owner)
                 : NULL;
        memset(&reply, 0, sizeof reply);
        reply.proto = k.proto;
        if (n && fw) {
            /* hairpin: to the forward's target, from the uplink's address */
            reply.src = fw->to_ip;
            reply.sport = fw->to_port;
            reply.dst = via->addr;
            alloc = true;
            owner = n;
        } else if (n) {
            reply.src = k.dst;
            reply.sport = k.dport;
            reply.dst = via->addr;
            alloc = true;
        } else if (fw) {
            reply.src = fw->to_ip;
            reply.sport = fw->to_port;
            reply.dst = k.src;
            reply.dport = k.sport;
        } else {
            return DROP_NAT_NO_MAPPING;
        }
        c = ct_create_conn(t, owner->st, owner->conf->ct_max, &k, &reply, alloc,
                           via->fwd_ports[fi], pmd->now, &why, &dir);
        if (!c)
            return why;
        n = owner;
    }
    if (!ct_conn_update(c, dir, flags, p->len, pmd->now))
        return DROP_NAT_INVALID;
    leaving_tuple(c, dir, &out);
    nat_rewrite(p, &k, &out);
    return -1;
}
