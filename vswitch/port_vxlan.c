/* The vxlan port type: RFC 7348 over the host's UDP stack, batched with
 * recvmmsg/sendmmsg; the inner frame is gathered straight from where it was
 * received (8-byte header + pkt_gather), so encapsulation adds no copy.
 * See port_vxlan.h for the model and docs/datapath.md for the words. */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <urcu-qsbr.h>

#include "fdb.h"
#include "gso.h"
#include "hash.h"
#include "log.h"
#include "port_vxlan.h"

#define VXLAN_RX_BUF 65536    /* the largest UDP payload */
#define INBOX_SLOTS 64        /* datagrams parked for a port sharing a socket */
#define EP_MEMBERS_MAX 64     /* vxlan ports on one local:dstport */
#define TX_MSGS 64            /* datagrams per sendmmsg */
#define RX_SKIP_MAX 32        /* polls without a receive syscall after empty ones */
#define TX_HLEN (20 + 8 + VXLAN_HLEN) /* IPv4 (raw socket) + UDP + VXLAN */
#define VTEP_VALID (1ULL << 63)

/* ---------------------------------------------------------------- header */

void vxlan_hdr_write(uint8_t h[VXLAN_HLEN], uint32_t vni)
{
    h[0] = VXLAN_FLAG_I;
    h[1] = h[2] = h[3] = 0;
    h[4] = (uint8_t)(vni >> 16);
    h[5] = (uint8_t)(vni >> 8);
    h[6] = (uint8_t)vni;
    h[7] = 0;
}

void vxlan_udp_write(uint8_t h[8], uint16_t sport, uint16_t dport, uint32_t inner_len)
{
    uint16_t len = (uint16_t)(8 + VXLAN_HLEN + inner_len);

    h[0] = (uint8_t)(sport >> 8);
    h[1] = (uint8_t)sport;
    h[2] = (uint8_t)(dport >> 8);
    h[3] = (uint8_t)dport;
    h[4] = (uint8_t)(len >> 8);
    h[5] = (uint8_t)len;
    h[6] = h[7] = 0; /* RFC 7348 §5: SHOULD be zero over IPv4 */
}

/* The outer IPv4 header for the raw socket (IP_HDRINCL): the kernel fills
 * the total length, ID and checksum, and the source when saddr is 0. */
static void vxlan_ip_write(uint8_t h[20], uint32_t saddr, uint32_t daddr, uint32_t inner_len)
{
    uint16_t tot = (uint16_t)(20 + 8 + VXLAN_HLEN + inner_len);

    h[0] = 0x45;
    h[1] = 0;
    h[2] = (uint8_t)(tot >> 8);
    h[3] = (uint8_t)tot;
    h[4] = h[5] = 0;
    h[6] = 0x40; /* DF: never fragmented */
    h[7] = 0;
    h[8] = 64;
    h[9] = IPPROTO_UDP;
    h[10] = h[11] = 0;
    memcpy(h + 12, &saddr, 4);
    memcpy(h + 16, &daddr, 4);
}

int vxlan_hdr_parse(const uint8_t *d, size_t len, uint32_t *vni)
{
    if (len < VXLAN_HLEN + ETH_HLEN)
        return DROP_VXLAN_SHORT;
    if (!(d[0] & VXLAN_FLAG_I))
        return DROP_VXLAN_BAD_FLAGS;
    *vni = (uint32_t)d[4] << 16 | (uint32_t)d[5] << 8 | d[6];
    return -1;
}

/* 4 bytes as they lie in memory: the hash needs no byte order */
static inline uint32_t ld32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

uint16_t vxlan_src_port(const struct pkt *p)
{
    const uint8_t *h = p->head;
    uint32_t hash = 0x5bd1e995u;
    unsigned hl = p->head_len;

    hash = hash_mix(hash, ld32(h));
    hash = hash_mix(hash, ld32(h + 4));
    hash = hash_mix(hash, ld32(h + 8));
    hash = hash_mix(hash, p->ethertype);
    if (p->ethertype == ETH_TYPE_IP && hl >= ETH_HLEN + 20) {
        const uint8_t *ip = h + ETH_HLEN;
        unsigned ihl = (ip[0] & 0xf) * 4u;
        hash = hash_mix(hash, ld32(ip + 12));
        hash = hash_mix(hash, ld32(ip + 16));
        hash = hash_mix(hash, ip[9]);
        /* ports of the first fragment only, so fragments of a flow agree */
        if ((ip[9] == 6 || ip[9] == 17) && !(ld32(ip + 4) & htonl(0x1fff)) &&
            ihl >= 20 && hl >= ETH_HLEN + ihl + 4)
            hash = hash_mix(hash, ld32(ip + ihl));
    } else if (p->ethertype == ETH_TYPE_IPV6 && hl >= ETH_HLEN + 40) {
        const uint8_t *ip = h + ETH_HLEN;
        for (int i = 8; i < 40; i += 4)
            hash = hash_mix(hash, ld32(ip + i));
        hash = hash_mix(hash, ip[6]);
        if ((ip[6] == 6 || ip[6] == 17) && hl >= ETH_HLEN + 44)
            hash = hash_mix(hash, ld32(ip + 40));
    }
    return (uint16_t)(VXLAN_SPORT_MIN + (hash_finish(hash) % VXLAN_SPORT_RANGE));
}

/* ---------------------------------------------------------------- VTEP table */

static inline uint64_t vtep_key(unsigned idx, const uint8_t *mac)
{
    uint64_t m = (uint64_t)mac[0] << 40 | (uint64_t)mac[1] << 32 |
                 (uint64_t)mac[2] << 24 | (uint64_t)mac[3] << 16 |
                 (uint64_t)mac[4] << 8 | mac[5];
    return VTEP_VALID | (uint64_t)(idx & 0x7fff) << 48 | m;
}

