#include <string.h>

#include "parse.h"

/* Copies `len` bytes starting at frame offset `off` out of bufs into dst. */
static void bufs_copy(uint8_t *dst, const struct vring_buf *bufs, unsigned nbufs,
                      uint32_t off, uint32_t len)
{
    for (unsigned i = 0; i < nbufs && len; i++) {
        if (off >= bufs[i].len) {
            off -= bufs[i].len;
            continue;
        }
        uint32_t n = bufs[i].len - off;
        if (n > len)
            n = len;
        memcpy(dst, bufs[i].addr + off, n);
        dst += n;
        len -= n;
        off = 0;
    }
}

bool pkt_from_bufs(struct pkt *p, const struct vring_buf *bufs, unsigned nbufs,
                   uint32_t frame_len, uint16_t *tci)
{
    uint32_t raw = frame_len < PKT_HEAD_MAX ? frame_len : PKT_HEAD_MAX;
    uint32_t off;
    unsigned n = 0;

    if (frame_len < ETH_HLEN)
        return false;
    /* Fast path: the whole head lies in the first buffer. */
    if (nbufs && bufs[0].len >= raw)
        memcpy(p->head, bufs[0].addr, raw);
    else
        bufs_copy(p->head, bufs, nbufs, 0, raw);

    *tci = 0;
    p->len = frame_len;
    p->head_len = raw;
    if (rd16(p->head + 12) == ETH_TYPE_VLAN) {
        if (raw < ETH_HLEN + VLAN_HLEN)
            return false;
        *tci = rd16(p->head + 14);
        memmove(p->head + 12, p->head + 16, raw - 16);
        p->head_len = raw - VLAN_HLEN;
        p->len = frame_len - VLAN_HLEN;
    }
    p->ethertype = rd16(p->head + 12);
    p->l3_ofs = 0;
    p->l4_ofs = 0;
    p->l4_proto = 0;

    /* The rest of the frame stays where it is. */
    off = raw;
    for (unsigned i = 0; i < nbufs; i++) {
        if (off >= bufs[i].len) {
            off -= bufs[i].len;
            continue;
        }
        if (n == PKT_SEGS_MAX)
            return false;
        p->segs[n].addr = bufs[i].addr + off;
        p->segs[n].len = bufs[i].len - off;
        n++;
        off = 0;
    }
    p->nsegs = n;
    return true;
}

void pkt_parse_l3(struct pkt *p)
{
    const uint8_t *h = p->head;
    unsigned l3 = ETH_HLEN;

    p->l3_ofs = 0;
    p->l4_ofs = 0;
    p->l4_proto = 0;
    if (p->ethertype == ETH_TYPE_IP) {
        if (p->head_len < l3 + 20 || (h[l3] >> 4) != 4)
            return;
        unsigned ihl = (h[l3] & 0xf) * 4u;
        uint16_t tot = rd16(h + l3 + 2);
        if (ihl < 20 || tot < ihl || tot > p->len - l3)
            return;
        p->l3_ofs = l3;
        p->l4_proto = h[l3 + 9];
        /* later fragments carry no L4 header */
        if ((rd16(h + l3 + 6) & 0x1fff) == 0 && p->head_len >= l3 + ihl)
            p->l4_ofs = l3 + ihl;
    } else if (p->ethertype == ETH_TYPE_IPV6) {
        if (p->head_len < l3 + 40 || (h[l3] >> 4) != 6)
            return;
        if (rd16(h + l3 + 4) > p->len - l3 - 40)
            return;
        p->l3_ofs = l3;
        p->l4_proto = h[l3 + 6];
        p->l4_ofs = l3 + 40;
    }
}
