/* Connection tracking for NAT. One table per switch, in liburcu's lock-free
 * hash table (rculfhash, QSBR flavour): PMD threads look up and insert
 * without locks, so the two directions of a connection may be handled by
 * different PMDs; the control thread walks it for ct-show and expiry without
 * stopping them. A connection is two nodes, one per direction, keyed by the
 * tuple a packet of that direction carries when it reaches the switch.
 *
 * Source ports are endpoint-independent mappings (RFC 4787 REQ-1, RFC 5382
 * REQ-1): (proto, internal address, internal port, uplink address) keeps one
 * external port for as long as any connection uses it; the internal port
 * itself is tried first (port preservation). Filtering is address and port
 * dependent, as in Linux: only the remote a connection went to gets in.
 *
 * Connections are allocated when they are created (never per packet) and
 * freed after a grace period once expired or flushed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <urcu-qsbr.h>
#include <urcu/rculfhash.h>

#include "drop.h"
#include "hash.h"
#include "l3.h"

struct ct_node {
    struct cds_lfht_node n;
    struct ct_conn *c;
    uint8_t dir;
};

struct ct_map;

struct ct_conn {
    struct ct_node node[2];
    struct ct_tuple t[2];
    struct ct_map *map;
    struct l3_net_state *owner;
    uint32_t expires;
    uint8_t state; /* enum ct_tcp_state */
    bool replied;
    uint64_t packets[2], bytes[2];
    struct rcu_head rcu;
};

struct ct_mkey {
    uint32_t a, b;
    uint16_t port;
    uint8_t proto, kind; /* kind 0: by internal endpoint, 1: by external port */
};

struct ct_mnode {
    struct cds_lfht_node n;
    struct ct_map *m;
    struct ct_mkey k;
};

struct ct_map {
    struct ct_mnode by_int, by_ext;
    uint32_t refs;
    uint16_t ext_port;
    struct rcu_head rcu;
};

struct ct_table {
    struct cds_lfht *conns;
    struct cds_lfht *maps;
    uint16_t port_min, port_max;
    uint32_t n;
    uint32_t rnd;
    unsigned long buckets; /* of each table; the control thread sizes them */
    /* Port ranges found full: a search that found no free port records
     * (ext address, proto, reserved ports) with the number of mappings freed
     * so far; until another one is freed, the same search fails at once
     * instead of trying every port again (64K hash inserts per packet). */
    uint64_t full[16];  /* key hash << 32 | map_frees then */
    uint32_t map_frees; /* mappings removed, ever (wraps) */
    uint64_t port_probes;
};

/* Both tables hold at most two nodes per connection. rculfhash's own lazy
 * resizing (CDS_LFHT_AUTO_RESIZE) is not used: liburcu 0.13 marks a resize as
 * initiated only after queueing it, so a worker that runs it at once (it
 * preempts the PMD when the daemon is pinned to one CPU) leaves the mark set
 * and no later resize is ever queued. Seen with bench/nat.py: 2048 buckets for
 * 64K nodes, chains of 32, lookups 70 % of the PMD and 8x fewer Mpps. */
#define CT_BUCKETS_MIN 1024ul
#define CT_BUCKETS_MAX (1ul << 22)

static __thread bool rcu_registered_here;

/* Walks the connection nodes of t. Not cds_lfht_for_each_entry(): that
 * macro takes container_of the NULL node that ends the walk, which is
 * undefined behaviour (clang's UBSan reports it on an empty table). */
#define ct_for_each_node(t, it, cn)                                                      \
    for (cds_lfht_first((t)->conns, (it));                                               \
         cds_lfht_iter_get_node(it) &&                                                   \
         ((cn) = caa_container_of(cds_lfht_iter_get_node(it), struct ct_node, n), 1);    \
         cds_lfht_next((t)->conns, (it)))

/* The control thread (and tests) read the tables online, briefly. A thread
 * that is online already (a PMD, a test) is left as it is. */
static bool reader_enter(void)
{
    if (rcu_read_ongoing())
        return false;
    if (!rcu_registered_here) {
        rcu_register_thread();
        rcu_registered_here = true;
    } else {
        rcu_thread_online();
    }
    return true;
}

