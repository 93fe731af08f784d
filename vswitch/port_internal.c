/* The internal port type: a host-side interface that stands for the bridge
 * (a tap named after the port), optionally with an address (ip=CIDR) set
 * through rtnetlink (libnl-route-3). */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <netlink/netlink.h>
#include <netlink/cache.h>
#include <netlink/route/addr.h>

#include "log.h"
#include "port_tap.h"
#include "uplink.h"

static int set_address(const char *ifname, const char *cidr, char *err, size_t errlen)
{
    struct nl_sock *sk = NULL;
    struct rtnl_addr *addr = NULL;
    struct nl_addr *local = NULL;
    unsigned idx = if_nametoindex(ifname);
    int r = -1, e;

    if (!idx) {
        snprintf(err, errlen, "interface %s vanished", ifname);
        return -1;
    }
    sk = nl_socket_alloc();
    if (!sk || nl_connect(sk, NETLINK_ROUTE) < 0) {
        snprintf(err, errlen, "cannot open a netlink socket");
        goto out;
    }
    if ((e = nl_addr_parse(cidr, AF_UNSPEC, &local)) < 0) {
        snprintf(err, errlen, "bad address %s: %s", cidr, nl_geterror(e));
        goto out;
    }
    addr = rtnl_addr_alloc();
    if (!addr)
        goto out;
    rtnl_addr_set_ifindex(addr, (int)idx);
    rtnl_addr_set_local(addr, local);
    if ((e = rtnl_addr_add(sk, addr, NLM_F_REPLACE)) < 0) {
        snprintf(err, errlen, "cannot add %s to %s: %s", cidr, ifname, nl_geterror(e));
        goto out;
    }
    r = 0;
out:
    if (addr)
        rtnl_addr_put(addr);
    if (local)
        nl_addr_put(local);
    if (sk)
        nl_socket_free(sk);
    return r;
}

int port_uplink_addr_of(struct port *p, uint32_t *addr_be, uint8_t *prefix_len)
{
    if (uplink_addr_from_conf(&p->conf, addr_be, prefix_len) == 0)
        return 0;
    /* learned: the interface's first IPv4 address in our namespace */
    return uplink_addr_of_ifname(port_tap_ifname(p), addr_be, prefix_len);
}

static int internal_open(struct port *p, const struct conf_port *c,
                         const struct port_env *env, char *err, size_t errlen)
{
    (void)env;
    if (port_tap_open(p, c, c->name, err, errlen) < 0)
        return -1;
    if (c->ip[0] && set_address(port_tap_ifname(p), c->ip, err, errlen) < 0) {
        port_tap_close(p);
        return -1;
    }
    return 0;
}

static bool internal_same_options(const struct conf_port *a, const struct conf_port *b)
{
    return strcmp(a->ip, b->ip) == 0 && a->mtu == b->mtu && a->has_mac == b->has_mac &&
           memcmp(a->mac, b->mac, 6) == 0;
}

static json_t *internal_status(struct port *p)
{
    json_t *j = port_tap_status(p);

    if (p->conf.ip[0])
        json_object_set_new(j, "ip", json_string(p->conf.ip));
    return j;
}

const struct port_ops port_internal_ops = {
    .type = "internal",
    .open = internal_open,
    .close = port_tap_close,
    .same_options = internal_same_options,
    .rx_burst = port_tap_rx_burst,
    .tx_burst = port_tap_tx_burst,
    .wait_fd = port_tap_wait_fd,
    .rx_pending = port_tap_rx_pending,
    .uplink_addr = port_uplink_addr_of,
    .status = internal_status,
};
