/* The dpdk port type (built with -Ddpdk=enabled): a DPDK ethdev named by
 * devargs= — a PCI device bound to vfio-pci ("0000:01:00.0") or a virtual
 * device ("net_tap0,iface=dtap0", "net_af_packet0,iface=eth1", "net_ring0").
 *
 * The EAL starts once per process, when the first dpdk port opens (see
 * dpdk_eal_start for its arguments). Each port has one rx and one tx queue and
 * its own mbuf pool. Receive parses in place: the head is copied into the
 * packet and the rest stays in the mbuf as segments; rx_done frees the mbufs
 * after the batch has been transmitted. Transmit copies the gathered frame
 * into fresh mbufs (chained when it is longer than one). A DPDK queue has no
 * fd to sleep on: wait_fd is -1 and the PMD naps between polls instead. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "dpdk_mbuf.h"
#include "guest_fault.h"
#include "log.h"
#include "port.h"
#include "gso.h"
#include "uplink.h"

#define DPDK_RING_SIZE 1024
#define DPDK_POOL_MBUFS 8191 /* 2^n - 1: the pool's ring is then fully used */
#define DPDK_HUGE_MIN_MB 128 /* less free hugepage memory than this: --no-huge */
#define DPDK_NOHUGE_MB "256"

struct dpdk_port {
    uint16_t port_id;
    struct rte_device *dev;
    struct rte_mempool *pool;
    bool started;
    bool multi_seg_tx;
    char name[RTE_ETH_NAME_MAX_LEN];
    /* receive side: the PMD thread of queue 0 only */
    struct rte_mbuf *held[PKT_BATCH];
    unsigned n_held;
    /* transmit side: any PMD thread, under tx_lock. Mbufs being filled live
     * here (not on the stack) so a guest fault in the copy cannot leak them. */
    pthread_spinlock_t tx_lock;
    struct rte_mbuf *burst[PKT_BATCH];
    unsigned n_burst;
    struct rte_mbuf *filling;
};

static pthread_mutex_t eal_lock = PTHREAD_MUTEX_INITIALIZER;
static bool eal_started;
static bool eal_pci;

/* A PCI address (DDDD:BB:DD.F or BB:DD.F) at the start of devargs. */
static bool devargs_is_pci(const char *d)
{
    unsigned a, b, c, e;
    char ch;

    return sscanf(d, "%x:%x:%x.%x%c", &a, &b, &c, &e, &ch) >= 4 ||
           sscanf(d, "%x:%x.%x%c", &a, &b, &c, &ch) >= 3;
}

static bool hugepages_usable(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    unsigned long free_pages = 0, page_kb = 0;
    char line[128];

    if (!f)
        return false;
    while (fgets(line, sizeof line, f)) {
        sscanf(line, "HugePages_Free: %lu", &free_pages);
        sscanf(line, "Hugepagesize: %lu kB", &page_kb);
    }
    fclose(f);
    return free_pages * page_kb / 1024 >= DPDK_HUGE_MIN_MB;
}

/* EAL arguments, unless VSWITCH_DPDK_EAL gives them (split at spaces):
 *   a file prefix of our own, --no-telemetry, lcore 0 only (no worker
 *   threads: our PMD threads poll), --iova-mode=va;
 *   hugepages with --in-memory --single-file-segments (no files in
 *   /var/run/dpdk, no multi-process) when enough are free, else --no-huge
 *   -m 256 --no-shconf (the same without hugepages);
 *   --no-pci unless the first port is a PCI device, which is then the one
 *   PCI device allowed (-a). */
