/* Each method validates its params first (invalid-params), then works on a
 * clone of the conf, so a refusal anywhere leaves the switch, the conf and the
 * db file as they were. */
#include "ctl_methods.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "l3.h"
#include "log.h"
#include "rpc.h"

struct ctl_methods {
    struct vswitch *sw;
    struct conf conf;
    char *db_path;
};

struct ctl_call {
    struct ctl_methods *m;
    const char *method;
    json_t *params; /* an object, never NULL */
    int *code;
    char *err;
    size_t errlen;
};

static json_t *call_fail(struct ctl_call *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static json_t *call_fail(struct ctl_call *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    *c->code = code;
    return NULL;
}

static int code_from_errno(int r)
{
    switch (r) {
    case -ENOENT: return RPC_NOT_FOUND;
    case -EEXIST: return RPC_ALREADY_EXISTS;
    case -ENOTSUP: return RPC_NOT_SUPPORTED;
    case -ENOMEM: return RPC_INTERNAL_ERROR;
    default: return RPC_INVALID_VALUE;
    }
}

/* ---- params ---- */

/* A string param; NULL (and the error set) if required and missing, or if of
 * the wrong type; NULL without error if optional and absent. */
static const char *param_string(struct ctl_call *c, const char *key, bool required,
                                bool *bad)
{
    json_t *v = json_object_get(c->params, key);
    if (!v && !required)
        return NULL;
    if (!json_is_string(v)) {
        call_fail(c, RPC_INVALID_PARAMS, "%s needs param \"%s\" (a string)", c->method, key);
        *bad = true;
        return NULL;
    }
    return json_string_value(v);
}

/* The "options" param ({"key": "value" or integer}) as KEY=VALUE strings. */
static int param_options(struct ctl_call *c, bool required, char ***out, size_t *n)
{
    json_t *o = json_object_get(c->params, "options");
    const char *key;
    json_t *v;

    *out = NULL;
    *n = 0;
    if (!o && !required)
        return 0;
    if (!json_is_object(o)) {
        call_fail(c, RPC_INVALID_PARAMS,
                  "%s needs param \"options\" (an object of KEY: VALUE)", c->method);
        return -1;
    }
    char **opts = calloc(json_object_size(o) + 1, sizeof *opts);
    if (!opts)
        goto nomem;
    json_object_foreach (o, key, v) {
        char *s = NULL;
        int r;
        if (json_is_string(v))
            r = asprintf(&s, "%s=%s", key, json_string_value(v));
        else if (json_is_integer(v))
            r = asprintf(&s, "%s=%lld", key, (long long)json_integer_value(v));
        else {
            call_fail(c, RPC_INVALID_PARAMS,
                      "option \"%.40s\" must be a string or an integer", key);
            goto fail;
        }
        if (r < 0)
            goto nomem;
        opts[(*n)++] = s;
    }
    *out = opts;
    return 0;
nomem:
    call_fail(c, RPC_INTERNAL_ERROR, "out of memory");
fail:
    for (size_t i = 0; opts && i < *n; i++)
        free(opts[i]);
    free(opts);
    *n = 0;
    return -1;
}

static void free_options(char **opts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(opts[i]);
    free(opts);
}

/* ---- committing a change ---- */

/* The file is written before the switch changes, so a full disk refuses the
 * change without touching what runs (no port closed and reopened under a
 * guest); only a failed rename, after the apply, needs the switch rolled back. */
static json_t *commit(struct ctl_call *c, struct conf *next)
{
    struct ctl_methods *m = c->m;
    struct db_staged st;
    char err[512];

    if (m->db_path && db_stage(m->db_path, next, &st, err, sizeof err)) {
        log_err("%s", err);
        conf_free(next);
        return call_fail(c, RPC_IO_ERROR, "%s; nothing was changed", err);
    }
    if (switch_apply(m->sw, next, err, sizeof err)) {
        if (m->db_path)
            db_abort(&st);
        conf_free(next);
        return call_fail(c, RPC_APPLY_FAILED, "%s", err);
    }
    int r = m->db_path ? db_commit(&st, err, sizeof err) : 0;
    if (r > 0)
        log_warn("%s", err); /* the file is the new one; only its durability is in doubt */
    if (r < 0) {
        char err2[512];
        log_err("%s", err);
        if (switch_apply(m->sw, &m->conf, err2, sizeof err2)) {
            /* The switch runs `next` and cannot go back: keep the model true to
             * what runs, and say that it is not saved. */
            log_err("cannot restore the previous configuration: %s", err2);
            conf_free(&m->conf);
            m->conf = *next;
            return call_fail(c, RPC_IO_ERROR,
                             "%s; the change is running but not saved, and the previous "
                             "configuration could not be restored (%s)",
                             err, err2);
        }
        conf_free(next);
        return call_fail(c, RPC_IO_ERROR, "%s; nothing was changed", err);
    }
    conf_free(&m->conf);
    m->conf = *next;
    return json_object();
}

static bool clone_conf(struct ctl_call *c, struct conf *next)
{
    if (conf_clone(next, &c->m->conf)) {
        call_fail(c, RPC_INTERNAL_ERROR, "out of memory");
        return false;
    }
    return true;
}

static json_t *edit_failed(struct ctl_call *c, struct conf *next, int r)
{
    conf_free(next);
    *c->code = code_from_errno(r);
    return NULL;
}

/* ---- methods ---- */

static json_t *m_add_br(struct ctl_call *c)
{
    bool bad = false;
    struct conf next;
    const char *br = param_string(c, "bridge", true, &bad);
    if (bad || !clone_conf(c, &next))
        return NULL;
    int r = conf_add_bridge(&next, br, c->err, c->errlen);
    return r ? edit_failed(c, &next, r) : commit(c, &next);
}

static json_t *m_del_br(struct ctl_call *c)
{
    bool bad = false;
    struct conf next;
    const char *br = param_string(c, "bridge", true, &bad);
    if (bad || !clone_conf(c, &next))
        return NULL;
    int r = conf_del_bridge(&next, br, c->err, c->errlen);
    return r ? edit_failed(c, &next, r) : commit(c, &next);
}

static json_t *m_set_br(struct ctl_call *c)
{
    bool bad = false;
    struct conf next;
    char **opts;
    size_t n;
    const char *br = param_string(c, "bridge", true, &bad);
    if (bad || param_options(c, true, &opts, &n))
        return NULL;
    if (!clone_conf(c, &next)) {
        free_options(opts, n);
        return NULL;
    }
    int r = conf_set_bridge(&next, br, (const char *const *)opts, n, c->err, c->errlen);
    free_options(opts, n);
    return r ? edit_failed(c, &next, r) : commit(c, &next);
}

static json_t *m_add_port(struct ctl_call *c)
{
    bool bad = false;
    struct conf next;
    char **opts;
    size_t n;
    const char *br = param_string(c, "bridge", true, &bad);
    const char *port = bad ? NULL : param_string(c, "port", true, &bad);
    if (bad || param_options(c, false, &opts, &n))
        return NULL;
    if (!clone_conf(c, &next)) {
        free_options(opts, n);
        return NULL;
    }
    int r = conf_add_port(&next, br, port, (const char *const *)opts, n, c->err, c->errlen);
    free_options(opts, n);
    return r ? edit_failed(c, &next, r) : commit(c, &next);
}

static json_t *m_set_port(struct ctl_call *c)
{
    bool bad = false;
    struct conf next;
    char **opts;
    size_t n;
    const char *port = param_string(c, "port", true, &bad);
    if (bad || param_options(c, true, &opts, &n))
        return NULL;
    if (!clone_conf(c, &next)) {
        free_options(opts, n);
        return NULL;
    }
    int r = conf_set_port(&next, port, (const char *const *)opts, n, c->err, c->errlen);
    free_options(opts, n);
    return r ? edit_failed(c, &next, r) : commit(c, &next);
}

static json_t *m_del_port(struct ctl_call *c)
{
    bool bad = false;
    struct conf next;
    const char *br = param_string(c, "bridge", false, &bad);
    const char *port = bad ? NULL : param_string(c, "port", true, &bad);
    if (bad || !clone_conf(c, &next))
        return NULL;
    int r = conf_del_port(&next, br, port, c->err, c->errlen);
    return r ? edit_failed(c, &next, r) : commit(c, &next);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static json_t *sorted_names(const char **names, size_t n)
{
    json_t *a = json_array();
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(names[i]));
    return a;
}

static json_t *m_list_br(struct ctl_call *c)
{
    const struct conf *cf = &c->m->conf;
    const char **names = calloc(cf->n_bridges + 1, sizeof *names);
    if (!names)
        return call_fail(c, RPC_INTERNAL_ERROR, "out of memory");
    for (size_t i = 0; i < cf->n_bridges; i++)
        names[i] = cf->bridges[i].name;
    json_t *r = sorted_names(names, cf->n_bridges);
    free(names);
    return r;
}

static json_t *m_list_ports(struct ctl_call *c)
{
    bool bad = false;
    const struct conf *cf = &c->m->conf;
    const char *br = param_string(c, "bridge", true, &bad);
    if (bad)
        return NULL;
    if (!conf_find_bridge(cf, br))
        return call_fail(c, RPC_NOT_FOUND, "bridge %.40s does not exist", br);
    const char **names = calloc(cf->n_ports + 1, sizeof *names);
    size_t n = 0;
    if (!names)
        return call_fail(c, RPC_INTERNAL_ERROR, "out of memory");
    for (size_t i = 0; i < cf->n_ports; i++)
        if (!strcmp(cf->ports[i].bridge, br))
            names[n++] = cf->ports[i].name;
    json_t *r = sorted_names(names, n);
    free(names);
    return r;
}

static json_t *nets_json(struct ctl_call *c);

static json_t *m_show(struct ctl_call *c)
{
    const struct conf *cf = &c->m->conf;
    json_t *bridges = json_array();
    for (size_t i = 0; i < cf->n_bridges; i++) {
        const struct conf_bridge *b = &cf->bridges[i];
        json_t *ports = json_array();
        for (size_t k = 0; k < cf->n_ports; k++) {
            const struct conf_port *p = &cf->ports[k];
            if (strcmp(p->bridge, b->name))
                continue;
            json_t *jp = conf_port_to_json(p);
            json_t *st = switch_port_status(c->m->sw, p->name);
            if (st)
                json_object_set_new(jp, "status", st);
            json_array_append_new(ports, jp);
        }
        json_array_append_new(bridges, json_pack("{s:s, s:I, s:o}", "name", b->name,
                                                 "ageing", (json_int_t)b->ageing, "ports",
                                                 ports));
    }
    return json_pack("{s:o, s:o}", "bridges", bridges, "networks", nets_json(c));
}

static json_t *m_fdb_show(struct ctl_call *c)
{
    bool bad = false;
    const char *br = param_string(c, "bridge", true, &bad);
    if (bad)
        return NULL;
    json_t *jv = json_object_get(c->params, "vlan");
    int vlan = -1;
    if (jv) {
        if (!json_is_integer(jv) || json_integer_value(jv) < 0 ||
            json_integer_value(jv) > 4094)
            return call_fail(c, RPC_INVALID_PARAMS,
                             "fdb-show param \"vlan\" must be an integer in 0-4094");
        vlan = (int)json_integer_value(jv);
    }
    if (!conf_find_bridge(&c->m->conf, br))
        return call_fail(c, RPC_NOT_FOUND, "bridge %.40s does not exist", br);
    json_t *r = switch_fdb_show(c->m->sw, br, vlan, c->err, c->errlen);
    if (!r)
        *c->code = RPC_INTERNAL_ERROR;
    return r;
}

static json_t *m_fdb_flush(struct ctl_call *c)
{
    bool bad = false;
    const char *br = param_string(c, "bridge", true, &bad);
    if (bad)
        return NULL;
    if (!conf_find_bridge(&c->m->conf, br))
        return call_fail(c, RPC_NOT_FOUND, "bridge %.40s does not exist", br);
    if (switch_fdb_flush(c->m->sw, br, c->err, c->errlen)) {
        *c->code = RPC_INTERNAL_ERROR;
        return NULL;
    }
    return json_object();
}

static json_t *m_port_stats(struct ctl_call *c)
{
    bool bad = false;
    const char *port = param_string(c, "port", false, &bad);
    if (bad)
        return NULL;
    if (port && !conf_find_port(&c->m->conf, port))
        return call_fail(c, RPC_NOT_FOUND, "port %.40s does not exist", port);
    json_t *r = switch_port_stats(c->m->sw, port, c->err, c->errlen);
    if (!r)
        *c->code = RPC_INTERNAL_ERROR;
    return r;
}

/* ---- networks ---- */

/* A method that edits a network: NET plus options, through fn. */
static json_t *net_edit(struct ctl_call *c, bool need_opts,
                        int (*fn)(struct conf *, const char *, const char *const *, size_t,
                                  char *, size_t))
{
    bool bad = false;
    struct conf next;
    char **opts;
    size_t n;
    const char *net = param_string(c, "network", true, &bad);
    if (bad || param_options(c, need_opts, &opts, &n))
        return NULL;
    if (!clone_conf(c, &next)) {
        free_options(opts, n);
        return NULL;
    }
    int r = fn(&next, net, (const char *const *)opts, n, c->err, c->errlen);
    free_options(opts, n);
    return r ? edit_failed(c, &next, r) : commit(c, &next);
}

static json_t *m_add_net(struct ctl_call *c)
{
    return net_edit(c, true, conf_add_net);
}

static json_t *m_set_net(struct ctl_call *c)
{
    return net_edit(c, true, conf_set_net);
}

static json_t *m_add_forward(struct ctl_call *c)
{
    return net_edit(c, true, conf_add_forward);
}

static json_t *m_del_forward(struct ctl_call *c)
{
    return net_edit(c, true, conf_del_forward);
}

static json_t *m_del_net(struct ctl_call *c)
{
    bool bad = false;
    struct conf next;
    const char *net = param_string(c, "network", true, &bad);
    if (bad || !clone_conf(c, &next))
        return NULL;
    int r = conf_del_net(&next, net, c->err, c->errlen);
    return r ? edit_failed(c, &next, r) : commit(c, &next);
}

static json_t *nets_json(struct ctl_call *c)
{
    const struct conf *cf = &c->m->conf;
    json_t *a = json_array();
    for (size_t i = 0; i < cf->n_nets; i++) {
        json_t *j = conf_net_to_json(&cf->nets[i]);
        uint8_t m[6];
        char mac[18];
        l3_derive_mac(cf->nets[i].name, 0, m);
        snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3],
                 m[4], m[5]);
        json_object_set_new(j, "gateway_mac", json_string(mac));
        json_array_append_new(a, j);
    }
    return a;
}

