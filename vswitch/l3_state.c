/* The control side of the networks: builds the L3 part of each datapath
 * snapshot (networks, uplinks and their addresses, per-bridge VLAN tables),
 * keeps what the datapath learns across snapshots (conntrack, neighbours,
 * DHCP leases), expires connections, writes the leases file and answers
 * list-leases, ct-show and ct-flush. Control thread only. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dp.h"
#include "fdb.h"
#include "l3.h"
#include "log.h"

#define NAT_PORT_MIN 1024
#define NAT_PORT_MAX 65535

uint32_t l3_now(void)
{
    return fdb_now();
}

struct l3_state *l3_state_create(void)
{
    struct l3_state *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->ct = ct_create(NAT_PORT_MIN, NAT_PORT_MAX);
    if (!st->ct) {
        free(st);
        return NULL;
    }
    return st;
}

static void net_state_free(struct l3_net_state *ns)
{
    pthread_spin_destroy(&ns->lock);
    free(ns);
}

void l3_state_destroy(struct l3_state *st)
{
    if (!st)
        return;
    l3_state_tick(st); /* the last leases */
    ct_destroy(st->ct);
    for (size_t i = 0; i < st->n_nets; i++)
        net_state_free(st->nets[i]);
    free(st->nets);
    json_decref(st->leases_loaded);
    free(st);
}

static struct l3_net_state *state_find(struct l3_state *st, const char *name)
{
    for (size_t i = 0; i < st->n_nets; i++)
        if (!strcmp(st->nets[i]->name, name))
            return st->nets[i];
    return NULL;
}

static const char *const lease_states[] = {"free", "offered", "bound", "declined"};

static void leases_import(struct l3_state *st, struct l3_net_state *ns)
{
    json_t *arr = json_object_get(json_object_get(st->leases_loaded, "leases"), ns->name);
    size_t i;
    json_t *l;

    if (!json_is_array(arr) || ns->n_leases)
        return;
    pthread_spin_lock(&ns->lock);
    json_array_foreach (arr, i, l) {
        struct dhcp_lease d;
        struct in_addr a;
        unsigned m[6];
        const char *mac = json_string_value(json_object_get(l, "mac"));
        const char *ip = json_string_value(json_object_get(l, "ip"));
        const char *state = json_string_value(json_object_get(l, "state"));
        json_t *exp = json_object_get(l, "expires");
        const char *host = json_string_value(json_object_get(l, "hostname"));
        if (ns->n_leases == DHCP_LEASES_MAX || !mac || !ip || !state ||
            !json_is_integer(exp) || inet_pton(AF_INET, ip, &a) != 1 ||
            sscanf(mac, "%2x:%2x:%2x:%2x:%2x:%2x", &m[0], &m[1], &m[2], &m[3], &m[4],
                   &m[5]) != 6)
            continue;
        memset(&d, 0, sizeof d);
        for (int k = 0; k < 6; k++)
            d.mac[k] = (uint8_t)m[k];
        d.ip = ntohl(a.s_addr);
        d.expires = json_integer_value(exp);
        d.state = LEASE_FREE;
        for (uint8_t k = 1; k < 4; k++)
            if (!strcmp(state, lease_states[k]))
                d.state = k;
        if (host)
            snprintf(d.hostname, sizeof d.hostname, "%s", host);
        if (d.state != LEASE_FREE)
            ns->leases[ns->n_leases++] = d;
    }
    pthread_spin_unlock(&ns->lock);
}

static struct l3_net_state *state_get(struct l3_state *st, const struct conf_net *cn)
{
    struct l3_net_state *ns = state_find(st, cn->name);
    if (!ns) {
        struct l3_net_state **v = realloc(st->nets, (st->n_nets + 1) * sizeof *v);
        if (!v)
            return NULL;
        st->nets = v;
        ns = calloc(1, sizeof *ns);
        if (!ns)
            return NULL;
        snprintf(ns->name, sizeof ns->name, "%s", cn->name);
        pthread_spin_init(&ns->lock, PTHREAD_PROCESS_PRIVATE);
        st->nets[st->n_nets++] = ns;
        leases_import(st, ns);
    }
    for (int t = 0; t < CT_TO__COUNT; t++)
        __atomic_store_n(&ns->ct_timeouts[t], cn->ct_timeouts[t], __ATOMIC_RELAXED);
    return ns;
}

int l3_snapshot_build(struct l3_state *st, const struct conf *c, struct dp_snapshot *s,
                      struct port *const *by_no, char *err, size_t errlen)
{
    struct l3_snapshot *l3;

