/* mbuf <-> packet conversion of the dpdk port type (port_dpdk.c); tested in
 * tests/unit/vswitch/test_port_dpdk.c. Only in a build with DPDK. */
#ifndef VSWITCH_DPDK_MBUF_H
#define VSWITCH_DPDK_MBUF_H

#include <stdbool.h>
#include <sys/uio.h>

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "drop.h"
#include "pkt.h"

/* A received mbuf chain as a packet: head copied, the rest segments in the
 * mbufs' data (valid until the mbufs are freed). DROP__COUNT when p is good,
 * else why it is not (runt, too many segments). */
enum drop_reason dpdk_mbuf_to_pkt(const struct rte_mbuf *m, struct pkt *p);

/* Copies the frame in iov[0..n) into mbufs from mp, chained when longer than
 * one mbuf's data room and multi_seg allows. *out holds the head mbuf while it
 * is filled (so a fault in the copy leaves it to be freed) and on success.
 * DROP__COUNT on success, else the reason (no_buffer, mtu). */
enum drop_reason dpdk_mbuf_from_iov(struct rte_mempool *mp, const struct iovec *iov, int n,
                                    bool multi_seg, struct rte_mbuf **out);

#endif
