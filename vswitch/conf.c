/* The configuration model. Every edit works on a copy of the one thing it
 * changes and stores it only once everything has been checked, so a failed
 * edit leaves the conf as it was. */
#include "conf.h"
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VLAN_MAX      4094
#define AGEING_MAX    604800 /* a week */
#define MTU_MIN       68
#define MTU_MAX       65535
#define VNI_MAX       16777215

int conf_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ---- port types ---- */

static const char *const port_type_names[] = {
    [PORT_TYPE_VHOST_USER] = "vhost-user",
    [PORT_TYPE_TAP] = "tap",
    [PORT_TYPE_INTERNAL] = "internal",
    [PORT_TYPE_AFXDP] = "afxdp",
    [PORT_TYPE_DPDK] = "dpdk",
    [PORT_TYPE_VXLAN] = "vxlan",
};
#define N_PORT_TYPES (sizeof port_type_names / sizeof port_type_names[0])

const char *port_type_name(enum port_type t)
{
    return (unsigned)t < N_PORT_TYPES ? port_type_names[t] : "unknown";
}

int port_type_from_name(const char *s)
{
    for (size_t i = 0; i < N_PORT_TYPES; i++)
        if (!strcmp(s, port_type_names[i]))
            return (int)i;
    return -1;
}

/* Types whose keys are parsed but which later issues implement, or which
 * this build leaves out (afxdp without libxdp, dpdk without -Ddpdk=enabled). */
static bool port_type_supported(enum port_type t)
{
#ifdef HAVE_AFXDP
    if (t == PORT_TYPE_AFXDP)
        return true;
#endif
#ifdef HAVE_DPDK
    if (t == PORT_TYPE_DPDK)
        return true;
#endif
    return t == PORT_TYPE_VHOST_USER || t == PORT_TYPE_TAP || t == PORT_TYPE_INTERNAL ||
           t == PORT_TYPE_VXLAN;
}

/* ---- small parsers ---- */

int conf_next_pair(const char **s, char sep, char *buf, size_t size, char **key, char **val)
{
    size_t len = strcspn(*s, ",");
    char *at;

    if (!**s)
        return 0;
    if (!len || len >= size)
        return -1;
    memcpy(buf, *s, len);
    buf[len] = '\0';
    at = strchr(buf, sep);
    if (!at)
        return -1;
    *at = '\0';
    *key = buf;
    *val = at + 1;
    *s += len;
    if (**s == ',' && !*++*s)
        return -1;
    return 1;
}

bool conf_parse_uint(const char *s, unsigned long min, unsigned long max,
                     unsigned long *out)
{
    unsigned long v = 0;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > max)
            return false;
    }
    if (v < min)
        return false;
    *out = v;
    return true;
}

static bool name_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
}

int conf_check_name(const char *what, const char *name, char *err, size_t errlen)
{
    size_t n = strlen(name);
    bool ok = n >= 1 && n < CONF_NAME_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = name_char_ok(name[i]);
    if (!ok)
        return conf_fail(err, errlen, -EINVAL,
                    "%s name \"%.40s\" is invalid: use 1 to %d of the characters "
                    "A-Z a-z 0-9 _ . -",
                    what, name, CONF_NAME_MAX - 1);
    return 0;
}

static int check_ifname(const char *key, const char *v, char *err, size_t errlen)
{
    size_t n = strlen(v);
    bool ok = n >= 1 && n < CONF_IFNAME_MAX && strcmp(v, ".") && strcmp(v, "..");
    for (size_t i = 0; ok && i < n; i++)
        ok = name_char_ok(v[i]);
    if (!ok)
        return conf_fail(err, errlen, -EINVAL,
                    "%s=%.40s is not a valid interface name: use 1 to %d of the "
                    "characters A-Z a-z 0-9 _ . -",
                    key, v, CONF_IFNAME_MAX - 1);
    return 0;
}

static int parse_vlan_id(const char *key, const char *v, uint16_t *out, char *err,
                         size_t errlen)
{
    unsigned long n;
    if (!conf_parse_uint(v, 1, VLAN_MAX, &n))
        return conf_fail(err, errlen, -EINVAL, "%s=%.40s is not a VLAN: use a number in 1-4094",
                    key, v);
    *out = (uint16_t)n;
    return 0;
}

static void bit_set(uint64_t *b, unsigned i)
{
    b[i / 64] |= 1ull << (i % 64);
}

static bool bit_test(const uint64_t *b, unsigned i)
{
    return b[i / 64] >> (i % 64) & 1;
}

int conf_parse_vlan_list(const char *s, uint64_t bitmap[64], char *err, size_t errlen)
{
    uint64_t b[64] = {0};
    const char *p = s;

    if (!*s)
        return conf_fail(err, errlen, -EINVAL, "the VLAN list is empty: use e.g. 10,20,30-40");
    while (*p) {
        char tok[32];
        size_t n = strcspn(p, ",");
        if (n == 0 || n >= sizeof tok)
            return conf_fail(err, errlen, -EINVAL,
                        "\"%.60s\" is not a VLAN list: use VLANs and ranges in 1-4094 "
                        "separated by commas, e.g. 10,20,30-40",
                        s);
        memcpy(tok, p, n);
        tok[n] = '\0';
        char *dash = strchr(tok, '-');
        unsigned long lo, hi;
        if (dash) {
            *dash = '\0';
            if (!conf_parse_uint(tok, 1, VLAN_MAX, &lo) || !conf_parse_uint(dash + 1, 1, VLAN_MAX, &hi))
                goto bad_item;
            if (lo > hi)
                return conf_fail(err, errlen, -EINVAL,
                            "VLAN range %lu-%lu is backwards: write the lower VLAN first",
                            lo, hi);
        } else {
            if (!conf_parse_uint(tok, 1, VLAN_MAX, &lo))
                goto bad_item;
            hi = lo;
        }
        for (unsigned long v = lo; v <= hi; v++)
            bit_set(b, (unsigned)v);
        p += n;
        if (*p == ',') {
            p++;
            if (!*p)
                return conf_fail(err, errlen, -EINVAL,
                            "\"%.60s\" is not a VLAN list: it ends with a comma", s);
        }
        continue;
    bad_item:
        memcpy(tok, p, n);
        tok[n] = '\0';
        return conf_fail(err, errlen, -EINVAL,
                    "\"%s\" in VLAN list \"%.60s\" is not a VLAN or range in 1-4094", tok,
                    s);
    }
    memcpy(bitmap, b, sizeof b);
    return 0;
}

void conf_format_vlan_list(const uint64_t bitmap[64], char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (unsigned v = 1; v <= VLAN_MAX; v++) {
        if (!bit_test(bitmap, v))
            continue;
        unsigned end = v;
        while (end + 1 <= VLAN_MAX && bit_test(bitmap, end + 1))
            end++;
        int n = end == v ? snprintf(buf + off, len - off, "%s%u", off ? "," : "", v)
                         : snprintf(buf + off, len - off, "%s%u-%u", off ? "," : "", v, end);
        if (n < 0 || (size_t)n >= len - off) {
            buf[off] = '\0';
            return;
        }
        off += (size_t)n;
        v = end;
    }
}

