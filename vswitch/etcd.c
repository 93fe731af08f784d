/* Discovery through etcd's v3 JSON gateway with libevent's HTTP client. The
 * model and the key layout are in etcd.h. One connection, one tick a second:
 * lease (grant, keepalive), publish what changed, read the prefix back. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "etcd.h"
#include "log.h"
#include "port_vxlan.h"
#include "switch.h"

#define ETCD_TICK_SECS 1
#define ETCD_TIMEOUT_SECS 3
#define ETCD_PUBLISHED_MAX 256

/* ---------------------------------------------------------------- base64 */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *etcd_b64_encode(const void *d, size_t len)
{
    const uint8_t *s = d;
    char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;

    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < len ? (uint32_t)s[i + 1] << 8 : 0) |
                     (i + 2 < len ? s[i + 2] : 0);
        *o++ = b64[v >> 18 & 63];
        *o++ = b64[v >> 12 & 63];
        *o++ = i + 1 < len ? b64[v >> 6 & 63] : '=';
        *o++ = i + 2 < len ? b64[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

char *etcd_b64_decode(const char *s, size_t *len)
{
    size_t n = strlen(s), o = 0;
    char *out;
    uint32_t acc = 0;
    int bits = 0;

    if (n % 4)
        return NULL;
    out = malloc(n / 4 * 3 + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const char *p = strchr(b64, s[i]);
        if (s[i] == '=') {
            if (i < n - 2 || (i == n - 2 && s[n - 1] != '='))
                goto bad;
            break;
        }
        if (!p || !s[i])
            goto bad;
        acc = acc << 6 | (uint32_t)(p - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)(acc >> bits & 0xff);
        }
    }
    out[o] = '\0';
    *len = o;
    return out;
bad:
    free(out);
    return NULL;
}

/* ---------------------------------------------------------------- JSON */

/* The gateway writes int64 as strings; accept numbers too. */
static int json_int64(const json_t *j, int64_t *v)
{
    if (json_is_integer(j)) {
        *v = json_integer_value(j);
        return 0;
    }
    if (json_is_string(j)) {
        char *end;
        errno = 0;
        long long x = strtoll(json_string_value(j), &end, 10);
        if (errno || *end || end == json_string_value(j))
            return -1;
        *v = x;
        return 0;
    }
    return -1;
}

void etcd_key(char *buf, size_t len, const char *prefix, uint32_t vni, uint32_t ip)
{
    char a[INET_ADDRSTRLEN];

    inet_ntop(AF_INET, &ip, a, sizeof(a));
    snprintf(buf, len, "%s/vni/%u/%s", prefix, vni, a);
}

int etcd_parse_key(const char *key, const char *prefix, uint32_t *vni, uint32_t *ip)
{
    size_t pl = strlen(prefix);
    char ipbuf[INET_ADDRSTRLEN + 1];
    unsigned long v;
    char *end;
    struct in_addr a;

    if (strncmp(key, prefix, pl) || strncmp(key + pl, "/vni/", 5))
        return -1;
    key += pl + 5;
    if (*key < '0' || *key > '9')
        return -1;
    v = strtoul(key, &end, 10);
    if (*end != '/' || v > 16777215)
        return -1;
    if (strlen(end + 1) >= sizeof(ipbuf))
        return -1;
    snprintf(ipbuf, sizeof(ipbuf), "%s", end + 1);
    if (inet_pton(AF_INET, ipbuf, &a) != 1)
        return -1;
    *vni = (uint32_t)v;
    *ip = a.s_addr;
    return 0;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
    unsigned m[6];
    char tail;

    if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5],
               &tail) != 6)
        return -1;
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)m[i];
    return 0;
}

