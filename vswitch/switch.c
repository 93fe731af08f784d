/* The running switch: turns a struct conf into open ports and an immutable
 * datapath snapshot, publishes it to the PMD threads with RCU, and answers the
 * control plane's questions (status, stats, FDB) without stopping forwarding. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <urcu-qsbr.h>

#include "dp.h"
#include "guest_fault.h"
#include "log.h"
#include "switch.h"

#define AGEING_SWEEP_SECS 5

struct sw_bridge {
    char name[CONF_NAME_MAX];
    struct fdb *fdb;
};

struct vswitch {
    struct event_base *base;
    char run_dir[CONF_PATH_MAX];
    struct conf conf;                  /* what is running */
    struct port *ports[PORT_MAX];      /* by port number */
    struct sw_bridge *bridges;
    size_t n_bridges;
    struct dp_snapshot *snap;          /* RCU-published */
    uint64_t gen;                      /* bumped when wait fds or readiness change */
    struct pmd *pmds;
    unsigned n_pmds;
    struct event *ageing_ev;
    struct l3_state *l3;               /* networks: conntrack, leases, neighbours */
    struct event *l3_ev;
};

struct dp_snapshot *switch_snapshot(struct vswitch *sw)
{
    return rcu_dereference(sw->snap);
}

uint64_t switch_generation(struct vswitch *sw)
{
    return __atomic_load_n(&sw->gen, __ATOMIC_ACQUIRE);
}

static void wake_pmds(struct vswitch *sw)
{
    __atomic_fetch_add(&sw->gen, 1, __ATOMIC_RELEASE);
    for (unsigned i = 0; i < sw->n_pmds; i++)
        pmd_wake(&sw->pmds[i]);
}

void switch_port_changed(struct vswitch *sw, struct port *p)
{
    (void)p;
    wake_pmds(sw);
}

static struct port *find_port(struct vswitch *sw, const char *name)
{
    for (unsigned i = 1; i < PORT_MAX; i++)
        if (sw->ports[i] && strcmp(sw->ports[i]->name, name) == 0)
            return sw->ports[i];
    return NULL;
}

static struct sw_bridge *find_bridge(struct vswitch *sw, const char *name)
{
    for (size_t i = 0; i < sw->n_bridges; i++)
        if (strcmp(sw->bridges[i].name, name) == 0)
            return &sw->bridges[i];
    return NULL;
}

static void ageing_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct vswitch *sw = arg;
    uint32_t now = fdb_now();

    (void)fd;
    (void)what;
    for (size_t i = 0; i < sw->n_bridges; i++) {
        size_t n = fdb_expire(sw->bridges[i].fdb, now);
        if (n)
            log_debug("%s: %zu MAC entries aged out", sw->bridges[i].name, n);
    }
}

static void l3_tick(evutil_socket_t fd, short what, void *arg)
{
    struct vswitch *sw = arg;

    (void)fd;
    (void)what;
    l3_state_tick(sw->l3);
}

struct l3_state *switch_l3(struct vswitch *sw)
{
    return sw->l3;
}

struct vswitch *switch_create(struct event_base *base, const struct switch_options *o)
{
    struct vswitch *sw = calloc(1, sizeof(*sw));
    struct timeval tv = {AGEING_SWEEP_SECS, 0};
    unsigned n = o->pmd_threads ? o->pmd_threads : 1;

