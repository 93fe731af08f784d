/* What the uplink port types (afxdp, dpdk) share: copying a gathered frame
 * into a fixed-size buffer of their own, the egress checks for a device that
 * takes no offload requests, the uplink address from ip=, and the frame
 * accounting of an AF_XDP UMEM. Everything here is plain data and unit-tested
 * without a kernel or DPDK (tests/unit/vswitch/test_uplink.c). */
#ifndef VSWITCH_UPLINK_H
#define VSWITCH_UPLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "conf.h"
#include "drop.h"
#include "pkt.h"

/* Total length of iov[0..n). */
size_t uplink_iov_len(const struct iovec *iov, int n);

/* Copies iov[0..n) to dst if it fits in cap bytes; returns the length, or 0
 * (nothing copied) when it does not. */
size_t uplink_iov_copy(void *dst, size_t cap, const struct iovec *iov, int n);

/* A device that takes frames as they are (no virtio-net header): finishes a
 * requested checksum in software. Returns DROP__COUNT when p may be sent,
 * else the reason to count. GSO super-frames are refused (gso_unsupported). */
enum drop_reason uplink_tx_prepare(struct pkt *p);

/* The IPv4 address and prefix of ip=CIDR; -1 when ip= is empty or IPv6. */
int uplink_addr_from_conf(const struct conf_port *c, uint32_t *addr_be,
                          uint8_t *prefix_len);

/* The first IPv4 address of a kernel interface (rtnetlink, libnl-route-3);
 * -1 if it has none. */
int uplink_addr_of_ifname(const char *ifname, uint32_t *addr_be, uint8_t *prefix_len);

/* UMEM frame accounting: a stack of free frame addresses. An AF_XDP port
 * splits its UMEM in two pools that never mix: receive frames cycle fill ring
 * -> rx ring -> a batch in flight -> fill ring, and transmit frames cycle this
 * stack -> tx ring -> completion ring -> this stack. */
struct umem_frames {
    uint64_t *addr;
    uint32_t n;   /* free frames on the stack */
    uint32_t cap; /* frames in the pool */
};

/* A pool of count frames of frame_size bytes starting at UMEM offset first,
 * all free. -1 on allocation failure. */
int umem_frames_init(struct umem_frames *f, uint64_t first, uint32_t count,
                     uint32_t frame_size);
void umem_frames_free(struct umem_frames *f);

static inline bool umem_frames_empty(const struct umem_frames *f)
{
    return f->n == 0;
}

/* The frame pop() would return, without taking it. */
static inline uint64_t umem_frames_peek(const struct umem_frames *f)
{
    return f->addr[f->n - 1];
}

static inline uint64_t umem_frames_pop(struct umem_frames *f)
{
    return f->addr[--f->n];
}

/* Returns false (and keeps nothing) if the pool is already full: a frame
 * given back twice, or one that never belonged to it. */
static inline bool umem_frames_push(struct umem_frames *f, uint64_t addr)
{
    if (f->n == f->cap)
        return false;
    f->addr[f->n++] = addr;
    return true;
}

#endif