char *etcd_vtep_value(uint32_t ip, const uint8_t (*macs)[6], unsigned n)
{
    json_t *j = json_object(), *arr = json_array();
    char a[INET_ADDRSTRLEN], *s;

    inet_ntop(AF_INET, &ip, a, sizeof(a));
    json_object_set_new(j, "vtep", json_string(a));
    for (unsigned i = 0; i < n; i++) {
        char m[18];
        snprintf(m, sizeof(m), "%02x:%02x:%02x:%02x:%02x:%02x", macs[i][0], macs[i][1],
                 macs[i][2], macs[i][3], macs[i][4], macs[i][5]);
        json_array_append_new(arr, json_string(m));
    }
    json_object_set_new(j, "macs", arr);
    s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

int etcd_parse_vtep_value(const char *s, size_t len, struct etcd_vtep *v)
{
    json_t *j = json_loadb(s, len, 0, NULL), *macs, *m;
    const char *ip;
    struct in_addr a;
    size_t i;
    int r = -1;

    if (!json_is_object(j))
        goto out;
    ip = json_string_value(json_object_get(j, "vtep"));
    if (!ip || inet_pton(AF_INET, ip, &a) != 1)
        goto out;
    v->ip = a.s_addr;
    v->n_macs = 0;
    macs = json_object_get(j, "macs");
    if (macs && !json_is_array(macs))
        goto out;
    json_array_foreach (macs, i, m) {
        if (v->n_macs == ETCD_MACS_MAX)
            break;
        if (json_is_string(m) && !parse_mac(json_string_value(m), v->macs[v->n_macs]) &&
            !(v->macs[v->n_macs][0] & 1))
            v->n_macs++;
    }
    r = 0;
out:
    json_decref(j);
    return r;
}

void etcd_view_free(struct etcd_view *view)
{
    free(view->vteps);
    view->vteps = NULL;
    view->n = 0;
}

int etcd_parse_range(const char *body, size_t len, const char *prefix,
                     struct etcd_view *view)
{
    json_t *j = json_loadb(body, len, 0, NULL), *kvs, *kv;
    size_t i;
    int r = -1;

    memset(view, 0, sizeof(*view));
    if (!json_is_object(j) || json_int64(json_object_get(json_object_get(j, "header"),
                                                         "revision"),
                                         &view->revision))
        goto out;
    kvs = json_object_get(j, "kvs");
    if (kvs && !json_is_array(kvs))
        goto out;
    view->vteps = calloc(json_array_size(kvs) + 1, sizeof(*view->vteps));
    if (!view->vteps)
        goto out;
    json_array_foreach (kvs, i, kv) {
        const char *kb = json_string_value(json_object_get(kv, "key"));
        const char *vb = json_string_value(json_object_get(kv, "value"));
        struct etcd_vtep *v = &view->vteps[view->n];
        char *key = NULL, *val = NULL;
        size_t kl, vl;
        uint32_t ip;

        if (kb && vb && (key = etcd_b64_decode(kb, &kl)) && (val = etcd_b64_decode(vb, &vl)) &&
            strlen(key) == kl && !etcd_parse_key(key, prefix, &v->vni, &ip) &&
            !etcd_parse_vtep_value(val, vl, v) && v->ip == ip)
            view->n++;
        free(key);
        free(val);
    }
    r = 0;
out:
    if (r)
        etcd_view_free(view);
    json_decref(j);
    return r;
}

int etcd_parse_lease_grant(const char *body, size_t len, int64_t *id)
{
    json_t *j = json_loadb(body, len, 0, NULL);
    int r = -1;

    if (json_is_object(j) && !json_int64(json_object_get(j, "ID"), id) && *id)
        r = 0;
    json_decref(j);
    return r;
}

int etcd_parse_keepalive(const char *body, size_t len, int64_t *ttl)
{
    json_t *j = json_loadb(body, len, 0, NULL), *res;
    int r = -1;

    if (!json_is_object(j))
        goto out;
    res = json_object_get(j, "result");
    if (!json_is_object(res))
        goto out;
    /* an expired lease comes back without TTL (0 is omitted) */
    *ttl = 0;
    if (json_object_get(res, "TTL") && json_int64(json_object_get(res, "TTL"), ttl))
        goto out;
    r = 0;
out:
    json_decref(j);
    return r;
}

int etcd_parse_url(const char *url, struct etcd_url *u, char *err, size_t errlen)
{
    struct evhttp_uri *uri = evhttp_uri_parse(url);
    const char *host, *path, *query;
    struct in_addr a;
    int port;

    memset(u, 0, sizeof(*u));
    if (!uri)
        goto bad;
    host = evhttp_uri_get_host(uri);
    port = evhttp_uri_get_port(uri);
    path = evhttp_uri_get_path(uri);
    query = evhttp_uri_get_query(uri);
    if (!evhttp_uri_get_scheme(uri) || strcmp(evhttp_uri_get_scheme(uri), "http") || !host ||
        inet_pton(AF_INET, host, &a) != 1 || strlen(host) >= sizeof(u->host))
        goto bad;
    snprintf(u->host, sizeof(u->host), "%s", host);
    u->port = port > 0 ? (uint16_t)port : 2379;
    snprintf(u->prefix, sizeof(u->prefix), "%s",
             path && *path && strcmp(path, "/") ? path : ETCD_PREFIX_DEFAULT);
    if (strlen(path ? path : "") >= sizeof(u->prefix))
        goto bad;
    u->prefix[strcspn(u->prefix, "")] = '\0';
    while (strlen(u->prefix) > 1 && u->prefix[strlen(u->prefix) - 1] == '/')
        u->prefix[strlen(u->prefix) - 1] = '\0';
    u->ttl = ETCD_TTL_DEFAULT;
    if (query && *query) {
        char *end;
        unsigned long t;
        if (strncmp(query, "ttl=", 4))
            goto bad;
        t = strtoul(query + 4, &end, 10);
        if (*end || t < 2 || t > 3600)
            goto bad;
        u->ttl = (unsigned)t;
    }
    evhttp_uri_free(uri);
    return 0;
bad:
    if (uri)
        evhttp_uri_free(uri);
    snprintf(err, errlen,
             "--etcd %.100s: use http://IP:PORT[/PREFIX][?ttl=SECONDS] (e.g. "
             "http://127.0.0.1:2379/vswitch?ttl=10; TTL 2-3600)",
             url);
    return -1;
}

/* ---------------------------------------------------------------- client */

struct published {
    char key[192];
    char *value;
    bool want; /* still wanted this tick */
};

enum req_kind { REQ_GRANT, REQ_KEEPALIVE, REQ_PUT, REQ_DELETE, REQ_RANGE };

struct etcd_req {
    struct etcd_req *next;
    struct etcd *e;
    enum req_kind kind;
};

struct etcd {
    struct event_base *base;
    struct vswitch *sw;
    struct etcd_url url;
    struct evhttp_connection *conn;
    struct event *tick;
    struct etcd_req *reqs;    /* in flight */
    unsigned inflight;
    int64_t lease;            /* 0: none */
    unsigned since_keepalive;
    int64_t revision;         /* of the last view applied */
    struct etcd_view view;
    struct published pub[ETCD_PUBLISHED_MAX];
    size_t n_pub;
    bool warned_down;
};

static void etcd_request_done(struct evhttp_request *req, void *arg);

static void etcd_post(struct etcd *e, enum req_kind kind, const char *path, json_t *body)
{
    struct etcd_req *r = calloc(1, sizeof(*r));
    struct evhttp_request *req;
    char *s = json_dumps(body, JSON_COMPACT);

    json_decref(body);
    if (!r || !s)
        goto fail;
    r->e = e;
    r->kind = kind;
    req = evhttp_request_new(etcd_request_done, r);
    if (!req)
        goto fail;
    evhttp_add_header(evhttp_request_get_output_headers(req), "Host", e->url.host);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json");
    evbuffer_add(evhttp_request_get_output_buffer(req), s, strlen(s));
    free(s);
    s = NULL;
    if (evhttp_make_request(e->conn, req, EVHTTP_REQ_POST, path) < 0)
        goto fail; /* libevent freed req */
    r->next = e->reqs;
    e->reqs = r;
    e->inflight++;
    return;
fail:
    free(s);
    free(r);
    log_warn("etcd: cannot send a request to %s:%u", e->url.host, e->url.port);
}

static json_t *b64_json(const char *s)
{
    char *b = etcd_b64_encode(s, strlen(s));
    json_t *j = json_string(b ? b : "");
    free(b);
    return j;
}

static void lease_id_json(json_t *j, const char *name, int64_t id)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%lld", (long long)id);
    json_object_set_new(j, name, json_string(buf));
}

