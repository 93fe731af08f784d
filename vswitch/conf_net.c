/* Networks in the configuration model: add-net/set-net/del-net, port
 * forwards, their checks and their JSON form. Like conf.c, every edit works on
 * a copy and stores it only when all of it has been checked. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

#define LEASE_MIN 60
#define LEASE_MAX 604800
#define CT_MAX_LIMIT 4000000
#define TIMEOUT_MAX 864000 /* ten days */

const char *const conf_ct_timeout_names[CT_TO__COUNT] = {
    [CT_TO_TCP_SYN_SENT] = "tcp_syn_sent",     [CT_TO_TCP_SYN_RECV] = "tcp_syn_recv",
    [CT_TO_TCP_ESTABLISHED] = "tcp_established", [CT_TO_TCP_FIN_WAIT] = "tcp_fin_wait",
    [CT_TO_TCP_CLOSE_WAIT] = "tcp_close_wait", [CT_TO_TCP_LAST_ACK] = "tcp_last_ack",
    [CT_TO_TCP_TIME_WAIT] = "tcp_time_wait",   [CT_TO_TCP_CLOSE] = "tcp_close",
    [CT_TO_UDP] = "udp",                       [CT_TO_UDP_STREAM] = "udp_stream",
    [CT_TO_ICMP] = "icmp",
};

/* net.netfilter.nf_conntrack_*_timeout* defaults of Linux 6.1 */
const uint32_t conf_ct_timeout_defaults[CT_TO__COUNT] = {
    [CT_TO_TCP_SYN_SENT] = 120,   [CT_TO_TCP_SYN_RECV] = 60,
    [CT_TO_TCP_ESTABLISHED] = 432000, [CT_TO_TCP_FIN_WAIT] = 120,
    [CT_TO_TCP_CLOSE_WAIT] = 60,  [CT_TO_TCP_LAST_ACK] = 30,
    [CT_TO_TCP_TIME_WAIT] = 120,  [CT_TO_TCP_CLOSE] = 10,
    [CT_TO_UDP] = 30,             [CT_TO_UDP_STREAM] = 120,
    [CT_TO_ICMP] = 30,
};


static bool parse_u32(const char *s, unsigned long min, unsigned long max, uint32_t *out)
{
    unsigned long v;

    if (max > UINT32_MAX || !conf_parse_uint(s, min, max, &v))
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool parse_ip4(const char *s, uint32_t *out)
{
    struct in_addr a;
    if (inet_pton(AF_INET, s, &a) != 1)
        return false;
    *out = ntohl(a.s_addr);
    return true;
}

static void fmt_ip4(uint32_t ip, char buf[16])
{
    struct in_addr a = {.s_addr = htonl(ip)};
    inet_ntop(AF_INET, &a, buf, 16);
}

static bool parse_mac6(const char *s, uint8_t mac[6])
{
    unsigned b[6];
    char tail;
    if (strlen(s) != 17 || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2],
                                  &b[3], &b[4], &b[5], &tail) != 6)
        return false;
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)b[i];
    return !(mac[0] & 1);
}

struct conf_net *conf_find_net(const struct conf *c, const char *name)
{
    for (size_t i = 0; i < c->n_nets; i++)
        if (!strcmp(c->nets[i].name, name))
            return &c->nets[i];
    return NULL;
}

const struct conf_net *conf_net_using_port(const struct conf *c, const char *name)
{
    for (size_t i = 0; i < c->n_nets; i++)
        if (c->nets[i].nat[0] && !strcmp(c->nets[i].nat, name))
            return &c->nets[i];
    return NULL;
}

static bool in_subnet(const struct conf_net *n, uint32_t ip)
{
    return (ip & conf_mask(n->plen)) == n->subnet;
}

static bool is_host(const struct conf_net *n, uint32_t ip)
{
    uint32_t m = conf_mask(n->plen);
    return in_subnet(n, ip) && (ip & ~m) != 0 && (ip & ~m) != ~m;
}