bool conf_vlan_trunks(const struct conf_vlan *v, uint16_t vid)
{
    if (v->mode == VLAN_MODE_ACCESS)
        return vid == v->tag;
    if (vid == 0)
        return v->native == 0 && v->trunks_all;
    if (vid == v->native)
        return true;
    if (vid > VLAN_MAX)
        return false;
    return v->trunks_all || bit_test(v->trunks, vid);
}

static int parse_mac(const char *v, uint8_t mac[6], char *err, size_t errlen)
{
    unsigned b[6];
    char tail;
    if (strlen(v) != 17 ||
        sscanf(v, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
               &tail) != 6)
        goto bad;
    for (int i = 0; i < 6; i++) {
        const char *h = v + i * 3;
        bool hex = true;
        for (int k = 0; k < 2; k++)
            hex = hex && ((h[k] >= '0' && h[k] <= '9') || (h[k] >= 'a' && h[k] <= 'f') ||
                          (h[k] >= 'A' && h[k] <= 'F'));
        if (!hex || (i < 5 && h[2] != ':'))
            goto bad;
        mac[i] = (uint8_t)b[i];
    }
    if (mac[0] & 1)
        return conf_fail(err, errlen, -EINVAL,
                    "mac=%s is a multicast address: a port needs a unicast MAC", v);
    if (!(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]))
        return conf_fail(err, errlen, -EINVAL, "mac=%s is the all-zero address: give a real MAC",
                    v);
    return 0;
bad:
    return conf_fail(err, errlen, -EINVAL,
                "mac=%.40s is not a MAC address: use six hex bytes, e.g. 52:54:00:12:34:56", v);
}

/* addr[16] filled, returns the family or 0. */
static int parse_ip(const char *s, uint8_t addr[16])
{
    if (inet_pton(AF_INET, s, addr) == 1)
        return AF_INET;
    if (inet_pton(AF_INET6, s, addr) == 1)
        return AF_INET6;
    return 0;
}

static int parse_cidr(const char *key, const char *v, uint8_t addr[16], unsigned *plen,
                      char *err, size_t errlen)
{
    char buf[64];
    const char *slash = strchr(v, '/');
    unsigned long n;
    if (!slash || (size_t)(slash - v) >= sizeof buf)
        goto bad;
    memcpy(buf, v, (size_t)(slash - v));
    buf[slash - v] = '\0';
    int af = parse_ip(buf, addr);
    if (!af || !conf_parse_uint(slash + 1, 1, af == AF_INET ? 32 : 128, &n))
        goto bad;
    *plen = (unsigned)n;
    return af;
bad:
    conf_fail(err, errlen, -EINVAL,
         "%s=%.60s is not an address with a prefix length: use e.g. 10.0.0.1/24 or "
         "fd00::1/64",
         key, v);
    return 0;
}

static bool same_subnet(const uint8_t *a, const uint8_t *b, unsigned plen)
{
    unsigned full = plen / 8, rest = plen % 8;
    if (memcmp(a, b, full))
        return false;
    if (!rest)
        return true;
    uint8_t m = (uint8_t)(0xff << (8 - rest));
    return (a[full] & m) == (b[full] & m);
}

/* ---- conf basics ---- */

void conf_init(struct conf *c)
{
    memset(c, 0, sizeof *c);
}

void conf_free(struct conf *c)
{
    free(c->bridges);
    free(c->ports);
    free(c->nets);
    conf_init(c);
}

int conf_clone(struct conf *dst, const struct conf *src)
{
    struct conf c;
    conf_init(&c);
    if (src->n_bridges) {
        c.bridges = malloc(src->n_bridges * sizeof *c.bridges);
        if (!c.bridges)
            goto nomem;
        memcpy(c.bridges, src->bridges, src->n_bridges * sizeof *c.bridges);
        c.n_bridges = src->n_bridges;
    }
    if (src->n_ports) {
        c.ports = malloc(src->n_ports * sizeof *c.ports);
        if (!c.ports)
            goto nomem;
        memcpy(c.ports, src->ports, src->n_ports * sizeof *c.ports);
        c.n_ports = src->n_ports;
    }
    if (src->n_nets) {
        c.nets = malloc(src->n_nets * sizeof *c.nets);
        if (!c.nets)
            goto nomem;
        memcpy(c.nets, src->nets, src->n_nets * sizeof *c.nets);
        c.n_nets = src->n_nets;
    }
    *dst = c;
    return 0;
nomem:
    conf_free(&c);
    return -ENOMEM;
}

struct conf_bridge *conf_find_bridge(const struct conf *c, const char *name)
{
    for (size_t i = 0; i < c->n_bridges; i++)
        if (!strcmp(c->bridges[i].name, name))
            return &c->bridges[i];
    return NULL;
}

struct conf_port *conf_find_port(const struct conf *c, const char *name)
{
    for (size_t i = 0; i < c->n_ports; i++)
        if (!strcmp(c->ports[i].name, name))
            return &c->ports[i];
    return NULL;
}

/* ---- bridges ---- */

int conf_add_bridge(struct conf *c, const char *name, char *err, size_t errlen)
{
    int r = conf_check_name("bridge", name, err, errlen);
    if (r)
        return r;
    if (conf_find_bridge(c, name))
        return conf_fail(err, errlen, -EEXIST, "bridge %s already exists", name);
    struct conf_bridge *nb = realloc(c->bridges, (c->n_bridges + 1) * sizeof *nb);
    if (!nb)
        return conf_fail(err, errlen, -ENOMEM, "out of memory");
    c->bridges = nb;
    memset(&nb[c->n_bridges], 0, sizeof *nb);
    snprintf(nb[c->n_bridges].name, CONF_NAME_MAX, "%s", name);
    nb[c->n_bridges].ageing = CONF_AGEING_DEFAULT;
    c->n_bridges++;
    return 0;
}

/* Deletes the bridge and, as ovs-vsctl del-br does, every port on it. */
int conf_del_bridge(struct conf *c, const char *name, char *err, size_t errlen)
{
    struct conf_bridge *b = conf_find_bridge(c, name);
    if (!b)
        return conf_fail(err, errlen, -ENOENT, "bridge %.40s does not exist", name);
    size_t j = 0;
    for (size_t i = 0; i < c->n_ports; i++)
        if (strcmp(c->ports[i].bridge, name))
            c->ports[j++] = c->ports[i];
    c->n_ports = j;
    j = 0; /* and its networks */
    for (size_t i = 0; i < c->n_nets; i++)
        if (strcmp(c->nets[i].bridge, name))
            c->nets[j++] = c->nets[i];
    c->n_nets = j;
    size_t bi = (size_t)(b - c->bridges);
    memmove(b, b + 1, (c->n_bridges - bi - 1) * sizeof *b);
    c->n_bridges--;
    return 0;
}

