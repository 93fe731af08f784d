/* vhost-user backend state machine: one handler per request id, looked up in
 * a table that also says what payload size and fds the request carries, so
 * the checks common to all requests live in one place (vhost_dev_handle_msg).
 *
 * Requests may come in any order the protocol allows (QEMU, DPDK virtio-user
 * and Cloud Hypervisor each use their own), so nothing here waits for an
 * earlier step: state is stored as it arrives and a vring is translated and
 * made ready as soon as everything it needs is there. */
#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhost_dev.h"

struct dev_vring {
    struct vring vq;
    int err_fd;
    bool enabled;  /* SET_VRING_ENABLE */
    bool started;  /* SET_VRING_KICK seen since the last GET_VRING_BASE */
    bool addr_set; /* SET_VRING_ADDR seen; the uvas below are valid */
    uint64_t desc_uva, avail_uva, used_uva;
};

struct vhost_dev {
    char name[64];
    unsigned max_queue_pairs;
    uint16_t mtu;
    const struct vhost_dev_ops *ops;
    void *opaque;

    uint64_t features;
    uint64_t protocol_features;
    bool features_failed; /* a SET_FEATURES was refused: no FEATURES_OK */
    bool owner;
    bool status_set;
    uint8_t status;
    unsigned num_vrings;
    struct vhost_mem mem;
    struct dev_vring vrings[VHOST_DEV_MAX_VRINGS];

    struct vhost_user_reader rd; /* a message arriving in pieces */
    bool quiesced;
    uint32_t announced; /* ready vrings at the last resume() */
    uint64_t errors[VHOST_DEV_ERR__COUNT];
};

/* ---- logging ---- */