static void etcd_put(struct etcd *e, const char *key, const char *value)
{
    json_t *j = json_object();
    json_object_set_new(j, "key", b64_json(key));
    json_object_set_new(j, "value", b64_json(value));
    lease_id_json(j, "lease", e->lease);
    etcd_post(e, REQ_PUT, "/v3/kv/put", j);
}

static void etcd_delete(struct etcd *e, const char *key)
{
    json_t *j = json_object();
    json_object_set_new(j, "key", b64_json(key));
    etcd_post(e, REQ_DELETE, "/v3/kv/deleterange", j);
}

/* ---- what this switch publishes ---- */

struct macs_ctx {
    uint8_t (*macs)[6];
    unsigned n;
};

struct publish_ctx {
    struct etcd *e;
};

static bool port_is_vxlan_named(const char *name);

static void publish_port(void *arg, struct port *p, const struct vxlan_info *i)
{
    struct publish_ctx *pc = arg;
    struct etcd *e = pc->e;
    char err[128];

    (void)p;
    if (!i->local)
        return;
    for (unsigned k = 0; k < i->n_vni; k++) {
        uint8_t macs[ETCD_MACS_MAX][6];
        unsigned n = 0;
        json_t *fdb = switch_fdb_show(e->sw, i->bridge, i->vlan[k], err, sizeof(err));
        json_t *ent;
        size_t x;
        char key[192], *value;

        json_array_foreach (fdb, x, ent) {
            const char *port = json_string_value(json_object_get(ent, "port"));
            const char *mac = json_string_value(json_object_get(ent, "mac"));
            if (n < ETCD_MACS_MAX && port && mac && !port_is_vxlan_named(port) &&
                !parse_mac(mac, macs[n]))
                n++;
        }
        json_decref(fdb);
        etcd_key(key, sizeof(key), e->url.prefix, i->vni[k], i->local);
        value = etcd_vtep_value(i->local, (const uint8_t(*)[6])macs, n);
        if (!value)
            continue;
        struct published *pb = NULL;
        for (size_t q = 0; q < e->n_pub && !pb; q++)
            if (!strcmp(e->pub[q].key, key))
                pb = &e->pub[q];
        if (!pb && e->n_pub < ETCD_PUBLISHED_MAX) {
            pb = &e->pub[e->n_pub++];
            snprintf(pb->key, sizeof(pb->key), "%s", key);
            pb->value = NULL;
        }
        if (!pb) {
            free(value);
            continue;
        }
        pb->want = true;
        if (pb->value && !strcmp(pb->value, value)) {
            free(value);
            continue;
        }
        etcd_put(e, key, value);
        free(pb->value);
        pb->value = value;
    }
}

