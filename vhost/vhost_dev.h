/* The vhost-user backend (device) side: one vhost_dev per connection-capable
 * port. The owner (vswitchd) accepts or dials the socket and calls
 * vhost_dev_handle_msg() whenever the socket is readable; this module keeps the
 * protocol state machine (a handler per request id), the memory table and the
 * vrings, and tells the owner when the datapath must stay away.
 *
 * Threads: every function here runs on the control thread. The datapath uses
 * only vhost_dev_vring() and the vring/vhost_net functions, and only between
 * ops->resume() and the next ops->quiesce(). */
#ifndef VHOST_VHOST_DEV_H
#define VHOST_VHOST_DEV_H

#include <stdbool.h>
#include <stdint.h>

#include "vhost_mem.h"
#include "vhost_user.h"
#include "virtio_net.h"
#include "vring.h"

/* Features this backend offers. Fixed per build: frontends refuse a backend
 * whose features shrink across a reconnect. */
#define VHOST_DEV_FEATURES                                                     \
    (VIRTIO_BIT(VIRTIO_NET_F_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM) |     \
     VIRTIO_BIT(VIRTIO_NET_F_MTU) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4) |      \
     VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_ECN) | \
     VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) | VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6) |  \
     VIRTIO_BIT(VIRTIO_NET_F_HOST_ECN) | VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) |   \
     VIRTIO_BIT(VIRTIO_NET_F_STATUS) | VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ) |       \
     VIRTIO_BIT(VIRTIO_NET_F_MQ) | VIRTIO_BIT(VIRTIO_F_ANY_LAYOUT) |            \
     VIRTIO_BIT(VIRTIO_RING_F_INDIRECT_DESC) |                                 \
     VIRTIO_BIT(VIRTIO_RING_F_EVENT_IDX) |                                     \
     VIRTIO_BIT(VHOST_USER_F_PROTOCOL_FEATURES) | VIRTIO_BIT(VIRTIO_F_VERSION_1))

#define VHOST_DEV_PROTOCOL_FEATURES                                            \
    ((1ULL << VHOST_USER_PROTOCOL_F_MQ) |                                      \
     (1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK) |                               \
     (1ULL << VHOST_USER_PROTOCOL_F_NET_MTU) |                                 \
     (1ULL << VHOST_USER_PROTOCOL_F_RESET_DEVICE) |                            \
     (1ULL << VHOST_USER_PROTOCOL_F_STATUS))

/* Queue pairs: vring 2*i is the guest's RX (we write), 2*i+1 its TX (we read). */
#define VHOST_DEV_MAX_QUEUE_PAIRS 8
#define VHOST_DEV_MAX_VRINGS (2 * VHOST_DEV_MAX_QUEUE_PAIRS)

/* Protocol errors counted per device (malformed or unexpected messages). */
enum vhost_dev_err {
    VHOST_DEV_ERR_FRAMING,      /* short read, oversized payload, too many fds */
    VHOST_DEV_ERR_UNKNOWN_REQ,  /* request id we do not implement */
    VHOST_DEV_ERR_BAD_SIZE,     /* payload size wrong for the request */
    VHOST_DEV_ERR_BAD_INDEX,    /* vring index out of range */
    VHOST_DEV_ERR_BAD_VALUE,    /* features we did not offer, ring size, ... */
    VHOST_DEV_ERR_BAD_FDS,      /* missing fd, or fds where none belong */
    VHOST_DEV_ERR_MEM_TABLE,    /* a memory table that could not be mapped */
    VHOST_DEV_ERR_RING_ADDR,    /* ring addresses outside guest memory */
    VHOST_DEV_ERR__COUNT
};

const char *vhost_dev_err_name(enum vhost_dev_err err);