static int dpdk_eal_start(const char *devargs, char *err, size_t errlen)
{
    char *argv[64];
    int argc = 0;
    char prefix[64], allow[CONF_DEVARGS_MAX + 4];
    char *env = getenv("VSWITCH_DPDK_EAL"), *envcopy = NULL;
    cpu_set_t cpus;
    bool have_cpus;
    int r;

    argv[argc++] = "vswitchd";
    if (env && *env) {
        char *save = NULL;
        envcopy = strdup(env);
        for (char *t = strtok_r(envcopy, " ", &save); t && argc < 62;
             t = strtok_r(NULL, " ", &save))
            argv[argc++] = t;
        eal_pci = !strstr(env, "--no-pci");
    } else {
        snprintf(prefix, sizeof prefix, "--file-prefix=vswitchd-%d", (int)getpid());
        argv[argc++] = prefix;
        argv[argc++] = "--no-telemetry";
        argv[argc++] = "-l";
        argv[argc++] = "0";
        argv[argc++] = "--iova-mode=va";
        argv[argc++] = "--log-level=*:warning";
        if (hugepages_usable()) {
            argv[argc++] = "--in-memory";
            argv[argc++] = "--single-file-segments";
        } else {
            argv[argc++] = "--no-shconf"; /* --in-memory without hugepages */
            argv[argc++] = "--no-huge";
            argv[argc++] = "-m";
            argv[argc++] = DPDK_NOHUGE_MB;
        }
        eal_pci = devargs_is_pci(devargs);
        if (eal_pci) {
            snprintf(allow, sizeof allow, "%s", devargs);
            argv[argc++] = "-a";
            argv[argc++] = allow;
        } else {
            argv[argc++] = "--no-pci";
        }
    }
    argv[argc] = NULL;
    /* rte_eal_init pins the calling (control) thread to lcore 0's CPU. */
    have_cpus = pthread_getaffinity_np(pthread_self(), sizeof cpus, &cpus) == 0;
    r = rte_eal_init(argc, argv);
    if (have_cpus)
        pthread_setaffinity_np(pthread_self(), sizeof cpus, &cpus);
    free(envcopy);
    if (r < 0) {
        snprintf(err, errlen, "dpdk: the DPDK EAL did not start: %s", rte_strerror(rte_errno));
        return -1;
    }
    log_info("dpdk: EAL started (%s, %s)",
             env && *env ? "VSWITCH_DPDK_EAL" : hugepages_usable() ? "hugepages" : "no hugepages",
             eal_pci ? "PCI" : "no PCI");
    eal_started = true;
    return 0;
}

static void dpdk_port_free(struct dpdk_port *d)
{
    if (!d)
        return;
    if (d->started) {
        rte_eth_dev_stop(d->port_id);
        rte_eth_dev_close(d->port_id);
    }
    if (d->dev)
        rte_dev_remove(d->dev);
    if (d->n_held)
        rte_pktmbuf_free_bulk(d->held, d->n_held);
    if (d->n_burst)
        rte_pktmbuf_free_bulk(d->burst, d->n_burst);
    rte_pktmbuf_free(d->filling);
    rte_mempool_free(d->pool);
    pthread_spin_destroy(&d->tx_lock);
    free(d);
}

/* Probes the device of devargs (already probed at EAL start for PCI) and
 * finds its ethdev. */
static int dpdk_attach(struct dpdk_port *d, const char *devargs, char *err, size_t errlen)
{
    char name[CONF_DEVARGS_MAX];
    struct rte_dev_iterator it;
    uint16_t pid;
    int r;

    snprintf(name, sizeof name, "%.*s", (int)strcspn(devargs, ","), devargs);
    if (devargs_is_pci(devargs) && !eal_pci) {
        snprintf(err, errlen,
                 "dpdk: %s is a PCI device but DPDK was started without PCI for a virtual "
                 "device: restart vswitchd (a PCI port opened first enables PCI) or set "
                 "VSWITCH_DPDK_EAL",
                 name);
        return -1;
    }
    if (rte_eth_dev_get_port_by_name(name, &pid) != 0) {
        r = rte_dev_probe(devargs);
        if (r < 0 && r != -EEXIST) {
            snprintf(err, errlen, "dpdk: cannot probe device %s: %s", devargs, strerror(-r));
            return -1;
        }
        if (rte_eth_dev_get_port_by_name(name, &pid) != 0) {
            bool found = false;
            RTE_ETH_FOREACH_MATCHING_DEV(pid, devargs, &it) {
                found = true;
                rte_eth_iterator_cleanup(&it);
                break;
            }
            if (!found) {
                snprintf(err, errlen, "dpdk: device %s has no ethernet port", devargs);
                return -1;
            }
        }
    }
    d->port_id = pid;
    rte_eth_dev_get_name_by_port(pid, d->name);
    return 0;
}