static void reader_leave(bool entered)
{
    if (entered)
        rcu_thread_offline();
}

static unsigned long tuple_hash(const struct ct_tuple *k)
{
    uint32_t h = 0x5eed;
    h = hash_mix(h, k->src);
    h = hash_mix(h, k->dst);
    h = hash_mix(h, (uint32_t)k->sport << 16 | k->dport);
    h = hash_mix(h, k->proto);
    return hash_finish(h);
}

static unsigned long mkey_hash(const struct ct_mkey *k)
{
    uint32_t h = 0x3a9;
    h = hash_mix(h, k->a);
    h = hash_mix(h, k->b);
    h = hash_mix(h, (uint32_t)k->port << 16 | (uint32_t)k->proto << 8 | k->kind);
    return hash_finish(h);
}

static bool tuple_eq(const struct ct_tuple *a, const struct ct_tuple *b)
{
    return a->src == b->src && a->dst == b->dst && a->sport == b->sport &&
           a->dport == b->dport && a->proto == b->proto;
}

static int conn_match(struct cds_lfht_node *n, const void *key)
{
    const struct ct_node *cn = caa_container_of(n, struct ct_node, n);
    return tuple_eq(&cn->c->t[cn->dir], key);
}

static int map_match(struct cds_lfht_node *n, const void *key)
{
    const struct ct_mnode *mn = caa_container_of(n, struct ct_mnode, n);
    const struct ct_mkey *k = key;
    return mn->k.a == k->a && mn->k.b == k->b && mn->k.port == k->port &&
           mn->k.proto == k->proto && mn->k.kind == k->kind;
}

struct ct_table *ct_create(uint16_t port_min, uint16_t port_max)
{
    struct ct_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->port_min = port_min;
    t->port_max = port_max;
    t->rnd = 0x9e3779b9u;
    t->buckets = CT_BUCKETS_MIN;
    t->conns = cds_lfht_new(CT_BUCKETS_MIN, CT_BUCKETS_MIN, CT_BUCKETS_MAX, 0, NULL);
    t->maps = cds_lfht_new(CT_BUCKETS_MIN, CT_BUCKETS_MIN, CT_BUCKETS_MAX, 0, NULL);
    if (!t->conns || !t->maps) {
        ct_destroy(t);
        return NULL;
    }
    return t;
}

void ct_destroy(struct ct_table *t)
{
    if (!t)
        return;
    if (t->conns && t->maps)
        ct_expire(t, 0, true, NULL);
    if (rcu_read_ongoing()) {
        rcu_thread_offline();
        rcu_barrier();
        rcu_thread_online();
    } else {
        rcu_barrier();
    }
    if (t->conns)
        cds_lfht_destroy(t->conns, NULL);
    if (t->maps)
        cds_lfht_destroy(t->maps, NULL);
    free(t);
}

struct ct_conn *ct_lookup(struct ct_table *t, const struct ct_tuple *k, int *dir)
{
    struct cds_lfht_iter it;
    struct cds_lfht_node *n;

    cds_lfht_lookup(t->conns, tuple_hash(k), conn_match, k, &it);
    n = cds_lfht_iter_get_node(&it);
    if (!n)
        return NULL;
    struct ct_node *cn = caa_container_of(n, struct ct_node, n);
    *dir = cn->dir;
    return cn->c;
}

const struct ct_tuple *ct_conn_tuple(const struct ct_conn *c, int dir)
{
    return &c->t[dir];
}

static void map_free_rcu(struct rcu_head *h)
{
    free(caa_container_of(h, struct ct_map, rcu));
}

static void map_unref(struct ct_table *t, struct ct_map *m)
{
    if (!m || __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL))
        return;
    cds_lfht_del(t->maps, &m->by_int.n);
    cds_lfht_del(t->maps, &m->by_ext.n);
    __atomic_add_fetch(&t->map_frees, 1, __ATOMIC_RELEASE); /* a port is free */
    call_rcu(&m->rcu, map_free_rcu);
}

static uint32_t range_key(uint8_t proto, uint32_t ext_ip, const uint64_t *reserved)
{
    uint64_t r = (uint64_t)(uintptr_t)reserved;
    return hash_finish(hash_mix(hash_mix(hash_mix(0x7a11, ext_ip), proto), (uint32_t)(r ^ r >> 32)));
}