/* "MAC=IP,MAC=IP" */
static int parse_reserve(struct conf_net *n, const char *v, char *err, size_t errlen)
{
    char item[64], *mac, *ip;
    const char *p = v;
    int r;

    n->n_reserve = 0;
    while ((r = conf_next_pair(&p, '=', item, sizeof item, &mac, &ip)) > 0) {
        struct conf_reservation res;
        if (!parse_mac6(mac, res.mac) || !parse_ip4(ip, &res.ip))
            goto bad;
        if (n->n_reserve == CONF_RESERVE_MAX)
            return conf_fail(err, errlen, -EINVAL, "more than %d reservations", CONF_RESERVE_MAX);
        n->reserve[n->n_reserve++] = res;
    }
    if (r < 0)
        goto bad;
    return 0;
bad:
    return conf_fail(err, errlen, -EINVAL,
                "reserve=%.80s is not a list of MAC=IP: use e.g. "
                "reserve=52:54:00:00:00:01=10.0.0.10,52:54:00:00:00:02=10.0.0.11",
                v);
}

/* Checks of one network on its own. */
static int net_check(const struct conf_net *n, char *err, size_t errlen)
{
    char a[16], b[16];
    if (!n->plen)
        return conf_fail(err, errlen, -EINVAL, "network %s needs subnet=CIDR, e.g. 10.0.0.0/24",
                    n->name);
    if (!n->gateway)
        return conf_fail(err, errlen, -EINVAL,
                    "network %s needs gateway=IP, the switch's address in the subnet",
                    n->name);
    fmt_ip4(n->subnet, a);
    if (!is_host(n, n->gateway)) {
        fmt_ip4(n->gateway, b);
        return conf_fail(err, errlen, -EINVAL,
                    "gateway %s is not a host address of subnet %s/%u of network %s", b, a,
                    n->plen, n->name);
    }
    if (n->dhcp) {
        if (!is_host(n, n->dhcp_first) || !is_host(n, n->dhcp_last) ||
            n->dhcp_first > n->dhcp_last)
            return conf_fail(err, errlen, -EINVAL,
                        "dhcp= range of network %s must be FIRST-LAST, host addresses of "
                        "%s/%u, FIRST not above LAST",
                        n->name, a, n->plen);
    }
    for (size_t i = 0; i < n->n_reserve; i++) {
        if (!is_host(n, n->reserve[i].ip) || n->reserve[i].ip == n->gateway) {
            fmt_ip4(n->reserve[i].ip, b);
            return conf_fail(err, errlen, -EINVAL,
                        "reserved address %s is not a free host address of %s/%u", b, a,
                        n->plen);
        }
        for (size_t k = 0; k < i; k++)
            if (!memcmp(n->reserve[i].mac, n->reserve[k].mac, 6) ||
                n->reserve[i].ip == n->reserve[k].ip)
                return conf_fail(err, errlen, -EINVAL,
                            "reserve= of network %s names a MAC or an address twice",
                            n->name);
    }
    for (size_t i = 0; i < n->n_forwards; i++) {
        if (!is_host(n, n->forwards[i].to_ip)) {
            fmt_ip4(n->forwards[i].to_ip, b);
            return conf_fail(err, errlen, -EINVAL,
                        "forward target %s is not a host address of network %s (%s/%u)", b,
                        n->name, a, n->plen);
        }
    }
    if (n->n_forwards && !n->nat[0])
        return conf_fail(err, errlen, -EINVAL,
                    "port forwards of network %s need nat=PORT, the uplink they arrive on",
                    n->name);
    return 0;
}

static int key_is(const char *opt, const char *key, const char **val)
{
    size_t k = strlen(key);
    if (strncmp(opt, key, k) || opt[k] != '=')
        return 0;
    *val = opt + k + 1;
    return 1;
}