static void log_stderr(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void log_stderr(int level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    va_list ap;

    if (level > 2)
        return;
    fprintf(stderr, "%s: ", names[level < 0 ? 0 : level]);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static vhost_log_fn log_fn = log_stderr;

void vhost_set_log(vhost_log_fn fn)
{
    log_fn = fn ? fn : log_stderr;
}

#define dev_log(dev, level, fmt, ...)                                          \
    log_fn(level, "vhost-user %s: " fmt, (dev)->name, ##__VA_ARGS__)

static const char *const err_names[VHOST_DEV_ERR__COUNT] = {
    [VHOST_DEV_ERR_FRAMING] = "framing",
    [VHOST_DEV_ERR_UNKNOWN_REQ] = "unknown request",
    [VHOST_DEV_ERR_BAD_SIZE] = "bad payload size",
    [VHOST_DEV_ERR_BAD_INDEX] = "bad vring index",
    [VHOST_DEV_ERR_BAD_VALUE] = "bad value",
    [VHOST_DEV_ERR_BAD_FDS] = "bad fds",
    [VHOST_DEV_ERR_MEM_TABLE] = "bad memory table",
    [VHOST_DEV_ERR_RING_ADDR] = "bad ring address",
};

const char *vhost_dev_err_name(enum vhost_dev_err err)
{
    if ((unsigned)err >= VHOST_DEV_ERR__COUNT)
        return "unknown";
    return err_names[err];
}

/* Counts a refused message and says why; returns -1 for the handler. */
static int dev_refuse(struct vhost_dev *dev, enum vhost_dev_err err,
                      const struct vhost_user_msg *msg, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int dev_refuse(struct vhost_dev *dev, enum vhost_dev_err err,
                      const struct vhost_user_msg *msg, const char *fmt, ...)
{
    char why[200];
    va_list ap;

    dev->errors[err]++;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    dev_log(dev, 1, "%s refused (%s): %s", vhost_user_request_name(msg->hdr.request),
            vhost_dev_err_name(err), why);
    return -1;
}

/* ---- quiesce / resume ---- */

static uint32_t ready_mask(const struct vhost_dev *dev)
{
    uint32_t mask = 0;

    for (unsigned i = 0; i < 2 * dev->max_queue_pairs; i++)
        if (vhost_dev_vring_ready(dev, i))
            mask |= 1u << i;
    return mask;
}

/* Before changing anything the datapath may read. Nothing to wait for while
 * the datapath was told of no ready vring. */
static void dev_quiesce(struct vhost_dev *dev)
{
    if (dev->quiesced || !dev->announced)
        return;
    dev->quiesced = true;
    if (dev->ops && dev->ops->quiesce)
        dev->ops->quiesce(dev->opaque);
}

/* Before changing one vring: the datapath touches only the vrings it was
 * told were ready, so bringing up queue pair 2 need not stop pair 1. */
static void dev_quiesce_ring(struct vhost_dev *dev, unsigned idx)
{
    if (dev->announced & (1u << idx))
        dev_quiesce(dev);
}

/* After a message: let the datapath go on, and tell it when the set of ready
 * vrings changed. One quiesce/resume pair per message at most. */
static void dev_settle(struct vhost_dev *dev)
{
    uint32_t mask = ready_mask(dev);

    if (!dev->quiesced && mask == dev->announced)
        return;
    dev->quiesced = false;
    dev->announced = mask;
    if (dev->ops && dev->ops->resume)
        dev->ops->resume(dev->opaque);
}

/* ---- vring helpers ---- */

static void apply_features(struct vhost_dev *dev)
{
    for (unsigned i = 0; i < VHOST_DEV_MAX_VRINGS; i++) {
        struct vring *vq = &dev->vrings[i].vq;

        vq->event_idx = dev->features & VIRTIO_BIT(VIRTIO_RING_F_EVENT_IDX);
        vq->indirect = dev->features & VIRTIO_BIT(VIRTIO_RING_F_INDIRECT_DESC);
    }
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void ring_reset(struct vhost_dev *dev, struct dev_vring *r)
{
    close_fd(&r->vq.kick_fd);
    close_fd(&r->vq.call_fd);
    close_fd(&r->err_fd);
    vring_init(&r->vq);
    r->vq.mem = &dev->mem;
    r->enabled = false;
    r->started = false;
    r->addr_set = false;
    r->desc_uva = r->avail_uva = r->used_uva = 0;
}

/* Translates a vring's addresses once size, addresses and memory are all
 * known. Returns -1 only when they are known and do not fit guest memory. */
static int ring_translate(struct vhost_dev *dev, struct dev_vring *r, unsigned idx)
{
    struct vring *vq = &r->vq;
    int e;

    if (!r->addr_set || !vq->size || !dev->mem.nregions) {
        vq->desc = NULL;
        vq->avail = NULL;
        vq->used = NULL;
        return 0;
    }
    e = vring_set_addr(vq, r->desc_uva, r->avail_uva, r->used_uva);
    if (e) {
        dev->errors[VHOST_DEV_ERR_RING_ADDR]++;
        dev_log(dev, 1,
                "vring %u: addresses desc 0x%llx avail 0x%llx used 0x%llx (size %u) "
                "not in guest memory",
                idx, (unsigned long long)r->desc_uva, (unsigned long long)r->avail_uva,
                (unsigned long long)r->used_uva, vq->size);
        return -1;
    }
    /* We write used entries at last_used_idx: it must agree with what the
     * guest sees, or a reconnect after a crash would overwrite or skip
     * entries. The used ring is the truth. */
    uint16_t used_idx = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
    if (used_idx != vq->last_used_idx) {
        dev_log(dev, 2, "vring %u: used idx %u, base said %u; following the ring",
                idx, used_idx, vq->last_used_idx);
        vq->last_used_idx = used_idx;
    }
    vq->signalled_used_valid = false;
    return 0;
}

static struct dev_vring *ring_arg(struct vhost_dev *dev,
                                  const struct vhost_user_msg *msg, uint32_t index)
{
    if (index >= 2 * dev->max_queue_pairs) {
        dev_refuse(dev, VHOST_DEV_ERR_BAD_INDEX, msg, "vring %u of %u", index,
                   2 * dev->max_queue_pairs);
        return NULL;
    }
    if (index + 1 > dev->num_vrings)
        dev->num_vrings = index + 1;
    return &dev->vrings[index];
}

/* The vring and fd of SET_VRING_KICK/CALL/ERR: one fd, or none with NOFD.
 * The fd is taken out of msg (the caller owns it). */
static struct dev_vring *ring_fd_arg(struct vhost_dev *dev, struct vhost_user_msg *msg,
                                     int *fd)
{
    uint64_t v = msg->payload.u64;
    bool nofd = v & VHOST_USER_VRING_NOFD;
    struct dev_vring *r;

    if (nofd && msg->nfds != 0) {
        dev_refuse(dev, VHOST_DEV_ERR_BAD_FDS, msg, "%d fds with the no-fd flag",
                   msg->nfds);
        return NULL;
    }
    if (!nofd && msg->nfds != 1) {
        dev_refuse(dev, VHOST_DEV_ERR_BAD_FDS, msg, "%d fds, 1 expected", msg->nfds);
        return NULL;
    }
    r = ring_arg(dev, msg, (uint32_t)(v & VHOST_USER_VRING_IDX_MASK));
    if (!r)
        return NULL;
    *fd = nofd ? -1 : msg->fds[0];
    msg->nfds = 0;
    return r;
}

static void reply_u64(struct vhost_user_msg *reply, uint64_t v)
{
    reply->payload.u64 = v;
    reply->hdr.size = sizeof(uint64_t);
}

/* Back to the state of a fresh connection. keep_session keeps what is
 * negotiated once per connection (protocol features, ownership). */
static void dev_reset(struct vhost_dev *dev, bool keep_session)
{
    dev_quiesce(dev);
    for (unsigned i = 0; i < VHOST_DEV_MAX_VRINGS; i++)
        ring_reset(dev, &dev->vrings[i]);
    vhost_mem_unmap(&dev->mem);
    dev->features = 0;
    dev->features_failed = false;
    dev->status = 0;
    dev->status_set = false;
    dev->num_vrings = 0;
    if (!keep_session) {
        dev->protocol_features = 0;
        dev->owner = false;
    }
    apply_features(dev);
}

/* ---- handlers ----
 * Each returns 0 or -1 (already counted and logged). Handlers whose request
 * has a reply fill *reply; on -1 an empty reply is sent so that the frontend
 * fails instead of waiting. */

typedef int (*handler_fn)(struct vhost_dev *dev, struct vhost_user_msg *msg,
                          struct vhost_user_msg *reply);

static int h_get_features(struct vhost_dev *dev, struct vhost_user_msg *msg,
                          struct vhost_user_msg *reply)
{
    reply_u64(reply, VHOST_DEV_FEATURES);
    return 0;
}

static int h_set_features(struct vhost_dev *dev, struct vhost_user_msg *msg,
                          struct vhost_user_msg *reply)
{
    uint64_t f = msg->payload.u64;

    if (f & ~(uint64_t)VHOST_DEV_FEATURES) {
        dev->features_failed = true;
        return dev_refuse(dev, VHOST_DEV_ERR_BAD_VALUE, msg,
                          "features 0x%llx not offered",
                          (unsigned long long)(f & ~(uint64_t)VHOST_DEV_FEATURES));
    }
    if (f != dev->features)
        dev_quiesce(dev);
    dev->features = f;
    dev->features_failed = false;
    apply_features(dev);
    return 0;
}

static int h_set_owner(struct vhost_dev *dev, struct vhost_user_msg *msg,
                       struct vhost_user_msg *reply)
{
    dev->owner = true;
    return 0;
}

static int h_reset_owner(struct vhost_dev *dev, struct vhost_user_msg *msg,
                         struct vhost_user_msg *reply)
{
    dev_reset(dev, true);
    dev->owner = false;
    return 0;
}

static int h_reset_device(struct vhost_dev *dev, struct vhost_user_msg *msg,
                          struct vhost_user_msg *reply)
{
    dev_reset(dev, true);
    return 0;
}

static int h_set_mem_table(struct vhost_dev *dev, struct vhost_user_msg *msg,
                           struct vhost_user_msg *reply)
{
    const struct vhost_user_memory *m = &msg->payload.memory;
    struct vhost_mem new_mem, old_mem;
    char err[200];
    int r;

    if (msg->hdr.size < offsetof(struct vhost_user_memory, regions) ||
        (m->nregions <= VHOST_USER_MAX_REGIONS &&
         msg->hdr.size != offsetof(struct vhost_user_memory, regions) +
                              m->nregions * sizeof(m->regions[0])))
        return dev_refuse(dev, VHOST_DEV_ERR_BAD_SIZE, msg, "%u bytes", msg->hdr.size);
    if (m->nregions >= 1 && m->nregions <= VHOST_USER_MAX_REGIONS &&
        (uint32_t)msg->nfds != m->nregions)
        return dev_refuse(dev, VHOST_DEV_ERR_BAD_FDS, msg, "%d fds for %u regions",
                          msg->nfds, m->nregions);

    r = vhost_mem_map(&new_mem, m, msg->hdr.size, msg->fds, msg->nfds, err,
                      sizeof(err));
    /* the mappings hold the memory; the fds are not needed either way */
    vhost_user_close_fds(msg);
    if (r < 0)
        return dev_refuse(dev, VHOST_DEV_ERR_MEM_TABLE, msg, "%s", err);

    dev_quiesce(dev);
    old_mem = dev->mem;
    dev->mem = new_mem;
    for (unsigned i = 0; i < VHOST_DEV_MAX_VRINGS; i++)
        ring_translate(dev, &dev->vrings[i], i);
    /* the old table goes only after nothing points into it */
    vhost_mem_unmap(&old_mem);
    dev_log(dev, 3, "memory table: %u regions", dev->mem.nregions);
    return 0;
}

static int h_set_log_base(struct vhost_dev *dev, struct vhost_user_msg *msg,
                          struct vhost_user_msg *reply)
{
    /* LOG_ALL / LOG_SHMFD are not offered: there is no log to keep */
    return dev_refuse(dev, VHOST_DEV_ERR_BAD_VALUE, msg,
                      "dirty logging was not negotiated");
}

static int h_set_log_fd(struct vhost_dev *dev, struct vhost_user_msg *msg,
                        struct vhost_user_msg *reply)
{
    /* harmless: the fd is closed and nothing is ever logged */
    return 0;
}

static int h_set_vring_num(struct vhost_dev *dev, struct vhost_user_msg *msg,
                           struct vhost_user_msg *reply)
{
    uint32_t num = msg->payload.state.num;
    struct dev_vring *r = ring_arg(dev, msg, msg->payload.state.index);

    if (!r)
        return -1;
    if (num == 0 || num > VRING_SIZE_MAX || (num & (num - 1)))
        return dev_refuse(dev, VHOST_DEV_ERR_BAD_VALUE, msg, "vring size %u", num);
    dev_quiesce_ring(dev, msg->payload.state.index);
    r->vq.size = (uint16_t)num;
    return ring_translate(dev, r, msg->payload.state.index);
}

static int h_set_vring_addr(struct vhost_dev *dev, struct vhost_user_msg *msg,
                            struct vhost_user_msg *reply)
{
    const struct vhost_user_vring_addr *a = &msg->payload.addr;
    struct dev_vring *r = ring_arg(dev, msg, a->index);

    if (!r)
        return -1;
    dev_quiesce_ring(dev, a->index);
    r->desc_uva = a->desc_user_addr;
    r->avail_uva = a->avail_user_addr;
    r->used_uva = a->used_user_addr;
    r->addr_set = true;
    return ring_translate(dev, r, a->index);
}

static int h_set_vring_base(struct vhost_dev *dev, struct vhost_user_msg *msg,
                            struct vhost_user_msg *reply)
{
    uint32_t num = msg->payload.state.num;
    struct dev_vring *r = ring_arg(dev, msg, msg->payload.state.index);

    if (!r)
        return -1;
    if (num > UINT16_MAX)
        return dev_refuse(dev, VHOST_DEV_ERR_BAD_VALUE, msg, "base %u", num);
    dev_quiesce_ring(dev, msg->payload.state.index);
    r->vq.last_avail_idx = (uint16_t)num;
    r->vq.shadow_avail_idx = (uint16_t)num;
    r->vq.last_used_idx = (uint16_t)num;
    r->vq.pending_used = 0;
    r->vq.signalled_used_valid = false;
    r->vq.broken = false;
    if (r->vq.used)
        ring_translate(dev, r, msg->payload.state.index);
    return 0;
}

static int h_get_vring_base(struct vhost_dev *dev, struct vhost_user_msg *msg,
                            struct vhost_user_msg *reply)
{
    uint32_t index = msg->payload.state.index;
    struct dev_vring *r = ring_arg(dev, msg, index);

    if (!r)
        return -1;
    dev_quiesce_ring(dev, index);
    /* the datapath flushes per batch; this only guards a stray push */
    vring_flush(&r->vq);
    r->started = false;
    reply->payload.state.index = index;
    reply->payload.state.num = r->vq.last_avail_idx;
    reply->hdr.size = sizeof(reply->payload.state);
    return 0;
}

/* SET_VRING_KICK/CALL/ERR: the ring's fd at `offset` in struct dev_vring is
 * replaced (the old one closed); the datapath is kept away first when it reads
 * that fd. Returns the ring, or NULL (refused and counted). */
static struct dev_vring *replace_ring_fd(struct vhost_dev *dev, struct vhost_user_msg *msg,
                                         size_t offset, bool datapath_uses)
{
    int fd;
    struct dev_vring *r = ring_fd_arg(dev, msg, &fd);
    int *slot;

    if (!r)
        return NULL;
    slot = (int *)((char *)r + offset);
    if (datapath_uses)
        dev_quiesce_ring(dev, (unsigned)(r - dev->vrings));
    close_fd(slot);
    *slot = fd;
    return r;
}

static int h_set_vring_kick(struct vhost_dev *dev, struct vhost_user_msg *msg,
                            struct vhost_user_msg *reply)
{
    struct dev_vring *r = replace_ring_fd(dev, msg, offsetof(struct dev_vring, vq.kick_fd),
                                          true);

    if (!r)
        return -1;
    /* Starts the ring (the spec's "upon receiving a kick": every frontend
     * sends this last when starting a ring). Without PROTOCOL_FEATURES the
     * ring is enabled too (vhost_dev_vring_ready does not look at enabled
     * then). */
    r->started = true;
    if (!(dev->features & VIRTIO_BIT(VHOST_USER_F_PROTOCOL_FEATURES)))
        r->enabled = true;
    return 0;
}

static int h_set_vring_call(struct vhost_dev *dev, struct vhost_user_msg *msg,
                            struct vhost_user_msg *reply)
{
    return replace_ring_fd(dev, msg, offsetof(struct dev_vring, vq.call_fd), true) ? 0 : -1;
}

static int h_set_vring_err(struct vhost_dev *dev, struct vhost_user_msg *msg,
                           struct vhost_user_msg *reply)
{
    /* the datapath never writes the err fd: no quiesce */
    return replace_ring_fd(dev, msg, offsetof(struct dev_vring, err_fd), false) ? 0 : -1;
}

static int h_get_protocol_features(struct vhost_dev *dev, struct vhost_user_msg *msg,
                                   struct vhost_user_msg *reply)
{
    reply_u64(reply, VHOST_DEV_PROTOCOL_FEATURES);
    return 0;
}

static int h_set_protocol_features(struct vhost_dev *dev, struct vhost_user_msg *msg,
                                   struct vhost_user_msg *reply)
{
    uint64_t f = msg->payload.u64;

    if (f & ~(uint64_t)VHOST_DEV_PROTOCOL_FEATURES)
        return dev_refuse(
            dev, VHOST_DEV_ERR_BAD_VALUE, msg, "protocol features 0x%llx not offered",
            (unsigned long long)(f & ~(uint64_t)VHOST_DEV_PROTOCOL_FEATURES));
    dev->protocol_features = f;
    return 0;
}

static int h_get_queue_num(struct vhost_dev *dev, struct vhost_user_msg *msg,
                           struct vhost_user_msg *reply)
{
    reply_u64(reply, dev->max_queue_pairs);
    return 0;
}

static int h_set_vring_enable(struct vhost_dev *dev, struct vhost_user_msg *msg,
                              struct vhost_user_msg *reply)
{
    uint32_t num = msg->payload.state.num;
    struct dev_vring *r = ring_arg(dev, msg, msg->payload.state.index);

    if (!r)
        return -1;
    if (num > 1)
        return dev_refuse(dev, VHOST_DEV_ERR_BAD_VALUE, msg, "enable %u", num);
    if (r->enabled != (num == 1)) {
        dev_quiesce_ring(dev, msg->payload.state.index);
        r->enabled = num == 1;
    }
    return 0;
}

static int h_send_rarp(struct vhost_dev *dev, struct vhost_user_msg *msg,
                       struct vhost_user_msg *reply)
{
    /* after migration; our FDB learns from the guest's next frame anyway */
    return 0;
}

static int h_net_set_mtu(struct vhost_dev *dev, struct vhost_user_msg *msg,
                         struct vhost_user_msg *reply)
{
    uint64_t mtu = msg->payload.u64;

    if (mtu < 68 || mtu > UINT16_MAX)
        return dev_refuse(dev, VHOST_DEV_ERR_BAD_VALUE, msg, "mtu %llu",
                          (unsigned long long)mtu);
    dev->mtu = (uint16_t)mtu;
    return 0;
}

static int config_check(struct vhost_dev *dev, const struct vhost_user_msg *msg)
{
    const struct vhost_user_config *c = &msg->payload.config;
    const uint32_t hdr = offsetof(struct vhost_user_config, region);

    if (msg->hdr.size < hdr || c->size > sizeof(c->region) ||
        msg->hdr.size != hdr + c->size)
        return dev_refuse(dev, VHOST_DEV_ERR_BAD_SIZE, msg, "%u bytes",
                          msg->hdr.size);
    if ((uint64_t)c->offset + c->size > sizeof(c->region))
        return dev_refuse(dev, VHOST_DEV_ERR_BAD_VALUE, msg, "offset %u size %u",
                          c->offset, c->size);
    return 0;
}

static int h_get_config(struct vhost_dev *dev, struct vhost_user_msg *msg,
                        struct vhost_user_msg *reply)
{
    const struct vhost_user_config *c = &msg->payload.config;
    uint8_t space[sizeof(c->region)];
    struct virtio_net_config cfg;

    if (config_check(dev, msg) < 0)
        return -1;
    memset(&cfg, 0, sizeof(cfg));
    cfg.status = VIRTIO_NET_S_LINK_UP;
    cfg.max_virtqueue_pairs = (uint16_t)dev->max_queue_pairs;
    cfg.mtu = dev->mtu;
    cfg.speed = UINT32_MAX; /* unknown */
    cfg.duplex = 0xff;      /* unknown */
    memset(space, 0, sizeof(space));
    memcpy(space, &cfg, sizeof(cfg));

    reply->payload.config.offset = c->offset;
    reply->payload.config.size = c->size;
    reply->payload.config.flags = c->flags;
    memcpy(reply->payload.config.region, space + c->offset, c->size);
    reply->hdr.size = msg->hdr.size;
    return 0;
}

static int h_set_config(struct vhost_dev *dev, struct vhost_user_msg *msg,
                        struct vhost_user_msg *reply)
{
    /* the net config space has nothing a driver may write to us */
    return config_check(dev, msg);
}

static int h_set_status(struct vhost_dev *dev, struct vhost_user_msg *msg,
                        struct vhost_user_msg *reply)
{
    uint64_t s = msg->payload.u64;

    if (s > UINT8_MAX)
        return dev_refuse(dev, VHOST_DEV_ERR_BAD_VALUE, msg, "status 0x%llx",
                          (unsigned long long)s);
    /* losing DRIVER_OK stops every vring */
    if (dev->status_set && (dev->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
        !(s & VIRTIO_CONFIG_S_DRIVER_OK))
        dev_quiesce(dev);
    /* Status 0 is a driver reset, but DPDK sends it after SET_FEATURES and
     * before the rest of the setup: forget nothing here, the frontend resends
     * what changes. */
    dev->status = (uint8_t)s;
    dev->status_set = true;
    if (dev->features_failed)
        dev->status &= (uint8_t)~VIRTIO_CONFIG_S_FEATURES_OK;
    return 0;
}

static int h_get_status(struct vhost_dev *dev, struct vhost_user_msg *msg,
                        struct vhost_user_msg *reply)
{
    reply_u64(reply, dev->status);
    return 0;
}

static int h_get_max_mem_slots(struct vhost_dev *dev, struct vhost_user_msg *msg,
                               struct vhost_user_msg *reply)
{
    reply_u64(reply, VHOST_USER_MAX_REGIONS);
    return 0;
}

enum fd_rule {
    FDS_NONE,  /* a message that carries fds is refused */
    FDS_CHECK, /* the handler checks (ring fds, memory table) */
    FDS_CLOSE, /* whatever comes is closed unused */
};

#define SIZE_ANY UINT32_MAX

struct handler {
    handler_fn fn;
    uint32_t size; /* exact payload size, or SIZE_ANY: the handler checks */
    uint8_t fds;   /* enum fd_rule */
    bool reply;    /* the request always has a reply */
};

#define U64   sizeof(uint64_t)
#define STATE sizeof(struct vhost_user_vring_state)

static const struct handler handlers[VHOST_USER_MAX] = {
    [VHOST_USER_GET_FEATURES] = {h_get_features, 0, FDS_NONE, true},
    [VHOST_USER_SET_FEATURES] = {h_set_features, U64, FDS_NONE, false},
    [VHOST_USER_SET_OWNER] = {h_set_owner, 0, FDS_NONE, false},
    [VHOST_USER_RESET_OWNER] = {h_reset_owner, 0, FDS_NONE, false},
    [VHOST_USER_SET_MEM_TABLE] = {h_set_mem_table, SIZE_ANY, FDS_CHECK, false},
    [VHOST_USER_SET_LOG_BASE] = {h_set_log_base, SIZE_ANY, FDS_CLOSE, false},
    [VHOST_USER_SET_LOG_FD] = {h_set_log_fd, SIZE_ANY, FDS_CLOSE, false},
    [VHOST_USER_SET_VRING_NUM] = {h_set_vring_num, STATE, FDS_NONE, false},
    [VHOST_USER_SET_VRING_ADDR] = {h_set_vring_addr,
                                   sizeof(struct vhost_user_vring_addr), FDS_NONE,
                                   false},
    [VHOST_USER_SET_VRING_BASE] = {h_set_vring_base, STATE, FDS_NONE, false},
    [VHOST_USER_GET_VRING_BASE] = {h_get_vring_base, STATE, FDS_NONE, true},
    [VHOST_USER_SET_VRING_KICK] = {h_set_vring_kick, U64, FDS_CHECK, false},
    [VHOST_USER_SET_VRING_CALL] = {h_set_vring_call, U64, FDS_CHECK, false},
    [VHOST_USER_SET_VRING_ERR] = {h_set_vring_err, U64, FDS_CHECK, false},
    [VHOST_USER_GET_PROTOCOL_FEATURES] = {h_get_protocol_features, 0, FDS_NONE,
                                          true},
    [VHOST_USER_SET_PROTOCOL_FEATURES] = {h_set_protocol_features, U64, FDS_NONE,
                                          false},
    [VHOST_USER_GET_QUEUE_NUM] = {h_get_queue_num, 0, FDS_NONE, true},
    [VHOST_USER_SET_VRING_ENABLE] = {h_set_vring_enable, STATE, FDS_NONE, false},
    [VHOST_USER_SEND_RARP] = {h_send_rarp, U64, FDS_NONE, false},
    [VHOST_USER_NET_SET_MTU] = {h_net_set_mtu, U64, FDS_NONE, false},
    [VHOST_USER_GET_CONFIG] = {h_get_config, SIZE_ANY, FDS_NONE, true},
    [VHOST_USER_SET_CONFIG] = {h_set_config, SIZE_ANY, FDS_NONE, false},
    [VHOST_USER_RESET_DEVICE] = {h_reset_device, 0, FDS_NONE, false},
    [VHOST_USER_GET_MAX_MEM_SLOTS] = {h_get_max_mem_slots, 0, FDS_NONE, true},
    [VHOST_USER_SET_STATUS] = {h_set_status, U64, FDS_NONE, false},
    [VHOST_USER_GET_STATUS] = {h_get_status, 0, FDS_NONE, true},
};

static bool reply_ack_negotiated(const struct vhost_dev *dev)
{
    return dev->protocol_features & (1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK);
}

/* Runs the checks every request shares, then its handler. */
static int dispatch(struct vhost_dev *dev, const struct handler *h,
                    struct vhost_user_msg *msg, struct vhost_user_msg *reply)
{
    if ((msg->hdr.flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION)
        return dev_refuse(dev, VHOST_DEV_ERR_BAD_VALUE, msg, "version %u",
                          msg->hdr.flags & VHOST_USER_VERSION_MASK);
    if (h->size != SIZE_ANY && msg->hdr.size != h->size)
        return dev_refuse(dev, VHOST_DEV_ERR_BAD_SIZE, msg, "%u bytes, %u expected",
                          msg->hdr.size, h->size);
    if (h->fds == FDS_NONE && msg->nfds)
        return dev_refuse(dev, VHOST_DEV_ERR_BAD_FDS, msg, "%d unexpected fds",
                          msg->nfds);
    return h->fn(dev, msg, reply);
}

int vhost_dev_handle_msg(struct vhost_dev *dev, int sock)
{
    struct vhost_user_msg msg, reply;
    const struct handler *h = NULL;
    bool need_reply, ack_before, send_it = false;
    int r, ret = 0;

    r = vhost_user_recv_nb(sock, &dev->rd);
    if (r == -EAGAIN)
        return 0; /* the rest of the message has not arrived yet */
    if (r == 1) {
        msg = dev->rd.msg; /* the fds move with it */
        vhost_user_reader_init(&dev->rd);
    }
    if (r == 0) {
        dev_log(dev, 2, "frontend closed the connection");
        return -1;
    }
    if (r < 0) {
        dev->errors[VHOST_DEV_ERR_FRAMING]++;
        dev_log(dev, 0, "bad message framing: %s; dropping the connection",
                strerror(-r));
        return -1;
    }

    memset(&reply.hdr, 0, sizeof(reply.hdr));
    reply.hdr.request = msg.hdr.request;
    reply.hdr.flags = VHOST_USER_VERSION | VHOST_USER_REPLY_MASK;
    need_reply = msg.hdr.flags & VHOST_USER_NEED_REPLY;
    ack_before = reply_ack_negotiated(dev);

    if (msg.hdr.request < VHOST_USER_MAX)
        h = &handlers[msg.hdr.request];
    if (!h || !h->fn) {
        dev_refuse(dev, VHOST_DEV_ERR_UNKNOWN_REQ, &msg, "request %u (%s)",
                   msg.hdr.request, vhost_user_request_name(msg.hdr.request));
        vhost_user_close_fds(&msg);
        if (need_reply) {
            reply_u64(&reply, 1);
            send_it = true;
        }
        goto out;
    }

    dev_log(dev, 3, "%s size %u fds %d", vhost_user_request_name(msg.hdr.request),
            msg.hdr.size, msg.nfds);
    r = dispatch(dev, h, &msg, &reply);
    vhost_user_close_fds(&msg);

    if (h->reply) {
        if (r < 0)
            reply.hdr.size = 0;
        send_it = true;
    } else if (need_reply && (ack_before || reply_ack_negotiated(dev))) {
        reply_u64(&reply, r < 0 ? 1 : 0);
        send_it = true;
    }

out:
    dev_settle(dev);
    if (send_it) {
        r = vhost_user_send(sock, &reply, NULL, 0);
        if (r < 0) {
            dev_log(dev, 0, "reply to %s: %s", vhost_user_request_name(reply.hdr.request),
                    strerror(-r));
            ret = -1;
        }
    }
    return ret;
}

/* ---- lifetime and queries ---- */

struct vhost_dev *vhost_dev_create(const char *name, unsigned max_queue_pairs,
                                   uint16_t mtu, const struct vhost_dev_ops *ops,
                                   void *opaque)
{
    struct vhost_dev *dev;

    if (max_queue_pairs < 1 || max_queue_pairs > VHOST_DEV_MAX_QUEUE_PAIRS) {
        errno = EINVAL;
        return NULL;
    }
    dev = calloc(1, sizeof(*dev));
    if (!dev)
        return NULL;
    snprintf(dev->name, sizeof(dev->name), "%s", name ? name : "?");
    dev->max_queue_pairs = max_queue_pairs;
    dev->mtu = mtu;
    dev->ops = ops;
    dev->opaque = opaque;
    vhost_user_reader_init(&dev->rd);
    for (unsigned i = 0; i < VHOST_DEV_MAX_VRINGS; i++) {
        dev->vrings[i].vq.kick_fd = -1;
        dev->vrings[i].vq.call_fd = -1;
        dev->vrings[i].err_fd = -1;
        ring_reset(dev, &dev->vrings[i]);
    }
    return dev;
}

bool vhost_dev_owns_addr(const struct vhost_dev *dev, const void *addr)
{
    const uint8_t *a = addr;

    for (uint32_t i = 0; i < dev->mem.nregions; i++) {
        const uint8_t *base = dev->mem.regions[i].mmap_addr;
        if (a >= base && a < base + dev->mem.regions[i].mmap_size)
            return true;
    }
    return false;
}

void vhost_dev_disconnect(struct vhost_dev *dev)
{
    vhost_user_reader_reset(&dev->rd);
    dev_reset(dev, false);
    dev_settle(dev);
}

void vhost_dev_destroy(struct vhost_dev *dev)
{
    if (!dev)
        return;
    vhost_dev_disconnect(dev);
    free(dev);
}

uint64_t vhost_dev_features(const struct vhost_dev *dev)
{
    return dev->features;
}

uint64_t vhost_dev_protocol_features(const struct vhost_dev *dev)
{
    return dev->protocol_features;
}

uint8_t vhost_dev_status(const struct vhost_dev *dev)
{
    return dev->status;
}

uint16_t vhost_dev_mtu(const struct vhost_dev *dev)
{
    return dev->mtu;
}

size_t vhost_dev_hdr_len(const struct vhost_dev *dev)
{
    if (dev->features &
        (VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF)))
        return VIRTIO_NET_HDR_LEN_V1;
    return VIRTIO_NET_HDR_LEN_LEGACY;
}

unsigned vhost_dev_num_vrings(const struct vhost_dev *dev)
{
    return dev->num_vrings;
}

struct vring *vhost_dev_vring(struct vhost_dev *dev, unsigned idx)
{
    if (idx >= VHOST_DEV_MAX_VRINGS)
        return NULL;
    return &dev->vrings[idx].vq;
}

bool vhost_dev_vring_ready(const struct vhost_dev *dev, unsigned idx)
{
    const struct dev_vring *r;

    if (idx >= 2 * dev->max_queue_pairs)
        return false;
    r = &dev->vrings[idx];
    if (!dev->mem.nregions || !r->vq.desc || !r->started || r->vq.broken)
        return false;
    if ((dev->features & VIRTIO_BIT(VHOST_USER_F_PROTOCOL_FEATURES)) && !r->enabled)
        return false;
    if (dev->status_set && !(dev->status & VIRTIO_CONFIG_S_DRIVER_OK))
        return false;
    return true;
}

bool vhost_dev_running(const struct vhost_dev *dev)
{
    return vhost_dev_vring_ready(dev, 0) && vhost_dev_vring_ready(dev, 1);
}

const uint64_t *vhost_dev_errors(const struct vhost_dev *dev)
{
    return dev->errors;
}
