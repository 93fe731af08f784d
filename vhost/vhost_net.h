/* virtio-net on top of the vring: the header in front of each frame, and
 * mergeable receive buffers. */
#ifndef VHOST_VHOST_NET_H
#define VHOST_VHOST_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

#include "virtio_net.h"
#include "vring.h"

/* Splits a popped TX chain into its virtio-net header (copied out into *hdr,
 * zero-filled past hdr_len) and the frame that follows, as buffers into guest
 * memory (up to VRING_CHAIN_MAX). The header may span buffers. Returns the
 * frame length, or -1 when the chain is shorter than the header. */
int vhost_net_tx_split(const struct vring_chain *c, size_t hdr_len,
                       struct virtio_net_hdr *hdr, struct vring_buf *frame,
                       int *nframe);

/* Why a frame could not be delivered to a guest. */
enum vhost_net_rx_err {
    VHOST_NET_RX_OK = 0,
    VHOST_NET_RX_NO_BUF,   /* the guest has posted no (or too few) buffers */
    VHOST_NET_RX_BAD_DESC, /* a chain was refused (counted in vq->errors) */
    VHOST_NET_RX_TOO_BIG,  /* frame larger than the buffers without MRG_RXBUF */
};

/* Copies one frame (hdr, then iov[0..iovcnt) totalling frame_len bytes) into
 * the guest's receive buffers. With mrg_rxbuf the frame may fill several
 * chains and hdr->num_buffers is set; without it, the frame must fit in one
 * chain. On failure nothing is pushed (popped chains are un-popped), except
 * that chains vring_pop() refused are returned to the guest empty (as
 * vring_pop always does), together with — when such a refusal comes after
 * chains of ours — the chains already taken for this frame, since those can
 * no longer be un-popped. A chain too short for even the header is returned
 * empty too (VHOST_NET_RX_BAD_DESC, counted as VRING_ERR_LEN) rather than
 * stalling the ring. Entries are pushed, not flushed: call vring_flush() once
 * per batch. */
enum vhost_net_rx_err vhost_net_rx_copy(struct vring *vq, bool mrg_rxbuf,
                                        size_t hdr_len,
                                        const struct virtio_net_hdr *hdr,
                                        const struct iovec *iov, int iovcnt,
                                        size_t frame_len);

#endif