int conf_set_bridge(struct conf *c, const char *name, const char *const *opts,
                    size_t nopts, char *err, size_t errlen)
{
    struct conf_bridge *b = conf_find_bridge(c, name);
    if (!b)
        return conf_fail(err, errlen, -ENOENT, "bridge %.40s does not exist", name);
    if (!nopts)
        return conf_fail(err, errlen, -EINVAL, "nothing to set: give KEY=VALUE, e.g. ageing=300");
    struct conf_bridge nb = *b;
    bool seen_ageing = false;
    for (size_t i = 0; i < nopts; i++) {
        const char *eq = strchr(opts[i], '=');
        if (!eq)
            return conf_fail(err, errlen, -EINVAL, "\"%.40s\" is not KEY=VALUE", opts[i]);
        size_t klen = (size_t)(eq - opts[i]);
        if (klen != 6 || strncmp(opts[i], "ageing", 6))
            return conf_fail(err, errlen, -EINVAL,
                        "unknown bridge option \"%.*s\": bridges take ageing=SECONDS",
                        (int)(klen > 40 ? 40 : klen), opts[i]);
        if (seen_ageing)
            return conf_fail(err, errlen, -EINVAL, "ageing= is given twice");
        seen_ageing = true;
        unsigned long v;
        if (!conf_parse_uint(eq + 1, 0, AGEING_MAX, &v))
            return conf_fail(err, errlen, -EINVAL,
                        "ageing=%.40s is not valid: use seconds in 1-%d, or 0 for entries "
                        "that never age",
                        eq + 1, AGEING_MAX);
        nb.ageing = (unsigned)v;
    }
    *b = nb;
    return 0;
}

/* ---- port options ---- */

enum key_id {
    K_TYPE, K_SOCKET, K_MODE, K_QUEUES, K_IFNAME, K_IP, K_GW, K_VLAN_MODE, K_TAG,
    K_TRUNKS, K_NATIVE, K_MTU, K_MAC, K_DEV, K_QUEUE, K_DEVARGS, K_VNI, K_REMOTE,
    K_LOCAL, K_DSTPORT, K_N
};

#define T(x)  (1u << PORT_TYPE_##x)
#define T_ANY 0u

static const struct port_key {
    const char *name;
    unsigned types;  /* port types it applies to; T_ANY: all */
    bool numeric;    /* a JSON integer in the db file */
    bool clearable;  /* KEY= resets it to the default */
} port_keys[K_N] = {
    [K_TYPE] = {"type", T_ANY, false, false},
    [K_SOCKET] = {"socket", T(VHOST_USER), false, true},
    [K_MODE] = {"mode", T(VHOST_USER), false, false},
    [K_QUEUES] = {"queues", T(VHOST_USER), true, true},
    [K_IFNAME] = {"ifname", T(TAP) | T(INTERNAL), false, true},
    [K_IP] = {"ip", T_ANY, false, true},
    [K_GW] = {"gw", T_ANY, false, true},
    [K_VLAN_MODE] = {"vlan_mode", T_ANY, false, false},
    [K_TAG] = {"tag", T_ANY, true, false},
    [K_TRUNKS] = {"trunks", T_ANY, false, true},
    [K_NATIVE] = {"native", T_ANY, true, true},
    [K_MTU] = {"mtu", T_ANY, true, true},
    [K_MAC] = {"mac", T_ANY, false, true},
    [K_DEV] = {"dev", T(AFXDP), false, false},
    [K_QUEUE] = {"queue", T(AFXDP), true, false},
    [K_DEVARGS] = {"devargs", T(DPDK), false, false},
    [K_VNI] = {"vni", T(VXLAN), true, false},
    [K_REMOTE] = {"remote", T(VXLAN), false, false},
    [K_LOCAL] = {"local", T(VXLAN), false, false},
    [K_DSTPORT] = {"dstport", T(VXLAN), true, false},
};

static int key_lookup(const char *k, size_t len)
{
    for (int i = 0; i < K_N; i++)
        if (strlen(port_keys[i].name) == len && !strncmp(port_keys[i].name, k, len))
            return i;
    return -1;
}

/* Keys for the types not yet implemented: checked, so that a typo is reported
 * before "not supported". */
static int check_future_keys(const char *const *val, char *err, size_t errlen)
{
    unsigned long n;
    uint8_t a[16];
    int r;
    if (val[K_DEV] && (r = check_ifname("dev", val[K_DEV], err, errlen)))
        return r;
    if (val[K_QUEUE] && !conf_parse_uint(val[K_QUEUE], 0, 1023, &n))
        return conf_fail(err, errlen, -EINVAL, "queue=%.40s is not a queue number (0-1023)",
                    val[K_QUEUE]);
    if (val[K_DEVARGS] && !*val[K_DEVARGS])
        return conf_fail(err, errlen, -EINVAL, "devargs= needs a value, e.g. devargs=0000:01:00.0");
    if (val[K_DEVARGS] && strlen(val[K_DEVARGS]) >= CONF_DEVARGS_MAX)
        return conf_fail(err, errlen, -EINVAL, "devargs= is longer than %d characters",
                    CONF_DEVARGS_MAX - 1);
    if (val[K_VNI] && !strchr(val[K_VNI], ':') && /* maps: apply_vxlan */
        !conf_parse_uint(val[K_VNI], 0, VNI_MAX, &n))
        return conf_fail(err, errlen, -EINVAL, "vni=%.40s is not a VXLAN VNI (0-16777215)",
                    val[K_VNI]);
    if (val[K_DSTPORT] && !conf_parse_uint(val[K_DSTPORT], 1, 65535, &n))
        return conf_fail(err, errlen, -EINVAL, "dstport=%.40s is not a UDP port (1-65535)",
                    val[K_DSTPORT]);
    if (val[K_LOCAL] && !parse_ip(val[K_LOCAL], a))
        return conf_fail(err, errlen, -EINVAL, "local=%.60s is not an IP address", val[K_LOCAL]);
    if (val[K_REMOTE]) {
        const char *p = val[K_REMOTE];
        do {
            char ip[64];
            size_t len = strcspn(p, ",");
            if (!len || len >= sizeof ip)
                goto bad_remote;
            memcpy(ip, p, len);
            ip[len] = '\0';
            if (!parse_ip(ip, a))
                goto bad_remote;
            p += len;
        } while (*p++ == ',' && *p);
        if (p[-1] == ',')
            goto bad_remote;
    }
    return 0;
bad_remote:
    return conf_fail(err, errlen, -EINVAL,
                "remote=%.60s is not a list of IP addresses: use IP[,IP...]", val[K_REMOTE]);
}

/* ---- vxlan options ---- */