static int dpdk_open(struct port *p, const struct conf_port *c, const struct port_env *env,
                     char *err, size_t errlen)
{
    struct dpdk_port *d = calloc(1, sizeof(*d));
    struct rte_eth_conf conf;
    struct rte_eth_dev_info info;
    char pool_name[RTE_MEMPOOL_NAMESIZE];
    static unsigned pool_seq;
    int socket, r;

    (void)env;
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pthread_spin_init(&d->tx_lock, PTHREAD_PROCESS_PRIVATE);
    pthread_mutex_lock(&eal_lock);
    r = eal_started ? 0 : dpdk_eal_start(c->devargs, err, errlen);
    pthread_mutex_unlock(&eal_lock);
    if (r < 0)
        goto fail;
    if (dpdk_attach(d, c->devargs, err, errlen) < 0)
        goto fail;
    if ((r = rte_eth_dev_info_get(d->port_id, &info)) != 0) {
        snprintf(err, errlen, "dpdk %s: no device info: %s", d->name, strerror(-r));
        goto fail;
    }
    d->dev = info.device;
    socket = rte_eth_dev_socket_id(d->port_id);
    if (socket < 0)
        socket = (int)SOCKET_ID_ANY;
    snprintf(pool_name, sizeof pool_name, "vs%u_%.20s", pool_seq++, c->name);
    d->pool = rte_pktmbuf_pool_create(pool_name, DPDK_POOL_MBUFS, 0, 0,
                                      RTE_MBUF_DEFAULT_BUF_SIZE, socket);
    if (!d->pool) {
        snprintf(err, errlen, "dpdk %s: cannot create an mbuf pool: %s", d->name,
                 rte_strerror(rte_errno));
        goto fail;
    }
    memset(&conf, 0, sizeof conf);
    d->multi_seg_tx = info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
    if (d->multi_seg_tx)
        conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
    if ((r = rte_eth_dev_configure(d->port_id, 1, 1, &conf)) != 0) {
        snprintf(err, errlen, "dpdk %s: cannot configure: %s", d->name, strerror(-r));
        goto fail;
    }
    if (c->mtu && (r = rte_eth_dev_set_mtu(d->port_id, (uint16_t)c->mtu)) != 0)
        log_warn("dpdk %s: cannot set MTU %u: %s", d->name, c->mtu, strerror(-r));
    if ((r = rte_eth_rx_queue_setup(d->port_id, 0, DPDK_RING_SIZE, (unsigned)socket, NULL,
                                    d->pool)) != 0 ||
        (r = rte_eth_tx_queue_setup(d->port_id, 0, DPDK_RING_SIZE, (unsigned)socket,
                                    NULL)) != 0) {
        snprintf(err, errlen, "dpdk %s: cannot set up its queues: %s", d->name,
                 strerror(-r));
        goto fail;
    }
    if ((r = rte_eth_dev_start(d->port_id)) != 0) {
        snprintf(err, errlen, "dpdk %s: cannot start: %s", d->name, strerror(-r));
        goto fail;
    }
    d->started = true;
    /* a switch port takes every destination */
    if (rte_eth_promiscuous_enable(d->port_id) != 0)
        log_warn("dpdk %s: cannot enable promiscuous mode", d->name);
    log_info("dpdk %s: port %u started (driver %s)", d->name, d->port_id, info.driver_name);

    p->priv = d;
    p->n_rxq = 1;
    __atomic_store_n(&p->rxq_ready[0], true, __ATOMIC_RELEASE);
    __atomic_store_n(&p->tx_ready, true, __ATOMIC_RELEASE);
    return 0;
fail:
    dpdk_port_free(d);
    return -1;
}

static void dpdk_close(struct port *p)
{
    dpdk_port_free(p->priv);
    p->priv = NULL;
    p->n_rxq = 0;
}

static int dpdk_rx_burst(struct port *p, unsigned q, struct pkt *pkts, int max)
{
    struct dpdk_port *d = p->priv;
    struct rte_mbuf *mb[PKT_BATCH];
    struct rte_mbuf *bad[PKT_BATCH];
    unsigned n_bad = 0;
    uint64_t bytes = 0;
    uint16_t got;
    int n = 0;

    (void)q;
    if (max > PKT_BATCH)
        max = PKT_BATCH;
    got = rte_eth_rx_burst(d->port_id, 0, mb, (uint16_t)max);
    d->n_held = 0;
    for (uint16_t i = 0; i < got; i++) {
        enum drop_reason why = dpdk_mbuf_to_pkt(mb[i], &pkts[n]);

        if (why != DROP__COUNT) {
            port_count_drop(p, why, 1);
            bad[n_bad++] = mb[i];
            continue;
        }
        d->held[d->n_held++] = mb[i];
        bytes += pkts[n].len;
        n++;
    }
    if (n_bad)
        rte_pktmbuf_free_bulk(bad, n_bad);
    if (n)
        port_count_rx(p, (uint64_t)n, bytes);
    return n;
}