static int net_apply_opts(struct conf_net *n, bool adding, const char *const *opts,
                          size_t nopts, char *err, size_t errlen)
{
    for (size_t i = 0; i < nopts; i++) {
        const char *o = opts[i], *v;
        if (!strchr(o, '='))
            return conf_fail(err, errlen, -EINVAL, "\"%.40s\" is not KEY=VALUE", o);
        for (size_t k = 0; k < i; k++) {
            size_t kl = (size_t)(strchr(o, '=') - o);
            if (!strncmp(opts[k], o, kl + 1))
                return conf_fail(err, errlen, -EINVAL, "%.*s= is given twice", (int)kl, o);
        }
        if (key_is(o, "bridge", &v)) {
            if (!adding)
                return conf_fail(err, errlen, -EINVAL,
                            "a network cannot move to another bridge: del-net and add-net");
            if (conf_check_name("bridge", v, err, errlen))
                return -EINVAL;
            snprintf(n->bridge, sizeof n->bridge, "%s", v);
        } else if (key_is(o, "vlan", &v)) {
            uint32_t x = 0;
            if (*v && !parse_u32(v, 0, 4094, &x))
                return conf_fail(err, errlen, -EINVAL,
                            "vlan=%.40s is not a VLAN: use 1-4094, or 0 for untagged", v);
            n->vlan = (uint16_t)x;
        } else if (key_is(o, "subnet", &v)) {
            char ip[32];
            const char *sl = strchr(v, '/');
            uint32_t a, plen;
            if (!sl || (size_t)(sl - v) >= sizeof ip)
                goto bad_subnet;
            memcpy(ip, v, (size_t)(sl - v));
            ip[sl - v] = '\0';
            if (!parse_ip4(ip, &a) || !parse_u32(sl + 1, 8, 30, &plen))
                goto bad_subnet;
            n->plen = (uint8_t)plen;
            n->subnet = a & conf_mask(n->plen);
            continue;
        bad_subnet:
            return conf_fail(err, errlen, -EINVAL,
                        "subnet=%.40s is not an IPv4 subnet: use e.g. 10.0.0.0/24 (prefix "
                        "8-30)",
                        v);
        } else if (key_is(o, "gateway", &v)) {
            if (!parse_ip4(v, &n->gateway))
                return conf_fail(err, errlen, -EINVAL, "gateway=%.40s is not an IPv4 address", v);
        } else if (key_is(o, "dhcp", &v)) {
            char a[32];
            const char *dash = strchr(v, '-');
            n->dhcp = false;
            if (!*v)
                continue;
            if (!dash || (size_t)(dash - v) >= sizeof a)
                goto bad_dhcp;
            memcpy(a, v, (size_t)(dash - v));
            a[dash - v] = '\0';
            if (!parse_ip4(a, &n->dhcp_first) || !parse_ip4(dash + 1, &n->dhcp_last))
                goto bad_dhcp;
            n->dhcp = true;
            continue;
        bad_dhcp:
            return conf_fail(err, errlen, -EINVAL,
                        "dhcp=%.40s is not an address range: use FIRST-LAST, e.g. "
                        "dhcp=10.0.0.100-10.0.0.199",
                        v);
        } else if (key_is(o, "dns", &v)) {
            n->dns = 0;
            if (*v && !parse_ip4(v, &n->dns))
                return conf_fail(err, errlen, -EINVAL, "dns=%.40s is not an IPv4 address", v);
        } else if (key_is(o, "lease", &v)) {
            n->lease = CONF_LEASE_DEFAULT;
            if (*v && !parse_u32(v, LEASE_MIN, LEASE_MAX, &n->lease))
                return conf_fail(err, errlen, -EINVAL, "lease=%.40s is not valid: use seconds in %d-%d",
                            v, LEASE_MIN, LEASE_MAX);
        } else if (key_is(o, "nat", &v)) {
            if (*v && conf_check_name("port", v, err, errlen))
                return -EINVAL;
            snprintf(n->nat, sizeof n->nat, "%s", v);
        } else if (key_is(o, "reserve", &v)) {
            int r = parse_reserve(n, v, err, errlen);
            if (r)
                return r;
        } else if (key_is(o, "ct_max", &v)) {
            n->ct_max = CONF_CT_MAX_DEFAULT;
            if (*v && !parse_u32(v, 1, CT_MAX_LIMIT, &n->ct_max))
                return conf_fail(err, errlen, -EINVAL, "ct_max=%.40s is not valid: use 1-%d", v,
                            CT_MAX_LIMIT);
        } else if (!strncmp(o, "ct_timeout_", 11)) {
            int t = -1;
            for (int k = 0; k < CT_TO__COUNT; k++)
                if (key_is(o + 11, conf_ct_timeout_names[k], &v))
                    t = k;
            if (t < 0)
                return conf_fail(err, errlen, -EINVAL,
                            "unknown timeout \"%.40s\": use ct_timeout_NAME with NAME one of "
                            "tcp_syn_sent tcp_syn_recv tcp_established tcp_fin_wait "
                            "tcp_close_wait tcp_last_ack tcp_time_wait tcp_close udp "
                            "udp_stream icmp",
                            o);
            n->ct_timeouts[t] = conf_ct_timeout_defaults[t];
            if (*v && !parse_u32(v, 1, TIMEOUT_MAX, &n->ct_timeouts[t]))
                return conf_fail(err, errlen, -EINVAL, "%.60s: use seconds in 1-%d", o,
                            TIMEOUT_MAX);
        } else {
            return conf_fail(err, errlen, -EINVAL,
                        "unknown network option \"%.*s\": networks take bridge= vlan= "
                        "subnet= gateway= dhcp= dns= lease= nat= reserve= ct_max= "
                        "ct_timeout_NAME=",
                        (int)(strchr(o, '=') - o > 40 ? 40 : strchr(o, '=') - o), o);
        }
    }
    return net_check(n, err, errlen);
}