static inline struct vtep_entry *vtep_set(struct vtep_table *t, uint64_t key)
{
    return t->sets[(key * 0x9e3779b97f4a7c15ULL) >> (64 - 10)];
}

static inline bool vtep_expired(const struct vtep_table *t, uint32_t seen, uint32_t now)
{
    return seen != VTEP_PINNED && t->ageing && now - seen > t->ageing;
}

static void vtep_store(struct vtep_table *t, unsigned idx, const uint8_t *mac, uint32_t ip,
                       uint32_t seen)
{
    uint64_t key = vtep_key(idx, mac);
    struct vtep_entry *set = vtep_set(t, key);
    struct vtep_entry *victim = NULL;

    for (int i = 0; i < VTEP_WAYS; i++) {
        struct vtep_entry *e = &set[i];
        uint64_t k = __atomic_load_n(&e->key, __ATOMIC_ACQUIRE);

        if (k == key) {
            if (__atomic_load_n(&e->ip, __ATOMIC_RELAXED) != ip) {
                __atomic_store_n(&e->ip, ip, __ATOMIC_RELAXED);
                __atomic_fetch_add(&t->moves, 1, __ATOMIC_RELAXED);
            }
            if (e->seen != seen)
                __atomic_store_n(&e->seen, seen, __ATOMIC_RELAXED);
            return;
        }
        /* an empty way first, else the stalest; pinned entries last */
        if (!k) {
            if (!victim || victim->key)
                victim = e;
        } else if (!victim || (victim->key && (victim->seen == VTEP_PINNED ||
                                               (e->seen != VTEP_PINNED &&
                                                e->seen < victim->seen)))) {
            victim = e;
        }
    }
    __atomic_store_n(&victim->key, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&victim->ip, ip, __ATOMIC_RELAXED);
    __atomic_store_n(&victim->seen, seen, __ATOMIC_RELAXED);
    __atomic_store_n(&victim->key, key, __ATOMIC_RELEASE);
    __atomic_fetch_add(&t->learned, 1, __ATOMIC_RELAXED);
}

void vtep_learn(struct vtep_table *t, unsigned vni_idx, const uint8_t *mac, uint32_t ip,
                uint32_t now)
{
    vtep_store(t, vni_idx, mac, ip, now == VTEP_PINNED ? now - 1 : now);
}

void vtep_pin(struct vtep_table *t, unsigned vni_idx, const uint8_t *mac, uint32_t ip)
{
    vtep_store(t, vni_idx, mac, ip, VTEP_PINNED);
}

uint32_t vtep_lookup(struct vtep_table *t, unsigned vni_idx, const uint8_t *mac,
                     uint32_t now)
{
    uint64_t key = vtep_key(vni_idx, mac);
    struct vtep_entry *set = vtep_set(t, key);

    for (int i = 0; i < VTEP_WAYS; i++) {
        if (__atomic_load_n(&set[i].key, __ATOMIC_ACQUIRE) == key) {
            uint32_t ip = __atomic_load_n(&set[i].ip, __ATOMIC_RELAXED);
            uint32_t seen = __atomic_load_n(&set[i].seen, __ATOMIC_RELAXED);
            return vtep_expired(t, seen, now) ? 0 : ip;
        }
    }
    return 0;
}

size_t vtep_forget_ip(struct vtep_table *t, uint32_t ip)
{
    size_t n = 0;

    for (int s = 0; s < VTEP_SETS; s++)
        for (int i = 0; i < VTEP_WAYS; i++)
            if (__atomic_load_n(&t->sets[s][i].key, __ATOMIC_ACQUIRE) &&
                __atomic_load_n(&t->sets[s][i].ip, __ATOMIC_RELAXED) == ip) {
                __atomic_store_n(&t->sets[s][i].key, 0, __ATOMIC_RELEASE);
                n++;
            }
    return n;
}

static size_t vtep_count(struct vtep_table *t, uint32_t now)
{
    size_t n = 0;

    for (int s = 0; s < VTEP_SETS; s++)
        for (int i = 0; i < VTEP_WAYS; i++)
            if (__atomic_load_n(&t->sets[s][i].key, __ATOMIC_ACQUIRE) &&
                !vtep_expired(t, __atomic_load_n(&t->sets[s][i].seen, __ATOMIC_RELAXED),
                              now))
                n++;
    return n;
}

/* ---------------------------------------------------------------- state */

/* The flood list of one VNI: remote= plus what discovery found. Replaced
 * whole and published with RCU. */
struct vxlan_flood {
    unsigned n;
    struct sockaddr_in to[];
};

struct inbox_slot {
    uint32_t len;
    uint32_t src;
    uint8_t *buf;
};

struct vxlan_ep;

struct vxlan {
    struct port *port;
    struct vxlan *next_all;              /* registry (control thread) */
    struct vxlan_ep *ep;
    uint32_t local;                      /* network order, 0: any */
    uint16_t dstport;
    bool map;                            /* vni=VNI:VLAN,... */
    unsigned n_vni;
    uint32_t vni[CONF_VNI_MAP_MAX];
    uint16_t vlan[CONF_VNI_MAP_MAX];     /* bridge VLAN of each VNI (map ports) */
    uint8_t vlan_idx[4096];              /* map ports: VLAN -> VNI index + 1 */
    unsigned n_static;
    uint32_t statics[VXLAN_REMOTES_MAX];
    uint32_t *discovered[CONF_VNI_MAP_MAX]; /* control thread's copy */
    unsigned n_discovered[CONF_VNI_MAP_MAX];
    struct vxlan_flood *flood[CONF_VNI_MAP_MAX]; /* RCU */
    unsigned underlay_mtu;               /* 0: unknown (the kernel still checks) */
    struct vtep_table *vteps;
    bool tx_error_logged;
    /* receive: owned by the PMD that polls the port */
    uint8_t *bufs[PKT_BATCH];
    struct mmsghdr msgs[PKT_BATCH];
    struct iovec iovs[PKT_BATCH];
    struct sockaddr_in srcs[PKT_BATCH];
    unsigned inbox_taken;
    /* An empty recvmmsg() costs a syscall (~0.6 µs here) where an empty
     * vhost ring costs a load: after empty ones the socket is skipped for a
     * doubling number of polls (at most RX_SKIP_MAX), so an idle PMD reaches
     * its sleep (whose rx_pending does poll() the socket) without burning
     * the CPU a co-located PMD needs. */
    unsigned rx_empty, rx_skip;
    /* inbox: filled under ep->lock by whichever member read the socket */
    struct inbox_slot inbox[INBOX_SLOTS];
    unsigned inbox_head, inbox_tail;
    int inbox_efd;
    int wait_epfd;                       /* socket + inbox eventfd */
};

