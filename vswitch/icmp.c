/* ICMP at the gateway: echo replies for its own addresses, made in place in
 * the packet's head (the payload stays where it was received: the reply
 * carries the same bytes back), and the errors a router sends (time
 * exceeded), built whole in a buffer of the PMD. */
#include <arpa/inet.h>
#include <string.h>

#include "l3.h"

void icmp_csum_fix_zero(struct pkt *p)
{
    const uint8_t *ip = p->head + p->l3_ofs;
    uint8_t *cs = p->head + p->l4_ofs + 2, chunk[64];
    uint32_t off = p->l4_ofs, end = p->l3_ofs + (uint32_t)(ip[2] << 8 | ip[3]);

    if (cs[0] | cs[1])
        return;
    while (off < end) {
        uint32_t n = end - off < sizeof chunk ? end - off : sizeof chunk;
        n = pkt_copy_out(p, off, n, chunk);
        if (!n)
            break;
        for (uint32_t i = 0; i < n; i++)
            if (chunk[i])
                return;
        off += n;
    }
    cs[0] = cs[1] = 0xff;
}

bool icmp_echo_reply_in_place(struct pkt *p)
{
    uint8_t *ip = p->head + p->l3_ofs, *ic;
    uint8_t tmp[6];
    uint16_t csum;
    uint32_t a;

    if (!p->l4_ofs || p->l4_proto != IPPROTO_ICMP_ || p->head_len < p->l4_ofs + 8)
        return false;
    ic = p->head + p->l4_ofs;
    if (ic[0] != 8 || ic[1] != 0)
        return false;
    /* type 8 -> 0: the checksum moves by the changed word */
    memcpy(&csum, ic + 2, 2);
    csum = csum_update16(csum, htons(0x0800), htons(0x0000));
    ic[0] = 0;
    memcpy(ic + 2, &csum, 2);
    icmp_csum_fix_zero(p); /* an echo of nothing but zeros */
    memcpy(&a, ip + 12, 4);
    memcpy(ip + 12, ip + 16, 4);
    memcpy(ip + 16, &a, 4);
    if (ip[8] != 64) { /* a fresh TTL */
        memcpy(&csum, ip + 10, 2);
        csum = csum_update16(csum, htons((uint16_t)(ip[8] << 8 | ip[9])),
                             htons((uint16_t)(64 << 8 | ip[9])));
        ip[8] = 64;
        memcpy(ip + 10, &csum, 2);
    }
    memcpy(tmp, p->head, 6);
    memcpy(p->head, p->head + 6, 6);
    memcpy(p->head + 6, tmp, 6);
    p->vnet.flags &= (uint8_t)~VIRTIO_NET_HDR_F_NEEDS_CSUM;
    p->vnet.gso_type = VIRTIO_NET_HDR_GSO_NONE;
    return true;
}

/* RFC 1812 4.3.2.7: no error about an ICMP error, a later fragment, or a
 * packet whose source names no single host. */
static bool icmp_error_allowed(const struct pkt *p, const uint8_t *ip)
{
    uint32_t src;

    memcpy(&src, ip + 12, 4);
    src = ntohl(src);
    if ((ip[6] << 8 | ip[7]) & 0x1fff)
        return false;
    if (!src || src == 0xffffffffu || (src >> 28) >= 14 || (src >> 24) == 127)
        return false;
    if (mac_is_multicast(pkt_src_mac(p)) || mac_is_multicast(pkt_dst_mac(p)))
        return false;
    if (ip[9] == IPPROTO_ICMP_) {
        uint8_t type;
        if (!p->l4_ofs || pkt_copy_out(p, p->l4_ofs, 1, &type) != 1 ||
            icmp_is_error(type))
            return false;
    }
    return true;
}

size_t icmp_error_build(const struct pkt *p, uint8_t type, uint8_t code,
                        const uint8_t mac[6], uint32_t from, uint8_t *buf, size_t cap)
{
    const uint8_t *ip0 = p->head + p->l3_ofs;
    uint8_t *ip = buf + ETH_HLEN, *ic = ip + 20;
    uint32_t tot0, quote, a;
    uint16_t cs;

    if (!p->l3_ofs || !icmp_error_allowed(p, ip0))
        return 0;
    /* as much of the datagram as keeps the error within 576 bytes of IP */
    tot0 = (uint32_t)(ip0[2] << 8 | ip0[3]);
    quote = tot0 < 576 - 28 ? tot0 : 576 - 28;
    if (cap < ETH_HLEN + 28 + quote)
        return 0;
    quote = pkt_copy_out(p, p->l3_ofs, quote, ic + 8);

    memcpy(buf, pkt_src_mac(p), 6);
    memcpy(buf + 6, mac, 6);
    buf[12] = ETH_TYPE_IP >> 8;
    buf[13] = ETH_TYPE_IP & 0xff;
    memset(ip, 0, 20);
    ip[0] = 0x45;
    ip[1] = 0xc0; /* internetwork control, as routers send their errors */
    ip[2] = (uint8_t)((28 + quote) >> 8);
    ip[3] = (uint8_t)(28 + quote);
    ip[8] = 64;
    ip[9] = IPPROTO_ICMP_;
    a = htonl(from);
    memcpy(ip + 12, &a, 4);
    memcpy(ip + 16, ip0 + 12, 4);
    cs = ipv4_csum(ip, 20);
    memcpy(ip + 10, &cs, 2);
    memset(ic, 0, 8);
    ic[0] = type;
    ic[1] = code;
    cs = csum_fold(csum_partial(ic, 8 + quote, 0));
    memcpy(ic + 2, &cs, 2);
    return ETH_HLEN + 28 + quote;
}
