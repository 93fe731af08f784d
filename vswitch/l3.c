/* The router stage: what the gateway of a network does with a frame that the
 * bridge hands it (addressed to the gateway's MAC, an ARP for its address, a
 * DHCP broadcast) and with everything that arrives on a NAT uplink.
 *
 *   ARP          -> reply in place (arp.c), senders learnt
 *   IPv4         -> validated (l3_parse_ipv4), then
 *     DHCP       -> the server (dhcp.c), reply built in the PMD's buffer
 *     to us      -> ICMP echo reply in place (icmp.c)
 *     TTL ends   -> ICMP time exceeded from the gateway (icmp.c)
 *     to a net   -> routed: TTL, next-hop MAC, the network's VLAN
 *     outside    -> NAT (nat.c), then out of the uplink
 *
 * Rewrites touch only the packet's head; the payload stays where it was
 * received. */
#include <arpa/inet.h>
#include <string.h>
#include <time.h>

#include "dp.h"
#include "l3.h"

void l3_derive_mac(const char *name, uint8_t salt, uint8_t mac[6])
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *c = name; *c; c++)
        h = (h ^ (uint8_t)*c) * 16777619u;
    h = (h ^ salt) * 16777619u;
    mac[0] = 0x02; /* locally administered, unicast */
    mac[1] = 0x76;
    mac[2] = (uint8_t)(h >> 24);
    mac[3] = (uint8_t)(h >> 16);
    mac[4] = (uint8_t)(h >> 8);
    mac[5] = (uint8_t)h;
}

uint32_t pkt_copy_out(const struct pkt *p, uint32_t off, uint32_t len, uint8_t *dst)
{
    uint32_t done = 0;

    if (off < p->head_len) {
        uint32_t n = p->head_len - off < len ? p->head_len - off : len;
        memcpy(dst, p->head + off, n);
        done = n;
        off = 0;
    } else {
        off -= p->head_len;
    }
    for (unsigned i = 0; i < p->nsegs && done < len; i++) {
        if (off >= p->segs[i].len) {
            off -= p->segs[i].len;
            continue;
        }
        uint32_t n = p->segs[i].len - off;
        if (n > len - done)
            n = len - done;
        memcpy(dst + done, p->segs[i].addr + off, n);
        done += n;
        off = 0;
    }
    return done;
}

int l3_parse_ipv4(struct pkt *p)
{
    const unsigned l3 = ETH_HLEN;
    const uint8_t *h = p->head + l3, *t;
    unsigned ihl, tot, l4, avail;

    p->l3_ofs = p->l4_ofs = 0;
    p->l4_proto = 0;
    if (p->ethertype != ETH_TYPE_IP || p->head_len < l3 + 20 || p->len < l3 + 20)
        return DROP_IP_INVALID;
    ihl = (h[0] & 0xf) * 4u;
    tot = rd16(h + 2);
    if ((h[0] >> 4) != 4 || ihl < 20 || tot < ihl || tot > p->len - l3 ||
        p->head_len < l3 + ihl)
        return DROP_IP_INVALID;
    if (ipv4_csum(h, ihl) != 0)
        return DROP_IP_CHECKSUM;
    p->l3_ofs = l3;
    p->l4_proto = h[9];
    if (rd16(h + 6) & 0x1fff)
        return -1; /* a later fragment: no L4 header */
    l4 = l3 + ihl;
    avail = tot - ihl;
    t = p->head + l4;
    switch (p->l4_proto) {
    case IPPROTO_TCP_: {
        if (avail < 20 || p->head_len < l4 + 20)
            return DROP_L4_TRUNCATED;
        unsigned doff = (t[12] >> 4) * 4u;
        uint8_t f = t[13] & 0x3f;
        if (doff < 20 || doff > avail)
            return DROP_L4_TRUNCATED;
        /* flag combinations no stack sends: scans and evasion */
        if (f == 0 || (f & 0x03) == 0x03 || (f & 0x06) == 0x06 || f == 0x3f ||
            ((f & 0x01) && !(f & 0x10)))
            return DROP_TCP_BAD_FLAGS;
        break;
    }
    case IPPROTO_UDP_: {
        if (avail < 8 || p->head_len < l4 + 8)
            return DROP_L4_TRUNCATED;
        unsigned ulen = rd16(t + 4);
        if (ulen < 8 || (ulen > avail && !(rd16(h + 6) & 0x2000)))
            return DROP_L4_TRUNCATED;
        break;
    }
    case IPPROTO_ICMP_:
        if (avail < 8 || p->head_len < l4 + 8)
            return DROP_L4_TRUNCATED;
        break;
    default:
        break;
    }
    p->l4_ofs = (uint16_t)l4;
    return -1;
}