    s->l3 = NULL;
    if (!c->n_nets)
        return 0;
    l3 = calloc(1, sizeof *l3);
    if (!l3)
        goto nomem;
    l3->state = st;
    l3->confs = calloc(c->n_nets, sizeof *l3->confs);
    l3->nets = calloc(c->n_nets, sizeof *l3->nets);
    l3->uplinks = calloc(c->n_nets, sizeof *l3->uplinks);
    if (!l3->confs || !l3->nets || !l3->uplinks)
        goto nomem;
    memcpy(l3->confs, c->nets, c->n_nets * sizeof *l3->confs);

    for (size_t i = 0; i < c->n_nets; i++) {
        const struct conf_net *cn = &l3->confs[i];
        struct l3_net *n = &l3->nets[l3->n_nets];
        struct dp_bridge *br = NULL;

        for (size_t b = 0; b < c->n_bridges; b++)
            if (!strcmp(c->bridges[b].name, cn->bridge))
                br = &s->bridges[b];
        if (!br)
            continue;
        if (!br->nets && !(br->nets = calloc(4095, sizeof *br->nets)))
            goto nomem;
        n->st = state_get(st, cn);
        if (!n->st)
            goto nomem;
        n->conf = cn;
        n->br = br;
        n->idx = l3->n_nets;
        n->vlan = cn->vlan;
        n->mask = conf_mask(cn->plen);
        n->subnet = cn->subnet;
        n->gw = cn->gateway;
        l3_derive_mac(cn->name, 0, n->mac);
        br->nets[cn->vlan] = n;
        l3->n_nets++;

        if (!cn->nat[0])
            continue;
        struct l3_uplink *up = NULL;
        for (unsigned u = 0; u < l3->n_uplinks; u++)
            if (l3->uplinks[u].port_no &&
                !strcmp(by_no[l3->uplinks[u].port_no]->name, cn->nat))
                up = &l3->uplinks[u];
        if (!up) {
            struct port *p = NULL;
            for (unsigned no = 1; no < PORT_MAX && !p; no++)
                if (by_no[no] && !strcmp(by_no[no]->name, cn->nat))
                    p = by_no[no];
            if (!p) {
                snprintf(err, errlen, "uplink %s of network %s is not open", cn->nat,
                         cn->name);
                goto fail;
            }
            up = &l3->uplinks[l3->n_uplinks++];
            up->port_no = p->no;
            uint32_t a_be = 0;
            uint8_t plen = 0;
            if (p->ops->uplink_addr && p->ops->uplink_addr(p, &a_be, &plen) == 0) {
                up->addr = ntohl(a_be);
                up->mask = conf_mask(plen);
            } else {
                log_warn("network %s: uplink %s has no IPv4 address (give it ip=CIDR); "
                         "NAT drops until it has one",
                         cn->name, cn->nat);
            }
            if (p->conf.gw[0]) {
                struct in_addr g;
                if (inet_pton(AF_INET, p->conf.gw, &g) == 1)
                    up->gw = ntohl(g.s_addr);
            }
            l3_derive_mac(p->name, 1, up->mac);
            l3->uplink_of[p->no] = up;
        }
        n->uplink = up;
        for (size_t f = 0; f < cn->n_forwards; f++) {
            uint16_t port = cn->forwards[f].port;
            up->fwd_ports[cn->forwards[f].proto == IPPROTO_TCP_ ? 0 : 1][port / 64] |=
                1ull << (port % 64);
        }
    }
    s->l3 = l3;
    return 0;
nomem:
    snprintf(err, errlen, "out of memory");
fail:
    l3_snapshot_free(l3, s);
    return -1;
}

void l3_snapshot_free(struct l3_snapshot *l3, struct dp_snapshot *s)
{
    for (unsigned b = 0; s && b < s->n_bridges; b++) {
        free((void *)s->bridges[b].nets);
        s->bridges[b].nets = NULL;
    }
    if (s)
        s->l3 = NULL;
    if (!l3)
        return;
    free(l3->confs);
    free(l3->nets);
    free(l3->uplinks);
    free(l3);
}

void l3_state_commit(struct l3_state *st, const struct conf *c)
{
    size_t j = 0;
    for (size_t i = 0; i < st->n_nets; i++) {
        struct l3_net_state *ns = st->nets[i];
        if (conf_find_net(c, ns->name)) {
            st->nets[j++] = ns;
            continue;
        }
        /* no snapshot refers to it any more: its connections go first */
        ct_expire(st->ct, 0, true, ns);
        net_state_free(ns);
    }
    st->n_nets = j;
}

