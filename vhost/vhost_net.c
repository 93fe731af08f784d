/* virtio-net framing on the vring: the header in front of every frame, and
 * receive into one or (with MRG_RXBUF) several guest chains. */
#include <string.h>

#include "vhost_net.h"

#define unlikely(x) __builtin_expect(!!(x), 0)

int vhost_net_tx_split(const struct vring_chain *c, size_t hdr_len,
                       struct virtio_net_hdr *hdr, struct vring_buf *frame,
                       int *nframe)
{
    size_t need = hdr_len;
    uint8_t *out = (uint8_t *)hdr;
    int i = 0, n = 0;
    uint32_t off = 0;

    if (unlikely(hdr_len > sizeof(*hdr) || c->len < hdr_len))
        return -1;
    memset(hdr, 0, sizeof(*hdr));

    /* the header may span several buffers; copy it out so the guest cannot
     * change it after we looked */
    while (need) {
        const struct vring_buf *b = &c->bufs[i];
        size_t take = b->len < need ? b->len : need;

        memcpy(out, b->addr, take);
        out += take;
        need -= take;
        if (take == b->len) {
            i++;
        } else {
            off = (uint32_t)take;
        }
    }

    for (; i < c->nbufs; i++) {
        frame[n].addr = c->bufs[i].addr + off;
        frame[n].len = c->bufs[i].len - off;
        off = 0;
        n++;
    }
    *nframe = n;
    return (int)(c->len - hdr_len);
}

/* Where the next byte goes in a chain being filled. */
struct chain_cursor {
    const struct vring_chain *c;
    uint16_t buf;
    uint32_t off;
};

/* Copies up to len bytes from the source cursor into the chain; returns how
 * many fitted. */
static size_t copy_to_chain(struct chain_cursor *dst, const struct iovec *iov,
                            int iovcnt, int *src_i, size_t *src_off, size_t len)
{
    size_t done = 0;

    while (done < len && dst->buf < dst->c->nbufs && *src_i < iovcnt) {
        const struct vring_buf *b = &dst->c->bufs[dst->buf];
        const struct iovec *s = &iov[*src_i];
        size_t room = b->len - dst->off;
        size_t avail = s->iov_len - *src_off;
        size_t n = len - done;

        if (n > room)
            n = room;
        if (n > avail)
            n = avail;
        memcpy(b->addr + dst->off, (const uint8_t *)s->iov_base + *src_off, n);
        done += n;
        dst->off += (uint32_t)n;
        *src_off += n;
        if (dst->off == b->len) {
            dst->buf++;
            dst->off = 0;
        }
        if (*src_off == s->iov_len) {
            (*src_i)++;
            *src_off = 0;
        }
    }
    return done;
}

/* Scatters the header over the first bytes of a chain (it may span
 * buffers). The chain is known to hold at least hdr_len bytes. */
static void write_hdr(const struct vring_chain *c, const struct virtio_net_hdr *hdr,
                      size_t hdr_len)
{
    const uint8_t *src = (const uint8_t *)hdr;

    for (uint16_t i = 0; hdr_len && i < c->nbufs; i++) {
        size_t n = c->bufs[i].len < hdr_len ? c->bufs[i].len : hdr_len;

        memcpy(c->bufs[i].addr, src, n);
        src += n;
        hdr_len -= n;
    }
}

/* Chains one frame may take with MRG_RXBUF. 64 KiB in 1500-byte buffers is
 * 45; guests with smaller buffers are not worth a bigger stack. */
#define RX_MAX_CHAINS 128

enum vhost_net_rx_err vhost_net_rx_copy(struct vring *vq, bool mrg_rxbuf,
                                        size_t hdr_len,
                                        const struct virtio_net_hdr *hdr,
                                        const struct iovec *iov, int iovcnt,
                                        size_t frame_len)
{
    struct vring_chain first, next;
    struct vring_used_elem used[RX_MAX_CHAINS];
    struct virtio_net_hdr h;
    struct chain_cursor cur;
    enum vhost_net_rx_err ret;
    enum vring_err e;
    size_t left = frame_len, src_off = 0;
    int src_i = 0;
    unsigned nchains = 0;
    bool lost_order = false; /* a bad chain was consumed after ours */

    if (unlikely(hdr_len > sizeof(h)))
        return VHOST_NET_RX_BAD_DESC;

    e = vring_pop(vq, true, &first);
    if (e == VRING_EMPTY || e == VRING_ERR_NOT_READY)
        return VHOST_NET_RX_NO_BUF;
    if (e != VRING_OK)
        return VHOST_NET_RX_BAD_DESC;
    if (unlikely(first.len < hdr_len)) {
        /* no frame can ever fit: give it back rather than stall the ring */
        vq->errors[VRING_ERR_LEN]++;
        vring_push(vq, first.head, 0);
        return VHOST_NET_RX_BAD_DESC;
    }
    nchains = 1;
    if (!mrg_rxbuf && first.len - hdr_len < frame_len) {
        ret = VHOST_NET_RX_TOO_BIG;
        goto fail;
    }

    /* the header goes in last, once num_buffers is known */
    cur.c = &first;
    cur.buf = 0;
    cur.off = 0;
    for (size_t skip = hdr_len; skip;) {
        uint32_t room = first.bufs[cur.buf].len - cur.off;
        uint32_t n = skip < room ? (uint32_t)skip : room;

        cur.off += n;
        skip -= n;
        if (cur.off == first.bufs[cur.buf].len) {
            cur.buf++;
            cur.off = 0;
        }
    }
    left -= copy_to_chain(&cur, iov, iovcnt, &src_i, &src_off, left);
    used[0].id = first.head;
    used[0].len = (uint32_t)(frame_len - left + hdr_len);

    while (left) {
        size_t n;

        if (nchains == RX_MAX_CHAINS) {
            ret = VHOST_NET_RX_TOO_BIG;
            goto fail;
        }
        if (src_i >= iovcnt) {
            /* iov holds less than frame_len: the caller's bug, not the guest's */
            ret = VHOST_NET_RX_TOO_BIG;
            goto fail;
        }
        e = vring_pop(vq, true, &next);
        if (e == VRING_EMPTY || e == VRING_ERR_NOT_READY) {
            ret = VHOST_NET_RX_NO_BUF;
            goto fail;
        }
        if (e != VRING_OK) {
            lost_order = true;
            ret = VHOST_NET_RX_BAD_DESC;
            goto fail;
        }
        nchains++;
        cur.c = &next;
        cur.buf = 0;
        cur.off = 0;
        n = copy_to_chain(&cur, iov, iovcnt, &src_i, &src_off, left);
        left -= n;
        used[nchains - 1].id = next.head;
        used[nchains - 1].len = (uint32_t)n;
    }

    memcpy(&h, hdr, sizeof(h));
    if (hdr_len >= VIRTIO_NET_HDR_LEN_V1)
        h.num_buffers = (uint16_t)nchains;
    write_hdr(&first, &h, hdr_len);
    for (unsigned i = 0; i < nchains; i++)
        vring_push(vq, (uint16_t)used[i].id, used[i].len);
    return VHOST_NET_RX_OK;

fail:
    if (lost_order) {
        /* vring_pop already returned the bad chain behind ours, so ours
         * cannot be un-popped; give them back empty */
        for (unsigned i = 0; i < nchains; i++)
            vring_push(vq, (uint16_t)used[i].id, 0);
    } else {
        vring_unpop(vq, (uint16_t)nchains);
    }
    return ret;
}
