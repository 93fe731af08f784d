/* The vhost-user frontend (driver) side, as the VMM's virtio-net uses it: the
 * VMM owns guest memory and the rings' placement, and hands the datapath to a
 * backend (vswitchd, DPDK, Open vSwitch) over one unix socket.
 *
 * Calls are synchronous request/response on the socket, each bounded by the
 * timeout given at creation; they run on the VMM's control thread. A failed
 * call (backend gone, refused request, timeout) returns -errno and leaves the
 * frontend "disconnected": the caller closes the socket, redials or waits for
 * the backend to dial again, hands the new socket over with vhost_fe_reconnect(),
 * and replays the setup with vhost_fe_handshake() and vhost_fe_start().
 * Same wire code as the backend (vhost_user.c).
 *
 * Errors: -ETIMEDOUT no reply within the timeout, -ECONNRESET the backend
 * closed the connection, -EPROTO a reply that breaks the protocol (wrong
 * request id, wrong size, missing reply flag, a value out of range),
 * -EREMOTEIO the backend refused a request (REPLY_ACK with a non-zero
 * status, or an empty reply), -ENOTCONN an earlier call failed and no
 * reconnect came since, -EINVAL bad arguments (nothing was sent; the frontend
 * stays usable). The backend is not trusted: every reply is checked. */
#ifndef VHOST_VHOST_FRONTEND_H
#define VHOST_VHOST_FRONTEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vhost_user.h"

/* One region of guest RAM as the frontend shares it: the backend maps `fd`
 * at `fd_offset` for `size` bytes; gpa is where the guest sees it, uva where
 * the VMM mapped it (ring addresses are sent as uvas). */
struct vhost_fe_region {
    uint64_t gpa;
    uint64_t size;
    uint64_t uva;
    int fd;
    uint64_t fd_offset;
};

/* One virtqueue to start. Addresses are the VMM's own virtual addresses (as
 * QEMU sends them). base: the index the backend starts from (0 on a fresh
 * start; the ring's used->idx when replaying after the backend went away). */
struct vhost_fe_vring {
    unsigned index;
    uint16_t num;
    uint64_t desc_uva, avail_uva, used_uva;
    uint16_t base;
    int kick_fd; /* eventfd the guest's notify write signals (KVM_IOEVENTFD) */
    int call_fd; /* eventfd that raises the queue's MSI-X vector (KVM_IRQFD) */
};

struct vhost_fe;

/* Takes ownership of a connected socket (closed here too when this fails and
 * returns NULL) and makes it non-blocking. timeout_ms bounds every wait for a
 * reply to begin; a reply that has begun must go on arriving without a pause
 * longer than vhost_user.c's 1 s (the same bound covers a send stalled on a
 * full socket buffer). */
struct vhost_fe *vhost_fe_create(const char *name, int sock, int timeout_ms);
/* Closes the socket and frees; does not touch guest memory or the fds given. */
void vhost_fe_destroy(struct vhost_fe *fe);
int vhost_fe_socket(const struct vhost_fe *fe);

/* Addition. After the backend went away (any failed call): takes a new
 * connected socket, closing the old one, and forgets what was negotiated;
 * vhost_fe_handshake() and vhost_fe_start() come next. The features of the
 * last successful vhost_fe_start() are kept: the next handshake fails with
 * -EPROTO if the backend no longer offers all of them (the guest driver has
 * accepted them and cannot be told otherwise). Takes ownership of sock even
 * on failure. */
int vhost_fe_reconnect(struct vhost_fe *fe, int sock);

/* SET_OWNER, GET_FEATURES, GET/SET_PROTOCOL_FEATURES (MQ, REPLY_ACK, STATUS,
 * NET_MTU where offered), GET_QUEUE_NUM. After it the backend's offer is known.
 * A backend that does not offer VIRTIO_F_VERSION_1 is refused (-EPROTO): the
 * VMM's virtio-pci devices are modern only. */
int vhost_fe_handshake(struct vhost_fe *fe, char *err, size_t errlen);
/* The backend's GET_FEATURES offer (including VHOST_USER_F_PROTOCOL_FEATURES
 * when offered: mask it out before offering the rest to the guest). */
uint64_t vhost_fe_backend_features(const struct vhost_fe *fe);
/* The negotiated protocol features: the offer's MQ, REPLY_ACK, STATUS, NET_MTU. */
uint64_t vhost_fe_protocol_features(const struct vhost_fe *fe);
/* GET_QUEUE_NUM's answer with MQ (1..0x8000), else 1. */
unsigned vhost_fe_max_queue_pairs(const struct vhost_fe *fe);

/* Starts the device with the features the guest driver accepted (must be a
 * subset of the backend's offer; VHOST_USER_F_PROTOCOL_FEATURES is added when
 * negotiated): SET_FEATURES, SET_STATUS(ACKNOWLEDGE|DRIVER|FEATURES_OK) with
 * STATUS, SET_MEM_TABLE, then per ring SET_VRING_NUM, BASE, ADDR, CALL, KICK,
 * then SET_VRING_ENABLE(1) per ring with PROTOCOL_FEATURES, and
 * SET_STATUS(ACKNOWLEDGE|DRIVER|FEATURES_OK|DRIVER_OK) with STATUS.
 * (CALL comes before KICK, not after as this header first said: without
 * PROTOCOL_FEATURES a backend starts the ring on KICK, and DPDK waits for
 * both fds, so the interrupt fd must be in place first.)
 * With REPLY_ACK every request above asks for an ack and a refusal stops the
 * start; without it, a GET_FEATURES at the end makes sure the backend has
 * handled everything before this returns. A kick_fd or call_fd of -1 is sent
 * with the no-fd flag (the backend polls / does not interrupt). Rings: index
 * below 2 * max queue pairs, each once; num a power of 2 up to 32768. On
 * failure err says which step (and which vring). */
int vhost_fe_start(struct vhost_fe *fe, uint64_t features,
                   const struct vhost_fe_region *regions, unsigned nregions,
                   const struct vhost_fe_vring *rings, unsigned nrings, char *err,
                   size_t errlen);

/* Stops the rings (SET_VRING_ENABLE(0) for each where negotiated, then
 * GET_VRING_BASE for each, whose reply is returned in bases[i]) — the device
 * reset path. The reply must name the ring asked for. */
int vhost_fe_stop(struct vhost_fe *fe, const unsigned *indices, unsigned n,
                  uint16_t *bases);

/* Addition. NET_SET_MTU (acked with REPLY_ACK); -EOPNOTSUPP without the
 * NET_MTU protocol feature. */
int vhost_fe_set_mtu(struct vhost_fe *fe, uint16_t mtu);

/* Addition. The sentence describing the last failure ("" if none), for the
 * calls that take no err buffer. */
const char *vhost_fe_last_error(const struct vhost_fe *fe);

/* Lower-level requests, for tests and for the device model's corner cases.
 * vhost_fe_request sends msg (with fds) and, when want_reply, waits for the
 * reply of the same request id into *reply. The version bits of
 * msg->hdr.flags are set here, NEED_REPLY is left as the caller put it and the
 * reply's payload is not interpreted (an ack is the caller's to check). Fds
 * that come with the reply are left in reply->fds for the caller to close
 * (vhost_user_close_fds). A failure leaves the frontend disconnected. */
int vhost_fe_request(struct vhost_fe *fe, struct vhost_user_msg *msg, const int *fds,
                     int nfds, bool want_reply, struct vhost_user_msg *reply);

#endif