/* vni=N, or vni=VNI:VLAN[,VNI:VLAN...] for a trunk carrying several VNIs. */
static int parse_vni(const char *s, struct conf_port *q, char *err, size_t errlen)
{
    unsigned long n;

    q->n_vni_map = 0;
    if (!strchr(s, ':')) {
        if (!conf_parse_uint(s, 0, VNI_MAX, &n))
            return conf_fail(err, errlen, -EINVAL,
                        "vni=%.40s is not a VXLAN VNI (0-16777215) or a list of VNI:VLAN",
                        s);
        q->vni = (uint32_t)n;
        q->has_vni = true;
        return 0;
    }
    char item[40], *vni, *vl;
    const char *p = s;
    int r;
    while ((r = conf_next_pair(&p, ':', item, sizeof item, &vni, &vl)) > 0) {
        unsigned long vlan;
        if (!conf_parse_uint(vni, 0, VNI_MAX, &n) || !conf_parse_uint(vl, 1, VLAN_MAX, &vlan))
            goto bad;
        for (unsigned i = 0; i < q->n_vni_map; i++)
            if (q->vni_map[i].vni == n || q->vni_map[i].vlan == vlan)
                return conf_fail(err, errlen, -EINVAL,
                            "vni=: VNI %lu or VLAN %lu is mapped twice; each VNI is one VLAN",
                            n, vlan);
        if (q->n_vni_map == CONF_VNI_MAP_MAX)
            return conf_fail(err, errlen, -EINVAL, "vni=: at most %d VNI:VLAN pairs on one port",
                        CONF_VNI_MAP_MAX);
        q->vni_map[q->n_vni_map].vni = (uint32_t)n;
        q->vni_map[q->n_vni_map].vlan = (uint16_t)vlan;
        q->n_vni_map++;
    }
    if (r < 0)
        goto bad;
    q->vni = q->vni_map[0].vni;
    q->has_vni = true;
    return 0;
bad:
    return conf_fail(err, errlen, -EINVAL,
                "vni=%.60s is not valid: use vni=N or vni=VNI:VLAN[,VNI:VLAN...] "
                "(VNI 0-16777215, VLAN 1-4094)",
                s);
}

/* The underlay is IPv4 for now: the addresses are checked here, where a user
 * can act on the sentence. */
static int parse_vxlan_ipv4(const char *key, const char *s, char *err, size_t errlen)
{
    uint8_t a[16];
    int af = parse_ip(s, a);

    if (af == AF_INET6)
        return conf_fail(err, errlen, -EINVAL,
                    "%s=%.60s: the VXLAN underlay is IPv4 only in this build", key, s);
    if (af != AF_INET)
        return conf_fail(err, errlen, -EINVAL, "%s=%.60s is not an IPv4 address", key, s);
    if ((a[0] >= 224 && a[0] < 240) || !memcmp(a, "\xff\xff\xff\xff", 4))
        return conf_fail(err, errlen, -EINVAL,
                    "%s=%.60s is a multicast or broadcast address: give unicast VTEPs",
                    key, s);
    return 0;
}

static int apply_vxlan(struct conf_port *q, const struct conf_port *old, bool adding,
                       const char *const *val, char *err, size_t errlen)
{
    int r;

    if (val[K_VNI]) {
        bool was_map = !adding && old->n_vni_map;
        if ((r = parse_vni(val[K_VNI], q, err, errlen)))
            return r;
        /* leaving a map: the trunk list came from it, not from the user */
        if (was_map && !q->n_vni_map && !val[K_TRUNKS] && !val[K_VLAN_MODE] &&
            !val[K_TAG]) {
            memset(&q->vlan, 0, sizeof q->vlan);
            q->vlan.mode = VLAN_MODE_TRUNK;
            q->vlan.trunks_all = true;
        }
    }
    if (!q->has_vni)
        return conf_fail(err, errlen, -EINVAL,
                    "vxlan port %s needs vni=N (or vni=VNI:VLAN,... on a trunk)", q->name);
    if (q->n_vni_map) {
        /* A VNI map is the trunk's VLAN list. */
        if (q->vlan.mode == VLAN_MODE_ACCESS)
            return conf_fail(err, errlen, -EINVAL,
                        "vni=VNI:VLAN,... makes port %s a trunk: drop vlan_mode=access and "
                        "tag=, or give a single vni=N",
                        q->name);
        if (val[K_TRUNKS] && *val[K_TRUNKS])
            return conf_fail(err, errlen, -EINVAL,
                        "trunks= cannot be used with vni=VNI:VLAN,... on port %s: the map "
                        "lists the VLANs the port carries",
                        q->name);
        q->vlan.trunks_all = false;
        memset(q->vlan.trunks, 0, sizeof q->vlan.trunks);
        bool native_mapped = !q->vlan.native;
        for (unsigned i = 0; i < q->n_vni_map; i++) {
            uint16_t v = q->vni_map[i].vlan;
            q->vlan.trunks[v >> 6] |= 1ULL << (v & 63);
            native_mapped |= v == q->vlan.native;
        }
        if (!native_mapped)
            return conf_fail(err, errlen, -EINVAL,
                        "native=%u on port %s has no VNI: add it to vni=VNI:VLAN,...",
                        q->vlan.native, q->name);
    }
    if (val[K_LOCAL]) {
        if ((r = parse_vxlan_ipv4("local", val[K_LOCAL], err, errlen)))
            return r;
        snprintf(q->local, sizeof q->local, "%s", val[K_LOCAL]);
    }
    if (val[K_REMOTE]) {
        const char *p = val[K_REMOTE];
        if (strlen(p) >= sizeof q->remote)
            return conf_fail(err, errlen, -EINVAL, "remote= is longer than %zu characters",
                        sizeof q->remote - 1);
        while (*p) {
            char ip[64];
            size_t len = strcspn(p, ",");
            if (!len || len >= sizeof ip)
                return conf_fail(err, errlen, -EINVAL,
                            "remote=%.60s is not a list of IPv4 addresses: use IP[,IP...]",
                            val[K_REMOTE]);
            memcpy(ip, p, len);
            ip[len] = '\0';
            if ((r = parse_vxlan_ipv4("remote", ip, err, errlen)))
                return r;
            p += len;
            if (*p == ',' && !*++p)
                return conf_fail(err, errlen, -EINVAL,
                            "remote=%.60s ends with a comma: use IP[,IP...]", val[K_REMOTE]);
        }
        snprintf(q->remote, sizeof q->remote, "%s", val[K_REMOTE]);
    }
    if (val[K_DSTPORT]) {
        unsigned long n;
        if (!conf_parse_uint(val[K_DSTPORT], 1, 65535, &n))
            return conf_fail(err, errlen, -EINVAL, "dstport=%.40s is not a UDP port (1-65535)",
                        val[K_DSTPORT]);
        q->dstport = (uint16_t)n;
    }
    if (!q->dstport)
        q->dstport = CONF_VXLAN_PORT;
    return 0;
}

/* Two vxlan ports on one socket (local:dstport) must not claim one VNI. */
static int vxlan_check_unique(const struct conf_port *p, const struct conf_port *o,
                              char *err, size_t errlen)
{
    if (o->type != PORT_TYPE_VXLAN || p->dstport != o->dstport ||
        (p->local[0] && o->local[0] && strcmp(p->local, o->local)))
        return 0;
    for (unsigned i = 0; i < (p->n_vni_map ? p->n_vni_map : 1); i++) {
        uint32_t v = p->n_vni_map ? p->vni_map[i].vni : p->vni;
        for (unsigned k = 0; k < (o->n_vni_map ? o->n_vni_map : 1); k++)
            if (v == (o->n_vni_map ? o->vni_map[k].vni : o->vni))
                return conf_fail(err, errlen, -EEXIST,
                            "VNI %u on UDP port %u is already used by vxlan port %s", v,
                            p->dstport, o->name);
    }
    return 0;
}