/* ---- leases file ---- */

static json_t *leases_of(struct l3_net_state *ns, bool all, int64_t now)
{
    static struct dhcp_lease copy[DHCP_LEASES_MAX];
    unsigned n;
    json_t *arr = json_array();

    pthread_spin_lock(&ns->lock);
    n = ns->n_leases;
    memcpy(copy, ns->leases, n * sizeof copy[0]);
    pthread_spin_unlock(&ns->lock);
    for (unsigned i = 0; i < n; i++) {
        const struct dhcp_lease *l = &copy[i];
        char mac[18], ip[16];
        struct in_addr a = {.s_addr = htonl(l->ip)};
        if (l->state == LEASE_FREE || (!all && l->expires <= now))
            continue;
        snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", l->mac[0], l->mac[1],
                 l->mac[2], l->mac[3], l->mac[4], l->mac[5]);
        inet_ntop(AF_INET, &a, ip, sizeof ip);
        json_t *e = json_pack("{s:s, s:s, s:s, s:I}", "mac", mac, "ip", ip, "state",
                              lease_states[l->state], "expires", (json_int_t)l->expires);
        if (l->hostname[0])
            json_object_set_new(e, "hostname", json_string(l->hostname));
        if (!all)
            json_object_set_new(e, "expires_in", json_integer(l->expires - now));
        json_array_append_new(arr, e);
    }
    return arr;
}

static int leases_save(struct l3_state *st)
{
    char tmp[4200], dir[4096];
    json_t *j = json_object(), *nets = json_object();
    int64_t now = (int64_t)time(NULL);
    int fd, r = -1;

    for (size_t i = 0; i < st->n_nets; i++)
        json_object_set_new(nets, st->nets[i]->name, leases_of(st->nets[i], true, now));
    json_object_set_new(j, "version", json_integer(1));
    json_object_set_new(j, "leases", nets);
    snprintf(tmp, sizeof tmp, "%s.tmp", st->leases_path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        goto out;
    char *s = json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS);
    size_t len = s ? strlen(s) : 0, off = 0;
    while (s && off < len) {
        ssize_t w = write(fd, s + off, len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    free(s);
    if (off != len || !len || fsync(fd) < 0) {
        close(fd);
        unlink(tmp);
        goto out;
    }
    close(fd);
    if (rename(tmp, st->leases_path) < 0) {
        unlink(tmp);
        goto out;
    }
    snprintf(dir, sizeof dir, "%s", st->leases_path);
    fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    r = 0;
out:
    if (r)
        log_warn("cannot write the leases file %s: %s", st->leases_path, strerror(errno));
    json_decref(j);
    return r;
}

void l3_state_set_leases_path(struct l3_state *st, const char *path)
{
    json_error_t e;
    snprintf(st->leases_path, sizeof st->leases_path, "%s", path ? path : "");
    json_decref(st->leases_loaded);
    st->leases_loaded = NULL;
    if (!path)
        return;
    st->leases_loaded = json_load_file(path, 0, &e);
    if (!st->leases_loaded && access(path, F_OK) == 0)
        log_warn("leases file %s is unreadable (%s); starting without leases", path,
                 e.text);
    for (size_t i = 0; i < st->n_nets; i++)
        leases_import(st, st->nets[i]);
}

void l3_state_tick(struct l3_state *st)
{
    bool dirty = false;
    size_t n = ct_expire(st->ct, l3_now(), false, NULL);
    if (n)
        log_debug("conntrack: %zu connections expired", n);
    for (size_t i = 0; i < st->n_nets; i++)
        if (__atomic_exchange_n(&st->nets[i]->leases_dirty, false, __ATOMIC_ACQ_REL))
            dirty = true;
    if (dirty && st->leases_path[0])
        leases_save(st);
}

json_t *l3_leases_json(struct l3_state *st, const char *net)
{
    struct l3_net_state *ns = state_find(st, net);
    return ns ? leases_of(ns, false, (int64_t)time(NULL)) : json_array();
}

json_t *l3_ct_show(struct l3_state *st, const char *net)
{
    struct l3_net_state *ns = net ? state_find(st, net) : NULL;
    if (net && !ns)
        return json_array();
    return ct_dump(st->ct, l3_now(), ns);
}

void l3_ct_flush(struct l3_state *st, const char *net)
{
    struct l3_net_state *ns = net ? state_find(st, net) : NULL;
    if (net && !ns)
        return;
    ct_expire(st->ct, 0, true, ns);
}
