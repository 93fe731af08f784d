/* A packet in flight. Headers are copied into `head` (so a guest cannot change
 * what was parsed and decided on); the rest of the frame stays where it was
 * received — in the source guest's memory, or in the receiving port's buffer —
 * as a list of segments. Transmit gathers head + segments straight into the
 * destination: one copy, guest to guest.
 *
 * `head` always holds the frame WITHOUT its 802.1Q tag; the VLAN travels in the
 * metadata and the egress port's rule decides whether a tag is written. */
#ifndef VSWITCH_PKT_H
#define VSWITCH_PKT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include "virtio_net.h"
#include "vring.h"

#define PKT_BATCH 32
#define PKT_HEAD_MAX 128
#define PKT_SEGS_MAX VRING_CHAIN_MAX
#define ETH_HLEN 14
#define ETH_ALEN 6
#define VLAN_HLEN 4
#define ETH_TYPE_VLAN 0x8100
#define ETH_TYPE_QINQ 0x88a8
#define ETH_TYPE_IP 0x0800
#define ETH_TYPE_IPV6 0x86dd
#define ETH_TYPE_ARP 0x0806

/* The longest frame a port accepts: a 64 KiB TSO super-frame with its
 * Ethernet header and a VLAN tag. */
#define PKT_FRAME_MAX (65535 + ETH_HLEN + VLAN_HLEN)

/* iovecs needed to transmit one packet: head split around the tag + segments */
#define PKT_IOV_MAX (PKT_SEGS_MAX + 3)

struct pkt {
    struct virtio_net_hdr vnet; /* offload request, as the source gave it */
    uint32_t len;               /* frame length without the VLAN tag */
    uint16_t head_len;
    uint16_t nsegs;
    /* metadata, parsed once */
    uint16_t vlan;              /* rx_burst: the received TCI (0 untagged);
                                   after the VLAN stage: internal VLAN */
    uint16_t pcp;               /* priority bits of the received tag, << 13 */
    uint16_t ethertype;         /* after the VLAN tag */
    uint16_t l3_ofs;            /* into head; 0 if none */
    uint16_t l4_ofs;            /* 0 if none or beyond head */
    uint8_t l4_proto;
    uint8_t in_port_unused;
    uint32_t cookie;            /* the source port's handle (e.g. chain head) */
    struct vring_buf segs[PKT_SEGS_MAX];
    uint8_t head[PKT_HEAD_MAX];
};

static inline const uint8_t *pkt_dst_mac(const struct pkt *p)
{
    return p->head;
}

static inline const uint8_t *pkt_src_mac(const struct pkt *p)
{
    return p->head + ETH_ALEN;
}

static inline bool mac_is_multicast(const uint8_t *mac)
{
    return mac[0] & 1;
}

/* Big-endian (wire order) fields at any alignment. */
static inline uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Fills iov with the frame to transmit: with `tci` non-zero an 802.1Q tag is
 * inserted after the MAC addresses (tagbuf supplies its 4 bytes). Returns the
 * number of iovecs. */
static inline int pkt_gather(const struct pkt *p, uint16_t tci, uint8_t tagbuf[4],
                             struct iovec *iov)
{
    int n = 0;

    if (tci) {
        tagbuf[0] = ETH_TYPE_VLAN >> 8;
        tagbuf[1] = ETH_TYPE_VLAN & 0xff;
        tagbuf[2] = tci >> 8;
        tagbuf[3] = tci & 0xff;
        iov[n].iov_base = (void *)p->head;
        iov[n++].iov_len = 2 * ETH_ALEN;
        iov[n].iov_base = tagbuf;
        iov[n++].iov_len = VLAN_HLEN;
        iov[n].iov_base = (void *)(p->head + 2 * ETH_ALEN);
        iov[n++].iov_len = p->head_len - 2 * ETH_ALEN;
    } else {
        iov[n].iov_base = (void *)p->head;
        iov[n++].iov_len = p->head_len;
    }
    for (unsigned i = 0; i < p->nsegs; i++) {
        iov[n].iov_base = p->segs[i].addr;
        iov[n++].iov_len = p->segs[i].len;
    }
    return n;
}

/* Builds a packet from a frame given as buffers (a guest chain past its
 * virtio-net header, or a port's own buffer): copies up to PKT_HEAD_MAX bytes
 * of headers into head, removing an 802.1Q tag (its TCI is returned in *tci,
 * 0 if untagged), and keeps the rest as segments. Returns false when the frame
 * is shorter than an Ethernet header or has more segments than fit. */
bool pkt_from_bufs(struct pkt *p, const struct vring_buf *bufs, unsigned nbufs,
                   uint32_t frame_len, uint16_t *tci);

/* Offloads (offload.c): the virtio-net header travels with the packet. */

/* Adjusts a received packet's offload request for the tag pkt_from_bufs
 * removed; false if the request points into the tag or past the frame. */
bool pkt_vnet_untag(struct pkt *p, uint16_t tci);

/* The virtio-net header to send with p when a tag tci (0: none) is written. */
void pkt_vnet_for_egress(const struct pkt *p, uint16_t tci, struct virtio_net_hdr *h);

/* Computes the checksum a NEEDS_CSUM packet asked for, in software, for an
 * egress that cannot take the request (writes into head). Returns false when
 * csum_start/offset do not fit the frame. */
bool pkt_finish_csum(struct pkt *p);

#endif