    if (!sw)
        return NULL;
    if (n > PMD_MAX)
        n = PMD_MAX;
    guest_fault_install();
    sw->base = base;
    snprintf(sw->run_dir, sizeof(sw->run_dir), "%s", o->run_dir ? o->run_dir : ".");
    conf_init(&sw->conf);
    sw->snap = calloc(1, sizeof(*sw->snap));
    sw->pmds = calloc(n, sizeof(*sw->pmds));
    if (!sw->snap || !sw->pmds)
        goto fail;
    for (unsigned i = 0; i < n; i++) {
        if (pmd_start(&sw->pmds[i], sw, i) < 0) {
            log_err("cannot start PMD thread %u: %s", i, strerror(errno));
            goto fail;
        }
        sw->n_pmds++;
    }
    sw->ageing_ev = event_new(base, -1, EV_PERSIST, ageing_sweep, sw);
    if (!sw->ageing_ev)
        goto fail;
    event_add(sw->ageing_ev, &tv);
    sw->l3 = l3_state_create();
    sw->l3_ev = event_new(base, -1, EV_PERSIST, l3_tick, sw);
    if (!sw->l3 || !sw->l3_ev)
        goto fail;
    tv.tv_sec = 1;
    event_add(sw->l3_ev, &tv);
    return sw;
fail:
    switch_destroy(sw);
    return NULL;
}

static void snapshot_free(struct dp_snapshot *s)
{
    if (!s)
        return;
    l3_snapshot_free(s->l3, s);
    for (unsigned i = 0; i < s->n_bridges; i++)
        free(s->bridges[i].members);
    for (unsigned i = 0; i < PMD_MAX; i++)
        free(s->rxqs[i]);
    free(s->bridges);
    free(s->ports);
    free(s);
}

static void port_free(struct port *p)
{
    if (!p)
        return;
    if (p->ops)
        p->ops->close(p);
    free(p);
}

void switch_destroy(struct vswitch *sw)
{
    if (!sw)
        return;
    for (unsigned i = 0; i < sw->n_pmds; i++)
        pmd_stop(&sw->pmds[i]);
    for (unsigned i = 1; i < PORT_MAX; i++)
        port_free(sw->ports[i]);
    for (size_t i = 0; i < sw->n_bridges; i++)
        fdb_destroy(sw->bridges[i].fdb);
    free(sw->bridges);
    snapshot_free(sw->snap);
    if (sw->ageing_ev)
        event_free(sw->ageing_ev);
    if (sw->l3_ev)
        event_free(sw->l3_ev);
    l3_state_destroy(sw->l3);
    conf_free(&sw->conf);
    free(sw->pmds);
    free(sw);
}

/* Builds the snapshot for conf c. Port objects and FDBs must exist. */
static struct dp_snapshot *snapshot_build(struct vswitch *sw, const struct conf *c,
                                          struct port **by_no,
                                          struct sw_bridge *bridges, size_t n_bridges)
{
    struct dp_snapshot *s = calloc(1, sizeof(*s));
    unsigned rr = 0;

    if (!s)
        return NULL;
    s->ports = calloc(c->n_ports ? c->n_ports : 1, sizeof(*s->ports));
    s->bridges = calloc(c->n_bridges ? c->n_bridges : 1, sizeof(*s->bridges));
    if (!s->ports || !s->bridges)
        goto fail;
    for (size_t b = 0; b < c->n_bridges; b++) {
        struct dp_bridge *db = &s->bridges[b];
        for (size_t k = 0; k < n_bridges; k++)
            if (strcmp(bridges[k].name, c->bridges[b].name) == 0)
                db->fdb = bridges[k].fdb;
        db->members = calloc(c->n_ports ? c->n_ports : 1, sizeof(uint16_t));
        if (!db->members)
            goto fail;
    }
    s->n_bridges = c->n_bridges;
    for (unsigned i = 0; i < sw->n_pmds; i++) {
        s->rxqs[i] = calloc(c->n_ports * PORT_RXQ_MAX + 1, sizeof(struct dp_rxq));
        if (!s->rxqs[i])
            goto fail;
    }
    for (size_t i = 0; i < c->n_ports; i++) {
        const struct conf_port *cp = &c->ports[i];
        struct dp_port *dp = &s->ports[s->n_ports];
        struct port *p = NULL;

        for (unsigned no = 1; no < PORT_MAX && !p; no++)
            if (by_no[no] && strcmp(by_no[no]->name, cp->name) == 0)
                p = by_no[no];
        if (!p)
            continue;
        dp->port = p;
        dp->vlan = cp->vlan;
        dp->max_frame = (cp->mtu ? cp->mtu : CONF_MTU_DEFAULT) + ETH_HLEN;
        for (size_t b = 0; b < c->n_bridges; b++) {
            if (strcmp(c->bridges[b].name, cp->bridge) == 0) {
                dp->br = &s->bridges[b];
                dp->br->members[dp->br->n_members++] = p->no;
            }
        }
        s->by_no[p->no] = dp;
        s->n_ports++;
        for (unsigned q = 0; q < p->n_rxq; q++) {
            unsigned t = rr++ % sw->n_pmds;
            s->rxqs[t][s->n_rxqs[t]].port = p;
            s->rxqs[t][s->n_rxqs[t]].q = q;
            s->n_rxqs[t]++;
        }
    }
    return s;
fail:
    snapshot_free(s);
    return NULL;
}