int conf_add_net(struct conf *c, const char *name, const char *const *opts, size_t nopts,
                 char *err, size_t errlen)
{
    struct conf_net n;
    int r;
    if ((r = conf_check_name("network", name, err, errlen)))
        return r;
    if (conf_find_net(c, name))
        return conf_fail(err, errlen, -EEXIST, "network %s already exists", name);
    memset(&n, 0, sizeof n);
    snprintf(n.name, sizeof n.name, "%s", name);
    n.lease = CONF_LEASE_DEFAULT;
    n.ct_max = CONF_CT_MAX_DEFAULT;
    memcpy(n.ct_timeouts, conf_ct_timeout_defaults, sizeof n.ct_timeouts);
    if ((r = net_apply_opts(&n, true, opts, nopts, err, errlen)))
        return r;
    if (!n.bridge[0])
        return conf_fail(err, errlen, -EINVAL, "network %s needs bridge=BR", name);
    struct conf_net *nn = realloc(c->nets, (c->n_nets + 1) * sizeof *nn);
    if (!nn)
        return conf_fail(err, errlen, -ENOMEM, "out of memory");
    c->nets = nn;
    nn[c->n_nets++] = n;
    if ((r = conf_validate_nets(c, err, errlen))) {
        c->n_nets--;
        return r;
    }
    return 0;
}

int conf_set_net(struct conf *c, const char *name, const char *const *opts, size_t nopts,
                 char *err, size_t errlen)
{
    struct conf_net *n = conf_find_net(c, name);
    int r;
    if (!n)
        return conf_fail(err, errlen, -ENOENT, "network %.40s does not exist", name);
    if (!nopts)
        return conf_fail(err, errlen, -EINVAL, "nothing to set: give KEY=VALUE, e.g. dns=1.1.1.1");
    struct conf_net old = *n, q = *n;
    if ((r = net_apply_opts(&q, false, opts, nopts, err, errlen)))
        return r;
    *n = q;
    if ((r = conf_validate_nets(c, err, errlen))) {
        *n = old;
        return r;
    }
    return 0;
}

int conf_del_net(struct conf *c, const char *name, char *err, size_t errlen)
{
    struct conf_net *n = conf_find_net(c, name);
    if (!n)
        return conf_fail(err, errlen, -ENOENT, "network %.40s does not exist", name);
    size_t i = (size_t)(n - c->nets);
    memmove(n, n + 1, (c->n_nets - i - 1) * sizeof *n);
    c->n_nets--;
    return 0;
}