static bool map_ref(struct ct_map *m)
{
    uint32_t r = __atomic_load_n(&m->refs, __ATOMIC_ACQUIRE);
    while (r) {
        if (__atomic_compare_exchange_n(&m->refs, &r, r + 1, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            return true;
    }
    return false; /* dying: not to be reused */
}

static bool port_reserved(const uint64_t *reserved, uint16_t port)
{
    return reserved && (reserved[port / 64] >> (port % 64) & 1);
}

/* The mapping of (proto, int_ip, int_port) on uplink address `ext_ip`: the
 * existing one, or a new one with the internal port preserved if it is free,
 * else the first free port from a pseudo-random start. NULL: none free. */
static struct ct_map *map_get(struct ct_table *t, uint8_t proto, uint32_t int_ip,
                              uint16_t int_port, uint32_t ext_ip,
                              const uint64_t *reserved)
{
    struct ct_mkey ki = {.a = int_ip, .b = ext_ip, .port = int_port, .proto = proto};
    struct cds_lfht_iter it;
    struct cds_lfht_node *n;
    struct ct_map *m;
    unsigned range = (unsigned)t->port_max - t->port_min + 1;

    cds_lfht_lookup(t->maps, mkey_hash(&ki), map_match, &ki, &it);
    n = cds_lfht_iter_get_node(&it);
    if (n) {
        m = caa_container_of(n, struct ct_mnode, n)->m;
        if (map_ref(m))
            return m;
    }
    uint32_t key = range_key(proto, ext_ip, reserved);
    uint64_t *full = &t->full[key % 16];
    uint32_t frees = __atomic_load_n(&t->map_frees, __ATOMIC_ACQUIRE);
    if (__atomic_load_n(full, __ATOMIC_RELAXED) == ((uint64_t)key << 32 | frees))
        return NULL; /* still full: nothing freed since the last search */
    m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->refs = 1;
    m->by_int.m = m->by_ext.m = m;
    m->by_int.k = ki;
    m->by_ext.k = (struct ct_mkey){.a = ext_ip, .port = 0, .proto = proto, .kind = 1};
    cds_lfht_node_init(&m->by_int.n);
    cds_lfht_node_init(&m->by_ext.n);

    uint32_t start = __atomic_add_fetch(&t->rnd, 0x9e3779b9u, __ATOMIC_RELAXED);
    for (unsigned i = 0; i <= range; i++) {
        uint16_t port;
        if (i == 0) {
            if (int_port < t->port_min || int_port > t->port_max)
                continue;
            port = int_port; /* preservation */
        } else {
            port = (uint16_t)(t->port_min + (hash_finish(start) + i) % range);
        }
        if (port_reserved(reserved, port))
            continue;
        __atomic_add_fetch(&t->port_probes, 1, __ATOMIC_RELAXED);
        m->by_ext.k.port = port;
        struct cds_lfht_node *got = cds_lfht_add_unique(
            t->maps, mkey_hash(&m->by_ext.k), map_match, &m->by_ext.k, &m->by_ext.n);
        if (got != &m->by_ext.n)
            continue; /* taken */
        m->ext_port = port;
        got = cds_lfht_add_unique(t->maps, mkey_hash(&ki), map_match, &ki, &m->by_int.n);
        if (got != &m->by_int.n) {
            /* another PMD mapped this endpoint at the same moment: use its */
            struct ct_map *other = caa_container_of(got, struct ct_mnode, n)->m;
            cds_lfht_del(t->maps, &m->by_ext.n);
            __atomic_add_fetch(&t->map_frees, 1, __ATOMIC_RELEASE);
            call_rcu(&m->rcu, map_free_rcu);
            return map_ref(other) ? other : NULL;
        }
        return m;
    }
    free(m);
    __atomic_store_n(full, (uint64_t)key << 32 | frees, __ATOMIC_RELAXED);
    return NULL;
}

static void conn_free_rcu(struct rcu_head *h)
{
    free(caa_container_of(h, struct ct_conn, rcu));
}

struct ct_conn *ct_create_conn(struct ct_table *t, struct l3_net_state *owner,
                               uint32_t limit, const struct ct_tuple *orig,
                               struct ct_tuple *reply, bool alloc_src_port,
                               const uint64_t *reserved_ports, uint32_t now, int *why,
                               int *dir)
{
    struct ct_conn *c;
    struct cds_lfht_node *got;

    *dir = 0;
    if (__atomic_add_fetch(&owner->ct_count, 1, __ATOMIC_RELAXED) > limit) {
        __atomic_sub_fetch(&owner->ct_count, 1, __ATOMIC_RELAXED);
        *why = DROP_NAT_TABLE_FULL;
        return NULL;
    }
    c = calloc(1, sizeof *c);
    if (!c)
        goto full;
    c->t[0] = *orig;
    c->owner = owner;
    c->expires = now + 10;
    if (alloc_src_port) {
        c->map = map_get(t, orig->proto, orig->src, orig->sport, reply->dst, reserved_ports);
        if (!c->map) {
            free(c);
            __atomic_sub_fetch(&owner->ct_count, 1, __ATOMIC_RELAXED);
            *why = DROP_NAT_PORTS_EXHAUSTED;
            return NULL;
        }
        reply->dport = c->map->ext_port;
        if (orig->proto == IPPROTO_ICMP_)
            reply->sport = reply->dport; /* the identifier, both ways */
    }
    c->t[1] = *reply;
    for (int d = 0; d < 2; d++) {
        cds_lfht_node_init(&c->node[d].n);
        c->node[d].c = c;
        c->node[d].dir = (uint8_t)d;
    }
    got = cds_lfht_add_unique(t->conns, tuple_hash(&c->t[0]), conn_match, &c->t[0],
                              &c->node[0].n);
    if (got != &c->node[0].n) {
        /* created by another PMD in the meantime (the other direction, or a
         * retransmission): that one counts */
        struct ct_node *cn = caa_container_of(got, struct ct_node, n);
        map_unref(t, c->map);
        free(c);
        __atomic_sub_fetch(&owner->ct_count, 1, __ATOMIC_RELAXED);
        *dir = cn->dir;
        return cn->c;
    }
    got = cds_lfht_add_unique(t->conns, tuple_hash(&c->t[1]), conn_match, &c->t[1],
                              &c->node[1].n);
    if (got != &c->node[1].n) {
        /* the reply tuple belongs to another connection: e.g. a forward and a
         * mapping that meet on one port */
        cds_lfht_del(t->conns, &c->node[0].n);
        map_unref(t, c->map);
        call_rcu(&c->rcu, conn_free_rcu);
        __atomic_sub_fetch(&owner->ct_count, 1, __ATOMIC_RELAXED);
        *why = DROP_NAT_PORTS_EXHAUSTED;
        return NULL;
    }
    __atomic_add_fetch(&t->n, 1, __ATOMIC_RELAXED);
    return c;
full:
    __atomic_sub_fetch(&owner->ct_count, 1, __ATOMIC_RELAXED);
    *why = DROP_NAT_TABLE_FULL;
    return NULL;
}

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_ACK 0x10

enum ct_tcp_state ct_tcp_next(enum ct_tcp_state s, int dir, uint8_t flags)
{
    if (flags & TH_RST)
        return CT_CLOSE;
    if ((flags & (TH_SYN | TH_ACK)) == TH_SYN) {
        if (s == CT_NONE || s == CT_CLOSE || s == CT_TIME_WAIT)
            return dir == 0 ? CT_SYN_SENT : CT_INVALID;
        return s; /* a retransmission */
    }
    if ((flags & (TH_SYN | TH_ACK)) == (TH_SYN | TH_ACK))
        return (s == CT_SYN_SENT || s == CT_SYN_RECV) && dir == 1 ? CT_SYN_RECV : s;
    switch (s) {
    case CT_NONE:
        return CT_INVALID; /* a connection starts with a SYN */
    case CT_SYN_RECV:
        if (dir == 0 && (flags & TH_ACK))
            return flags & TH_FIN ? CT_FIN_WAIT : CT_ESTABLISHED;
        return s;
    case CT_ESTABLISHED:
        if (flags & TH_FIN)
            return dir == 0 ? CT_FIN_WAIT : CT_CLOSE_WAIT;
        return s;
    case CT_FIN_WAIT:
        return (flags & TH_FIN) && dir == 1 ? CT_LAST_ACK : s;
    case CT_CLOSE_WAIT:
        return (flags & TH_FIN) && dir == 0 ? CT_LAST_ACK : s;
    case CT_LAST_ACK:
        return (flags & TH_ACK) && !(flags & TH_FIN) ? CT_TIME_WAIT : s;
    default:
        return s;
    }
}

static uint32_t timeout_of(const struct ct_conn *c, const uint32_t *to)
{
    switch (c->t[0].proto) {
    case IPPROTO_TCP_:
        switch ((enum ct_tcp_state)c->state) {
        case CT_SYN_SENT: return to[CT_TO_TCP_SYN_SENT];
        case CT_SYN_RECV: return to[CT_TO_TCP_SYN_RECV];
        case CT_ESTABLISHED: return to[CT_TO_TCP_ESTABLISHED];
        case CT_FIN_WAIT: return to[CT_TO_TCP_FIN_WAIT];
        case CT_CLOSE_WAIT: return to[CT_TO_TCP_CLOSE_WAIT];
        case CT_LAST_ACK: return to[CT_TO_TCP_LAST_ACK];
        case CT_TIME_WAIT: return to[CT_TO_TCP_TIME_WAIT];
        default: return to[CT_TO_TCP_CLOSE];
        }
    case IPPROTO_UDP_:
        return c->replied ? to[CT_TO_UDP_STREAM] : to[CT_TO_UDP];
    default:
        return to[CT_TO_ICMP];
    }
}

bool ct_conn_update(struct ct_conn *c, int dir, uint8_t tcp_flags, uint32_t len,
                    uint32_t now)
{
    const uint32_t *timeouts = c->owner->ct_timeouts;

    if (c->t[0].proto == IPPROTO_TCP_) {
        uint8_t s = __atomic_load_n(&c->state, __ATOMIC_RELAXED);
        for (;;) {
            enum ct_tcp_state ns = ct_tcp_next((enum ct_tcp_state)s, dir, tcp_flags);
            if (ns == CT_INVALID)
                return false;
            if (ns == s || __atomic_compare_exchange_n(&c->state, &s, (uint8_t)ns, false,
                                                       __ATOMIC_RELAXED, __ATOMIC_RELAXED))
                break;
        }
    }
    if (dir == 1 && !__atomic_load_n(&c->replied, __ATOMIC_RELAXED))
        __atomic_store_n(&c->replied, true, __ATOMIC_RELAXED);
    __atomic_fetch_add(&c->packets[dir], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&c->bytes[dir], len, __ATOMIC_RELAXED);
    uint32_t exp = now + timeout_of(c, timeouts);
    if (__atomic_load_n(&c->expires, __ATOMIC_RELAXED) != exp)
        __atomic_store_n(&c->expires, exp, __ATOMIC_RELAXED);
    return true;
}

/* One bucket per node: grow as soon as the nodes outnumber the buckets,
 * shrink only below an eighth (no flapping around a boundary). Online. */
static void ct_fit_buckets(struct ct_table *t)
{
    unsigned long nodes = 2ul * __atomic_load_n(&t->n, __ATOMIC_RELAXED);
    unsigned long want = CT_BUCKETS_MIN;

    while (want < nodes && want < CT_BUCKETS_MAX)
        want <<= 1;
    if (want > t->buckets || want * 8 <= t->buckets) {
        cds_lfht_resize(t->conns, want);
        cds_lfht_resize(t->maps, want);
        t->buckets = want;
    }
}

size_t ct_buckets(const struct ct_table *t)
{
    return t->buckets;
}

uint64_t ct_port_probes(const struct ct_table *t)
{
    return __atomic_load_n(&t->port_probes, __ATOMIC_RELAXED);
}

size_t ct_expire(struct ct_table *t, uint32_t now, bool flush,
                 const struct l3_net_state *owner)
{
    struct cds_lfht_iter it;
    struct ct_node *cn;
    size_t removed = 0;

    bool entered = reader_enter();
    ct_for_each_node (t, &it, cn) {
        struct ct_conn *c = cn->c;
        if (cn->dir != 0 || (owner && c->owner != owner))
            continue;
        if (!flush && (int32_t)(__atomic_load_n(&c->expires, __ATOMIC_RELAXED) - now) > 0)
            continue;
        if (cds_lfht_del(t->conns, &c->node[0].n))
            continue; /* someone else removed it */
        cds_lfht_del(t->conns, &c->node[1].n);
        __atomic_sub_fetch(&c->owner->ct_count, 1, __ATOMIC_RELAXED);
        __atomic_sub_fetch(&t->n, 1, __ATOMIC_RELAXED);
        map_unref(t, c->map);
        call_rcu(&c->rcu, conn_free_rcu);
        removed++;
    }
    ct_fit_buckets(t);
    reader_leave(entered);
    return removed;
}

static const char *const state_names[] = {
    [CT_NONE] = "NONE",           [CT_SYN_SENT] = "SYN_SENT",
    [CT_SYN_RECV] = "SYN_RECV",   [CT_ESTABLISHED] = "ESTABLISHED",
    [CT_FIN_WAIT] = "FIN_WAIT",   [CT_CLOSE_WAIT] = "CLOSE_WAIT",
    [CT_LAST_ACK] = "LAST_ACK",   [CT_TIME_WAIT] = "TIME_WAIT",
    [CT_CLOSE] = "CLOSE",         [CT_INVALID] = "INVALID",
};

static json_t *tuple_json(const struct ct_tuple *k)
{
    char a[16], b[16];
    struct in_addr x = {.s_addr = htonl(k->src)}, y = {.s_addr = htonl(k->dst)};
    inet_ntop(AF_INET, &x, a, sizeof a);
    inet_ntop(AF_INET, &y, b, sizeof b);
    if (k->proto == IPPROTO_ICMP_)
        return json_pack("{s:s, s:s, s:i}", "src", a, "dst", b, "id", k->sport);
    return json_pack("{s:s, s:i, s:s, s:i}", "src", a, "sport", k->sport, "dst", b, "dport",
                     k->dport);
}

json_t *ct_dump(struct ct_table *t, uint32_t now, const struct l3_net_state *owner)
{
    struct cds_lfht_iter it;
    struct ct_node *cn;
    json_t *arr = json_array();
    bool entered = reader_enter();
    ct_for_each_node (t, &it, cn) {
        struct ct_conn *c = cn->c;
        if (cn->dir != 0 || (owner && c->owner != owner))
            continue;
        int32_t left = (int32_t)(__atomic_load_n(&c->expires, __ATOMIC_RELAXED) - now);
        const char *proto = c->t[0].proto == IPPROTO_TCP_   ? "tcp"
                            : c->t[0].proto == IPPROTO_UDP_ ? "udp"
                                                            : "icmp";
        json_t *e = json_pack(
            "{s:s, s:s, s:s, s:o, s:o, s:i, s:b, s:I, s:I}", "net", c->owner->name, "proto",
            proto, "state",
            c->t[0].proto == IPPROTO_TCP_
                ? state_names[__atomic_load_n(&c->state, __ATOMIC_RELAXED) % 10]
                : (__atomic_load_n(&c->replied, __ATOMIC_RELAXED) ? "REPLIED" : "NEW"),
            "orig", tuple_json(&c->t[0]), "reply", tuple_json(&c->t[1]), "expires_in",
            left < 0 ? 0 : left, "replied", __atomic_load_n(&c->replied, __ATOMIC_RELAXED),
            "packets",
            (json_int_t)(__atomic_load_n(&c->packets[0], __ATOMIC_RELAXED) +
                         __atomic_load_n(&c->packets[1], __ATOMIC_RELAXED)),
            "bytes",
            (json_int_t)(__atomic_load_n(&c->bytes[0], __ATOMIC_RELAXED) +
                         __atomic_load_n(&c->bytes[1], __ATOMIC_RELAXED)));
        json_array_append_new(arr, e);
    }
    reader_leave(entered);
    return arr;
}

size_t ct_count(struct ct_table *t)
{
    return __atomic_load_n(&t->n, __ATOMIC_RELAXED);
}