static bool vlan_equal(const struct conf_vlan *a, const struct conf_vlan *b)
{
    return memcmp(a, b, sizeof(*a)) == 0;
}

static int port_open(struct vswitch *sw, struct port *p, const struct conf_port *cp,
                     char *err, size_t errlen)
{
    struct port_env env = {.base = sw->base, .run_dir = sw->run_dir, .sw = sw};
    const struct port_ops *ops = port_ops_for(cp->type);

    if (!ops) {
        snprintf(err, errlen, "port type %s is not supported by this build",
                 port_type_name(cp->type));
        return -1;
    }
    snprintf(p->name, sizeof(p->name), "%s", cp->name);
    p->sw = sw;
    p->ops = ops;
    p->conf = *cp;
    p->n_rxq = 0;
    if (ops->open(p, cp, &env, err, errlen) < 0) {
        p->ops = NULL;
        return -1;
    }
    return 0;
}

static unsigned alloc_no(struct port **by_no)
{
    for (unsigned no = 1; no < PORT_MAX; no++)
        if (!by_no[no])
            return no;
    return 0;
}

int switch_apply(struct vswitch *sw, const struct conf *next, char *err, size_t errlen)
{
    struct port *by_no[PORT_MAX];
    struct port *opened[PORT_MAX];
    struct port *reopened[PORT_MAX];
    struct conf_port reopened_old[8];
    size_t n_opened = 0, n_reopened = 0;
    struct sw_bridge *bridges = NULL;
    size_t n_bridges = 0;
    struct dp_snapshot *snap, *old;

    memcpy(by_no, sw->ports, sizeof(by_no));

    /* Bridges: keep the FDBs of bridges that stay. */
    bridges = calloc(next->n_bridges + 1, sizeof(*bridges));
    if (!bridges)
        goto nomem;
    for (size_t i = 0; i < next->n_bridges; i++) {
        struct sw_bridge *old_br = find_bridge(sw, next->bridges[i].name);
        snprintf(bridges[i].name, sizeof(bridges[i].name), "%s", next->bridges[i].name);
        bridges[i].fdb = old_br ? old_br->fdb : fdb_create(next->bridges[i].ageing);
        if (!bridges[i].fdb)
            goto nomem_bridges;
        n_bridges++;
    }

    /* New ports first: failing here leaves the running switch untouched. */
    for (size_t i = 0; i < next->n_ports; i++) {
        const struct conf_port *cp = &next->ports[i];
        struct port *p;
        unsigned no;

        if (find_port(sw, cp->name))
            continue;
        no = alloc_no(by_no);
        p = calloc(1, sizeof(*p));
        if (!no || !p) {
            free(p);
            snprintf(err, errlen, "too many ports (at most %d)", PORT_MAX - 1);
            goto rollback;
        }
        p->no = no;
        if (port_open(sw, p, cp, err, errlen) < 0) {
            free(p);
            goto rollback;
        }
        by_no[no] = p;
        opened[n_opened++] = p;
    }

    /* Ports whose type-specific options changed are closed and opened again
     * in place (same number); if that fails they get their old options back. */
    for (size_t i = 0; i < next->n_ports; i++) {
        const struct conf_port *cp = &next->ports[i];
        struct port *p = find_port(sw, cp->name);

        if (!p || (p->conf.type == cp->type && p->ops->same_options &&
                   p->ops->same_options(&p->conf, cp)))
            continue;
        if (n_reopened == sizeof(reopened_old) / sizeof(reopened_old[0])) {
            snprintf(err, errlen, "too many ports changed at once");
            goto rollback;
        }
        reopened_old[n_reopened] = p->conf;
        port_quiesce(p);
        p->ops->close(p);
        if (port_open(sw, p, cp, err, errlen) < 0) {
            char e2[256];
            if (port_open(sw, p, &reopened_old[n_reopened], e2, sizeof(e2)) < 0)
                log_err("port %s: cannot restore its previous options: %s", p->name,
                        e2);
            goto rollback;
        }
        reopened[n_reopened++] = p;
    }

    /* Ports that go away leave the snapshot now and are closed after it. */
    for (unsigned no = 1; no < PORT_MAX; no++)
        if (by_no[no] && !conf_find_port(next, by_no[no]->name))
            by_no[no] = NULL;

    snap = snapshot_build(sw, next, by_no, bridges, n_bridges);
    if (!snap)
        goto nomem_rollback;
    if (l3_snapshot_build(sw->l3, next, snap, by_no, err, errlen) < 0) {
        snapshot_free(snap);
        goto rollback;
    }

    old = sw->snap;
    rcu_assign_pointer(sw->snap, snap);
    synchronize_rcu();
    snapshot_free(old);

    /* No PMD can reach what follows any more. */
    for (unsigned no = 1; no < PORT_MAX; no++) {
        struct port *p = sw->ports[no];
        const struct conf_port *cp;
        struct sw_bridge *ob;

        if (!p)
            continue;
        ob = find_bridge(sw, p->conf.bridge);
        cp = conf_find_port(next, p->name);
        if (!cp) {
            if (ob)
                fdb_flush_port(ob->fdb, no);
            log_info("port %s (%u) removed", p->name, no);
            port_free(p);
            continue;
        }
        if (ob && (strcmp(cp->bridge, p->conf.bridge) != 0 ||
                   !vlan_equal(&cp->vlan, &p->conf.vlan)))
            fdb_flush_port(ob->fdb, no);
        p->conf = *cp;
    }
    for (size_t i = 0; i < sw->n_bridges; i++) {
        bool kept = false;
        for (size_t k = 0; k < n_bridges; k++)
            kept |= bridges[k].fdb == sw->bridges[i].fdb;
        if (!kept)
            fdb_destroy(sw->bridges[i].fdb);
    }
    for (size_t i = 0; i < next->n_bridges; i++)
        fdb_set_ageing(bridges[i].fdb, next->bridges[i].ageing);
    free(sw->bridges);
    sw->bridges = bridges;
    sw->n_bridges = n_bridges;
    memcpy(sw->ports, by_no, sizeof(by_no));
    for (size_t i = 0; i < n_opened; i++)
        log_info("port %s (%u) added: type %s", opened[i]->name, opened[i]->no,
                 port_type_name(opened[i]->conf.type));

    l3_state_commit(sw->l3, next);
    conf_free(&sw->conf);
    if (conf_clone(&sw->conf, next) < 0)
        log_err("out of memory keeping the configuration");
    wake_pmds(sw);
    return 0;

nomem_rollback:
    snprintf(err, errlen, "out of memory");
rollback:
    for (size_t i = 0; i < n_reopened; i++) {
        char e2[256];
        struct port *p = reopened[i];
        port_quiesce(p);
        p->ops->close(p);
        if (port_open(sw, p, &reopened_old[i], e2, sizeof(e2)) < 0)
            log_err("port %s: cannot restore its previous options: %s", p->name, e2);
    }
    for (size_t i = 0; i < n_opened; i++)
        port_free(opened[i]);
    for (size_t i = 0; i < n_bridges; i++)
        if (!find_bridge(sw, bridges[i].name))
            fdb_destroy(bridges[i].fdb);
    free(bridges);
    wake_pmds(sw);
    return -1;
nomem_bridges:
    for (size_t i = 0; i < n_bridges; i++)
        if (!find_bridge(sw, bridges[i].name))
            fdb_destroy(bridges[i].fdb);
    free(bridges);
nomem:
    snprintf(err, errlen, "out of memory");
    return -1;
}

