/* The descriptor-chain walker and virtio-net header handling over guest
 * memory the fuzzer writes: rings, descriptor tables, indirect tables and
 * buffers are all input. Nothing it does may touch memory outside the guest
 * region (ASan watches the rest of the process). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vhost_net.h"
#include "vring.h"

#define G_SIZE (64u << 10)
#define G_GPA 0x40000ULL
#define G_UVA 0x7f0000000000ULL

static int g_fd = -1;
static uint8_t *g_base;
static struct vhost_mem g_mem;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void setup_once(void)
{
    struct vhost_user_memory m = {.nregions = 1};
    char err[128];

    if (g_fd >= 0)
        return;
    g_fd = memfd_create("fuzz-guest", MFD_CLOEXEC);
    if (g_fd < 0 || ftruncate(g_fd, G_SIZE) < 0)
        abort();
    g_base = mmap(NULL, G_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, g_fd, 0);
    m.regions[0].guest_phys_addr = G_GPA;
    m.regions[0].memory_size = G_SIZE;
    m.regions[0].userspace_addr = G_UVA;
    if (g_base == MAP_FAILED ||
        vhost_mem_map(&g_mem, &m, 8 + sizeof(m.regions[0]), &g_fd, 1, err, sizeof(err)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vring vq;
    struct vring_chain c;
    uint8_t frame[1600];
    struct virtio_net_hdr hdr;
    struct iovec iov;
    uint16_t qsize;
    uint8_t flags;

    setup_once();
    if (size < 4)
        return 0;
    qsize = (uint16_t)(1u << (data[0] % 9)); /* 1..256 */
    flags = data[1];
    memset(g_base, 0, G_SIZE);
    /* the layout of the fuzz guest: desc at 0, avail at 0x1000, used at 0x2000 */
    memcpy(g_base, data + 2, size - 2 < G_SIZE ? size - 2 : G_SIZE);

    vring_init(&vq);
    vq.mem = &g_mem;
    vq.size = qsize;
    vq.indirect = flags & 1;
    vq.event_idx = flags & 2;
    if (vring_set_addr(&vq, G_UVA, G_UVA + 0x1000, G_UVA + 0x2000))
        return 0;
    vq.last_avail_idx = (uint16_t)(data[2] | data[3] << 8);
    vq.last_used_idx = vq.last_avail_idx;

    /* device-readable chains: a guest's transmit queue */
    for (int i = 0; i < 64; i++) {
        enum vring_err e = vring_pop(&vq, flags & 4, &c);
        struct vring_buf fbufs[VRING_CHAIN_MAX];
        int nf;

        if (e == VRING_EMPTY || vq.broken)
            break;
        if (e != VRING_OK)
            continue;
        if (!(flags & 4) &&
            vhost_net_tx_split(&c, flags & 8 ? 10 : 12, &hdr, fbufs, &nf) >= 0) {
            for (int k = 0; k < nf; k++) /* touch every byte: ASan checks */
                memcpy(frame, fbufs[k].addr, fbufs[k].len < sizeof(frame) ? fbufs[k].len : sizeof(frame));
        }
        vring_push(&vq, c.head, 0);
    }
    vring_flush(&vq);

    /* device-writable chains: a guest's receive queue */
    vq.broken = false;
    memset(frame, 0xab, sizeof(frame));
    memset(&hdr, 0, sizeof(hdr));
    iov.iov_base = frame;
    iov.iov_len = 60 + (flags >> 4) * 96;
    for (int i = 0; i < 8 && !vq.broken; i++)
        if (vhost_net_rx_copy(&vq, flags & 16, 12, &hdr, &iov, 1, iov.iov_len) ==
            VHOST_NET_RX_NO_BUF)
            break;
    vring_flush(&vq);
    vring_set_notify(&vq, true);
    (void)vring_avail_count(&vq);
    return 0;
}
