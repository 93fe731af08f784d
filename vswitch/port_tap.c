/* The tap port type: a kernel tap device with IFF_VNET_HDR, so checksum and
 * TSO requests cross between guests and the host stack intact. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <net/if_arp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "port_tap.h"

/* Largest frame a tap with TSO hands us: 64 KiB plus headers. */
#define TAP_FRAME_MAX (65536 + 256)

struct tap {
    int fd;
    char ifname[IFNAMSIZ];
    uint8_t *bufs[PKT_BATCH];
    bool tx_error_logged;
};

static int if_ioctl(unsigned long req, struct ifreq *ifr)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int r;

    if (s < 0)
        return -1;
    r = ioctl(s, req, ifr);
    if (r < 0) {
        int e = errno;
        close(s);
        errno = e;
        return -1;
    }
    close(s);
    return 0;
}

static void tap_free(struct tap *t)
{
    if (!t)
        return;
    if (t->fd >= 0)
        close(t->fd);
    for (int i = 0; i < PKT_BATCH; i++)
        free(t->bufs[i]);
    free(t);
}

int port_tap_open(struct port *p, const struct conf_port *c, const char *ifname,
                  char *err, size_t errlen)
{
    struct tap *t = calloc(1, sizeof(*t));
    struct ifreq ifr;
    int hdrsz = VIRTIO_NET_HDR_LEN_V1;
    unsigned offloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;

    if (!t)
        goto nomem;
    t->fd = -1;
    for (int i = 0; i < PKT_BATCH; i++)
        if (!(t->bufs[i] = malloc(TAP_FRAME_MAX)))
            goto nomem;
    snprintf(t->ifname, sizeof(t->ifname), "%s", ifname);

    t->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (t->fd < 0) {
        snprintf(err, errlen, "cannot open /dev/net/tun: %s", strerror(errno));
        goto fail;
    }
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", t->ifname);
    if (ioctl(t->fd, TUNSETIFF, &ifr) < 0) {
        snprintf(err, errlen, "cannot create tap %s: %s", t->ifname, strerror(errno));
        goto fail;
    }
    snprintf(t->ifname, sizeof(t->ifname), "%s", ifr.ifr_name);
    if (ioctl(t->fd, TUNSETVNETHDRSZ, &hdrsz) < 0 ||
        ioctl(t->fd, TUNSETOFFLOAD, offloads) < 0) {
        snprintf(err, errlen, "tap %s: cannot enable offloads: %s", t->ifname,
                 strerror(errno));
        goto fail;
    }
    if (c->mtu) {
        memset(&ifr, 0, sizeof(ifr));
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", t->ifname);
        ifr.ifr_mtu = (int)c->mtu;
        if (if_ioctl(SIOCSIFMTU, &ifr) < 0) {
            snprintf(err, errlen, "tap %s: cannot set MTU %u: %s", t->ifname, c->mtu,
                     strerror(errno));
            goto fail;
        }
    }
    if (c->has_mac) {
        memset(&ifr, 0, sizeof(ifr));
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", t->ifname);
        ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
        memcpy(ifr.ifr_hwaddr.sa_data, c->mac, 6);
        if (if_ioctl(SIOCSIFHWADDR, &ifr) < 0) {
            snprintf(err, errlen, "tap %s: cannot set MAC: %s", t->ifname,
                     strerror(errno));
            goto fail;
        }
    }
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", t->ifname);
    if (if_ioctl(SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP;
        if (if_ioctl(SIOCSIFFLAGS, &ifr) < 0)
            log_warn("tap %s: cannot bring the link up: %s", t->ifname, strerror(errno));
    }
    p->priv = t;
    p->n_rxq = 1;
    __atomic_store_n(&p->rxq_ready[0], true, __ATOMIC_RELEASE);
    __atomic_store_n(&p->tx_ready, true, __ATOMIC_RELEASE);
    return 0;
nomem:
    snprintf(err, errlen, "out of memory");
fail:
    tap_free(t);
    return -1;
}

void port_tap_close(struct port *p)
{
    tap_free(p->priv);
    p->priv = NULL;
    p->n_rxq = 0;
}

const char *port_tap_ifname(const struct port *p)
{
    const struct tap *t = p->priv;
    return t ? t->ifname : "";
}

int port_tap_rx_burst(struct port *p, unsigned q, struct pkt *pkts, int max)
{
    struct tap *t = p->priv;
    uint64_t bytes = 0;
    int n = 0;

    (void)q;
    for (int i = 0; i < max; i++) {
        struct pkt *pk = &pkts[n];
        struct vring_buf b;
        uint16_t tci;
        ssize_t r = read(t->fd, t->bufs[n], TAP_FRAME_MAX);

        if (r < 0) {
            if (errno != EAGAIN && errno != EINTR)
                port_count_drop(p, DROP_RX_ERROR, 1);
            break;
        }
        if (r < VIRTIO_NET_HDR_LEN_V1) {
            port_count_drop(p, DROP_VNET_HDR, 1);
            continue;
        }
        memcpy(&pk->vnet, t->bufs[n], VIRTIO_NET_HDR_LEN_V1);
        b.addr = t->bufs[n] + VIRTIO_NET_HDR_LEN_V1;
        b.len = (uint32_t)r - VIRTIO_NET_HDR_LEN_V1;
        if (!pkt_from_bufs(pk, &b, 1, b.len, &tci)) {
            port_count_drop(p, DROP_RUNT, 1);
            continue;
        }
        if (!pkt_vnet_untag(pk, tci)) {
            port_count_drop(p, DROP_BAD_OFFLOAD, 1);
            continue;
        }
        pk->vlan = tci;
        bytes += pk->len;
        n++;
    }
    if (n)
        port_count_rx(p, n, bytes);
    return n;
}

void port_tap_tx_burst(struct port *p, struct pkt *const *pkts, const uint16_t *tcis,
                       int n)
{
    struct tap *t = p->priv;
    uint64_t bytes = 0;
    int sent = 0;

    for (int i = 0; i < n; i++) {
        struct iovec iov[PKT_IOV_MAX + 1];
        struct virtio_net_hdr h;
        uint8_t tag[4];
        int niov;

        pkt_vnet_for_egress(pkts[i], tcis[i], &h);
        iov[0].iov_base = &h;
        iov[0].iov_len = VIRTIO_NET_HDR_LEN_V1;
        niov = 1 + pkt_gather(pkts[i], tcis[i], tag, iov + 1);
        if (writev(t->fd, iov, niov) < 0) {
            if (errno == EAGAIN || errno == EIO) {
                /* queue full, or the interface is down (EIO) */
                port_count_drop(p, errno == EIO ? DROP_LINK_DOWN : DROP_NO_BUFFER, 1);
                continue;
            }
            port_count_drop(p, DROP_TX_ERROR, 1);
            if (!t->tx_error_logged) /* once per port: the counter tells the rest */
                log_warn("tap %s: transmit failed: %s", t->ifname, strerror(errno));
            t->tx_error_logged = true;
            continue;
        }
        sent++;
        bytes += pkts[i]->len + (tcis[i] ? VLAN_HLEN : 0);
    }
    if (sent)
        port_count_tx(p, sent, bytes);
}

int port_tap_wait_fd(struct port *p, unsigned q, bool *is_eventfd)
{
    struct tap *t = p->priv;

    (void)q;
    *is_eventfd = false;
    return t ? t->fd : -1;
}

bool port_tap_rx_pending(struct port *p, unsigned q)
{
    struct tap *t = p->priv;
    struct pollfd pfd = {.fd = t->fd, .events = POLLIN};

    (void)q;
    return poll(&pfd, 1, 0) > 0;
}

json_t *port_tap_status(struct port *p)
{
    struct tap *t = p->priv;
    json_t *j = json_object();

    json_object_set_new(j, "ifname", json_string(t ? t->ifname : ""));
    json_object_set_new(j, "link", json_string(t ? "up" : "down"));
    return j;
}

static int tap_open(struct port *p, const struct conf_port *c, const struct port_env *env,
                    char *err, size_t errlen)
{
    (void)env;
    return port_tap_open(p, c, c->ifname[0] ? c->ifname : c->name, err, errlen);
}

static bool tap_same_options(const struct conf_port *a, const struct conf_port *b)
{
    return strcmp(a->ifname, b->ifname) == 0 && a->mtu == b->mtu &&
           a->has_mac == b->has_mac && memcmp(a->mac, b->mac, 6) == 0;
}

const struct port_ops port_tap_ops = {
    .type = "tap",
    .open = tap_open,
    .close = port_tap_close,
    .same_options = tap_same_options,
    .rx_burst = port_tap_rx_burst,
    .tx_burst = port_tap_tx_burst,
    .wait_fd = port_tap_wait_fd,
    .rx_pending = port_tap_rx_pending,
    .uplink_addr = port_uplink_addr_of,
    .status = port_tap_status,
};
