/* The split virtqueue (virtio 1.2 §2.7), device side. One vring is used by one
 * thread at a time (its PMD thread, or a transmitting thread under the port's
 * tx lock); the control thread changes it only while the datapath is quiesced
 * (see vhost_dev.h).
 *
 * The guest is not trusted: every index, descriptor, address and length is read
 * once into a local copy, validated, and only the copy is used. */
#ifndef VHOST_VRING_H
#define VHOST_VRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vhost_mem.h"

#define VRING_DESC_F_NEXT     1
#define VRING_DESC_F_WRITE    2
#define VRING_DESC_F_INDIRECT 4

#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY     1

#define VRING_SIZE_MAX 32768

/* Most buffers one chain may hold after indirect expansion. Linux needs
 * MAX_SKB_FRAGS + 2 for a 64 KiB TSO frame. */
#define VRING_CHAIN_MAX 64

struct vring_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct vring_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[];
};

struct vring_used_elem {
    uint32_t id;
    uint32_t len;
};

struct vring_used {
    uint16_t flags;
    uint16_t idx;
    struct vring_used_elem ring[];
};

/* Why a chain was refused. Values index vring_err_name(). */
enum vring_err {
    VRING_OK = 0,
    VRING_EMPTY,              /* nothing available (not an error) */
    VRING_ERR_AVAIL_IDX,      /* avail->idx moved more than the ring size */
    VRING_ERR_HEAD,           /* head index >= ring size */
    VRING_ERR_DESC_INDEX,     /* next index >= ring (or table) size */
    VRING_ERR_ADDR,           /* buffer not wholly inside one memory region */
    VRING_ERR_LOOP,           /* chain revisits a descriptor / longer than the ring */
    VRING_ERR_INDIRECT_NESTED,/* indirect descriptor inside an indirect table */
    VRING_ERR_INDIRECT_NEXT,  /* INDIRECT together with NEXT */
    VRING_ERR_INDIRECT_SIZE,  /* table length 0, not a multiple of 16, or too long */
    VRING_ERR_INDIRECT_OFF,   /* INDIRECT without the negotiated feature */
    VRING_ERR_DIRECTION,      /* writable buffer in a chain we read, or the reverse */
    VRING_ERR_LEN,            /* total length overflows or exceeds the limit */
    VRING_ERR_TOO_MANY_BUFS,  /* more than VRING_CHAIN_MAX buffers */
    VRING_ERR_NOT_READY,      /* ring not set up (no address, size or memory) */
    VRING_ERR__COUNT
};

const char *vring_err_name(enum vring_err err);

/* One guest buffer, translated and checked. */
struct vring_buf {
    uint8_t *addr;
    uint32_t len;
};

struct vring_chain {
    uint16_t head;  /* what goes back in the used ring */
    uint16_t nbufs;
    uint32_t len;   /* sum of bufs[].len */
    struct vring_buf bufs[VRING_CHAIN_MAX];
};

struct vring {
    /* set by the control thread while quiesced */
    uint16_t size;                 /* 0: not configured */
    struct vring_desc *desc;
    struct vring_avail *avail;
    struct vring_used *used;
    const struct vhost_mem *mem;
    bool event_idx;                /* VIRTIO_RING_F_EVENT_IDX negotiated */
    bool indirect;                 /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
    int kick_fd;                   /* -1 if none */
    int call_fd;                   /* -1 if none */

    /* datapath state */
    uint16_t last_avail_idx;       /* next avail entry we will read */
    uint16_t shadow_avail_idx;     /* avail->idx as last read (saves re-reading
                                      the guest's cache line per chain) */
    uint16_t last_used_idx;        /* next used entry we will write */
    uint16_t signalled_used;       /* used idx at the last interrupt */
    bool signalled_used_valid;
    bool broken;                   /* a fatal inconsistency was seen; ring stopped */
    uint16_t pending_used;         /* entries written since the last vring_flush */
    uint64_t errors[VRING_ERR__COUNT];
};

/* Resets a vring to unconfigured (fds are not closed). */
void vring_init(struct vring *vq);

/* Translates the three ring addresses (frontend virtual addresses) for a ring
 * of vq->size entries through vq->mem and checks their alignment. Returns 0 or
 * VRING_ERR_ADDR/VRING_ERR_NOT_READY; on success vq->desc/avail/used are set. */
int vring_set_addr(struct vring *vq, uint64_t desc_uva, uint64_t avail_uva,
                   uint64_t used_uva);

/* Number of chains the guest has made available and we have not popped. */
uint16_t vring_avail_count(struct vring *vq);

/* Pops the next available chain. want_writable selects the direction: a guest
 * TX queue holds device-readable chains (false), an RX queue device-writable
 * ones (true). Returns VRING_OK with *c filled, VRING_EMPTY, or an error. On an
 * error whose head index was valid, the chain is returned to the guest in the
 * used ring with length 0 (the guest gets its descriptors back) and the error
 * is counted in vq->errors (published at the next vring_flush). A bad avail
 * index or head marks the ring broken. */
enum vring_err vring_pop(struct vring *vq, bool want_writable, struct vring_chain *c);

/* Puts chain `head` in the used ring with `len` bytes written. Visible to the
 * guest at the next vring_flush(). */
void vring_push(struct vring *vq, uint16_t head, uint32_t len);

/* Gives back the last `n` popped chains that were not consumed (rewinds
 * last_avail_idx). Only valid before anything else is pushed for them, and
 * not across a chain vring_pop refused (that one is already in the used
 * ring and would be popped twice). */
void vring_unpop(struct vring *vq, uint16_t n);

/* Publishes pushed entries (used->idx, with a release barrier) and notifies the
 * guest through call_fd unless it asked not to be (NO_INTERRUPT or used_event,
 * with EVENT_IDX). */
void vring_flush(struct vring *vq);

/* Asks the guest to kick (or not) when it adds buffers: clears or sets
 * VRING_USED_F_NO_NOTIFY, or with EVENT_IDX writes avail_event. Call with
 * enable=true before sleeping on kick_fd, then check vring_avail_count() again
 * (the guest may have added buffers in between). */
void vring_set_notify(struct vring *vq, bool enable);

#endif