static json_t *m_list_nets(struct ctl_call *c)
{
    return nets_json(c);
}

static const char *net_param(struct ctl_call *c, bool required, bool *bad)
{
    const char *net = param_string(c, "network", required, bad);
    if (!*bad && net && !conf_find_net(&c->m->conf, net)) {
        call_fail(c, RPC_NOT_FOUND, "network %.40s does not exist", net);
        *bad = true;
    }
    return net;
}

static json_t *m_list_leases(struct ctl_call *c)
{
    bool bad = false;
    const char *net = net_param(c, true, &bad);
    return bad ? NULL : l3_leases_json(switch_l3(c->m->sw), net);
}

static json_t *m_ct_show(struct ctl_call *c)
{
    bool bad = false;
    const char *net = net_param(c, false, &bad);
    return bad ? NULL : l3_ct_show(switch_l3(c->m->sw), net);
}

static json_t *m_ct_flush(struct ctl_call *c)
{
    bool bad = false;
    const char *net = net_param(c, false, &bad);
    if (bad)
        return NULL;
    l3_ct_flush(switch_l3(c->m->sw), net);
    return json_object();
}

static const struct ctl_method {
    const char *name;
    json_t *(*fn)(struct ctl_call *c);
    const char *params[4]; /* the params it takes */
} methods[] = {
    {"show", m_show, {NULL}},
    {"add-br", m_add_br, {"bridge", NULL}},
    {"del-br", m_del_br, {"bridge", NULL}},
    {"list-br", m_list_br, {NULL}},
    {"set-br", m_set_br, {"bridge", "options", NULL}},
    {"add-port", m_add_port, {"bridge", "port", "options", NULL}},
    {"del-port", m_del_port, {"bridge", "port", NULL}},
    {"list-ports", m_list_ports, {"bridge", NULL}},
    {"set-port", m_set_port, {"port", "options", NULL}},
    {"fdb-show", m_fdb_show, {"bridge", "vlan", NULL}},
    {"fdb-flush", m_fdb_flush, {"bridge", NULL}},
    {"port-stats", m_port_stats, {"port", NULL}},
    {"add-net", m_add_net, {"network", "options", NULL}},
    {"set-net", m_set_net, {"network", "options", NULL}},
    {"del-net", m_del_net, {"network", NULL}},
    {"list-nets", m_list_nets, {NULL}},
    {"list-leases", m_list_leases, {"network", NULL}},
    {"add-forward", m_add_forward, {"network", "options", NULL}},
    {"del-forward", m_del_forward, {"network", "options", NULL}},
    {"ct-show", m_ct_show, {"network", NULL}},
    {"ct-flush", m_ct_flush, {"network", NULL}},
};
#define N_METHODS (sizeof methods / sizeof methods[0])

