/* Guest memory table: SET_MEM_TABLE regions mapped from their fds, and the
 * address translations every guest-supplied address goes through. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhost_mem.h"

/* Overlap of [a, a + alen) and [b, b + blen); both known not to wrap. */
static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

/* [start, start + len) does not wrap past 2^64 (len > 0). */
static bool range_ok(uint64_t start, uint64_t len)
{
    return len > 0 && start <= UINT64_MAX - (len - 1);
}

static int validate(const struct vhost_user_memory *msg, uint32_t payload_size,
                    const int *fds, int nfds, char *err, size_t errlen)
{
    uint32_t n;

    if (payload_size < offsetof(struct vhost_user_memory, regions)) {
        snprintf(err, errlen, "memory table payload of %u bytes is too short",
                 payload_size);
        return -EINVAL;
    }
    n = msg->nregions;
    if (n == 0 || n > VHOST_USER_MAX_REGIONS) {
        snprintf(err, errlen, "%u memory regions (1 to %d allowed)", n,
                 VHOST_USER_MAX_REGIONS);
        return -EINVAL;
    }
    if (payload_size !=
        offsetof(struct vhost_user_memory, regions) + n * sizeof(msg->regions[0])) {
        snprintf(err, errlen, "memory table payload of %u bytes for %u regions",
                 payload_size, n);
        return -EINVAL;
    }
    if (nfds < 0 || (uint32_t)nfds != n) {
        snprintf(err, errlen, "%d fds for %u memory regions", nfds, n);
        return -EINVAL;
    }
    for (uint32_t i = 0; i < n; i++) {
        const struct vhost_user_mem_region *r = &msg->regions[i];

        if (fds[i] < 0) {
            snprintf(err, errlen, "region %u has no fd", i);
            return -EBADF;
        }
        if (!range_ok(r->guest_phys_addr, r->memory_size) ||
            !range_ok(r->userspace_addr, r->memory_size) ||
            !range_ok(r->mmap_offset, r->memory_size)) {
            snprintf(err, errlen,
                     "region %u (gpa 0x%llx size 0x%llx uva 0x%llx offset 0x%llx) "
                     "is empty or wraps",
                     i, (unsigned long long)r->guest_phys_addr,
                     (unsigned long long)r->memory_size,
                     (unsigned long long)r->userspace_addr,
                     (unsigned long long)r->mmap_offset);
            return -EINVAL;
        }
        for (uint32_t j = 0; j < i; j++) {
            const struct vhost_user_mem_region *o = &msg->regions[j];

            if (ranges_overlap(r->guest_phys_addr, r->memory_size,
                               o->guest_phys_addr, o->memory_size)) {
                snprintf(err, errlen, "regions %u and %u overlap in guest memory", j,
                         i);
                return -EINVAL;
            }
            if (ranges_overlap(r->userspace_addr, r->memory_size, o->userspace_addr,
                               o->memory_size)) {
                snprintf(err, errlen, "regions %u and %u overlap in frontend memory",
                         j, i);
                return -EINVAL;
            }
        }
    }
    return 0;
}

/* Maps one region. mmap wants an offset aligned to the page (or huge page)
 * size; the frontend's offset need not be, so map from the aligned-down
 * offset and point host_addr past the difference. */
static int map_region(struct vhost_mem_region *m, const struct vhost_user_mem_region *r,
                      int fd, char *err, size_t errlen)
{
    uint64_t align = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t map_off, delta, map_size;
    struct stat st;
    void *p;

    if (fstat(fd, &st) < 0) {
        snprintf(err, errlen, "fstat of region fd: %s", strerror(errno));
        return -errno;
    }
    /* hugetlbfs reports its page size here; munmap needs it as alignment */
    if (st.st_blksize > 0 && (uint64_t)st.st_blksize > align &&
        ((uint64_t)st.st_blksize & ((uint64_t)st.st_blksize - 1)) == 0 &&
        (uint64_t)st.st_blksize <= (1ULL << 30))
        align = (uint64_t)st.st_blksize;
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < r->mmap_offset + r->memory_size) {
        snprintf(err, errlen, "region file of %lld bytes is shorter than offset 0x%llx + "
                 "size 0x%llx",
                 (long long)st.st_size, (unsigned long long)r->mmap_offset,
                 (unsigned long long)r->memory_size);
        return -EINVAL;
    }

    map_off = r->mmap_offset & ~(align - 1);
    delta = r->mmap_offset - map_off;
    if (r->memory_size > UINT64_MAX - delta - align) {
        snprintf(err, errlen, "region size 0x%llx too large",
                 (unsigned long long)r->memory_size);
        return -EINVAL;
    }
    map_size = (r->memory_size + delta + align - 1) & ~(align - 1);
    if (map_size > SIZE_MAX || map_off > (uint64_t)INT64_MAX) {
        snprintf(err, errlen, "region does not fit the address space");
        return -EINVAL;
    }

    p = mmap(NULL, (size_t)map_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
             fd, (off_t)map_off);
    if (p == MAP_FAILED) {
        int e = errno;
        snprintf(err, errlen, "mmap of 0x%llx bytes at offset 0x%llx: %s",
                 (unsigned long long)map_size, (unsigned long long)map_off,
                 strerror(e));
        return -e;
    }
    /* guest memory has no place in our core dumps */
    madvise(p, (size_t)map_size, MADV_DONTDUMP);

    m->guest_phys_addr = r->guest_phys_addr;
    m->size = r->memory_size;
    m->user_addr = r->userspace_addr;
    m->host_addr = (uint8_t *)p + delta;
    m->mmap_addr = p;
    m->mmap_size = map_size;
    return 0;
}

int vhost_mem_map(struct vhost_mem *mem, const struct vhost_user_memory *msg,
                  uint32_t payload_size, const int *fds, int nfds, char *err,
                  size_t errlen)
{
    int r;

    memset(mem, 0, sizeof(*mem));
    r = validate(msg, payload_size, fds, nfds, err, errlen);
    if (r < 0)
        return r;

    for (uint32_t i = 0; i < msg->nregions; i++) {
        r = map_region(&mem->regions[i], &msg->regions[i], fds[i], err, errlen);
        if (r < 0)
            goto fail_unmap;
        mem->nregions = i + 1;
    }
    return 0;

fail_unmap:
    vhost_mem_unmap(mem);
    return r;
}

void vhost_mem_unmap(struct vhost_mem *mem)
{
    for (uint32_t i = 0; i < mem->nregions; i++)
        munmap(mem->regions[i].mmap_addr, (size_t)mem->regions[i].mmap_size);
    memset(mem, 0, sizeof(*mem));
}

void *vhost_mem_gpa_to_hva(const struct vhost_mem *mem, uint64_t gpa, uint64_t len)
{
    return vhost_mem_gpa_to_hva_inline(mem, gpa, len);
}

void *vhost_mem_uva_to_hva(const struct vhost_mem *mem, uint64_t uva, uint64_t len)
{
    for (uint32_t i = 0; i < mem->nregions; i++) {
        const struct vhost_mem_region *r = &mem->regions[i];
        uint64_t off = uva - r->user_addr;

        if (off < r->size) {
            if (len == 0 || len > r->size - off)
                return NULL;
            return r->host_addr + off;
        }
    }
    return NULL;
}