static void dpdk_rx_done(struct port *p, unsigned q, struct pkt *pkts, int n)
{
    struct dpdk_port *d = p->priv;

    (void)q;
    (void)pkts;
    (void)n;
    if (d->n_held)
        rte_pktmbuf_free_bulk(d->held, d->n_held);
    d->n_held = 0;
}

static void dpdk_tx_frames(struct port *p, struct pkt *const *pkts, const uint16_t *tcis,
                          int n)
{
    struct dpdk_port *d = p->priv;
    uint64_t bytes = 0;
    uint16_t sent = 0;

    pthread_spin_lock(&d->tx_lock);
    guest_guard.held = &d->tx_lock;
    /* left over by a guest fault in the middle of an earlier batch */
    if (d->n_burst)
        rte_pktmbuf_free_bulk(d->burst, d->n_burst);
    d->n_burst = 0;
    rte_pktmbuf_free(d->filling);
    d->filling = NULL;

    for (int i = 0; i < n; i++) {
        struct iovec iov[PKT_IOV_MAX];
        enum drop_reason why = uplink_tx_prepare(pkts[i]);
        uint8_t tag[4];
        int niov;

        if (why != DROP__COUNT) {
            port_count_drop(p, why, 1);
            continue;
        }
        niov = pkt_gather(pkts[i], tcis[i], tag, iov);
        why = dpdk_mbuf_from_iov(d->pool, iov, niov, d->multi_seg_tx, &d->filling);
        if (why != DROP__COUNT) {
            port_count_drop(p, why, 1);
            continue;
        }
        d->burst[d->n_burst++] = d->filling;
        d->filling = NULL;
    }
    if (d->n_burst) {
        for (int tries = 0; sent < d->n_burst && tries < 4; tries++)
            sent += rte_eth_tx_burst(d->port_id, 0, d->burst + sent,
                                     (uint16_t)(d->n_burst - sent));
        for (unsigned i = 0; i < sent; i++)
            bytes += d->burst[i]->pkt_len;
        if (sent < d->n_burst) {
            port_count_drop(p, DROP_NO_BUFFER, d->n_burst - sent);
            rte_pktmbuf_free_bulk(d->burst + sent, d->n_burst - sent);
        }
        d->n_burst = 0;
    }
    guest_guard.held = NULL;
    pthread_spin_unlock(&d->tx_lock);
    if (sent)
        port_count_tx(p, sent, bytes);
}

static int dpdk_wait_fd(struct port *p, unsigned q, bool *is_eventfd)
{
    (void)p;
    (void)q;
    *is_eventfd = false;
    return -1; /* polled: the PMD naps instead of sleeping */
}

/* ip=, else the address of the kernel interface behind a net_tap or
 * net_af_packet device (iface=NAME). */
static int dpdk_uplink_addr(struct port *p, uint32_t *addr_be, uint8_t *prefix_len)
{
    const char *iface = strstr(p->conf.devargs, "iface=");
    char name[CONF_IFNAME_MAX];

    if (uplink_addr_from_conf(&p->conf, addr_be, prefix_len) == 0)
        return 0;
    if (!iface)
        return -1;
    iface += strlen("iface=");
    snprintf(name, sizeof name, "%.*s", (int)strcspn(iface, ","), iface);
    return uplink_addr_of_ifname(name, addr_be, prefix_len);
}

static json_t *dpdk_status(struct port *p)
{
    struct dpdk_port *d = p->priv;
    json_t *j = json_object();
    struct rte_eth_link link;
    struct rte_ether_addr mac;
    struct rte_eth_dev_info info;
    struct rte_eth_stats st;
    char buf[32];

    json_object_set_new(j, "devargs", json_string(p->conf.devargs));
    if (!d) {
        json_object_set_new(j, "link", json_string("down"));
        return j;
    }
    json_object_set_new(j, "dpdk_port", json_integer(d->port_id));
    json_object_set_new(j, "device", json_string(d->name));
    if (rte_eth_dev_info_get(d->port_id, &info) == 0)
        json_object_set_new(j, "driver", json_string(info.driver_name));
    if (rte_eth_link_get_nowait(d->port_id, &link) == 0) {
        json_object_set_new(j, "link", json_string(link.link_status ? "up" : "down"));
        json_object_set_new(j, "speed_mbps", json_integer(link.link_speed));
    }
    if (rte_eth_macaddr_get(d->port_id, &mac) == 0) {
        rte_ether_format_addr(buf, sizeof buf, &mac);
        json_object_set_new(j, "mac", json_string(buf));
    }
    if (rte_eth_stats_get(d->port_id, &st) == 0) {
        json_object_set_new(j, "dpdk_rx_missed", json_integer((json_int_t)st.imissed));
        json_object_set_new(j, "dpdk_rx_errors", json_integer((json_int_t)st.ierrors));
        json_object_set_new(j, "dpdk_rx_nombuf", json_integer((json_int_t)st.rx_nombuf));
        json_object_set_new(j, "dpdk_tx_errors", json_integer((json_int_t)st.oerrors));
    }
    return j;
}