const char *const ctl_method_names[] = {
    "show", "add-br", "del-br", "list-br", "set-br", "add-port", "del-port",
    "list-ports", "set-port", "fdb-show", "fdb-flush", "port-stats", "add-net", "set-net",
    "del-net", "list-nets", "list-leases", "add-forward", "del-forward", "ct-show",
    "ct-flush", NULL,
};

json_t *ctl_methods_call(void *arg, const char *method, json_t *params, int *code,
                         char *err, size_t errlen)
{
    struct ctl_methods *m = arg;
    const struct ctl_method *cm = NULL;
    const char *key;
    json_t *v;

    for (size_t i = 0; i < N_METHODS; i++)
        if (!strcmp(methods[i].name, method))
            cm = &methods[i];
    if (!cm) {
        snprintf(err, errlen, "unknown method \"%.40s\" (vswitchctl --help lists them)",
                 method);
        *code = RPC_METHOD_NOT_FOUND;
        return NULL;
    }
    if (params && !json_is_object(params)) {
        snprintf(err, errlen, "params of %s must be an object with named params", method);
        *code = RPC_INVALID_PARAMS;
        return NULL;
    }
    json_object_foreach (params, key, v) {
        bool known = false;
        for (size_t i = 0; cm->params[i]; i++)
            known = known || !strcmp(cm->params[i], key);
        if (!known) {
            snprintf(err, errlen, "%s does not take param \"%.40s\"", method, key);
            *code = RPC_INVALID_PARAMS;
            return NULL;
        }
    }
    json_t *empty = params ? NULL : json_object();
    struct ctl_call c = {
        .m = m,
        .method = method,
        .params = params ? params : empty,
        .code = code,
        .err = err,
        .errlen = errlen,
    };
    *code = RPC_INTERNAL_ERROR;
    json_t *r = cm->fn(&c);
    json_decref(empty);
    if (r)
        log_debug("control: %s done", method);
    else
        log_info("control: %s refused: %s", method, err);
    return r;
}

struct ctl_methods *ctl_methods_create(struct vswitch *sw, struct conf *conf,
                                       const char *db_path)
{
    struct ctl_methods *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    if (db_path && !(m->db_path = strdup(db_path))) {
        free(m);
        return NULL;
    }
    if (db_path && switch_l3(sw)) {
        /* DHCP leases live beside the db: DIR/leases.json */
        char lp[4096];
        const char *sl = strrchr(db_path, '/');
        snprintf(lp, sizeof lp, "%.*sleases.json", sl ? (int)(sl - db_path + 1) : 0,
                 db_path);
        l3_state_set_leases_path(switch_l3(sw), lp);
    }
    m->sw = sw;
    m->conf = *conf;
    conf_init(conf);
    return m;
}

void ctl_methods_destroy(struct ctl_methods *m)
{
    if (!m)
        return;
    conf_free(&m->conf);
    free(m->db_path);
    free(m);
}

const struct conf *ctl_methods_conf(const struct ctl_methods *m)
{
    return &m->conf;
}