/* afxdp dev=/queue= and dpdk devargs= (checked by check_future_keys). */
static int apply_uplink_keys(struct conf_port *q, const char *const *val, char *err,
                             size_t errlen)
{
    unsigned long n;
    int r;
    if ((r = check_future_keys(val, err, errlen)))
        return r;
    if (val[K_DEV])
        snprintf(q->dev, sizeof q->dev, "%s", val[K_DEV]);
    if (val[K_QUEUE] && conf_parse_uint(val[K_QUEUE], 0, 1023, &n))
        q->queue = (unsigned)n;
    if (val[K_DEVARGS])
        snprintf(q->devargs, sizeof q->devargs, "%s", val[K_DEVARGS]);
    return 0;
}

static int apply_vlan(struct conf_port *q, const struct conf_port *old, bool adding,
                      const char *const *val, char *err, size_t errlen)
{
    enum vlan_mode mode = adding ? VLAN_MODE_TRUNK : old->vlan.mode;
    /* vlan_mode is inferred from tag= or trunks=/native= only for a port with
     * no VLAN settings yet; a configured port changes mode only when told. */
    bool unset = adding || (old->vlan.mode == VLAN_MODE_TRUNK && old->vlan.trunks_all &&
                            !old->vlan.native);
    int r;

    if (val[K_VLAN_MODE]) {
        if (!strcmp(val[K_VLAN_MODE], "access"))
            mode = VLAN_MODE_ACCESS;
        else if (!strcmp(val[K_VLAN_MODE], "trunk"))
            mode = VLAN_MODE_TRUNK;
        else
            return conf_fail(err, errlen, -EINVAL,
                        "vlan_mode=%.40s is not valid: use vlan_mode=access or "
                        "vlan_mode=trunk",
                        val[K_VLAN_MODE]);
    } else if (unset && val[K_TAG]) {
        mode = VLAN_MODE_ACCESS;
    } else if (unset && (val[K_TRUNKS] || val[K_NATIVE])) {
        mode = VLAN_MODE_TRUNK;
    }

    struct conf_vlan v;
    if (mode == VLAN_MODE_ACCESS) {
        if (val[K_TRUNKS] || val[K_NATIVE])
            return conf_fail(err, errlen, -EINVAL,
                        "%s= cannot be used on access port %s, which carries one VLAN "
                        "(tag=N): add vlan_mode=trunk to make it a trunk",
                        val[K_TRUNKS] ? "trunks" : "native", q->name);
        memset(&v, 0, sizeof v);
        v.mode = VLAN_MODE_ACCESS;
        if (val[K_TAG]) {
            if ((r = parse_vlan_id("tag", val[K_TAG], &v.tag, err, errlen)))
                return r;
        } else if (!adding && old->vlan.mode == VLAN_MODE_ACCESS) {
            v.tag = old->vlan.tag;
        } else {
            return conf_fail(err, errlen, -EINVAL,
                        "access port %s needs tag=N, the VLAN it belongs to (1-4094)",
                        q->name);
        }
    } else {
        if (val[K_TAG])
            return conf_fail(err, errlen, -EINVAL,
                        "tag= cannot be used on trunk port %s, which takes trunks=LIST and "
                        "native=N: add vlan_mode=access to make it an access port",
                        q->name);
        if (!adding && old->vlan.mode == VLAN_MODE_TRUNK) {
            v = old->vlan;
        } else {
            memset(&v, 0, sizeof v);
            v.mode = VLAN_MODE_TRUNK;
            v.trunks_all = true;
        }
        if (val[K_TRUNKS]) {
            if (!*val[K_TRUNKS]) {
                v.trunks_all = true;
                memset(v.trunks, 0, sizeof v.trunks);
            } else {
                char e[200];
                if (conf_parse_vlan_list(val[K_TRUNKS], v.trunks, e, sizeof e))
                    return conf_fail(err, errlen, -EINVAL, "trunks=: %s", e);
                v.trunks_all = false;
            }
        }
        if (val[K_NATIVE]) {
            if (!*val[K_NATIVE])
                v.native = 0;
            else if ((r = parse_vlan_id("native", val[K_NATIVE], &v.native, err, errlen)))
                return r;
        }
    }
    q->vlan = v;
    return 0;
}

/* Checks what one port must satisfy on its own. */
static int port_check(const struct conf_port *p, char *err, size_t errlen)
{
    if (p->type == PORT_TYPE_VHOST_USER && p->client && !p->socket[0])
        return conf_fail(err, errlen, -EINVAL,
                    "vhost-user port %s in client mode needs socket=PATH, the socket the "
                    "frontend (QEMU, the VMM) listens on",
                    p->name);
    if (p->type == PORT_TYPE_AFXDP && !p->dev[0])
        return conf_fail(err, errlen, -EINVAL,
                    "afxdp port %s needs dev=IFNAME, the interface whose queue it binds",
                    p->name);
    if (p->type == PORT_TYPE_DPDK && !p->devargs[0])
        return conf_fail(err, errlen, -EINVAL,
                    "dpdk port %s needs devargs=STRING, e.g. devargs=0000:01:00.0 or "
                    "devargs=net_tap0,iface=dtap0",
                    p->name);
    if ((p->type == PORT_TYPE_TAP || p->type == PORT_TYPE_INTERNAL) && !p->ifname[0])
        return conf_fail(err, errlen, -EINVAL,
                    "port name %s is longer than %d characters, the limit for a network "
                    "interface name: give ifname=NAME",
                    p->name, CONF_IFNAME_MAX - 1);
    if (p->gw[0]) {
        uint8_t ip[16], gw[16];
        unsigned plen;
        if (!p->ip[0])
            return conf_fail(err, errlen, -EINVAL,
                        "gw= needs ip=CIDR on port %s: the gateway must be in the port's "
                        "subnet",
                        p->name);
        int af = parse_cidr("ip", p->ip, ip, &plen, NULL, 0);
        if (parse_ip(p->gw, gw) != af)
            return conf_fail(err, errlen, -EINVAL,
                        "gw=%s and ip=%s on port %s are of different address families",
                        p->gw, p->ip, p->name);
        if (!same_subnet(ip, gw, plen))
            return conf_fail(err, errlen, -EINVAL, "gw=%s is not inside ip=%s on port %s", p->gw,
                        p->ip, p->name);
    }
    return 0;
}

