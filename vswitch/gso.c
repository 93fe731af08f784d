#include <string.h>

#include "gso.h"
#include "parse.h"
#include "port.h"

#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_CWR 0x80

static inline void wr16(uint8_t *p, uint16_t v)
{
    p[0] = v >> 8;
    p[1] = v & 0xff;
}

static inline void wr32(uint8_t *p, uint32_t v)
{
    wr16(p, v >> 16);
    wr16(p + 2, v & 0xffff);
}

static uint32_t sum16(const uint8_t *p, size_t len, uint32_t sum)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += rd16(p + i);
    if (len & 1)
        sum += (uint32_t)p[len - 1] << 8;
    return sum;
}

static uint16_t fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

struct pkt *gso_scratch(void)
{
    static __thread struct pkt scratch[GSO_SEGS_MAX];

    return scratch;
}

/* Points out->segs at frame bytes [from, from + len) of p (which are in p's
 * head past `hlen`, then in its segments). */
static bool slice(const struct pkt *p, uint32_t from, uint32_t len, struct pkt *out)
{
    uint32_t pos = 0;
    unsigned n = 0;

    /* the part of the frame p holds in its head */
    if (from < p->head_len) {
        uint32_t take = p->head_len - from < len ? p->head_len - from : len;
        out->segs[n].addr = (uint8_t *)p->head + from;
        out->segs[n].len = take;
        n++;
        from += take;
        len -= take;
    }
    pos = p->head_len;
    for (unsigned i = 0; i < p->nsegs && len; i++) {
        uint32_t s = p->segs[i].len;
        if (from >= pos + s) {
            pos += s;
            continue;
        }
        uint32_t off = from - pos;
        uint32_t take = s - off < len ? s - off : len;
        if (n == PKT_SEGS_MAX)
            return false;
        out->segs[n].addr = p->segs[i].addr + off;
        out->segs[n].len = take;
        n++;
        from += take;
        len -= take;
        pos += s;
    }
    out->nsegs = (uint16_t)n;
    return len == 0;
}

int pkt_gso_segment(const struct pkt *p, struct pkt *out, int max)
{
    struct pkt hdrs = *p; /* for the parse, without touching p */
    uint8_t type = p->vnet.gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
    uint16_t mss = p->vnet.gso_size;
    uint32_t l3, l4, hlen, payload, seq;
    bool v4;
    int n;

    if (type != VIRTIO_NET_HDR_GSO_TCPV4 && type != VIRTIO_NET_HDR_GSO_TCPV6)
        return -1;
    pkt_parse_l3(&hdrs);
    v4 = type == VIRTIO_NET_HDR_GSO_TCPV4;
    if (!hdrs.l3_ofs || !hdrs.l4_ofs || hdrs.l4_proto != 6 ||
        v4 != (hdrs.ethertype == ETH_TYPE_IP))
        return -1;
    l3 = hdrs.l3_ofs;
    l4 = hdrs.l4_ofs;
    if (l4 + 20 > p->head_len)
        return -1;
    hlen = l4 + (p->head[l4 + 12] >> 4) * 4u;
    if (hlen < l4 + 20 || hlen > p->head_len || p->len <= hlen || mss == 0)
        return -1;
    payload = p->len - hlen;
    n = (int)((payload + mss - 1) / mss);
    if (n > max)
        return -1;
    seq = rd32(p->head + l4 + 4);

    for (int i = 0; i < n; i++) {
        struct pkt *o = &out[i];
        uint32_t seglen = i + 1 < n ? mss : payload - (uint32_t)i * mss;
        uint8_t *ip, *tcp;
        uint32_t sum;

        memcpy(o->head, p->head, hlen);
        o->head_len = (uint16_t)hlen;
        o->len = hlen + seglen;
        o->vlan = p->vlan;
        o->pcp = p->pcp;
        o->ethertype = p->ethertype;
        o->l3_ofs = (uint16_t)l3;
        o->l4_ofs = (uint16_t)l4;
        o->l4_proto = 6;
        o->cookie = p->cookie;
        if (!slice(p, hlen + (uint32_t)i * mss, seglen, o))
            return -1;

        ip = o->head + l3;
        tcp = o->head + l4;
        if (v4) {
            wr16(ip + 2, (uint16_t)(hlen - l3 + seglen));
            wr16(ip + 4, (uint16_t)(rd16(ip + 4) + i));
            wr16(ip + 10, 0);
            wr16(ip + 10, (uint16_t)~fold(sum16(ip, (ip[0] & 0xf) * 4u, 0)));
        } else {
            wr16(ip + 4, (uint16_t)(hlen - l4 + seglen));
        }
        wr32(tcp + 4, seq + (uint32_t)i * mss);
        if (i + 1 < n)
            tcp[13] &= (uint8_t)~(TCP_FIN | TCP_PSH);
        if (i > 0)
            tcp[13] &= (uint8_t)~TCP_CWR;

        /* the pseudo-header sum, left for the egress to complete */
        if (v4)
            sum = sum16(ip + 12, 8, 0);
        else
            sum = sum16(ip + 8, 32, 0);
        sum += 6 + (hlen - l4 + seglen);
        wr16(tcp + 16, fold(sum));

        memset(&o->vnet, 0, sizeof(o->vnet));
        o->vnet.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
        o->vnet.csum_start = (uint16_t)l4;
        o->vnet.csum_offset = 16;
    }
    return n;
}

void gso_tx_burst(struct port *p, struct pkt *const *pkts, const uint16_t *tcis, int n,
                  gso_accepts_fn accepts, gso_tx_fn tx)
{
    struct pkt *segp[GSO_SEGS_MAX];
    uint16_t segt[GSO_SEGS_MAX];
    int start = 0;

    for (int i = 0; i < n; i++) {
        struct pkt *segs;
        int ns;

        if (!pkt_is_gso(pkts[i]) || (accepts && accepts(p, pkts[i])))
            continue;
        if (i > start) /* the plain frames before it, as they are */
            tx(p, pkts + start, tcis + start, i - start);
        start = i + 1;
        segs = gso_scratch();
        ns = pkt_gso_segment(pkts[i], segs, GSO_SEGS_MAX);
        if (ns < 0) {
            port_count_drop(p, DROP_GSO_UNSUPPORTED, 1);
            continue;
        }
        for (int k = 0; k < ns; k++) {
            segp[k] = &segs[k];
            segt[k] = tcis[i];
        }
        tx(p, segp, segt, ns);
    }
    if (n > start)
        tx(p, pkts + start, tcis + start, n - start);
}
