/* ICMP at the gateway: echo replies for its own addresses, made in place in
 * the packet's head (the payload stays where it was received: the reply
 * carries the same bytes back). */
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