/* Parses opts onto a copy of *p; stores it only if all of them are good. */
static int port_apply_opts(struct conf_port *p, bool adding, const char *const *opts,
                           size_t nopts, char *err, size_t errlen)
{
    const char *val[K_N] = {0};
    struct conf_port q = *p;
    int r;

    for (size_t i = 0; i < nopts; i++) {
        const char *eq = strchr(opts[i], '=');
        if (!eq || eq == opts[i])
            return conf_fail(err, errlen, -EINVAL,
                        "\"%.40s\" is not KEY=VALUE (e.g. type=tap, tag=10)", opts[i]);
        int k = key_lookup(opts[i], (size_t)(eq - opts[i]));
        if (k < 0)
            return conf_fail(err, errlen, -EINVAL,
                        "unknown port option \"%.*s\": see vswitchctl(8) for the keys of "
                        "each port type",
                        (int)((eq - opts[i]) > 40 ? 40 : eq - opts[i]), opts[i]);
        if (val[k])
            return conf_fail(err, errlen, -EINVAL, "%s= is given twice", port_keys[k].name);
        if (!eq[1] && !port_keys[k].clearable)
            return conf_fail(err, errlen, -EINVAL, "%s= needs a value", port_keys[k].name);
        val[k] = eq + 1;
    }

    if (val[K_TYPE]) {
        int t = port_type_from_name(val[K_TYPE]);
        if (t < 0)
            return conf_fail(err, errlen, -EINVAL,
                        "unknown port type \"%.40s\": use vhost-user, tap, internal, "
                        "afxdp, dpdk or vxlan",
                        val[K_TYPE]);
        if (!adding && (enum port_type)t != p->type)
            return conf_fail(err, errlen, -EINVAL,
                        "port %s is of type %s and a port's type cannot change: delete "
                        "the port and add it again",
                        p->name, port_type_name(p->type));
        q.type = (enum port_type)t;
    }
    for (int k = 0; k < K_N; k++)
        if (val[k] && port_keys[k].types && !(port_keys[k].types & (1u << q.type)))
            return conf_fail(err, errlen, -EINVAL, "%s= does not apply to a %s port",
                        port_keys[k].name, port_type_name(q.type));

    if (!port_type_supported(q.type)) {
        if ((r = check_future_keys(val, err, errlen)))
            return r;
        return conf_fail(err, errlen, -ENOTSUP, "port type %s is not supported by this build",
                    port_type_name(q.type));
    }

    if (val[K_SOCKET]) {
        size_t n = strlen(val[K_SOCKET]);
        if (n && val[K_SOCKET][0] != '/')
            return conf_fail(err, errlen, -EINVAL,
                        "socket=%.60s is not an absolute path: give the full path",
                        val[K_SOCKET]);
        if (n >= CONF_PATH_MAX)
            return conf_fail(err, errlen, -EINVAL,
                        "socket= path is %zu characters long; a unix socket path must be "
                        "at most %d",
                        n, CONF_PATH_MAX - 1);
        memcpy(q.socket, val[K_SOCKET], n + 1);
    }
    if (val[K_MODE]) {
        if (!strcmp(val[K_MODE], "server"))
            q.client = false;
        else if (!strcmp(val[K_MODE], "client"))
            q.client = true;
        else
            return conf_fail(err, errlen, -EINVAL,
                        "mode=%.40s is not valid: use mode=server (vswitchd creates the "
                        "socket) or mode=client (the frontend does)",
                        val[K_MODE]);
    }
    if (val[K_QUEUES]) {
        unsigned long n = 1;
        if (*val[K_QUEUES] && !conf_parse_uint(val[K_QUEUES], 1, CONF_QUEUES_MAX, &n))
            return conf_fail(err, errlen, -EINVAL,
                        "queues=%.40s is not valid: use a number of queue pairs in 1-%d",
                        val[K_QUEUES], CONF_QUEUES_MAX);
        q.queues = (unsigned)n;
    }
    if (val[K_IFNAME]) {
        if (*val[K_IFNAME]) {
            if ((r = check_ifname("ifname", val[K_IFNAME], err, errlen)))
                return r;
            snprintf(q.ifname, sizeof q.ifname, "%s", val[K_IFNAME]);
        } else {
            q.ifname[0] = '\0';
        }
    }
    if ((q.type == PORT_TYPE_TAP || q.type == PORT_TYPE_INTERNAL) && !q.ifname[0] &&
        strlen(q.name) < CONF_IFNAME_MAX)
        snprintf(q.ifname, sizeof q.ifname, "%s", q.name);
    if ((r = apply_uplink_keys(&q, val, err, errlen)))
        return r;
    if (val[K_IP]) {
        uint8_t a[16];
        unsigned plen;
        if (*val[K_IP] && !parse_cidr("ip", val[K_IP], a, &plen, err, errlen))
            return -EINVAL;
        snprintf(q.ip, sizeof q.ip, "%s", val[K_IP]);
        if (!*val[K_IP] && !val[K_GW])
            q.gw[0] = '\0'; /* no gateway without an address */
    }
    if (val[K_GW]) {
        uint8_t a[16];
        if (*val[K_GW] && (strlen(val[K_GW]) >= sizeof q.gw || !parse_ip(val[K_GW], a)))
            return conf_fail(err, errlen, -EINVAL, "gw=%.60s is not an IP address", val[K_GW]);
        snprintf(q.gw, sizeof q.gw, "%s", val[K_GW]);
    }
    if ((r = apply_vlan(&q, p, adding, val, err, errlen)))
        return r;
    if (q.type == PORT_TYPE_VXLAN && (r = apply_vxlan(&q, p, adding, val, err, errlen)))
        return r;
    if (val[K_MTU]) {
        unsigned long n = 0;
        if (*val[K_MTU] && !conf_parse_uint(val[K_MTU], MTU_MIN, MTU_MAX, &n))
            return conf_fail(err, errlen, -EINVAL, "mtu=%.40s is not valid: use %d-%d", val[K_MTU],
                        MTU_MIN, MTU_MAX);
        q.mtu = (uint32_t)n;
    }
    if (val[K_MAC]) {
        if (*val[K_MAC]) {
            if ((r = parse_mac(val[K_MAC], q.mac, err, errlen)))
                return r;
            q.has_mac = true;
        } else {
            q.has_mac = false;
            memset(q.mac, 0, sizeof q.mac);
        }
    }
    if ((r = port_check(&q, err, errlen)))
        return r;
    *p = q;
    return 0;
}

/* Conflicts of one port with the others: sockets and interface names. */
static int port_check_unique(const struct conf *c, const struct conf_port *p, char *err,
                             size_t errlen)
{
    for (size_t i = 0; i < c->n_ports; i++) {
        const struct conf_port *o = &c->ports[i];
        if (o == p || !strcmp(o->name, p->name))
            continue;
        if (p->type == PORT_TYPE_VHOST_USER && o->type == PORT_TYPE_VHOST_USER &&
            p->socket[0] && !strcmp(p->socket, o->socket))
            return conf_fail(err, errlen, -EEXIST, "socket %s is already used by port %s",
                        p->socket, o->name);
        if (p->ifname[0] && !strcmp(p->ifname, o->ifname))
            return conf_fail(err, errlen, -EEXIST,
                        "interface name %s is already used by port %s", p->ifname, o->name);
        if (p->type == PORT_TYPE_AFXDP && o->type == PORT_TYPE_AFXDP &&
            !strcmp(p->dev, o->dev) && p->queue == o->queue)
            return conf_fail(err, errlen, -EEXIST, "queue %u of %s is already used by port %s",
                        p->queue, p->dev, o->name);
        if (p->type == PORT_TYPE_DPDK && o->type == PORT_TYPE_DPDK &&
            strcspn(p->devargs, ",") == strcspn(o->devargs, ",") &&
            !strncmp(p->devargs, o->devargs, strcspn(p->devargs, ",")))
            return conf_fail(err, errlen, -EEXIST, "DPDK device %.*s is already used by port %s",
                        (int)strcspn(p->devargs, ","), p->devargs, o->name);
        if (p->type == PORT_TYPE_VXLAN && vxlan_check_unique(p, o, err, errlen))
            return -EEXIST;
    }
    return 0;
}