static bool dpdk_same_options(const struct conf_port *a, const struct conf_port *b)
{
    return strcmp(a->devargs, b->devargs) == 0 && a->mtu == b->mtu;
}

/* Super-frames are cut into segments first: the wire takes MTU-sized frames. */
static void dpdk_tx_burst(struct port *p, struct pkt *const *pkts, const uint16_t *tcis,
                           int n)
{
    gso_tx_burst(p, pkts, tcis, n, NULL, dpdk_tx_frames);
}

const struct port_ops port_dpdk_ops = {
    .type = "dpdk",
    .open = dpdk_open,
    .close = dpdk_close,
    .same_options = dpdk_same_options,
    .rx_burst = dpdk_rx_burst,
    .rx_done = dpdk_rx_done,
    .tx_burst = dpdk_tx_burst,
    .wait_fd = dpdk_wait_fd,
    .uplink_addr = dpdk_uplink_addr,
    .status = dpdk_status,
};

enum drop_reason dpdk_mbuf_to_pkt(const struct rte_mbuf *m, struct pkt *p)
{
    struct vring_buf bufs[PKT_SEGS_MAX];
    unsigned nb = 0;
    uint16_t tci;

    for (const struct rte_mbuf *s = m; s; s = s->next) {
        if (!s->data_len)
            continue;
        if (nb == PKT_SEGS_MAX)
            return DROP_OVERSIZED;
        bufs[nb].addr = rte_pktmbuf_mtod(s, uint8_t *);
        bufs[nb].len = s->data_len;
        nb++;
    }
    if (!pkt_from_bufs(p, bufs, nb, m->pkt_len, &tci))
        return m->pkt_len < ETH_HLEN ? DROP_RUNT : DROP_OVERSIZED;
    memset(&p->vnet, 0, sizeof p->vnet);
    p->vlan = tci;
    p->cookie = 0;
    return DROP__COUNT;
}

enum drop_reason dpdk_mbuf_from_iov(struct rte_mempool *mp, const struct iovec *iov, int n,
                                    bool multi_seg, struct rte_mbuf **out)
{
    size_t len = uplink_iov_len(iov, n);
    struct rte_mbuf *head, *seg;
    size_t off = 0;
    int i = 0;

    if (len > UINT16_MAX * (size_t)(multi_seg ? RTE_MBUF_MAX_NB_SEGS : 1))
        return DROP_MTU;
    head = rte_pktmbuf_alloc(mp);
    if (!head)
        return DROP_NO_BUFFER;
    if (!multi_seg && len > rte_pktmbuf_tailroom(head)) {
        rte_pktmbuf_free(head);
        return DROP_MTU;
    }
    *out = head;
    seg = head;
    while (i < n) {
        uint16_t room = rte_pktmbuf_tailroom(seg);
        size_t chunk = iov[i].iov_len - off;

        if (!room) {
            struct rte_mbuf *next = rte_pktmbuf_alloc(mp);

            if (!next) {
                rte_pktmbuf_free(head);
                *out = NULL;
                return DROP_NO_BUFFER;
            }
            seg->next = next;
            head->nb_segs++;
            seg = next;
            continue;
        }
        if (chunk > room)
            chunk = room;
        memcpy(rte_pktmbuf_mtod_offset(seg, uint8_t *, seg->data_len),
               (const uint8_t *)iov[i].iov_base + off, chunk);
        seg->data_len = (uint16_t)(seg->data_len + chunk);
        head->pkt_len += (uint32_t)chunk;
        off += chunk;
        if (off == iov[i].iov_len) {
            off = 0;
            i++;
        }
    }
    return DROP__COUNT;
}
