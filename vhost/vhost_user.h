/* vhost-user wire format (QEMU docs/interop/vhost-user.rst): message header,
 * request ids, payloads, protocol feature bits. Framing with fd passing. */
#ifndef VHOST_VHOST_USER_H
#define VHOST_VHOST_USER_H

#include <stddef.h>
#include <stdint.h>

enum vhost_user_request {
    VHOST_USER_NONE = 0,
    VHOST_USER_GET_FEATURES = 1,
    VHOST_USER_SET_FEATURES = 2,
    VHOST_USER_SET_OWNER = 3,
    VHOST_USER_RESET_OWNER = 4,
    VHOST_USER_SET_MEM_TABLE = 5,
    VHOST_USER_SET_LOG_BASE = 6,
    VHOST_USER_SET_LOG_FD = 7,
    VHOST_USER_SET_VRING_NUM = 8,
    VHOST_USER_SET_VRING_ADDR = 9,
    VHOST_USER_SET_VRING_BASE = 10,
    VHOST_USER_GET_VRING_BASE = 11,
    VHOST_USER_SET_VRING_KICK = 12,
    VHOST_USER_SET_VRING_CALL = 13,
    VHOST_USER_SET_VRING_ERR = 14,
    VHOST_USER_GET_PROTOCOL_FEATURES = 15,
    VHOST_USER_SET_PROTOCOL_FEATURES = 16,
    VHOST_USER_GET_QUEUE_NUM = 17,
    VHOST_USER_SET_VRING_ENABLE = 18,
    VHOST_USER_SEND_RARP = 19,
    VHOST_USER_NET_SET_MTU = 20,
    VHOST_USER_SET_BACKEND_REQ_FD = 21,
    VHOST_USER_IOTLB_MSG = 22,
    VHOST_USER_SET_VRING_ENDIAN = 23,
    VHOST_USER_GET_CONFIG = 24,
    VHOST_USER_SET_CONFIG = 25,
    VHOST_USER_CREATE_CRYPTO_SESSION = 26,
    VHOST_USER_CLOSE_CRYPTO_SESSION = 27,
    VHOST_USER_POSTCOPY_ADVISE = 28,
    VHOST_USER_POSTCOPY_LISTEN = 29,
    VHOST_USER_POSTCOPY_END = 30,
    VHOST_USER_GET_INFLIGHT_FD = 31,
    VHOST_USER_SET_INFLIGHT_FD = 32,
    VHOST_USER_GPU_SET_SOCKET = 33,
    VHOST_USER_RESET_DEVICE = 34,
    VHOST_USER_VRING_KICK = 35,
    VHOST_USER_GET_MAX_MEM_SLOTS = 36,
    VHOST_USER_ADD_MEM_REG = 37,
    VHOST_USER_REM_MEM_REG = 38,
    VHOST_USER_SET_STATUS = 39,
    VHOST_USER_GET_STATUS = 40,
    VHOST_USER_MAX
};

#define VHOST_USER_PROTOCOL_F_MQ             0
#define VHOST_USER_PROTOCOL_F_LOG_SHMFD      1
#define VHOST_USER_PROTOCOL_F_RARP           2
#define VHOST_USER_PROTOCOL_F_REPLY_ACK      3
#define VHOST_USER_PROTOCOL_F_NET_MTU        4
#define VHOST_USER_PROTOCOL_F_BACKEND_REQ    5
#define VHOST_USER_PROTOCOL_F_CONFIG         9
#define VHOST_USER_PROTOCOL_F_RESET_DEVICE   13
#define VHOST_USER_PROTOCOL_F_STATUS         16

#define VHOST_USER_VERSION       0x1
#define VHOST_USER_VERSION_MASK  0x3
#define VHOST_USER_REPLY_MASK    (0x1 << 2)
#define VHOST_USER_NEED_REPLY    (0x1 << 3)

#define VHOST_USER_MAX_FDS       8
#define VHOST_USER_MAX_REGIONS   8

/* SET_VRING_KICK/CALL/ERR payload: queue index in bits 0-7, "no fd" flag. */
#define VHOST_USER_VRING_IDX_MASK 0xff
#define VHOST_USER_VRING_NOFD     (1ULL << 8)

struct vhost_user_vring_state {
    uint32_t index;
    uint32_t num;
} __attribute__((packed));

struct vhost_user_vring_addr {
    uint32_t index;
    uint32_t flags;
    uint64_t desc_user_addr;
    uint64_t used_user_addr;
    uint64_t avail_user_addr;
    uint64_t log_guest_addr;
} __attribute__((packed));

struct vhost_user_mem_region {
    uint64_t guest_phys_addr;
    uint64_t memory_size;
    uint64_t userspace_addr;
    uint64_t mmap_offset;
} __attribute__((packed));

struct vhost_user_memory {
    uint32_t nregions;
    uint32_t padding;
    struct vhost_user_mem_region regions[VHOST_USER_MAX_REGIONS];
} __attribute__((packed));

struct vhost_user_config {
    uint32_t offset;
    uint32_t size;
    uint32_t flags;
    uint8_t region[256];
} __attribute__((packed));

struct vhost_user_hdr {
    uint32_t request;
    uint32_t flags;
    uint32_t size; /* payload bytes that follow */
} __attribute__((packed));

union vhost_user_payload {
    uint64_t u64;
    struct vhost_user_vring_state state;
    struct vhost_user_vring_addr addr;
    struct vhost_user_memory memory;
    struct vhost_user_config config;
};

struct vhost_user_msg {
    struct vhost_user_hdr hdr;
    union vhost_user_payload payload;
    /* not on the wire: the fds that came with the message */
    int fds[VHOST_USER_MAX_FDS];
    int nfds;
};

#define VHOST_USER_HDR_SIZE sizeof(struct vhost_user_hdr)

/* Reads one message (header, then exactly hdr.size payload bytes) and the fds
 * passed with it. Returns 1 on a message, 0 when the peer closed the
 * connection, -errno on a framing error (payload larger than any known
 * message, short read, too many fds). On error every received fd is closed. */
int vhost_user_recv(int sock, struct vhost_user_msg *msg);

/* A message being received in pieces. An event loop must not wait for a slow
 * (or hostile) peer to finish a message: it reads what is there, keeps the
 * piece here, and goes back to its other sockets. */
struct vhost_user_reader {
    struct vhost_user_msg msg;
    size_t got; /* header + payload bytes received so far */
};

void vhost_user_reader_init(struct vhost_user_reader *rd);
/* Drops a partial message, closing any fds it carried. */
void vhost_user_reader_reset(struct vhost_user_reader *rd);

/* Reads without blocking (the socket should be non-blocking; MSG_DONTWAIT is
 * used either way). Returns 1 when rd->msg holds a whole message — the caller
 * takes it, fds included, and calls vhost_user_reader_init before the next
 * read; -EAGAIN when more bytes are needed; 0 when the peer closed between
 * messages; other -errno on a framing error (as vhost_user_recv; the partial
 * message's fds are closed). */
int vhost_user_recv_nb(int sock, struct vhost_user_reader *rd);

/* Sends a message with optional fds. Returns 0 or -errno. */
int vhost_user_send(int sock, const struct vhost_user_msg *msg, const int *fds,
                    int nfds);

/* Closes every fd the message still carries and sets nfds to 0. */
void vhost_user_close_fds(struct vhost_user_msg *msg);

/* Name of a request for logs ("SET_MEM_TABLE"), "UNKNOWN" if out of range. */
const char *vhost_user_request_name(uint32_t request);

#endif