struct vhost_dev_ops {
    /* The datapath must stop using this device's vrings and memory; return
     * only when it has (vswitchd: clear the ready flag, synchronize_rcu). */
    void (*quiesce)(void *opaque);
    /* The device may be used again; vhost_dev_vring_ready() tells which
     * vrings. Also called when the link state changes, i.e. whenever the set
     * of ready vrings differs from the one at the previous resume — so it can
     * come without a quiesce before it (a vring became ready). Sample
     * readiness, kick_fd and call_fd here: they change only between
     * quiesce() and resume(). quiesce() is called only for a change the datapath
     * could see: memory, features or status while some vring was ready at
     * the previous resume(), or a change to a vring that was (setting up
     * queue pair 2 does not stop pair 1). Every quiesce() is followed by a
     * resume() before the call that caused it returns. */
    void (*resume)(void *opaque);
};

struct vhost_dev;

/* log sink for the whole library; default: stderr. level: 0 error, 1 warn,
 * 2 info, 3 debug. */
typedef void (*vhost_log_fn)(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void vhost_set_log(vhost_log_fn fn);

/* name: for logs. max_queue_pairs: 1..VHOST_DEV_MAX_QUEUE_PAIRS, answered to
 * GET_QUEUE_NUM. mtu: answered in the config space / accepted from NET_SET_MTU. */
struct vhost_dev *vhost_dev_create(const char *name, unsigned max_queue_pairs,
                                   uint16_t mtu, const struct vhost_dev_ops *ops,
                                   void *opaque);

/* Drops the connection state (as vhost_dev_disconnect) and frees the device. */
void vhost_dev_destroy(struct vhost_dev *dev);

/* Handles one message from the connected frontend on `sock`: reads it, runs
 * its handler, replies when the request needs a reply (or REPLY_ACK asked),
 * closes any fd not kept. Returns 0 to keep the connection, -1 when it must be
 * closed (peer gone, or a framing error after which the stream cannot be
 * trusted). A bad but well-framed message is answered with an error (or
 * ignored) and counted; the connection stays. */
int vhost_dev_handle_msg(struct vhost_dev *dev, int sock);

/* The connection went away: quiesce, unmap memory, close kick/call/err fds,
 * reset every vring and the negotiated state, so that a new connection starts
 * from scratch. The device keeps its identity and counters. */
void vhost_dev_disconnect(struct vhost_dev *dev);

/* Negotiated virtio features (0 before SET_FEATURES). */
uint64_t vhost_dev_features(const struct vhost_dev *dev);

/* Header length in front of each frame: 12 with VERSION_1 or MRG_RXBUF, else 10. */
size_t vhost_dev_hdr_len(const struct vhost_dev *dev);

/* Number of vrings the frontend has touched (highest index + 1). */
unsigned vhost_dev_num_vrings(const struct vhost_dev *dev);

struct vring *vhost_dev_vring(struct vhost_dev *dev, unsigned idx);

/* True when vring idx may be used by the datapath: memory mapped, size,
 * addresses and kick set (SET_VRING_KICK seen since the last GET_VRING_BASE;
 * with the NOFD flag kick_fd is -1 and the ring must be polled), enabled
 * (SET_VRING_ENABLE, or always when
 * PROTOCOL_FEATURES was not negotiated), not stopped by GET_VRING_BASE, not
 * broken, and the driver status (if the frontend sets it) has DRIVER_OK. */
bool vhost_dev_vring_ready(const struct vhost_dev *dev, unsigned idx);

/* True while at least vrings 0 and 1 are ready. */
bool vhost_dev_running(const struct vhost_dev *dev);

/* Whether addr lies in this device's mapping of guest memory (to attribute a
 * fault). Safe from the datapath while the device is not quiesced. */
bool vhost_dev_owns_addr(const struct vhost_dev *dev, const void *addr);

const uint64_t *vhost_dev_errors(const struct vhost_dev *dev); /* [VHOST_DEV_ERR__COUNT] */

/* The MTU: the one given at create, or the last NET_SET_MTU. */
uint16_t vhost_dev_mtu(const struct vhost_dev *dev);

/* Negotiated protocol features (0 before SET_PROTOCOL_FEATURES). */
uint64_t vhost_dev_protocol_features(const struct vhost_dev *dev);

/* Driver status from SET_STATUS (0 if the frontend never set one). */
uint8_t vhost_dev_status(const struct vhost_dev *dev);

#endif
