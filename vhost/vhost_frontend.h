/* The vhost-user frontend (driver) side, as the VMM's virtio-net uses it: the
 * VMM owns guest memory and the rings' placement, and hands the datapath to a
 * backend (vswitchd, DPDK, Open vSwitch) over one unix socket.
 *
 * Calls are synchronous request/response on the socket, each bounded by the
 * timeout given at creation; they run on the VMM's control thread. A failed
 * call (backend gone, refused request, timeout) returns -errno and leaves the
 * frontend "disconnected": the caller closes the socket, redials or waits for
 * the backend to dial again, and replays the setup with vhost_fe_start().
 * Same wire code as the backend (vhost_user.c). */
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

/* Takes ownership of a connected socket. timeout_ms bounds every reply wait. */
struct vhost_fe *vhost_fe_create(const char *name, int sock, int timeout_ms);
/* Closes the socket and frees; does not touch guest memory or the fds given. */
void vhost_fe_destroy(struct vhost_fe *fe);
int vhost_fe_socket(const struct vhost_fe *fe);

/* SET_OWNER, GET_FEATURES, GET/SET_PROTOCOL_FEATURES (MQ, REPLY_ACK, STATUS,
 * NET_MTU where offered), GET_QUEUE_NUM. After it the backend's offer is known. */
int vhost_fe_handshake(struct vhost_fe *fe, char *err, size_t errlen);
uint64_t vhost_fe_backend_features(const struct vhost_fe *fe);
uint64_t vhost_fe_protocol_features(const struct vhost_fe *fe);
unsigned vhost_fe_max_queue_pairs(const struct vhost_fe *fe);

/* Starts the device with the features the guest driver accepted (must be a
 * subset of the backend's offer; VHOST_USER_F_PROTOCOL_FEATURES is added when
 * negotiated): SET_FEATURES, SET_MEM_TABLE, then per ring SET_VRING_NUM, BASE,
 * ADDR, KICK, CALL, SET_VRING_ENABLE(1), and SET_STATUS(DRIVER_OK) when the
 * STATUS protocol feature was negotiated. REPLY_ACK is asked for where it
 * matters. On failure err says which step. */
int vhost_fe_start(struct vhost_fe *fe, uint64_t features,
                   const struct vhost_fe_region *regions, unsigned nregions,
                   const struct vhost_fe_vring *rings, unsigned nrings, char *err,
                   size_t errlen);

/* Stops the rings (SET_VRING_ENABLE(0) where negotiated, then GET_VRING_BASE
 * for each, whose reply is returned in bases[i]) — the device reset path. */
int vhost_fe_stop(struct vhost_fe *fe, const unsigned *indices, unsigned n,
                  uint16_t *bases);

/* Lower-level requests, for tests and for the device model's corner cases.
 * vhost_fe_request sends msg (with fds) and, when want_reply, waits for the
 * reply of the same request id into *reply. */
int vhost_fe_request(struct vhost_fe *fe, struct vhost_user_msg *msg, const int *fds,
                     int nfds, bool want_reply, struct vhost_user_msg *reply);

#endif