int conf_add_port(struct conf *c, const char *bridge, const char *name,
                  const char *const *opts, size_t nopts, char *err, size_t errlen)
{
    int r;
    if ((r = conf_check_name("bridge", bridge, err, errlen)) ||
        (r = conf_check_name("port", name, err, errlen)))
        return r;
    if (!conf_find_bridge(c, bridge))
        return conf_fail(err, errlen, -ENOENT, "bridge %s does not exist", bridge);
    struct conf_port *o = conf_find_port(c, name);
    if (o)
        return conf_fail(err, errlen, -EEXIST, "port %s already exists (on bridge %s)", name,
                    o->bridge);

    struct conf_port p;
    memset(&p, 0, sizeof p);
    snprintf(p.name, sizeof p.name, "%s", name);
    snprintf(p.bridge, sizeof p.bridge, "%s", bridge);
    p.type = PORT_TYPE_VHOST_USER;
    p.vlan.mode = VLAN_MODE_TRUNK;
    p.vlan.trunks_all = true;
    p.queues = 1;
    if ((r = port_apply_opts(&p, true, opts, nopts, err, errlen)) ||
        (r = port_check_unique(c, &p, err, errlen)))
        return r;

    struct conf_port *np = realloc(c->ports, (c->n_ports + 1) * sizeof *np);
    if (!np)
        return conf_fail(err, errlen, -ENOMEM, "out of memory");
    c->ports = np;
    np[c->n_ports++] = p;
    return 0;
}

int conf_del_port(struct conf *c, const char *bridge, const char *name, char *err,
                  size_t errlen)
{
    if (bridge && !conf_find_bridge(c, bridge))
        return conf_fail(err, errlen, -ENOENT, "bridge %.40s does not exist", bridge);
    struct conf_port *p = conf_find_port(c, name);
    if (!p)
        return conf_fail(err, errlen, -ENOENT, "port %.40s does not exist", name);
    if (bridge && strcmp(p->bridge, bridge))
        return conf_fail(err, errlen, -ENOENT, "port %s is not on bridge %s (it is on %s)", name,
                    bridge, p->bridge);
    const struct conf_net *un = conf_net_using_port(c, name);
    if (un)
        return conf_fail(err, errlen, -EINVAL,
                    "port %s is the nat= uplink of network %s: set-net %s nat= first", name,
                    un->name, un->name);
    size_t i = (size_t)(p - c->ports);
    memmove(p, p + 1, (c->n_ports - i - 1) * sizeof *p);
    c->n_ports--;
    return 0;
}

int conf_set_port(struct conf *c, const char *name, const char *const *opts, size_t nopts,
                  char *err, size_t errlen)
{
    struct conf_port *p = conf_find_port(c, name);
    if (!p)
        return conf_fail(err, errlen, -ENOENT, "port %.40s does not exist", name);
    if (!nopts)
        return conf_fail(err, errlen, -EINVAL, "nothing to set: give KEY=VALUE, e.g. tag=10");
    struct conf_port q = *p;
    int r;
    if ((r = port_apply_opts(&q, false, opts, nopts, err, errlen)) ||
        (r = port_check_unique(c, &q, err, errlen)))
        return r;
    *p = q;
    return 0;
}

int conf_validate(const struct conf *c, char *err, size_t errlen)
{
    int r;
    for (size_t i = 0; i < c->n_bridges; i++) {
        if ((r = conf_check_name("bridge", c->bridges[i].name, err, errlen)))
            return r;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(c->bridges[i].name, c->bridges[j].name))
                return conf_fail(err, errlen, -EEXIST, "bridge %s is listed twice",
                            c->bridges[i].name);
    }
    for (size_t i = 0; i < c->n_ports; i++) {
        const struct conf_port *p = &c->ports[i];
        if ((r = conf_check_name("port", p->name, err, errlen)))
            return r;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(p->name, c->ports[j].name))
                return conf_fail(err, errlen, -EEXIST, "port %s is listed twice", p->name);
        if (!conf_find_bridge(c, p->bridge))
            return conf_fail(err, errlen, -ENOENT, "port %s is on bridge %s, which does not exist",
                        p->name, p->bridge);
        if ((r = port_check(p, err, errlen)) || (r = port_check_unique(c, p, err, errlen)))
            return r;
    }
    return conf_validate_nets(c, err, errlen);
}

/* ---- JSON ---- */

json_t *conf_port_to_json(const struct conf_port *p)
{
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(p->name));
    json_object_set_new(j, "bridge", json_string(p->bridge));
    json_object_set_new(j, "type", json_string(port_type_name(p->type)));
    switch (p->type) {
    case PORT_TYPE_VHOST_USER:
        json_object_set_new(j, "mode", json_string(p->client ? "client" : "server"));
        if (p->socket[0])
            json_object_set_new(j, "socket", json_string(p->socket));
        json_object_set_new(j, "queues", json_integer(p->queues));
        break;
    case PORT_TYPE_TAP:
    case PORT_TYPE_INTERNAL:
        json_object_set_new(j, "ifname", json_string(p->ifname));
        break;
    case PORT_TYPE_AFXDP:
        json_object_set_new(j, "dev", json_string(p->dev));
        json_object_set_new(j, "queue", json_integer(p->queue));
        break;
    case PORT_TYPE_DPDK:
        json_object_set_new(j, "devargs", json_string(p->devargs));
        break;
    case PORT_TYPE_VXLAN:
        if (p->n_vni_map) {
            char buf[CONF_VNI_MAP_MAX * 16 + 1];
            size_t n = 0;
            for (unsigned i = 0; i < p->n_vni_map; i++)
                n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%u:%u", i ? "," : "",
                                      p->vni_map[i].vni, p->vni_map[i].vlan);
            json_object_set_new(j, "vni", json_string(buf));
        } else {
            json_object_set_new(j, "vni", json_integer(p->vni));
        }
        if (p->remote[0])
            json_object_set_new(j, "remote", json_string(p->remote));
        if (p->local[0])
            json_object_set_new(j, "local", json_string(p->local));
        json_object_set_new(j, "dstport", json_integer(p->dstport));
        break;
    default:
        break;
    }
    if (p->vlan.mode == VLAN_MODE_ACCESS) {
        json_object_set_new(j, "vlan_mode", json_string("access"));
        json_object_set_new(j, "tag", json_integer(p->vlan.tag));
    } else {
        json_object_set_new(j, "vlan_mode", json_string("trunk"));
        if (!p->vlan.trunks_all && !p->n_vni_map) { /* a VNI map lists them */
            char buf[8192];
            conf_format_vlan_list(p->vlan.trunks, buf, sizeof buf);
            json_object_set_new(j, "trunks", json_string(buf));
        }
        if (p->vlan.native)
            json_object_set_new(j, "native", json_integer(p->vlan.native));
    }
    if (p->mtu)
        json_object_set_new(j, "mtu", json_integer(p->mtu));
    if (p->has_mac) {
        char mac[18];
        snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", p->mac[0], p->mac[1],
                 p->mac[2], p->mac[3], p->mac[4], p->mac[5]);
        json_object_set_new(j, "mac", json_string(mac));
    }
    if (p->ip[0])
        json_object_set_new(j, "ip", json_string(p->ip));
    if (p->gw[0])
        json_object_set_new(j, "gw", json_string(p->gw));
    return j;
}