bool l3_wants(struct l3_snapshot *l3, const struct l3_net *n, struct pkt *p, uint32_t now)
{
    const uint8_t *h = p->head;

    if (!memcmp(pkt_dst_mac(p), n->mac, ETH_ALEN))
        return true;
    if (p->ethertype == ETH_TYPE_ARP) {
        uint32_t ip;
        uint8_t mac[6];
        if (arp_sender(p, &ip, mac) && (ip & n->mask) == n->subnet)
            neigh_learn(&l3->state->neigh, ip, mac, now);
        return p->head_len >= ETH_HLEN + 28 && rd32(h + ETH_HLEN + 24) == n->gw &&
               mac_is_multicast(pkt_dst_mac(p));
    }
    /* DHCP: broadcast IPv4/UDP to port 67 */
    if (p->ethertype == ETH_TYPE_IP && mac_is_multicast(pkt_dst_mac(p)) &&
        p->head_len >= ETH_HLEN + 20 && h[ETH_HLEN + 9] == IPPROTO_UDP_) {
        unsigned ihl = (h[ETH_HLEN] & 0xf) * 4u;
        return p->head_len >= ETH_HLEN + ihl + 4 && rd16(h + ETH_HLEN + ihl + 2) == 67;
    }
    return false;
}

static enum l3_verdict drop(struct port *in, int reason)
{
    port_count_drop(in, reason, 1);
    return L3_DROP;
}

/* A frame the gateway made in a PMD buffer replaces p, back out of in. */
static void pkt_replace(struct pkt *p, uint8_t *buf, size_t flen)
{
    p->head_len = (uint16_t)(flen < PKT_HEAD_MAX ? flen : PKT_HEAD_MAX);
    memcpy(p->head, buf, p->head_len);
    p->len = (uint32_t)flen;
    p->nsegs = 0;
    if (flen > p->head_len) {
        p->segs[0].addr = buf + p->head_len;
        p->segs[0].len = (uint32_t)(flen - p->head_len);
        p->nsegs = 1;
    }
    memset(&p->vnet, 0, sizeof p->vnet);
    p->ethertype = ETH_TYPE_IP;
}

static enum l3_verdict dhcp_serve(struct pmd *pmd, struct l3_snapshot *l3,
                                  const struct l3_net *n, struct port *in, struct pkt *p,
                                  unsigned slot, struct l3_out *out)
{
    uint8_t msg[1024];
    uint8_t *buf = pmd->l3_bufs[slot];
    struct dhcp_msg m;
    struct dhcp_answer a;
    uint32_t len;
    size_t flen;

    if (p->l4_proto != IPPROTO_UDP_ || !p->l4_ofs)
        return drop(in, DROP_DHCP_INVALID);
    len = rd16(p->head + p->l4_ofs + 4) - 8u;
    if (len > sizeof msg)
        len = sizeof msg;
    len = pkt_copy_out(p, p->l4_ofs + 8u, len, msg);
    if (!dhcp_parse(msg, len, &m))
        return drop(in, DROP_DHCP_INVALID);
    if (!n->conf->dhcp && !n->conf->n_reserve)
        return L3_DROP; /* no server here */
    pthread_spin_lock(&n->st->lock);
    a = dhcp_decide(n->st, n->conf, &m, (int64_t)time(NULL));
    pthread_spin_unlock(&n->st->lock);
    if (!a.type)
        return L3_DROP;
    flen = dhcp_build_reply(buf, L3_BUF_SIZE, n->conf, n->mac, &m, &a);
    if (!flen)
        return L3_DROP;
    if (a.type == 5 && a.yiaddr) /* ACK: we know where the address lives */
        neigh_learn(&l3->state->neigh, a.yiaddr, m.chaddr, pmd->now);
    pkt_replace(p, buf, flen);
    out->out_port = in->no;
    return L3_TO_PORT;
}