static int forward_key(const char *const *opts, size_t nopts, bool need_to, uint8_t *proto,
                       uint16_t *port, uint32_t *to_ip, uint16_t *to_port, char *err,
                       size_t errlen)
{
    const char *p = NULL, *po = NULL, *to = NULL, *v;
    for (size_t i = 0; i < nopts; i++) {
        if (key_is(opts[i], "proto", &v))
            p = v;
        else if (key_is(opts[i], "port", &v))
            po = v;
        else if (need_to && key_is(opts[i], "to", &v))
            to = v;
        else
            return conf_fail(err, errlen, -EINVAL,
                        "\"%.40s\": a forward takes proto=tcp|udp port=N%s", opts[i],
                        need_to ? " to=IP:PORT" : "");
    }
    if (!p || (strcmp(p, "tcp") && strcmp(p, "udp")))
        return conf_fail(err, errlen, -EINVAL, "a forward needs proto=tcp or proto=udp");
    *proto = strcmp(p, "tcp") ? IPPROTO_UDP : IPPROTO_TCP;
    uint32_t x;
    if (!po || !parse_u32(po, 1, 65535, &x))
        return conf_fail(err, errlen, -EINVAL, "a forward needs port=N (1-65535)");
    *port = (uint16_t)x;
    if (!need_to)
        return 0;
    char ip[32];
    const char *colon = to ? strchr(to, ':') : NULL;
    if (!colon || (size_t)(colon - to) >= sizeof ip)
        goto bad_to;
    memcpy(ip, to, (size_t)(colon - to));
    ip[colon - to] = '\0';
    if (!parse_ip4(ip, to_ip) || !parse_u32(colon + 1, 1, 65535, &x))
        goto bad_to;
    *to_port = (uint16_t)x;
    return 0;
bad_to:
    return conf_fail(err, errlen, -EINVAL, "a forward needs to=IP:PORT, e.g. to=10.0.0.5:80");
}

int conf_add_forward(struct conf *c, const char *net, const char *const *opts,
                     size_t nopts, char *err, size_t errlen)
{
    struct conf_net *n = conf_find_net(c, net);
    struct conf_forward f;
    int r;
    if (!n)
        return conf_fail(err, errlen, -ENOENT, "network %.40s does not exist", net);
    if ((r = forward_key(opts, nopts, true, &f.proto, &f.port, &f.to_ip, &f.to_port, err,
                         errlen)))
        return r;
    if (n->n_forwards == CONF_FORWARDS_MAX)
        return conf_fail(err, errlen, -EINVAL, "network %s has %d forwards, the most it can have",
                    net, CONF_FORWARDS_MAX);
    struct conf_net old = *n;
    n->forwards[n->n_forwards++] = f;
    if ((r = net_check(n, err, errlen)) || (r = conf_validate_nets(c, err, errlen))) {
        *n = old;
        return r;
    }
    return 0;
}

int conf_del_forward(struct conf *c, const char *net, const char *const *opts,
                     size_t nopts, char *err, size_t errlen)
{
    struct conf_net *n = conf_find_net(c, net);
    uint8_t proto;
    uint16_t port;
    int r;
    if (!n)
        return conf_fail(err, errlen, -ENOENT, "network %.40s does not exist", net);
    if ((r = forward_key(opts, nopts, false, &proto, &port, NULL, NULL, err, errlen)))
        return r;
    for (size_t i = 0; i < n->n_forwards; i++) {
        if (n->forwards[i].proto == proto && n->forwards[i].port == port) {
            memmove(&n->forwards[i], &n->forwards[i + 1],
                    (n->n_forwards - i - 1) * sizeof n->forwards[0]);
            n->n_forwards--;
            return 0;
        }
    }
    return conf_fail(err, errlen, -ENOENT, "network %s has no %s forward of port %u", net,
                proto == IPPROTO_TCP ? "tcp" : "udp", port);
}