struct name_ctx {
    const char *name;
    bool found;
};

static void name_is_vxlan(void *arg, struct port *p, const struct vxlan_info *i)
{
    struct name_ctx *c = arg;
    (void)p;
    c->found |= !strcmp(c->name, i->port);
}

static bool port_is_vxlan_named(const char *name)
{
    struct name_ctx c = {.name = name};
    vxlan_foreach(name_is_vxlan, &c);
    return c.found;
}

static void etcd_publish(struct etcd *e)
{
    struct publish_ctx pc = {.e = e};

    for (size_t q = 0; q < e->n_pub; q++)
        e->pub[q].want = false;
    vxlan_foreach(publish_port, &pc);
    for (size_t q = 0; q < e->n_pub;) {
        if (e->pub[q].want) {
            q++;
            continue;
        }
        etcd_delete(e, e->pub[q].key);
        free(e->pub[q].value);
        e->pub[q] = e->pub[--e->n_pub];
    }
}

/* ---- what the others published ---- */

static void apply_port(void *arg, struct port *p, const struct vxlan_info *i)
{
    struct etcd *e = arg;

    for (unsigned k = 0; k < i->n_vni; k++) {
        uint32_t ips[VXLAN_REMOTES_MAX];
        unsigned n = 0;

        for (size_t v = 0; v < e->view.n; v++) {
            const struct etcd_vtep *t = &e->view.vteps[v];
            if (t->vni != i->vni[k] || t->ip == i->local)
                continue;
            if (n < VXLAN_REMOTES_MAX)
                ips[n++] = t->ip;
            for (unsigned m = 0; m < t->n_macs; m++)
                vxlan_pin_mac(p, k, t->macs[m], t->ip);
        }
        vxlan_set_discovered(p, k, ips, n);
    }
}

static void etcd_apply(struct etcd *e)
{
    vxlan_foreach(apply_port, e);
}