json_t *switch_port_status(struct vswitch *sw, const char *name)
{
    struct port *p = find_port(sw, name);
    json_t *j;

    if (!p)
        return NULL;
    j = p->ops->status ? p->ops->status(p) : json_object();
    if (!j)
        j = json_object();
    json_object_set_new(j, "port_no", json_integer(p->no));
    json_object_set_new(j, "rx_queues", json_integer(p->n_rxq));
    return j;
}

static json_t *port_stats_json(struct port *p)
{
    json_t *j = json_object();
    json_t *drops = json_object();
    uint64_t total = 0;

#define LD(x) json_integer((json_int_t)__atomic_load_n(&p->stats.x, __ATOMIC_RELAXED))
    json_object_set_new(j, "rx_packets", LD(rx_packets));
    json_object_set_new(j, "rx_bytes", LD(rx_bytes));
    json_object_set_new(j, "tx_packets", LD(tx_packets));
    json_object_set_new(j, "tx_bytes", LD(tx_bytes));
#undef LD
    for (int r = 0; r < DROP__COUNT; r++) {
        uint64_t v = __atomic_load_n(&p->stats.drops[r], __ATOMIC_RELAXED);
        json_object_set_new(drops, drop_reason_name(r), json_integer((json_int_t)v));
        total += v;
    }
    json_object_set_new(j, "drops_total", json_integer((json_int_t)total));
    json_object_set_new(j, "drops", drops);
    return j;
}