int conf_validate_nets(const struct conf *c, char *err, size_t errlen)
{
    int r;
    for (size_t i = 0; i < c->n_nets; i++) {
        const struct conf_net *n = &c->nets[i];
        if ((r = conf_check_name("network", n->name, err, errlen)) ||
            (r = net_check(n, err, errlen)))
            return r;
        if (!conf_find_bridge(c, n->bridge))
            return conf_fail(err, errlen, -ENOENT, "bridge %s (of network %s) does not exist",
                        n->bridge, n->name);
        if (n->nat[0]) {
            const struct conf_port *p = conf_find_port(c, n->nat);
            if (!p)
                return conf_fail(err, errlen, -ENOENT,
                            "nat=%s: port %s does not exist (add the uplink port first)",
                            n->nat, n->nat);
            if (p->type == PORT_TYPE_VHOST_USER)
                return conf_fail(err, errlen, -EINVAL,
                            "nat=%s: a vhost-user port cannot be an uplink; use a tap "
                            "(or afxdp, dpdk) port",
                            n->nat);
        }
        for (size_t k = 0; k < i; k++) {
            const struct conf_net *o = &c->nets[k];
            uint8_t pl = n->plen < o->plen ? n->plen : o->plen;
            if (!strcmp(n->name, o->name))
                return conf_fail(err, errlen, -EEXIST, "network %s is listed twice", n->name);
            if (!strcmp(n->bridge, o->bridge) && n->vlan == o->vlan)
                return conf_fail(err, errlen, -EEXIST,
                            "VLAN %u of bridge %s already has network %s", n->vlan,
                            n->bridge, o->name);
            if ((n->subnet & conf_mask(pl)) == (o->subnet & conf_mask(pl)))
                return conf_fail(err, errlen, -EEXIST,
                            "the subnet of network %s overlaps network %s", n->name,
                            o->name);
            if (n->nat[0] && !strcmp(n->nat, o->nat))
                for (size_t a = 0; a < n->n_forwards; a++)
                    for (size_t b = 0; b < o->n_forwards; b++)
                        if (n->forwards[a].proto == o->forwards[b].proto &&
                            n->forwards[a].port == o->forwards[b].port)
                            return conf_fail(err, errlen, -EEXIST,
                                        "port %u of uplink %s is forwarded by networks %s "
                                        "and %s",
                                        n->forwards[a].port, n->nat, o->name, n->name);
        }
        for (size_t a = 0; a < n->n_forwards; a++)
            for (size_t b = 0; b < a; b++)
                if (n->forwards[a].proto == n->forwards[b].proto &&
                    n->forwards[a].port == n->forwards[b].port)
                    return conf_fail(err, errlen, -EEXIST,
                                "network %s already forwards %s port %u", n->name,
                                n->forwards[a].proto == IPPROTO_TCP ? "tcp" : "udp",
                                n->forwards[a].port);
    }
    return 0;
}

json_t *conf_net_to_json(const struct conf_net *n)
{
    json_t *j = json_object();
    char a[16], b[16], buf[64];
    json_object_set_new(j, "name", json_string(n->name));
    json_object_set_new(j, "bridge", json_string(n->bridge));
    if (n->vlan)
        json_object_set_new(j, "vlan", json_integer(n->vlan));
    fmt_ip4(n->subnet, a);
    snprintf(buf, sizeof buf, "%s/%u", a, n->plen);
    json_object_set_new(j, "subnet", json_string(buf));
    fmt_ip4(n->gateway, a);
    json_object_set_new(j, "gateway", json_string(a));
    if (n->dhcp) {
        fmt_ip4(n->dhcp_first, a);
        fmt_ip4(n->dhcp_last, b);
        snprintf(buf, sizeof buf, "%s-%s", a, b);
        json_object_set_new(j, "dhcp", json_string(buf));
    }
    if (n->dns) {
        fmt_ip4(n->dns, a);
        json_object_set_new(j, "dns", json_string(a));
    }
    if (n->lease != CONF_LEASE_DEFAULT)
        json_object_set_new(j, "lease", json_integer(n->lease));
    if (n->nat[0])
        json_object_set_new(j, "nat", json_string(n->nat));
    if (n->ct_max != CONF_CT_MAX_DEFAULT)
        json_object_set_new(j, "ct_max", json_integer(n->ct_max));
    for (int t = 0; t < CT_TO__COUNT; t++) {
        if (n->ct_timeouts[t] == conf_ct_timeout_defaults[t])
            continue;
        snprintf(buf, sizeof buf, "ct_timeout_%s", conf_ct_timeout_names[t]);
        json_object_set_new(j, buf, json_integer(n->ct_timeouts[t]));
    }
    if (n->n_reserve) {
        char *s = calloc(n->n_reserve, 40);
        size_t off = 0;
        for (size_t i = 0; s && i < n->n_reserve; i++) {
            const uint8_t *m = n->reserve[i].mac;
            fmt_ip4(n->reserve[i].ip, a);
            off += (size_t)snprintf(s + off, n->n_reserve * 40 - off,
                                    "%s%02x:%02x:%02x:%02x:%02x:%02x=%s", i ? "," : "",
                                    m[0], m[1], m[2], m[3], m[4], m[5], a);
        }
        if (s)
            json_object_set_new(j, "reserve", json_string(s));
        free(s);
    }
    if (n->n_forwards) {
        json_t *fw = json_array();
        for (size_t i = 0; i < n->n_forwards; i++) {
            const struct conf_forward *f = &n->forwards[i];
            fmt_ip4(f->to_ip, a);
            snprintf(buf, sizeof buf, "%s:%u", a, f->to_port);
            json_array_append_new(fw, json_pack("{s:s, s:i, s:s}", "proto",
                                                f->proto == IPPROTO_TCP ? "tcp" : "udp",
                                                "port", f->port, "to", buf));
        }
        json_object_set_new(j, "forwards", fw);
    }
    return j;
}