#define ICMP_ERR_PER_SEC 1000

/* p from network n would leave the gateway with TTL 0: dropped and counted,
 * and, like any router, the gateway tells the sender (traceroute's answer). */
static enum l3_verdict ttl_expired(struct pmd *pmd, const struct l3_net *n,
                                   struct port *in, struct pkt *p, unsigned slot,
                                   struct l3_out *out)
{
    uint8_t *buf = pmd->l3_bufs[slot];
    size_t flen;

    port_count_drop(in, DROP_TTL_EXCEEDED, 1);
    if (pmd->icmp_err_sec != pmd->now) {
        pmd->icmp_err_sec = pmd->now;
        pmd->icmp_err_n = 0;
    }
    if (pmd->icmp_err_n >= ICMP_ERR_PER_SEC)
        return L3_DROP;
    flen = icmp_error_build(p, 11, 0, n->mac, n->gw, buf, L3_BUF_SIZE);
    if (!flen)
        return L3_DROP;
    pmd->icmp_err_n++;
    pkt_replace(p, buf, flen);
    out->out_port = in->no;
    return L3_TO_PORT;
}

/* TTL: decremented with its checksum; false when it runs out. */
static bool ttl_dec(struct pkt *p)
{
    uint8_t *ip = p->head + p->l3_ofs;
    uint16_t cs, o, n;

    if (ip[8] <= 1)
        return false;
    o = htons((uint16_t)(ip[8] << 8 | ip[9]));
    ip[8]--;
    n = htons((uint16_t)(ip[8] << 8 | ip[9]));
    memcpy(&cs, ip + 10, 2);
    cs = csum_update16(cs, o, n);
    memcpy(ip + 10, &cs, 2);
    return true;
}

static const struct l3_net *net_of(const struct l3_snapshot *l3, uint32_t ip)
{
    for (unsigned i = 0; i < l3->n_nets; i++)
        if ((ip & l3->nets[i].mask) == l3->nets[i].subnet)
            return &l3->nets[i];
    return NULL;
}

/* Into network m: Ethernet to the host's MAC, or an ARP request for it in
 * the packet's place. */
static enum l3_verdict to_net(struct pmd *pmd, struct l3_snapshot *l3,
                              const struct l3_net *m, struct port *in, struct pkt *p,
                              struct l3_out *out)
{
    uint32_t dst = rd32(p->head + p->l3_ofs + 16);
    uint8_t mac[6];

    if (!ttl_dec(p))
        return drop(in, DROP_TTL_EXCEEDED);
    p->vlan = m->vlan;
    p->pcp = 0;
    out->out_br = m->br;
    if (!neigh_lookup(&l3->state->neigh, dst, mac)) {
        port_count_drop(in, DROP_ARP_PENDING, 1);
        arp_build_request(p, m->mac, m->gw, dst);
        return L3_TO_L2;
    }
    memcpy(p->head, mac, 6);
    memcpy(p->head + 6, m->mac, 6);
    (void)pmd;
    return L3_TO_L2;
}

static enum l3_verdict to_uplink(struct l3_snapshot *l3, const struct l3_uplink *up,
                                 struct port *in, struct pkt *p, struct l3_out *out)
{
    uint32_t dst = rd32(p->head + p->l3_ofs + 16);
    uint32_t hop = (dst & up->mask) == (up->addr & up->mask) ? dst : up->gw;
    uint8_t mac[6];

    if (!hop || !up->addr)
        return drop(in, DROP_NO_ROUTE);
    if (!ttl_dec(p))
        return drop(in, DROP_TTL_EXCEEDED);
    p->vlan = 0;
    p->pcp = 0;
    out->out_port = up->port_no;
    if (!neigh_lookup(&l3->state->neigh, hop, mac)) {
        port_count_drop(in, DROP_ARP_PENDING, 1);
        arp_build_request(p, up->mac, up->addr, hop);
        return L3_TO_PORT;
    }
    memcpy(p->head, mac, 6);
    memcpy(p->head + 6, up->mac, 6);
    return L3_TO_PORT;
}

