/* Shared by the uplink port types (port_afxdp.c, port_dpdk.c); see uplink.h. */
#include <arpa/inet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netlink/netlink.h>
#include <netlink/route/addr.h>

#include "uplink.h"

size_t uplink_iov_len(const struct iovec *iov, int n)
{
    size_t len = 0;

    for (int i = 0; i < n; i++)
        len += iov[i].iov_len;
    return len;
}

size_t uplink_iov_copy(void *dst, size_t cap, const struct iovec *iov, int n)
{
    size_t len = uplink_iov_len(iov, n);
    uint8_t *d = dst;

    if (len > cap)
        return 0;
    for (int i = 0; i < n; i++) {
        memcpy(d, iov[i].iov_base, iov[i].iov_len);
        d += iov[i].iov_len;
    }
    return len;
}

enum drop_reason uplink_tx_prepare(struct pkt *p)
{
    if (p->vnet.gso_type != VIRTIO_NET_HDR_GSO_NONE)
        return DROP_GSO_UNSUPPORTED;
    if ((p->vnet.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !pkt_finish_csum(p))
        return DROP_BAD_OFFLOAD;
    return DROP__COUNT;
}

int uplink_addr_from_conf(const struct conf_port *c, uint32_t *addr_be,
                          uint8_t *prefix_len)
{
    char buf[sizeof c->ip];
    char *slash, *end;
    struct in_addr a;
    unsigned long plen = 32;

    if (!c->ip[0])
        return -1;
    snprintf(buf, sizeof buf, "%s", c->ip);
    slash = strchr(buf, '/');
    if (slash) {
        *slash++ = '\0';
        plen = strtoul(slash, &end, 10);
        if (*end || plen > 32)
            return -1;
    }
    if (inet_pton(AF_INET, buf, &a) != 1)
        return -1;
    *addr_be = a.s_addr;
    *prefix_len = (uint8_t)plen;
    return 0;
}

int uplink_addr_of_ifname(const char *ifname, uint32_t *addr_be, uint8_t *prefix_len)
{
    struct nl_sock *sk = NULL;
    struct nl_cache *cache = NULL;
    int idx = (int)if_nametoindex(ifname);
    int r = -1;

    if (!idx)
        return -1;
    sk = nl_socket_alloc();
    if (!sk || nl_connect(sk, NETLINK_ROUTE) < 0)
        goto out;
    if (rtnl_addr_alloc_cache(sk, &cache) < 0)
        goto out;
    for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
        struct rtnl_addr *a = (struct rtnl_addr *)o;
        struct nl_addr *local = rtnl_addr_get_local(a);

        if (rtnl_addr_get_ifindex(a) != idx || rtnl_addr_get_family(a) != AF_INET ||
            !local || nl_addr_get_len(local) != 4)
            continue;
        memcpy(addr_be, nl_addr_get_binary_addr(local), 4);
        *prefix_len = (uint8_t)rtnl_addr_get_prefixlen(a);
        r = 0;
        break;
    }
out:
    if (cache)
        nl_cache_free(cache);
    if (sk)
        nl_socket_free(sk);
    return r;
}

int umem_frames_init(struct umem_frames *f, uint64_t first, uint32_t count,
                     uint32_t frame_size)
{
    f->addr = calloc(count ? count : 1, sizeof *f->addr);
    if (!f->addr)
        return -1;
    f->cap = count;
    f->n = 0;
    /* pushed in reverse so pop() hands out the lowest addresses first */
    for (uint32_t i = count; i-- > 0;)
        f->addr[f->n++] = first + (uint64_t)i * frame_size;
    return 0;
}

void umem_frames_free(struct umem_frames *f)
{
    free(f->addr);
    f->addr = NULL;
    f->n = f->cap = 0;
}