static int forwards_from_json(struct conf *c, const char *net, const json_t *fw,
                              char *err, size_t errlen)
{
    size_t i;
    json_t *f;
    if (!json_is_array(fw))
        return conf_fail(err, errlen, -EINVAL, "forwards of network %s is not an array", net);
    json_array_foreach (fw, i, f) {
        json_t *proto = json_object_get(f, "proto"), *port = json_object_get(f, "port"),
               *to = json_object_get(f, "to");
        char o[3][96];
        const char *opts[3] = {o[0], o[1], o[2]};
        if (!json_is_object(f) || json_object_size(f) != 3 || !json_is_string(proto) ||
            !json_is_integer(port) || !json_is_string(to))
            return conf_fail(err, errlen, -EINVAL,
                        "forwards[%zu] of network %s must be {\"proto\",\"port\",\"to\"}", i,
                        net);
        snprintf(o[0], sizeof o[0], "proto=%.40s", json_string_value(proto));
        snprintf(o[1], sizeof o[1], "port=%lld", (long long)json_integer_value(port));
        snprintf(o[2], sizeof o[2], "to=%.60s", json_string_value(to));
        int r = conf_add_forward(c, net, opts, 3, err, errlen);
        if (r)
            return r;
    }
    return 0;
}

int conf_nets_from_json(struct conf *c, const json_t *nets, char *err, size_t errlen)
{
    size_t i;
    json_t *jn;
    char e[256];
    if (!json_is_array(nets))
        return conf_fail(err, errlen, -EINVAL, "\"networks\" is not an array");
    json_array_foreach (nets, i, jn) {
        const char *key;
        json_t *v;
        char bufs[24][160];
        const char *opts[24];
        size_t n = 0;
        if (!json_is_object(jn))
            return conf_fail(err, errlen, -EINVAL, "networks[%zu] is not an object", i);
        json_t *name = json_object_get(jn, "name");
        if (!json_is_string(name))
            return conf_fail(err, errlen, -EINVAL, "networks[%zu] has no \"name\" string", i);
        json_object_foreach ((json_t *)jn, key, v) {
            if (!strcmp(key, "name") || !strcmp(key, "forwards"))
                continue;
            if (!strcmp(key, "reserve") && json_is_string(v) &&
                strlen(json_string_value(v)) >= 100)
                continue; /* given whole below */
            if (n == 24)
                return conf_fail(err, errlen, -EINVAL, "networks[%zu] has too many keys", i);
            if (json_is_integer(v))
                snprintf(bufs[n], sizeof bufs[n], "%.40s=%lld", key,
                         (long long)json_integer_value(v));
            else if (json_is_string(v) && strlen(json_string_value(v)) < 100)
                snprintf(bufs[n], sizeof bufs[n], "%.40s=%s", key, json_string_value(v));
            else
                return conf_fail(err, errlen, -EINVAL,
                            "networks[%zu]: %.40s must be a string or an integer", i, key);
            opts[n] = bufs[n];
            n++;
        }
        /* a long reserve list does not fit the buffers: give it directly */
        json_t *res = json_object_get(jn, "reserve");
        char *resopt = NULL;
        if (json_is_string(res) && strlen(json_string_value(res)) >= 100) {
            if (asprintf(&resopt, "reserve=%s", json_string_value(res)) < 0 || n == 24)
                return conf_fail(err, errlen, -ENOMEM, "out of memory");
            opts[n++] = resopt;
        }
        int r = conf_add_net(c, json_string_value(name), opts, n, e, sizeof e);
        free(resopt);
        if (r)
            return conf_fail(err, errlen, r, "networks[%zu] (%.40s): %s", i,
                        json_string_value(name), e);
        json_t *fw = json_object_get(jn, "forwards");
        if (fw && (r = forwards_from_json(c, json_string_value(name), fw, err, errlen)))
            return r;
    }
    return 0;
}
