/* A fake guest for the vhost unit tests: a memfd that the test maps for
 * itself (the "guest" side) and that the code under test maps through
 * vhost_mem (the device side), with a split ring laid out inside it. */
#ifndef TESTS_FAKE_GUEST_H
#define TESTS_FAKE_GUEST_H

#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vhost_mem.h"
#include "vring.h"

#define FG_SIZE  (1u << 20)
#define FG_GPA   0x100000ULL
#define FG_UVA   0x7f1200000000ULL
#define FG_DESC  (FG_GPA + 0x0000)
#define FG_AVAIL (FG_GPA + 0x2000)
#define FG_USED  (FG_GPA + 0x3000)
#define FG_IND   (FG_GPA + 0x8000) /* indirect tables */
#define FG_BUF   (FG_GPA + 0x10000) /* data buffers */

struct fake_guest {
    int fd;
    uint8_t *base; /* the test's own mapping of guest memory */
    struct vhost_mem mem;
    struct vring vq;
    struct vring_desc *desc;
    struct vring_avail *avail;
    struct vring_used *used;
    uint16_t avail_idx;
};

static inline void *fg_ptr(struct fake_guest *g, uint64_t gpa)
{
    return g->base + (gpa - FG_GPA);
}

/* The device side's pointer for a guest address (another mapping). */
static inline void *fg_hva(struct fake_guest *g, uint64_t gpa)
{
    return g->mem.regions[0].host_addr + (gpa - FG_GPA);
}

static inline uint64_t fg_uva(uint64_t gpa)
{
    return FG_UVA + (gpa - FG_GPA);
}

static inline int fg_init(struct fake_guest *g, uint16_t qsize)
{
    struct vhost_user_memory m = {.nregions = 1};
    char err[128];

    memset(g, 0, sizeof(*g));
    g->fd = memfd_create("fake-guest", MFD_CLOEXEC);
    if (g->fd < 0 || ftruncate(g->fd, FG_SIZE) < 0)
        return -1;
    g->base = mmap(NULL, FG_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, g->fd, 0);
    if (g->base == MAP_FAILED)
        return -1;
    m.regions[0].guest_phys_addr = FG_GPA;
    m.regions[0].memory_size = FG_SIZE;
    m.regions[0].userspace_addr = FG_UVA;
    m.regions[0].mmap_offset = 0;
    if (vhost_mem_map(&g->mem, &m, 8 + sizeof(m.regions[0]), &g->fd, 1, err,
                      sizeof(err)) < 0)
        return -1;
    vring_init(&g->vq);
    g->vq.mem = &g->mem;
    g->vq.size = qsize;
    if (vring_set_addr(&g->vq, fg_uva(FG_DESC), fg_uva(FG_AVAIL), fg_uva(FG_USED)))
        return -1;
    g->desc = fg_ptr(g, FG_DESC);
    g->avail = fg_ptr(g, FG_AVAIL);
    g->used = fg_ptr(g, FG_USED);
    return 0;
}

static inline void fg_fini(struct fake_guest *g)
{
    vhost_mem_unmap(&g->mem);
    munmap(g->base, FG_SIZE);
    close(g->fd);
}

static inline void fg_desc(struct vring_desc *t, uint16_t i, uint64_t addr, uint32_t len,
                           uint16_t flags, uint16_t next)
{
    t[i].addr = addr;
    t[i].len = len;
    t[i].flags = flags;
    t[i].next = next;
}

/* Makes chain `head` available and publishes the new avail idx. */
static inline void fg_avail(struct fake_guest *g, uint16_t head)
{
    g->avail->ring[g->avail_idx % g->vq.size] = head;
    g->avail_idx++;
    __atomic_store_n(&g->avail->idx, g->avail_idx, __ATOMIC_RELEASE);
}

static inline int count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    if (!d)
        return -1;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the DIR's own fd */
}

#endif
