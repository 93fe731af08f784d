/* Guest memory as the frontend shared it: up to 8 regions, each mmapped from
 * its fd at its offset. Every guest address is translated through here and must
 * lie wholly inside one region. */
#ifndef VHOST_VHOST_MEM_H
#define VHOST_VHOST_MEM_H

#include <stdint.h>
#include "vhost_user.h"

struct vhost_mem_region {
    uint64_t guest_phys_addr;
    uint64_t size;
    uint64_t user_addr; /* the frontend's virtual address of the region */
    uint8_t *host_addr; /* our mapping of guest_phys_addr */
    void *mmap_addr;    /* what munmap takes */
    uint64_t mmap_size;
};

struct vhost_mem {
    uint32_t nregions;
    struct vhost_mem_region regions[VHOST_USER_MAX_REGIONS];
};

/* Maps the regions of a SET_MEM_TABLE payload. fds[i] belongs to region i; the
 * fds are not closed here (the caller closes them: a mapping keeps the memory).
 * Rejects: nregions 0 or > 8, nfds != nregions, size 0, offset + size overflow,
 * guest ranges or user ranges that overlap or wrap. On failure nothing is
 * mapped, *mem is left empty and a sentence is written to err. */
int vhost_mem_map(struct vhost_mem *mem, const struct vhost_user_memory *msg,
                  uint32_t payload_size, const int *fds, int nfds, char *err,
                  size_t errlen);

/* Unmaps every region and empties the table. */
void vhost_mem_unmap(struct vhost_mem *mem);

/* Host pointer for guest-physical [gpa, gpa + len), or NULL when the range is
 * not wholly inside one region (or len overflows). len 0 is refused. */
void *vhost_mem_gpa_to_hva(const struct vhost_mem *mem, uint64_t gpa, uint64_t len);

/* The same, inline, for the per-descriptor path of vring_pop(). */
static inline void *vhost_mem_gpa_to_hva_inline(const struct vhost_mem *mem,
                                                uint64_t gpa, uint64_t len)
{
    for (uint32_t i = 0; i < mem->nregions; i++) {
        const struct vhost_mem_region *r = &mem->regions[i];
        uint64_t off = gpa - r->guest_phys_addr; /* wraps when gpa is below */

        if (off < r->size) {
            if (len == 0 || len > r->size - off)
                return (void *)0;
            return r->host_addr + off;
        }
    }
    return (void *)0;
}

/* Host pointer for frontend-virtual [uva, uva + len) (ring addresses of
 * SET_VRING_ADDR), NULL likewise. */
void *vhost_mem_uva_to_hva(const struct vhost_mem *mem, uint64_t uva, uint64_t len);

#endif
