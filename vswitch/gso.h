/* Software segmentation of TCP super-frames (virtio GSO_TCPV4/TCPV6) for an
 * egress that cannot take them: a guest without GUEST_TSO, a VXLAN tunnel.
 * No payload is copied: each segment is its own copy of the headers, fixed
 * up, plus segments that point into the super-frame's buffers. The checksum
 * is left as a NEEDS_CSUM request over the pseudo-header, which the egress
 * offloads or finishes in software (pkt_finish_csum). */
#ifndef VSWITCH_GSO_H
#define VSWITCH_GSO_H

#include "pkt.h"

/* Most segments one super-frame yields (64 KiB / the smallest sane MSS). */
#define GSO_SEGS_MAX 128

/* Whether p is a super-frame (gso_type set). */
static inline bool pkt_is_gso(const struct pkt *p)
{
    return p->vnet.gso_type != VIRTIO_NET_HDR_GSO_NONE;
}

/* Cuts p into segments of at most gso_size payload bytes, written to out[]
 * (at most max). Returns how many, or -1 when p cannot be segmented here (UDP
 * fragmentation offload, headers beyond the copied head, an MSS that would
 * need more than max segments, inconsistent lengths). out[] points into p's
 * buffers: use them before p's buffers go back to their owner. */
int pkt_gso_segment(const struct pkt *p, struct pkt *out, int max);

/* A per-thread array of GSO_SEGS_MAX packets for pkt_gso_segment. */
struct pkt *gso_scratch(void);

struct port;
typedef void (*gso_tx_fn)(struct port *p, struct pkt *const *pkts, const uint16_t *tcis,
                          int n);

/* Whether a port takes this super-frame as it is (e.g. a guest that
 * negotiated GUEST_TSO4 for a TCPV4 one). */
typedef bool (*gso_accepts_fn)(struct port *p, const struct pkt *pk);

/* The transmit path of every port type that may meet super-frames it cannot
 * take, and that is done with a packet when tx returns (it copies it out):
 * calls tx with the burst in order, every super-frame that `accepts` refuses
 * (all of them when accepts is NULL) replaced by its segments. One that cannot
 * be segmented is counted as gso_unsupported. */
void gso_tx_burst(struct port *p, struct pkt *const *pkts, const uint16_t *tcis, int n,
                  gso_accepts_fn accepts, gso_tx_fn tx);

#endif