static void etcd_request_done(struct evhttp_request *req, void *arg)
{
    struct etcd_req *r = arg, **pp;
    struct etcd *e = r->e;
    int code = req ? evhttp_request_get_response_code(req) : 0;
    struct evbuffer *in = req ? evhttp_request_get_input_buffer(req) : NULL;
    size_t len = in ? evbuffer_get_length(in) : 0;
    const char *body = in ? (const char *)evbuffer_pullup(in, -1) : NULL;
    int64_t v;

    for (pp = &e->reqs; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    e->inflight--;
    if (code != 200) {
        if (!e->warned_down)
            log_warn("etcd %s:%u: %s", e->url.host, e->url.port,
                     code ? "request refused" : "not reachable");
        e->warned_down = true;
        /* on a failed lease call start over with a new lease */
        if (r->kind == REQ_GRANT || r->kind == REQ_KEEPALIVE || r->kind == REQ_PUT)
            e->lease = 0;
        goto out;
    }
    if (e->warned_down)
        log_info("etcd %s:%u: reachable", e->url.host, e->url.port);
    e->warned_down = false;
    switch (r->kind) {
    case REQ_GRANT:
        if (etcd_parse_lease_grant(body, len, &v) == 0) {
            e->lease = v;
            e->since_keepalive = 0;
            /* everything is published again under the new lease */
            for (size_t q = 0; q < e->n_pub; q++) {
                free(e->pub[q].value);
                e->pub[q].value = NULL;
            }
            log_info("etcd: lease %llx, TTL %u s", (unsigned long long)v, e->url.ttl);
        }
        break;
    case REQ_KEEPALIVE:
        if (etcd_parse_keepalive(body, len, &v) < 0 || v <= 0) {
            log_warn("etcd: lease %llx expired: publishing again",
                     (unsigned long long)e->lease);
            e->lease = 0;
        }
        break;
    case REQ_RANGE: {
        struct etcd_view view;
        if (etcd_parse_range(body, len, e->url.prefix, &view) < 0)
            break;
        etcd_view_free(&e->view);
        e->view = view;
        if (view.revision != e->revision)
            log_debug("etcd: revision %lld, %zu VTEP entries", (long long)view.revision,
                      view.n);
        e->revision = view.revision;
        etcd_apply(e);
        break;
    }
    default:
        break;
    }
out:
    free(r);
}

static void etcd_tick(evutil_socket_t fd, short what, void *arg)
{
    struct etcd *e = arg;
    char end[160];

    (void)fd;
    (void)what;
    if (e->inflight) /* the previous tick's requests are still out */
        return;
    if (!e->lease) {
        json_t *j = json_object();
        char ttl[16];
        snprintf(ttl, sizeof(ttl), "%u", e->url.ttl);
        json_object_set_new(j, "TTL", json_string(ttl));
        etcd_post(e, REQ_GRANT, "/v3/lease/grant", j);
        return;
    }
    if (++e->since_keepalive * 3 >= e->url.ttl) {
        json_t *j = json_object();
        lease_id_json(j, "ID", e->lease);
        etcd_post(e, REQ_KEEPALIVE, "/v3/lease/keepalive", j);
        e->since_keepalive = 0;
    }
    etcd_publish(e);
    /* the whole prefix: [PREFIX/, PREFIX0) */
    json_t *j = json_object();
    snprintf(end, sizeof(end), "%s/", e->url.prefix);
    json_object_set_new(j, "key", b64_json(end));
    end[strlen(end) - 1] = '0';
    json_object_set_new(j, "range_end", b64_json(end));
    etcd_post(e, REQ_RANGE, "/v3/kv/range", j);
}

struct etcd *etcd_start(struct event_base *base, struct vswitch *sw, const char *url,
                        char *err, size_t errlen)
{
    struct etcd *e = calloc(1, sizeof(*e));
    struct timeval tv = {ETCD_TICK_SECS, 0};

    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    e->base = base;
    e->sw = sw;
    e->revision = -1;
    if (etcd_parse_url(url, &e->url, err, errlen) < 0)
        goto fail;
    e->conn = evhttp_connection_base_new(base, NULL, e->url.host, e->url.port);
    e->tick = event_new(base, -1, EV_PERSIST, etcd_tick, e);
    if (!e->conn || !e->tick) {
        snprintf(err, errlen, "cannot set up the etcd client");
        goto fail;
    }
    evhttp_connection_set_timeout(e->conn, ETCD_TIMEOUT_SECS);
    event_add(e->tick, &tv);
    log_info("etcd discovery: %s:%u prefix %s, lease TTL %u s (polled every %d s)",
             e->url.host, e->url.port, e->url.prefix, e->url.ttl, ETCD_TICK_SECS);
    etcd_tick(-1, 0, e);
    return e;
fail:
    etcd_stop(e);
    return NULL;
}

void etcd_stop(struct etcd *e)
{
    if (!e)
        return;
    if (e->tick)
        event_free(e->tick);
    if (e->conn)
        evhttp_connection_free(e->conn); /* drops queued requests without callbacks */
    while (e->reqs) {
        struct etcd_req *r = e->reqs;
        e->reqs = r->next;
        free(r);
    }
    for (size_t q = 0; q < e->n_pub; q++)
        free(e->pub[q].value);
    etcd_view_free(&e->view);
    free(e);
}