json_t *conf_to_json(const struct conf *c)
{
    json_t *j = json_object();
    json_t *bridges = json_array();
    json_t *ports = json_array();
    json_object_set_new(j, "version", json_integer(c->n_nets ? CONF_SCHEMA_VERSION : 1));
    for (size_t i = 0; i < c->n_bridges; i++)
        json_array_append_new(bridges, json_pack("{s:s, s:I}", "name", c->bridges[i].name,
                                                 "ageing",
                                                 (json_int_t)c->bridges[i].ageing));
    for (size_t i = 0; i < c->n_ports; i++)
        json_array_append_new(ports, conf_port_to_json(&c->ports[i]));
    json_object_set_new(j, "bridges", bridges);
    json_object_set_new(j, "ports", ports);
    if (c->n_nets) {
        json_t *nets = json_array();
        for (size_t i = 0; i < c->n_nets; i++)
            json_array_append_new(nets, conf_net_to_json(&c->nets[i]));
        json_object_set_new(j, "networks", nets);
    }
    return j;
}

static int bridge_from_json(struct conf *c, size_t idx, const json_t *jb, char *err,
                            size_t errlen)
{
    char e[256];
    const char *key;
    json_t *v;
    if (!json_is_object(jb))
        return conf_fail(err, errlen, -EINVAL, "bridges[%zu] is not an object", idx);
    json_t *name = json_object_get(jb, "name");
    if (!json_is_string(name))
        return conf_fail(err, errlen, -EINVAL, "bridges[%zu] has no \"name\" string", idx);
    json_object_foreach ((json_t *)jb, key, v) {
        if (!strcmp(key, "name"))
            continue;
        if (strcmp(key, "ageing"))
            return conf_fail(err, errlen, -EINVAL, "bridges[%zu] has an unknown key \"%.40s\"",
                        idx, key);
        if (!json_is_integer(v))
            return conf_fail(err, errlen, -EINVAL, "bridges[%zu]: ageing must be an integer",
                        idx);
    }
    if (conf_add_bridge(c, json_string_value(name), e, sizeof e))
        return conf_fail(err, errlen, -EINVAL, "bridges[%zu]: %s", idx, e);
    json_t *ageing = json_object_get(jb, "ageing");
    if (ageing) {
        char opt[48];
        const char *opts[] = {opt};
        snprintf(opt, sizeof opt, "ageing=%lld", (long long)json_integer_value(ageing));
        if (conf_set_bridge(c, json_string_value(name), opts, 1, e, sizeof e))
            return conf_fail(err, errlen, -EINVAL, "bridges[%zu]: %s", idx, e);
    }
    return 0;
}

static int port_from_json(struct conf *c, size_t idx, const json_t *jp, char *err,
                          size_t errlen)
{
    char e[256];
    const char *key;
    json_t *v;
    const char *opts[K_N];
    char bufs[K_N][160];
    size_t n = 0;
    int r;

    if (!json_is_object(jp))
        return conf_fail(err, errlen, -EINVAL, "ports[%zu] is not an object", idx);
    json_t *name = json_object_get(jp, "name");
    json_t *bridge = json_object_get(jp, "bridge");
    if (!json_is_string(name))
        return conf_fail(err, errlen, -EINVAL, "ports[%zu] has no \"name\" string", idx);
    const char *pn = json_string_value(name);
    if (!json_is_string(bridge))
        return conf_fail(err, errlen, -EINVAL, "ports[%zu] (%.40s) has no \"bridge\" string", idx,
                    pn);
    json_object_foreach ((json_t *)jp, key, v) {
        if (!strcmp(key, "name") || !strcmp(key, "bridge"))
            continue;
        int k = key_lookup(key, strlen(key));
        if (k < 0)
            return conf_fail(err, errlen, -EINVAL, "ports[%zu] (%.40s) has an unknown key \"%.40s\"",
                        idx, pn, key);
        if (port_keys[k].numeric && !(k == K_VNI && json_is_string(v))) { /* VNI maps */
            if (!json_is_integer(v))
                return conf_fail(err, errlen, -EINVAL,
                            "ports[%zu] (%.40s): %s must be an integer", idx, pn, key);
            snprintf(bufs[n], sizeof bufs[n], "%s=%lld", key,
                     (long long)json_integer_value(v));
        } else {
            if (!json_is_string(v))
                return conf_fail(err, errlen, -EINVAL, "ports[%zu] (%.40s): %s must be a string",
                            idx, pn, key);
            if (strlen(json_string_value(v)) >= sizeof bufs[n] - 12)
                return conf_fail(err, errlen, -EINVAL, "ports[%zu] (%.40s): %s is too long", idx,
                            pn, key);
            snprintf(bufs[n], sizeof bufs[n], "%s=%s", key, json_string_value(v));
        }
        opts[n] = bufs[n];
        n++;
    }
    if ((r = conf_add_port(c, json_string_value(bridge), pn, opts, n, e, sizeof e)))
        return conf_fail(err, errlen, r, "ports[%zu] (%.40s): %s", idx, pn, e);
    return 0;
}

int conf_from_json(struct conf *out, const json_t *j, char *err, size_t errlen)
{
    struct conf c;
    const char *key;
    json_t *v;
    int r;

    if (!json_is_object(j))
        return conf_fail(err, errlen, -EINVAL, "the configuration is not a JSON object");
    json_t *version = json_object_get(j, "version");
    if (!json_is_integer(version))
        return conf_fail(err, errlen, -EINVAL, "the configuration has no \"version\" number");
    if (json_integer_value(version) < 1 || json_integer_value(version) > CONF_SCHEMA_VERSION)
        return conf_fail(err, errlen, -EINVAL,
                    "the configuration has schema version %lld; this vswitchd reads "
                    "versions 1 to %d",
                    (long long)json_integer_value(version), CONF_SCHEMA_VERSION);
    json_object_foreach ((json_t *)j, key, v) {
        if (strcmp(key, "version") && strcmp(key, "bridges") && strcmp(key, "ports") &&
            (strcmp(key, "networks") || json_integer_value(version) < 2))
            return conf_fail(err, errlen, -EINVAL, "the configuration has an unknown key \"%.40s\"",
                        key);
    }
    json_t *bridges = json_object_get(j, "bridges");
    json_t *ports = json_object_get(j, "ports");
    if (bridges && !json_is_array(bridges))
        return conf_fail(err, errlen, -EINVAL, "\"bridges\" is not an array");
    if (ports && !json_is_array(ports))
        return conf_fail(err, errlen, -EINVAL, "\"ports\" is not an array");

    conf_init(&c);
    size_t i;
    json_array_foreach (bridges, i, v) {
        if ((r = bridge_from_json(&c, i, v, err, errlen)))
            goto fail;
    }
    json_array_foreach (ports, i, v) {
        if ((r = port_from_json(&c, i, v, err, errlen)))
            goto fail;
    }
    json_t *nets = json_object_get(j, "networks");
    if (nets && (r = conf_nets_from_json(&c, nets, err, errlen)))
        goto fail;
    if ((r = conf_validate(&c, err, errlen)))
        goto fail;
    *out = c;
    return 0;
fail:
    conf_free(&c);
    return r < 0 ? r : -EINVAL;
}
