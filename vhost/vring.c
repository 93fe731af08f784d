/* Split virtqueue, device side (virtio 1.2 §2.7). The guest writes the
 * descriptor table and the avail ring, we write the used ring; both run at
 * once, so every guest-owned value is read exactly once into a local and
 * checked there. */
#include <string.h>
#include <unistd.h>

#include "vring.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "vring.c reads the little-endian ring layout directly"
#endif

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

static const char *const err_names[VRING_ERR__COUNT] = {
    [VRING_OK] = "ok",
    [VRING_EMPTY] = "empty",
    [VRING_ERR_AVAIL_IDX] = "avail index jumped",
    [VRING_ERR_HEAD] = "head index out of range",
    [VRING_ERR_DESC_INDEX] = "next index out of range",
    [VRING_ERR_ADDR] = "buffer outside guest memory",
    [VRING_ERR_LOOP] = "descriptor loop",
    [VRING_ERR_INDIRECT_NESTED] = "nested indirect table",
    [VRING_ERR_INDIRECT_NEXT] = "indirect with next",
    [VRING_ERR_INDIRECT_SIZE] = "bad indirect table size",
    [VRING_ERR_INDIRECT_OFF] = "indirect not negotiated",
    [VRING_ERR_DIRECTION] = "wrong buffer direction",
    [VRING_ERR_LEN] = "chain length overflow",
    [VRING_ERR_TOO_MANY_BUFS] = "too many buffers",
    [VRING_ERR_NOT_READY] = "ring not ready",
};

const char *vring_err_name(enum vring_err err)
{
    if ((unsigned)err >= VRING_ERR__COUNT)
        return "unknown";
    return err_names[err];
}

void vring_init(struct vring *vq)
{
    memset(vq, 0, sizeof(*vq));
    vq->kick_fd = -1;
    vq->call_fd = -1;
}

static bool aligned(uint64_t v, uint64_t a)
{
    return (v & (a - 1)) == 0;
}

int vring_set_addr(struct vring *vq, uint64_t desc_uva, uint64_t avail_uva,
                   uint64_t used_uva)
{
    uint64_t n = vq->size;
    void *desc, *avail, *used;

    vq->desc = NULL;
    vq->avail = NULL;
    vq->used = NULL;
    if (!vq->mem || n == 0 || (n & (n - 1)) || n > VRING_SIZE_MAX)
        return VRING_ERR_NOT_READY;
    /* alignments of virtio 1.2 §2.7; sizes include used_event/avail_event,
     * which are part of the layout whether or not EVENT_IDX is used */
    if (!aligned(desc_uva, 16) || !aligned(avail_uva, 2) || !aligned(used_uva, 4))
        return VRING_ERR_ADDR;
    desc = vhost_mem_uva_to_hva(vq->mem, desc_uva, 16 * n);
    avail = vhost_mem_uva_to_hva(vq->mem, avail_uva, 6 + 2 * n);
    used = vhost_mem_uva_to_hva(vq->mem, used_uva, 6 + 8 * n);
    if (!desc || !avail || !used)
        return VRING_ERR_ADDR;
    /* a region whose mmap_offset is not aligned like its addresses puts
     * aligned frontend addresses at misaligned host ones */
    if (!aligned((uintptr_t)desc, 16) || !aligned((uintptr_t)avail, 2) ||
        !aligned((uintptr_t)used, 4))
        return VRING_ERR_ADDR;
    vq->desc = desc;
    vq->avail = avail;
    vq->used = used;
    return 0;
}

static inline uint16_t avail_idx_acquire(const struct vring *vq)
{
    /* acquire: the ring entries and descriptors we read next were written
     * before the guest published this index */
    return __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
}

uint16_t vring_avail_count(struct vring *vq)
{
    if (unlikely(!vq->desc || vq->broken))
        return 0;
    vq->shadow_avail_idx = avail_idx_acquire(vq);
    return (uint16_t)(vq->shadow_avail_idx - vq->last_avail_idx);
}

/* One copy of a guest descriptor. The compiler barrier stops the compiler from
 * re-reading guest memory in place of the copy (what READ_ONCE does); memcpy
 * also copes with an indirect table that is not 8-byte aligned. */
static inline void desc_read(const struct vring_desc *src, struct vring_desc *dst)
{
    memcpy(dst, src, sizeof(*dst));
    __asm__ __volatile__("" ::: "memory");
}

static inline void used_write(struct vring *vq, uint16_t head, uint32_t len)
{
    struct vring_used_elem *e = &vq->used->ring[vq->last_used_idx & (vq->size - 1)];

    e->id = head;
    e->len = len;
    vq->last_used_idx++;
    vq->pending_used++;
}

static enum vring_err fail_chain(struct vring *vq, uint16_t head, enum vring_err err)
{
    vq->errors[err]++;
    /* hand the descriptors back so the guest does not lose them */
    used_write(vq, head, 0);
    return err;
}

enum vring_err vring_pop(struct vring *vq, bool want_writable, struct vring_chain *c)
{
    const struct vring_desc *table;
    uint32_t table_size, visited = 0;
    uint64_t total = 0;
    uint16_t head, idx, nbufs = 0;
    uint16_t want_flag = want_writable ? VRING_DESC_F_WRITE : 0;
    bool in_indirect = false;

    if (unlikely(!vq->desc || vq->broken))
        return VRING_ERR_NOT_READY;

    if (vq->shadow_avail_idx == vq->last_avail_idx) {
        vq->shadow_avail_idx = avail_idx_acquire(vq);
        if (vq->shadow_avail_idx == vq->last_avail_idx)
            return VRING_EMPTY;
    }
    if (unlikely((uint16_t)(vq->shadow_avail_idx - vq->last_avail_idx) > vq->size)) {
        vq->errors[VRING_ERR_AVAIL_IDX]++;
        vq->broken = true;
        return VRING_ERR_AVAIL_IDX;
    }