/* One UDP socket per local:dstport, shared by the ports bound there. The lock
 * covers reading the socket and the member list; the control thread holds it
 * only to add or remove a member. */
struct vxlan_ep {
    struct vxlan_ep *next;
    uint32_t local;
    uint16_t port;
    int fd;             /* UDP: receives; sends when raw_fd is not available */
    int raw_fd;         /* raw IPPROTO_UDP: sends with our UDP header (source port) */
    pthread_mutex_t lock;
    unsigned n_members;
    struct vxlan *members[EP_MEMBERS_MAX];
};

static struct vxlan_ep *all_eps;   /* control thread */
static struct vxlan *all_vxlans;   /* control thread */

/* ---------------------------------------------------------------- endpoints */

static unsigned underlay_mtu_of(uint32_t local)
{
    struct ifaddrs *ifa, *i;
    unsigned mtu = 0;

    if (!local || getifaddrs(&ifa) < 0)
        return 0;
    for (i = ifa; i; i = i->ifa_next) {
        struct ifreq ifr;
        int s;

        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
            ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr != local)
            continue;
        memset(&ifr, 0, sizeof(ifr));
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", i->ifa_name);
        s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s >= 0 && ioctl(s, SIOCGIFMTU, &ifr) == 0)
            mtu = (unsigned)ifr.ifr_mtu;
        if (s >= 0)
            close(s);
        break;
    }
    freeifaddrs(ifa);
    return mtu;
}

/* A UDP socket's datagrams all leave from its own port, but RFC 7348 wants
 * the source port to carry the inner flow's entropy: so transmit goes through
 * a raw IPPROTO_RAW socket (IP_HDRINCL) that takes our IPv4 and UDP headers
 * (UDP checksum zero, as §5 recommends for IPv4; DF set). The kernel still
 * routes, fills the source address when local= is not given, the IP ID, total
 * length and header checksum, and refuses what exceeds the device MTU.
 * IPPROTO_RAW rather than IPPROTO_UDP: a raw UDP socket is handed a clone of
 * every UDP datagram the host receives on its address (the peer's VXLAN
 * traffic included) only to drop it in its filter; an IPPROTO_RAW socket
 * receives nothing (the drop-all filter stays as a guard). -1 without
 * CAP_NET_RAW: then the UDP socket sends, from dstport. */