enum l3_verdict l3_input(struct pmd *pmd, struct l3_snapshot *l3, const struct l3_net *n,
                         const struct l3_uplink *up, struct port *in, struct pkt *p,
                         unsigned slot, struct l3_out *out)
{
    const uint8_t *self_mac = n ? n->mac : up->mac;
    uint32_t self = n ? n->gw : up->addr;
    uint32_t src, dst;
    int r;

    if (p->ethertype == ETH_TYPE_ARP) {
        uint32_t ip;
        uint8_t mac[6];
        bool bad = false;
        if (arp_sender(p, &ip, mac) &&
            (n ? (ip & n->mask) == n->subnet : (ip & up->mask) == (up->addr & up->mask)))
            neigh_learn(&l3->state->neigh, ip, mac, pmd->now);
        if (self && arp_reply_in_place(p, self_mac, self, &bad)) {
            out->out_port = in->no;
            return L3_TO_PORT;
        }
        return bad ? drop(in, DROP_ARP_INVALID) : L3_DROP;
    }
    if (p->ethertype != ETH_TYPE_IP)
        return drop(in, DROP_L3_UNSUPPORTED);
    if ((r = l3_parse_ipv4(p)) >= 0)
        return drop(in, r);
    src = rd32(p->head + p->l3_ofs + 12);
    dst = rd32(p->head + p->l3_ofs + 16);

    if (n) {
        if ((src & n->mask) == n->subnet)
            neigh_learn(&l3->state->neigh, src, pkt_src_mac(p), pmd->now);
        if (p->l4_proto == IPPROTO_UDP_ && p->l4_ofs &&
            rd16(p->head + p->l4_ofs + 2) == 67)
            return dhcp_serve(pmd, l3, n, in, p, slot, out);
        if (dst == n->gw || (n->uplink && dst == n->uplink->addr && p->l4_ofs &&
                             p->l4_proto == IPPROTO_ICMP_)) {
            if (icmp_echo_reply_in_place(p)) {
                memcpy(p->head + 6, n->mac, 6);
                out->out_port = in->no;
                return L3_TO_PORT;
            }
            return drop(in, DROP_L3_UNSUPPORTED);
        }
        const struct l3_net *m = net_of(l3, dst);
        bool between = m && !(n->uplink && dst == n->uplink->addr);
        if (!between && !n->uplink)
            return drop(in, DROP_NO_ROUTE);
        if (p->head[p->l3_ofs + 8] <= 1) /* it has a route: TTL checked before NAT */
            return ttl_expired(pmd, n, in, p, slot, out);
        if (between)
            return to_net(pmd, l3, m, in, p, out); /* between networks: routed, no NAT */
        if ((r = nat_process(pmd, l3, n, NULL, p)) >= 0)
            return drop(in, r);
        dst = rd32(p->head + p->l3_ofs + 16);
        m = net_of(l3, dst);
        return m ? to_net(pmd, l3, m, in, p, out) /* hairpin */
                 : to_uplink(l3, n->uplink, in, p, out);
    }

    /* from the uplink */
    if ((src & up->mask) == (up->addr & up->mask))
        neigh_learn(&l3->state->neigh, src, pkt_src_mac(p), pmd->now);
    if (dst != up->addr || !up->addr)
        return drop(in, DROP_NO_ROUTE);
    if (p->l4_proto == IPPROTO_ICMP_ && p->l4_ofs && p->head[p->l4_ofs] == 8) {
        if (!icmp_echo_reply_in_place(p))
            return drop(in, DROP_ICMP_INVALID);
        memcpy(p->head + 6, up->mac, 6);
        out->out_port = in->no;
        return L3_TO_PORT;
    }
    if ((r = nat_process(pmd, l3, NULL, up, p)) >= 0)
        return drop(in, r);
    const struct l3_net *m = net_of(l3, rd32(p->head + p->l3_ofs + 16));
    if (!m)
        return drop(in, DROP_NO_ROUTE);
    return to_net(pmd, l3, m, in, p, out);
}