json_t *switch_port_stats(struct vswitch *sw, const char *name, char *err, size_t errlen)
{
    json_t *all;

    if (name) {
        struct port *p = find_port(sw, name);
        if (!p) {
            snprintf(err, errlen, "port %s does not exist", name);
            return NULL;
        }
        all = json_object();
        json_object_set_new(all, p->name, port_stats_json(p));
        return all;
    }
    all = json_object();
    for (size_t i = 0; i < sw->conf.n_ports; i++) {
        struct port *p = find_port(sw, sw->conf.ports[i].name);
        if (p)
            json_object_set_new(all, p->name, port_stats_json(p));
    }
    return all;
}

struct fdb_dump_ctx {
    struct vswitch *sw;
    json_t *arr;
};

static void fdb_dump_one(void *ctx, uint16_t vid, const uint8_t *mac, uint16_t port,
                         uint32_t age)
{
    struct fdb_dump_ctx *c = ctx;
    json_t *e = json_object();
    char buf[18];

    snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
             mac[3], mac[4], mac[5]);
    json_object_set_new(e, "port",
                        json_string(port < PORT_MAX && c->sw->ports[port]
                                        ? c->sw->ports[port]->name
                                        : "?"));
    json_object_set_new(e, "vlan", json_integer(vid));
    json_object_set_new(e, "mac", json_string(buf));
    json_object_set_new(e, "age", json_integer(age));
    json_array_append_new(c->arr, e);
}

json_t *switch_fdb_show(struct vswitch *sw, const char *bridge, int vlan, char *err,
                        size_t errlen)
{
    struct sw_bridge *br = find_bridge(sw, bridge);
    struct fdb_dump_ctx ctx = {.sw = sw};

    if (!br) {
        snprintf(err, errlen, "bridge %s does not exist", bridge);
        return NULL;
    }
    ctx.arr = json_array();
    fdb_dump(br->fdb, vlan, fdb_now(), fdb_dump_one, &ctx);
    return ctx.arr;
}

int switch_fdb_flush(struct vswitch *sw, const char *bridge, char *err, size_t errlen)
{
    struct sw_bridge *br = find_bridge(sw, bridge);

    if (!br) {
        snprintf(err, errlen, "bridge %s does not exist", bridge);
        return -1;
    }
    fdb_flush(br->fdb);
    return 0;
}