static int raw_socket_open(uint32_t local, uint16_t port)
{
    struct sock_filter drop_all = BPF_STMT(BPF_RET | BPF_K, 0);
    struct sock_fprog prog = {.len = 1, .filter = &drop_all};
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = local};
    int pmtu = IP_PMTUDISC_DO, one = 1, buf = 4 << 20;
    int fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW);

    if (fd < 0) {
        log_warn("vxlan: no raw socket (%s): datagrams leave from UDP port %u, without "
                 "per-flow source ports",
                 strerror(errno), port);
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0 ||
        setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu)) < 0 ||
        (local && (setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one)) < 0 ||
                   bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0))) {
        log_warn("vxlan: raw socket setup: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf)) < 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    return fd;
}

static struct vxlan_ep *ep_get(uint32_t local, uint16_t port, char *err, size_t errlen)
{
    struct vxlan_ep *ep;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = local};
    int one = 1, pmtu = IP_PMTUDISC_DO, buf = 4 << 20;
    char ip[INET_ADDRSTRLEN];

    for (ep = all_eps; ep; ep = ep->next)
        if (ep->local == local && ep->port == port)
            return ep;
    ep = calloc(1, sizeof(*ep));
    if (!ep) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ep->local = local;
    ep->port = port;
    ep->raw_fd = -1;
    pthread_mutex_init(&ep->lock, NULL);
    ep->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (ep->fd < 0)
        goto fail;
    /* Never fragment: a frame too big for the underlay is refused and counted. */
    if (setsockopt(ep->fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu)) < 0)
        goto fail;
    /* local= may be configured before the address is (restore at boot) */
    setsockopt(ep->fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
    if (setsockopt(ep->fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)) < 0)
        setsockopt(ep->fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
    if (setsockopt(ep->fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf)) < 0)
        setsockopt(ep->fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    if (bind(ep->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        goto fail;
    ep->raw_fd = raw_socket_open(local, port);
    ep->next = all_eps;
    all_eps = ep;
    return ep;
fail:
    inet_ntop(AF_INET, &local, ip, sizeof(ip));
    snprintf(err, errlen, "cannot open the VXLAN socket on %s:%u: %s", ip, port,
             strerror(errno));
    if (ep->fd >= 0)
        close(ep->fd);
    pthread_mutex_destroy(&ep->lock);
    free(ep);
    return NULL;
}

static void ep_put(struct vxlan_ep *ep)
{
    struct vxlan_ep **pp;

    if (ep->n_members)
        return;
    for (pp = &all_eps; *pp; pp = &(*pp)->next)
        if (*pp == ep) {
            *pp = ep->next;
            break;
        }
    close(ep->fd);
    if (ep->raw_fd >= 0)
        close(ep->raw_fd);
    pthread_mutex_destroy(&ep->lock);
    free(ep);
}

static void ep_add(struct vxlan_ep *ep, struct vxlan *vx)
{
    pthread_mutex_lock(&ep->lock);
    ep->members[ep->n_members++] = vx;
    pthread_mutex_unlock(&ep->lock);
}

static void ep_remove(struct vxlan_ep *ep, struct vxlan *vx)
{
    pthread_mutex_lock(&ep->lock);
    for (unsigned i = 0; i < ep->n_members; i++)
        if (ep->members[i] == vx) {
            ep->members[i] = ep->members[--ep->n_members];
            break;
        }
    pthread_mutex_unlock(&ep->lock);
}

/* Which member and VNI index a VNI belongs to (ep->lock held). */
static struct vxlan *ep_demux(struct vxlan_ep *ep, uint32_t vni, unsigned *idx)
{
    for (unsigned m = 0; m < ep->n_members; m++) {
        struct vxlan *vx = ep->members[m];
        for (unsigned i = 0; i < vx->n_vni; i++)
            if (vx->vni[i] == vni) {
                *idx = i;
                return vx;
            }
    }
    return NULL;
}

/* ---------------------------------------------------------------- flood lists */

static struct vxlan_flood *flood_build(const struct vxlan *vx, unsigned i, uint16_t dstport)
{
    unsigned n = 0;
    struct vxlan_flood *f =
        calloc(1, sizeof(*f) + VXLAN_REMOTES_MAX * sizeof(struct sockaddr_in));
    uint32_t all[2 * VXLAN_REMOTES_MAX];
    unsigned nall = 0;

    if (!f)
        return NULL;
    for (unsigned k = 0; k < vx->n_static; k++)
        all[nall++] = vx->statics[k];
    for (unsigned k = 0; k < vx->n_discovered[i]; k++)
        all[nall++] = vx->discovered[i][k];
    for (unsigned k = 0; k < nall && n < VXLAN_REMOTES_MAX; k++) {
        bool dup = all[k] == vx->local && vx->local;
        for (unsigned j = 0; j < n && !dup; j++)
            dup = f->to[j].sin_addr.s_addr == all[k];
        if (dup)
            continue;
        f->to[n].sin_family = AF_INET;
        f->to[n].sin_port = htons(dstport);
        f->to[n].sin_addr.s_addr = all[k];
        n++;
    }
    f->n = n;
    return f;
}

static int flood_publish(struct vxlan *vx, unsigned i)
{
    struct vxlan_flood *f = flood_build(vx, i, vx->dstport), *old;

    if (!f)
        return -1;
    old = vx->flood[i];
    rcu_assign_pointer(vx->flood[i], f);
    if (old) {
        synchronize_rcu();
        free(old);
    }
    return 0;
}

/* ---------------------------------------------------------------- open/close */

static void vxlan_free(struct vxlan *vx)
{
    if (!vx)
        return;
    for (unsigned i = 0; i < CONF_VNI_MAP_MAX; i++) {
        free(vx->flood[i]);
        free(vx->discovered[i]);
    }
    for (int i = 0; i < PKT_BATCH; i++)
        free(vx->bufs[i]);
    for (int i = 0; i < INBOX_SLOTS; i++)
        free(vx->inbox[i].buf);
    if (vx->inbox_efd >= 0)
        close(vx->inbox_efd);
    if (vx->wait_epfd >= 0)
        close(vx->wait_epfd);
    free(vx->vteps);
    free(vx);
}

static int parse_remotes(struct vxlan *vx, const char *s)
{
    while (*s) {
        char ip[INET_ADDRSTRLEN];
        size_t len = strcspn(s, ",");
        struct in_addr a;

        if (!len || len >= sizeof(ip) || vx->n_static == VXLAN_REMOTES_MAX)
            return -1;
        memcpy(ip, s, len);
        ip[len] = '\0';
        if (inet_pton(AF_INET, ip, &a) != 1)
            return -1;
        vx->statics[vx->n_static++] = a.s_addr;
        s += len;
        if (*s == ',')
            s++;
    }
    return 0;
}

static int vxlan_open(struct port *p, const struct conf_port *c, const struct port_env *env,
                      char *err, size_t errlen)
{
    struct vxlan *vx = calloc(1, sizeof(*vx));
    struct epoll_event ev = {.events = EPOLLIN};
    struct in_addr a;

    (void)env;
    if (!vx)
        goto nomem;
    vx->inbox_efd = vx->wait_epfd = -1;
    vx->port = p;
    vx->dstport = c->dstport ? c->dstport : CONF_VXLAN_PORT;
    if (c->local[0]) {
        if (inet_pton(AF_INET, c->local, &a) != 1) {
            snprintf(err, errlen, "local=%s is not an IPv4 address", c->local);
            goto fail;
        }
        vx->local = a.s_addr;
    }
    if (parse_remotes(vx, c->remote) < 0) {
        snprintf(err, errlen, "remote=%s: give at most %d IPv4 addresses", c->remote,
                 VXLAN_REMOTES_MAX);
        goto fail;
    }
    if (c->n_vni_map) {
        vx->map = true;
        vx->n_vni = c->n_vni_map;
        for (unsigned i = 0; i < c->n_vni_map; i++) {
            vx->vni[i] = c->vni_map[i].vni;
            vx->vlan[i] = c->vni_map[i].vlan;
            vx->vlan_idx[c->vni_map[i].vlan & 0xfff] = (uint8_t)(i + 1);
        }
    } else {
        vx->n_vni = 1;
        vx->vni[0] = c->vni;
        vx->vlan[0] = c->vlan.mode == VLAN_MODE_ACCESS ? c->vlan.tag : c->vlan.native;
    }
    if (!(vx->vteps = calloc(1, sizeof(*vx->vteps))))
        goto nomem;
    vx->vteps->ageing = VXLAN_VTEP_AGEING;
    for (int i = 0; i < PKT_BATCH; i++)
        if (!(vx->bufs[i] = malloc(VXLAN_RX_BUF)))
            goto nomem;
    for (int i = 0; i < INBOX_SLOTS; i++)
        if (!(vx->inbox[i].buf = malloc(VXLAN_RX_BUF)))
            goto nomem;
    for (unsigned i = 0; i < vx->n_vni; i++)
        if (flood_publish(vx, i) < 0)
            goto nomem;
    vx->underlay_mtu = underlay_mtu_of(vx->local);

    vx->ep = ep_get(vx->local, vx->dstport, err, errlen);
    if (!vx->ep)
        goto fail;
    for (unsigned m = 0; m < vx->ep->n_members; m++)
        for (unsigned i = 0; i < vx->n_vni; i++) {
            unsigned k;
            if (ep_demux(vx->ep, vx->vni[i], &k)) {
                snprintf(err, errlen, "VNI %u on UDP port %u is already used by port %s",
                         vx->vni[i], vx->dstport, vx->ep->members[m]->port->name);
                goto fail_ep;
            }
        }
    if (vx->ep->n_members == EP_MEMBERS_MAX) {
        snprintf(err, errlen, "too many vxlan ports on UDP port %u (at most %d)",
                 vx->dstport, EP_MEMBERS_MAX);
        goto fail_ep;
    }
    vx->inbox_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    vx->wait_epfd = epoll_create1(EPOLL_CLOEXEC);
    if (vx->inbox_efd < 0 || vx->wait_epfd < 0 ||
        epoll_ctl(vx->wait_epfd, EPOLL_CTL_ADD, vx->ep->fd, &ev) < 0 ||
        epoll_ctl(vx->wait_epfd, EPOLL_CTL_ADD, vx->inbox_efd, &ev) < 0) {
        snprintf(err, errlen, "vxlan port %s: cannot set up its wait fd: %s", c->name,
                 strerror(errno));
        goto fail_ep;
    }
    ep_add(vx->ep, vx);
    vx->next_all = all_vxlans;
    all_vxlans = vx;

    p->priv = vx;
    p->n_rxq = 1;
    __atomic_store_n(&p->rxq_ready[0], true, __ATOMIC_RELEASE);
    __atomic_store_n(&p->tx_ready, true, __ATOMIC_RELEASE);
    return 0;
fail_ep:
    {
        struct vxlan_ep *ep = vx->ep;
        vxlan_free(vx);
        ep_put(ep);
        return -1;
    }
nomem:
    snprintf(err, errlen, "out of memory");
fail:
    vxlan_free(vx);
    return -1;
}

static void vxlan_close(struct port *p)
{
    struct vxlan *vx = p->priv;
    struct vxlan **pp;

    if (!vx)
        return;
    for (pp = &all_vxlans; *pp; pp = &(*pp)->next_all)
        if (*pp == vx) {
            *pp = vx->next_all;
            break;
        }
    ep_remove(vx->ep, vx);
    ep_put(vx->ep);
    vxlan_free(vx);
    p->priv = NULL;
    p->n_rxq = 0;
}

static bool vxlan_same_options(const struct conf_port *a, const struct conf_port *b)
{
    return a->has_vni == b->has_vni && a->vni == b->vni && a->n_vni_map == b->n_vni_map &&
           !memcmp(a->vni_map, b->vni_map, a->n_vni_map * sizeof(a->vni_map[0])) &&
           !strcmp(a->remote, b->remote) && !strcmp(a->local, b->local) &&
           a->dstport == b->dstport && a->mtu == b->mtu &&
           (b->n_vni_map || (a->vlan.mode == b->vlan.mode && a->vlan.tag == b->vlan.tag &&
                             a->vlan.native == b->vlan.native));
}

/* ---------------------------------------------------------------- receive */

int vxlan_decap(uint8_t *d, uint32_t len, const struct vxlan_rx_map *m, unsigned idx,
                uint32_t src, uint32_t now, struct pkt *pk)
{
    struct vring_buf b;
    uint16_t tci;

    if (len < VXLAN_HLEN + ETH_HLEN)
        return DROP_VXLAN_SHORT;
    b.addr = d + VXLAN_HLEN;
    b.len = len - VXLAN_HLEN;
    memset(&pk->vnet, 0, sizeof(pk->vnet));
    if (!pkt_from_bufs(pk, &b, 1, b.len, &tci))
        return DROP_VXLAN_SHORT;
    if (m->map) {
        /* the VNI is the VLAN: an inner tag has no meaning here */
        if (tci & 0xfff)
            return DROP_VLAN_TAGGED_ACCESS;
        pk->vlan = m->vlan[idx];
    } else {
        pk->vlan = tci;
    }
    if (!mac_is_multicast(pkt_src_mac(pk)))
        vtep_learn(m->vteps, idx, pkt_src_mac(pk), src, now);
    return -1;
}

/* vxlan_decap for member vx, counting a drop. */
static bool vxlan_rx_one(struct vxlan *vx, unsigned idx, uint8_t *d, uint32_t len,
                         uint32_t src, uint32_t now, struct pkt *pk)
{
    const struct vxlan_rx_map m = {.map = vx->map, .vlan = vx->vlan, .vteps = vx->vteps};
    int drop = vxlan_decap(d, len, &m, idx, src, now, pk);

    if (drop >= 0) {
        port_count_drop(vx->port, (enum drop_reason)drop, 1);
        return false;
    }
    return true;
}

/* Parks a datagram for another member; ep->lock held. */
static void inbox_push(struct vxlan *vx, const uint8_t *d, uint32_t len, uint32_t src)
{
    unsigned h = vx->inbox_head;
    unsigned t = __atomic_load_n(&vx->inbox_tail, __ATOMIC_ACQUIRE);
    uint64_t one = 1;

    if (h - t >= INBOX_SLOTS) {
        port_count_drop(vx->port, DROP_VXLAN_DEMUX_FULL, 1);
        return;
    }
    memcpy(vx->inbox[h % INBOX_SLOTS].buf, d, len);
    vx->inbox[h % INBOX_SLOTS].len = len;
    vx->inbox[h % INBOX_SLOTS].src = src;
    __atomic_store_n(&vx->inbox_head, h + 1, __ATOMIC_RELEASE);
    if (write(vx->inbox_efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_debug("vxlan %s: inbox wake: %s", vx->port->name, strerror(errno));
}

static int vxlan_rx_burst(struct port *p, unsigned q, struct pkt *pkts, int max)
{
    struct vxlan *vx = p->priv;
    struct vxlan_ep *ep = vx->ep;
    uint32_t now = fdb_now();
    uint64_t bytes = 0;
    unsigned t = vx->inbox_tail;
    unsigned h = __atomic_load_n(&vx->inbox_head, __ATOMIC_ACQUIRE);
    int n = 0, r;

    (void)q;
    /* 1. datagrams another member read for us (the eventfd that says so is
     * drained by rx_pending, before the PMD sleeps: no syscall here) */
    vx->inbox_taken = 0;
    while (t + vx->inbox_taken != h && n < max) {
        struct inbox_slot *s = &vx->inbox[(t + vx->inbox_taken++) % INBOX_SLOTS];
        uint32_t vni;
        unsigned idx = 0;

        if (vxlan_hdr_parse(s->buf, s->len, &vni) >= 0)
            continue; /* checked by the pusher */
        for (unsigned i = 0; i < vx->n_vni; i++)
            if (vx->vni[i] == vni)
                idx = i;
        if (vxlan_rx_one(vx, idx, s->buf, s->len, s->src, now, &pkts[n])) {
            bytes += pkts[n].len;
            n++;
        }
    }

    /* 2. the socket, unless it was empty lately (see rx_skip) or another
     * member is reading it right now */
    if (vx->rx_skip) {
        vx->rx_skip--;
    } else if (n < max && pthread_mutex_trylock(&ep->lock) == 0) {
        int want = max - n;
        for (int i = 0; i < want; i++) {
            vx->iovs[i].iov_base = vx->bufs[i];
            vx->iovs[i].iov_len = VXLAN_RX_BUF;
            memset(&vx->msgs[i].msg_hdr, 0, sizeof(vx->msgs[i].msg_hdr));
            vx->msgs[i].msg_hdr.msg_iov = &vx->iovs[i];
            vx->msgs[i].msg_hdr.msg_iovlen = 1;
            vx->msgs[i].msg_hdr.msg_name = &vx->srcs[i];
            vx->msgs[i].msg_hdr.msg_namelen = sizeof(vx->srcs[i]);
        }
        r = recvmmsg(ep->fd, vx->msgs, (unsigned)want, MSG_DONTWAIT, NULL);
        if (r < 0 && errno != EAGAIN && errno != EINTR)
            port_count_drop(p, DROP_RX_ERROR, 1);
        if (r > 0) {
            vx->rx_empty = 0;
        } else {
            if (vx->rx_empty < 6)
                vx->rx_empty++;
            vx->rx_skip = (1u << vx->rx_empty) - 1;
            if (vx->rx_skip > RX_SKIP_MAX)
                vx->rx_skip = RX_SKIP_MAX;
        }
        for (int i = 0; i < r; i++) {
            uint8_t *d = vx->bufs[i];
            uint32_t len = vx->msgs[i].msg_len, vni, src = vx->srcs[i].sin_addr.s_addr;
            struct vxlan *to;
            unsigned idx;
            int drop;

            if (vx->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
                port_count_drop(p, DROP_VXLAN_TRUNCATED, 1);
                continue;
            }
            if ((drop = vxlan_hdr_parse(d, len, &vni)) >= 0) {
                port_count_drop(p, (enum drop_reason)drop, 1);
                continue;
            }
            to = ep_demux(ep, vni, &idx);
            if (!to) {
                port_count_drop(p, DROP_VXLAN_UNKNOWN_VNI, 1);
                continue;
            }
            if (to != vx) {
                inbox_push(to, d, len, src);
                continue;
            }
            if (vxlan_rx_one(vx, idx, d, len, src, now, &pkts[n])) {
                bytes += pkts[n].len;
                n++;
            }
        }
        pthread_mutex_unlock(&ep->lock);
    }
    if (n)
        port_count_rx(p, (uint64_t)n, bytes);
    else if (vx->inbox_taken) /* no rx_done will come */
        __atomic_store_n(&vx->inbox_tail, t + vx->inbox_taken, __ATOMIC_RELEASE);
    return n;
}

static void vxlan_rx_done(struct port *p, unsigned q, struct pkt *pkts, int n)
{
    struct vxlan *vx = p->priv;

    (void)q;
    (void)pkts;
    (void)n;
    if (vx->inbox_taken) {
        __atomic_store_n(&vx->inbox_tail, vx->inbox_tail + vx->inbox_taken,
                         __ATOMIC_RELEASE);
        vx->inbox_taken = 0;
    }
}

/* ---------------------------------------------------------------- transmit */

struct tx_batch {
    int n;
    struct mmsghdr msgs[TX_MSGS];
    struct iovec iov[TX_MSGS][PKT_IOV_MAX + 1];
    uint8_t hdr[TX_MSGS][TX_HLEN]; /* IPv4 + UDP (raw socket) + VXLAN */
    uint8_t tag[TX_MSGS][4];
    struct sockaddr_in to[TX_MSGS];
    uint32_t len[TX_MSGS];
};

static void tx_flush(struct vxlan *vx, struct tx_batch *b)
{
    struct port *p = vx->port;
    uint64_t bytes = 0;
    int i = 0, sent = 0;

    while (i < b->n) {
        int fd = vx->ep->raw_fd >= 0 ? vx->ep->raw_fd : vx->ep->fd;
        int r = sendmmsg(fd, b->msgs + i, (unsigned)(b->n - i), MSG_DONTWAIT);
        if (r > 0) {
            for (int k = i; k < i + r; k++)
                bytes += b->len[k];
            sent += r;
            i += r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        /* msgs[i] failed: count it and go on with the rest */
        if (errno == EMSGSIZE) {
            port_count_drop(p, DROP_VXLAN_UNDERLAY_MTU, 1);
        } else if (errno == EAGAIN || errno == ENOBUFS) {
            port_count_drop(p, DROP_NO_BUFFER, 1);
        } else {
            port_count_drop(p, DROP_TX_ERROR, 1);
            if (!vx->tx_error_logged)
                log_warn("vxlan %s: transmit failed: %s", p->name, strerror(errno));
            vx->tx_error_logged = true;
        }
        i++;
    }
    if (sent)
        port_count_tx(p, (uint64_t)sent, bytes);
    b->n = 0;
}

static void tx_add(struct vxlan *vx, struct tx_batch *b, const struct pkt *pk, uint16_t tci,
                   uint32_t vni, uint16_t sport, const struct sockaddr_in *to)
{
    int k = b->n;
    struct msghdr *m = &b->msgs[k].msg_hdr;
    int niov;

    uint32_t len = pk->len + (tci ? VLAN_HLEN : 0);

    if (vx->ep->raw_fd >= 0) {
        vxlan_ip_write(b->hdr[k], vx->local, to->sin_addr.s_addr, len);
        vxlan_udp_write(b->hdr[k] + 20, sport, vx->dstport, len);
        b->iov[k][0].iov_base = b->hdr[k];
        b->iov[k][0].iov_len = TX_HLEN;
    } else {
        b->iov[k][0].iov_base = b->hdr[k] + 28;
        b->iov[k][0].iov_len = VXLAN_HLEN;
    }
    vxlan_hdr_write(b->hdr[k] + 28, vni);
    niov = 1 + pkt_gather(pk, tci, b->tag[k], b->iov[k] + 1);
    b->to[k] = *to;
    /* a raw socket's sin_port is the protocol: leave it, the header has it */
    memset(m, 0, sizeof(*m));
    m->msg_name = &b->to[k];
    m->msg_namelen = sizeof(b->to[k]);
    m->msg_iov = b->iov[k];
    m->msg_iovlen = (size_t)niov;
    b->len[k] = len;
    if (++b->n == TX_MSGS)
        tx_flush(vx, b);
}

/* One frame into the batch: to its VTEP, or to every remote. */
static void vxlan_tx_one(struct port *p, struct vxlan *vx, struct tx_batch *b,
                         struct pkt *pk, uint16_t tci, uint32_t now)
{
    unsigned idx = 0;
    const struct vxlan_flood *f;
    uint32_t ip, len;
    uint16_t sport;

    if (vx->map) {
        idx = vx->vlan_idx[pk->vlan & 0xfff];
        if (!idx) {
            port_count_drop(p, DROP_VXLAN_NO_VNI, 1);
            return;
        }
        idx--;
        tci = 0;
    }
    if ((pk->vnet.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !pkt_finish_csum(pk)) {
        port_count_drop(p, DROP_BAD_OFFLOAD, 1);
        return;
    }
    len = pk->len + (tci ? VLAN_HLEN : 0);
    if ((vx->underlay_mtu && len + VXLAN_UDP_OVERHEAD > vx->underlay_mtu) ||
        len + VXLAN_HLEN > 65507) {
        port_count_drop(p, DROP_VXLAN_UNDERLAY_MTU, 1);
        return;
    }
    sport = vxlan_src_port(pk);
    /* A known unicast destination goes to its VTEP; the rest to all. */
    ip = mac_is_multicast(pkt_dst_mac(pk)) ? 0
                                            : vtep_lookup(vx->vteps, idx, pkt_dst_mac(pk), now);
    if (ip) {
        struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(vx->dstport),
                                 .sin_addr.s_addr = ip};
        tx_add(vx, b, pk, tci, vx->vni[idx], sport, &to);
        return;
    }
    f = rcu_dereference(vx->flood[idx]);
    if (!f || !f->n) {
        port_count_drop(p, DROP_VXLAN_NO_REMOTE, 1);
        return;
    }
    for (unsigned r = 0; r < f->n; r++)
        tx_add(vx, b, pk, tci, vx->vni[idx], sport, &f->to[r]);
}

static void vxlan_tx_frames(struct port *p, struct pkt *const *pkts, const uint16_t *tcis,
                            int n)
{
    struct vxlan *vx = p->priv;
    struct tx_batch b; /* on the stack: tx may come from several PMDs at once */
    uint32_t now = fdb_now();

    b.n = 0;
    for (int i = 0; i < n; i++)
        vxlan_tx_one(p, vx, &b, pkts[i], tcis[i], now);
    if (b.n) /* the batch points into the packets: sent before returning */
        tx_flush(vx, &b);
}

/* The tunnel takes MTU-sized frames: super-frames are segmented first. */
static void vxlan_tx_burst(struct port *p, struct pkt *const *pkts, const uint16_t *tcis,
                           int n)
{
    gso_tx_burst(p, pkts, tcis, n, NULL, vxlan_tx_frames);
}

/* ---------------------------------------------------------------- waiting, status */

static int vxlan_wait_fd(struct port *p, unsigned q, bool *is_eventfd)
{
    struct vxlan *vx = p->priv;

    (void)q;
    *is_eventfd = false;
    return vx ? vx->wait_epfd : -1;
}

static bool vxlan_rx_pending(struct port *p, unsigned q)
{
    struct vxlan *vx = p->priv;
    struct pollfd pfd = {.fd = vx->ep->fd, .events = POLLIN};
    uint64_t v;

    (void)q;
    /* Drain the inbox eventfd before looking at the inbox: a push after this
     * read writes it again and wakes the PMD; one before is seen below. Left
     * undrained (a push whose write landed after the consumer had emptied the
     * inbox), the level-triggered wait fd would stay readable and the PMD
     * would never sleep. */
    if (read(vx->inbox_efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        log_debug("vxlan %s: inbox: %s", p->name, strerror(errno));
    vx->rx_skip = vx->rx_empty = 0; /* the PMD may sleep: read at once on waking */
    if (__atomic_load_n(&vx->inbox_head, __ATOMIC_ACQUIRE) != vx->inbox_tail)
        return true;
    return poll(&pfd, 1, 0) > 0;
}

static json_t *ip_json(uint32_t ip)
{
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &ip, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *vxlan_status(struct port *p)
{
    struct vxlan *vx = p->priv;
    json_t *j = json_object(), *vnis = json_array();

    if (!vx) {
        json_object_set_new(j, "link", json_string("down"));
        return j;
    }
    json_object_set_new(j, "link", json_string("up"));
    json_object_set_new(j, "local", ip_json(vx->local));
    json_object_set_new(j, "dstport", json_integer(vx->dstport));
    json_object_set_new(j, "underlay_mtu", json_integer(vx->underlay_mtu));
    json_object_set_new(j, "socket_shared_by", json_integer(vx->ep->n_members));
    for (unsigned i = 0; i < vx->n_vni; i++) {
        json_t *v = json_object(), *fl = json_array();
        const struct vxlan_flood *f = vx->flood[i];
        json_object_set_new(v, "vni", json_integer(vx->vni[i]));
        json_object_set_new(v, "vlan", json_integer(vx->vlan[i]));
        for (unsigned k = 0; f && k < f->n; k++)
            json_array_append_new(fl, ip_json(f->to[k].sin_addr.s_addr));
        json_object_set_new(v, "flood", fl);
        json_object_set_new(v, "discovered", json_integer(vx->n_discovered[i]));
        json_array_append_new(vnis, v);
    }
    json_object_set_new(j, "vnis", vnis);
    json_object_set_new(j, "remote_macs", json_integer((json_int_t)vtep_count(vx->vteps, fdb_now())));
    return j;
}

/* ---------------------------------------------------------------- control API */

void vxlan_foreach(vxlan_info_cb cb, void *ctx)
{
    for (struct vxlan *vx = all_vxlans; vx; vx = vx->next_all) {
        struct vxlan_info i = {.port = vx->port->name, .bridge = vx->port->conf.bridge,
                               .local = vx->local, .n_vni = vx->n_vni};
        memcpy(i.vni, vx->vni, sizeof(i.vni));
        memcpy(i.vlan, vx->vlan, sizeof(i.vlan));
        cb(ctx, vx->port, &i);
    }
}

bool vxlan_is_port(const struct port *p)
{
    for (struct vxlan *vx = all_vxlans; vx; vx = vx->next_all)
        if (vx->port == p)
            return true;
    return false;
}

int vxlan_set_discovered(struct port *p, unsigned i, const uint32_t *ips, unsigned n)
{
    struct vxlan *vx = p->priv;
    uint32_t *copy = NULL;

    if (!vx || i >= vx->n_vni)
        return -1;
    if (n > VXLAN_REMOTES_MAX)
        n = VXLAN_REMOTES_MAX;
    if (n == vx->n_discovered[i] &&
        (!n || !memcmp(ips, vx->discovered[i], n * sizeof(*ips))))
        return 0;
    if (n && !(copy = malloc(n * sizeof(*ips))))
        return -1;
    if (n)
        memcpy(copy, ips, n * sizeof(*ips));
    /* a VTEP that left discovery (its lease expired) takes its MACs along,
     * unless remote= names it */
    for (unsigned k = 0; k < vx->n_discovered[i]; k++) {
        uint32_t gone = vx->discovered[i][k];
        bool kept = false;
        for (unsigned j = 0; j < n && !kept; j++)
            kept = ips[j] == gone;
        for (unsigned j = 0; j < vx->n_static && !kept; j++)
            kept = vx->statics[j] == gone;
        if (!kept)
            vtep_forget_ip(vx->vteps, gone);
    }
    free(vx->discovered[i]);
    vx->discovered[i] = copy;
    vx->n_discovered[i] = n;
    return flood_publish(vx, i);
}

void vxlan_pin_mac(struct port *p, unsigned i, const uint8_t mac[6], uint32_t ip)
{
    struct vxlan *vx = p->priv;

    if (vx && i < vx->n_vni && ip)
        vtep_pin(vx->vteps, i, mac, ip);
}

void vxlan_forget_remote(struct port *p, uint32_t ip)
{
    struct vxlan *vx = p->priv;

    if (vx)
        vtep_forget_ip(vx->vteps, ip);
}

const struct port_ops port_vxlan_ops = {
    .type = "vxlan",
    .open = vxlan_open,
    .close = vxlan_close,
    .same_options = vxlan_same_options,
    .rx_burst = vxlan_rx_burst,
    .rx_done = vxlan_rx_done,
    .tx_burst = vxlan_tx_burst,
    .wait_fd = vxlan_wait_fd,
    .rx_pending = vxlan_rx_pending,
    .status = vxlan_status,
};
