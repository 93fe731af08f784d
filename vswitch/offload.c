/* Software checksum for packets whose source asked the egress to finish it
 * (virtio NEEDS_CSUM) when the egress cannot. */
#include "pkt.h"

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len, bool *odd)
{
    size_t i = 0;

    if (*odd && len) {
        sum += p[0];
        i = 1;
        *odd = false;
    }
    for (; i + 1 < len; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (i < len) {
        sum += (uint32_t)p[i] << 8;
        *odd = true;
    }
    /* keep headroom against overflow on long frames */
    return (sum & 0xffff) + (sum >> 16);
}

bool pkt_finish_csum(struct pkt *p)
{
    uint32_t start = p->vnet.csum_start;
    uint32_t field = start + p->vnet.csum_offset;
    uint32_t sum = 0;
    bool odd = false;
    uint16_t res;

    if (field + 2 > p->head_len || start >= p->len)
        return false;
    if (start < p->head_len)
        sum = csum_add(sum, p->head + start, p->head_len - start, &odd);
    for (unsigned i = 0; i < p->nsegs; i++)
        sum = csum_add(sum, p->segs[i].addr, p->segs[i].len, &odd);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    res = (uint16_t)~sum;
    /* UDP uses 0xffff for a computed zero */
    if (res == 0)
        res = 0xffff;
    p->head[field] = res >> 8;
    p->head[field + 1] = res & 0xff;
    p->vnet.flags &= (uint8_t)~VIRTIO_NET_HDR_F_NEEDS_CSUM;
    return true;
}

bool pkt_vnet_untag(struct pkt *p, uint16_t tci)
{
    struct virtio_net_hdr *h = &p->vnet;

    if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
        if (tci) {
            if (h->csum_start < 2 * ETH_ALEN + VLAN_HLEN)
                return false;
            h->csum_start -= VLAN_HLEN;
        }
        if ((uint32_t)h->csum_start + h->csum_offset + 2 > p->len)
            return false;
    }
    if (h->gso_type != VIRTIO_NET_HDR_GSO_NONE) {
        if (!(h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) || h->gso_size == 0)
            return false;
        if (tci && h->hdr_len >= VLAN_HLEN)
            h->hdr_len -= VLAN_HLEN;
    }
    return true;
}

void pkt_vnet_for_egress(const struct pkt *p, uint16_t tci, struct virtio_net_hdr *h)
{
    *h = p->vnet;
    h->num_buffers = 0;
    if (tci) {
        if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
            h->csum_start += VLAN_HLEN;
        if (h->gso_type != VIRTIO_NET_HDR_GSO_NONE && h->hdr_len)
            h->hdr_len += VLAN_HLEN;
    }
}