    head = __atomic_load_n(&vq->avail->ring[vq->last_avail_idx & (vq->size - 1)],
                           __ATOMIC_RELAXED);
    if (unlikely(head >= vq->size)) {
        vq->errors[VRING_ERR_HEAD]++;
        vq->broken = true;
        return VRING_ERR_HEAD;
    }
    vq->last_avail_idx++;

    table = vq->desc;
    table_size = vq->size;
    idx = head;
    for (;;) {
        struct vring_desc d;

        /* a chain visiting more descriptors than the table holds loops */
        if (unlikely(++visited > table_size))
            return fail_chain(vq, head, VRING_ERR_LOOP);
        desc_read(&table[idx], &d);

        if (unlikely(d.flags & VRING_DESC_F_INDIRECT)) {
            const struct vring_desc *ind;

            if (unlikely(!vq->indirect))
                return fail_chain(vq, head, VRING_ERR_INDIRECT_OFF);
            if (unlikely(in_indirect))
                return fail_chain(vq, head, VRING_ERR_INDIRECT_NESTED);
            if (unlikely(d.flags & VRING_DESC_F_NEXT))
                return fail_chain(vq, head, VRING_ERR_INDIRECT_NEXT);
            if (unlikely(d.len == 0 || d.len % sizeof(struct vring_desc) ||
                         d.len / sizeof(struct vring_desc) > VRING_SIZE_MAX))
                return fail_chain(vq, head, VRING_ERR_INDIRECT_SIZE);
            ind = vhost_mem_gpa_to_hva_inline(vq->mem, d.addr, d.len);
            if (unlikely(!ind))
                return fail_chain(vq, head, VRING_ERR_ADDR);
            table = ind;
            table_size = d.len / sizeof(struct vring_desc);
            visited = 0;
            idx = 0;
            in_indirect = true;
            continue;
        }

        if (unlikely((d.flags & VRING_DESC_F_WRITE) != want_flag))
            return fail_chain(vq, head, VRING_ERR_DIRECTION);

        /* zero-length buffers are legal and carry nothing */
        if (d.len) {
            void *p;

            total += d.len;
            if (unlikely(total > UINT32_MAX))
                return fail_chain(vq, head, VRING_ERR_LEN);
            p = vhost_mem_gpa_to_hva_inline(vq->mem, d.addr, d.len);
            if (unlikely(!p))
                return fail_chain(vq, head, VRING_ERR_ADDR);
            if (unlikely(nbufs == VRING_CHAIN_MAX))
                return fail_chain(vq, head, VRING_ERR_TOO_MANY_BUFS);
            c->bufs[nbufs].addr = p;
            c->bufs[nbufs].len = d.len;
            nbufs++;
        }

        if (!(d.flags & VRING_DESC_F_NEXT))
            break;
        if (unlikely(d.next >= table_size))
            return fail_chain(vq, head, VRING_ERR_DESC_INDEX);
        idx = d.next;
    }

    c->head = head;
    c->nbufs = nbufs;
    c->len = (uint32_t)total;
    return VRING_OK;
}

void vring_push(struct vring *vq, uint16_t head, uint32_t len)
{
    if (unlikely(!vq->used))
        return;
    used_write(vq, head, len);
}

void vring_unpop(struct vring *vq, uint16_t n)
{
    vq->last_avail_idx -= n;
}

/* virtio 1.2 §2.7.10: notify when the used index crossed used_event since
 * the last notification. */
static inline bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
    return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

static bool should_notify(struct vring *vq)
{
    if (vq->event_idx) {
        uint16_t used_event =
            __atomic_load_n(&vq->avail->ring[vq->size], __ATOMIC_RELAXED);
        uint16_t old = vq->signalled_used;
        bool valid = vq->signalled_used_valid;

        vq->signalled_used = vq->last_used_idx;
        vq->signalled_used_valid = true;
        if (unlikely(!valid))
            return true;
        return need_event(used_event, vq->last_used_idx, old);
    }
    return !(__atomic_load_n(&vq->avail->flags, __ATOMIC_RELAXED) &
             VRING_AVAIL_F_NO_INTERRUPT);
}

void vring_flush(struct vring *vq)
{
    if (!vq->pending_used || unlikely(!vq->used))
        return;
    /* release: the used elements are visible before the index that covers
     * them */
    __atomic_store_n(&vq->used->idx, vq->last_used_idx, __ATOMIC_RELEASE);
    vq->pending_used = 0;
    /* store-load: the guest's suppression flags must be read after our index
     * is visible, or we may skip a notification it is waiting for */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (should_notify(vq) && vq->call_fd >= 0) {
        uint64_t one = 1;
        ssize_t r = write(vq->call_fd, &one, sizeof(one));
        (void)r; /* EAGAIN: the counter is saturated, the guest will see it */
    }
}

void vring_set_notify(struct vring *vq, bool enable)
{
    if (unlikely(!vq->used))
        return;
    if (vq->event_idx) {
        if (enable) {
            uint16_t *avail_event = (uint16_t *)&vq->used->ring[vq->size];
            __atomic_store_n(avail_event, vq->last_avail_idx, __ATOMIC_RELAXED);
        }
    } else {
        __atomic_store_n(&vq->used->flags, enable ? 0 : VRING_USED_F_NO_NOTIFY,
                         __ATOMIC_RELAXED);
    }
    /* the caller re-reads avail->idx next; it must not pass our store */
    if (enable)
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
}
