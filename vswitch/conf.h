/* The configuration model: what vswitchctl changes, the db file stores and
 * switch_apply() turns into a running datapath. Plain data, owned by the
 * control thread. A struct conf is a complete description; changes are made on
 * a copy (conf_clone), validated, applied, and only then kept and saved. */
#ifndef VSWITCH_CONF_H
#define VSWITCH_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define CONF_NAME_MAX 32    /* bridge and port names: [A-Za-z0-9_.-], 1..31 */
#define CONF_PATH_MAX 108   /* sun_path */
#define CONF_IFNAME_MAX 16  /* IFNAMSIZ */
#define CONF_AGEING_DEFAULT 300
#define CONF_MTU_DEFAULT 1500
#define CONF_QUEUES_MAX 8
#define CONF_VNI_MAP_MAX 16  /* VNIs on one trunk vxlan port */
#define CONF_REMOTE_MAX 256  /* remote=IP[,IP...] */
#define CONF_VXLAN_PORT 4789 /* IANA */
#define CONF_DEVARGS_MAX 128 /* dpdk devargs= */

enum port_type {
    PORT_TYPE_VHOST_USER,
    PORT_TYPE_TAP,
    PORT_TYPE_INTERNAL,
    PORT_TYPE_AFXDP,
    PORT_TYPE_DPDK,
    PORT_TYPE_VXLAN,
};

const char *port_type_name(enum port_type t);
int port_type_from_name(const char *s); /* -1 if unknown */

enum vlan_mode {
    VLAN_MODE_TRUNK,  /* default: tagged frames of `trunks`, untagged = `native` */
    VLAN_MODE_ACCESS, /* untagged only, all in VLAN `tag` */
};

/* VLAN 0 stands for "untagged" inside the switch: a port with no VLAN settings
 * is, as in Open vSwitch, a trunk of all VLANs whose untagged frames belong to
 * VLAN 0. */
struct conf_vlan {
    enum vlan_mode mode;
    uint16_t tag;             /* access: 1..4094 */
    bool trunks_all;          /* trunk with no trunks= list: every VLAN */
    uint64_t trunks[64];      /* bitmap of VLAN ids 1..4094 when !trunks_all */
    uint16_t native;          /* trunk: VLAN of untagged frames; 0 = VLAN 0 */
};

struct conf_port {
    char name[CONF_NAME_MAX];
    char bridge[CONF_NAME_MAX];
    enum port_type type;
    struct conf_vlan vlan;
    uint32_t mtu;             /* 0: default */
    bool has_mac;
    uint8_t mac[6];
    /* routed port (ip=CIDR gw=IP): used by the L3 issue; stored and shown now */
    char ip[64];
    char gw[64];
    /* vhost-user */
    char socket[CONF_PATH_MAX]; /* empty: RUN_DIR/PORT.sock (server mode) */
    bool client;                /* mode=client */
    unsigned queues;            /* 1..CONF_QUEUES_MAX */
    /* tap */
    char ifname[CONF_IFNAME_MAX];
    /* afxdp: interface and NIC queue */
    char dev[CONF_IFNAME_MAX];
    unsigned queue;
    /* dpdk: the device, as DPDK's --vdev/-a take it */
    char devargs[CONF_DEVARGS_MAX];
    /* vxlan: vni=N (the port's untagged VLAN: its access tag or trunk native)
     * or vni=VNI:VLAN[,VNI:VLAN...] (a trunk; each VNI is one bridge VLAN) */
    bool has_vni;
    uint32_t vni;
    unsigned n_vni_map;
    struct conf_vni_map {
        uint32_t vni;
        uint16_t vlan;
    } vni_map[CONF_VNI_MAP_MAX];
    char remote[CONF_REMOTE_MAX]; /* IPv4[,IPv4...], checked */
    char local[16];               /* IPv4; empty: any */
    uint16_t dstport;             /* 0: 4789 */
};

struct conf_bridge {
    char name[CONF_NAME_MAX];
    unsigned ageing; /* seconds; 0: learned entries never age */
};

/* ---- networks (L3 gateway, DHCP, NAT): conf_net.c ---- */

#define CONF_FORWARDS_MAX 64
#define CONF_RESERVE_MAX 64
#define CONF_CT_MAX_DEFAULT 65536
#define CONF_LEASE_DEFAULT 3600

/* Connection-tracking timeouts, seconds; keys ct_timeout_NAME (add-net,
 * set-net). Defaults are Linux's nf_conntrack ones. */
enum ct_timeout {
    CT_TO_TCP_SYN_SENT, CT_TO_TCP_SYN_RECV, CT_TO_TCP_ESTABLISHED, CT_TO_TCP_FIN_WAIT,
    CT_TO_TCP_CLOSE_WAIT, CT_TO_TCP_LAST_ACK, CT_TO_TCP_TIME_WAIT, CT_TO_TCP_CLOSE,
    CT_TO_UDP, CT_TO_UDP_STREAM, CT_TO_ICMP, CT_TO__COUNT
};
extern const char *const conf_ct_timeout_names[CT_TO__COUNT];
extern const uint32_t conf_ct_timeout_defaults[CT_TO__COUNT];

/* Addresses and ports in host byte order. */
struct conf_forward {
    uint8_t proto;            /* IPPROTO_TCP or IPPROTO_UDP */
    uint16_t port;            /* on the uplink's address */
    uint32_t to_ip;           /* inside the network */
    uint16_t to_port;
};

struct conf_reservation {
    uint8_t mac[6];
    uint32_t ip;
};

struct conf_net {
    char name[CONF_NAME_MAX];
    char bridge[CONF_NAME_MAX];
    uint16_t vlan;            /* 0: untagged VLAN 0 */
    uint32_t subnet;          /* network address */
    uint8_t plen;
    uint32_t gateway;
    bool dhcp;
    uint32_t dhcp_first, dhcp_last;
    uint32_t dns;             /* 0: the gateway's address */
    uint32_t lease;           /* seconds */
    char nat[CONF_NAME_MAX];  /* uplink port; empty: no NAT */
    uint32_t ct_max;          /* connections through this network's NAT */
    uint32_t ct_timeouts[CT_TO__COUNT];
    size_t n_reserve;
    struct conf_reservation reserve[CONF_RESERVE_MAX];
    size_t n_forwards;
    struct conf_forward forwards[CONF_FORWARDS_MAX];
};

struct conf {
    struct conf_bridge *bridges;
    size_t n_bridges;
    struct conf_port *ports;
    size_t n_ports;
    struct conf_net *nets;
    size_t n_nets;
};

void conf_init(struct conf *c);
void conf_free(struct conf *c);
int conf_clone(struct conf *dst, const struct conf *src);

struct conf_bridge *conf_find_bridge(const struct conf *c, const char *name);
struct conf_port *conf_find_port(const struct conf *c, const char *name);

/* Edits. Each validates its arguments and returns 0, or a negative errno with
 * a sentence a person can act on in err (e.g. "bridge br0 does not exist"):
 *   -ENOENT   a named bridge or port does not exist
 *   -EEXIST   the name (or socket path, ifname) is already taken
 *   -EINVAL   a bad name, unknown key, key not for this port type, bad value
 *   -ENOTSUP  the port type is valid but not in this build
 * On failure the conf is unchanged. opts are KEY=VALUE strings as vswitchctl
 * takes them; "KEY=" (empty value) puts an optional key back to its default.
 * add-port without type= makes a vhost-user port. */
int conf_add_bridge(struct conf *c, const char *name, char *err, size_t errlen);
int conf_del_bridge(struct conf *c, const char *name, char *err, size_t errlen);
int conf_add_port(struct conf *c, const char *bridge, const char *name,
                  const char *const *opts, size_t nopts, char *err, size_t errlen);
int conf_del_port(struct conf *c, const char *bridge /* may be NULL */,
                  const char *name, char *err, size_t errlen);
int conf_set_port(struct conf *c, const char *name, const char *const *opts,
                  size_t nopts, char *err, size_t errlen);
int conf_set_bridge(struct conf *c, const char *name, const char *const *opts,
                    size_t nopts, char *err, size_t errlen);

/* Writes a sentence to err and returns code (a -errno): the edits' error path. */
int conf_fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A decimal number in [min, max], digits only (no sign, no spaces). */
bool conf_parse_uint(const char *s, unsigned long min, unsigned long max,
                     unsigned long *out);

/* The next item of a comma-separated list of KEY<sep>VALUE pairs at *s,
 * copied into buf (size bytes) and split there: *key and *val point into buf;
 * *s moves past the item and its comma. 1: an item; 0: the end; -1: an empty,
 * too long or separator-less item, or a trailing comma. */
int conf_next_pair(const char **s, char sep, char *buf, size_t size, char **key, char **val);

/* VLAN membership (used by the datapath snapshot builder too): may frames of
 * VLAN vid (1..4094, or 0 = untagged VLAN 0) cross this port? access: vid is
 * the tag; trunk: vid is in trunks (or trunks_all) or is the native VLAN. */
bool conf_vlan_trunks(const struct conf_vlan *v, uint16_t vid);

/* 0, or -EINVAL and a sentence: names are 1..31 of [A-Za-z0-9_.-]. `what` is
 * "bridge" or "port". */
int conf_check_name(const char *what, const char *name, char *err, size_t errlen);

/* "10,20,30-40" -> bitmap (VLANs 1..4094); and back, in canonical form. */
int conf_parse_vlan_list(const char *s, uint64_t bitmap[64], char *err, size_t errlen);
void conf_format_vlan_list(const uint64_t bitmap[64], char *buf, size_t len);

/* Whole-configuration invariants (unique names, sockets and ifnames, ports on
 * existing bridges, per-port consistency). The edit functions keep them;
 * conf_from_json checks them. */
int conf_validate(const struct conf *c, char *err, size_t errlen);

/* Networks (conf_net.c). add-net keys: bridge= vlan= subnet= gateway= dhcp=FIRST-LAST
 * dns=IP lease=SECS nat=PORT reserve=MAC=IP[,MAC=IP...] ct_max=N ct_timeout_NAME=SECS;
 * set-net takes the same keys but bridge= (KEY= resets optional ones). */
struct conf_net *conf_find_net(const struct conf *c, const char *name);
int conf_add_net(struct conf *c, const char *name, const char *const *opts, size_t nopts,
                 char *err, size_t errlen);
int conf_set_net(struct conf *c, const char *name, const char *const *opts, size_t nopts,
                 char *err, size_t errlen);
int conf_del_net(struct conf *c, const char *name, char *err, size_t errlen);
/* add-forward NET proto=tcp|udp port=N to=IP:PORT; del-forward NET proto= port= */
int conf_add_forward(struct conf *c, const char *net, const char *const *opts,
                     size_t nopts, char *err, size_t errlen);
int conf_del_forward(struct conf *c, const char *net, const char *const *opts,
                     size_t nopts, char *err, size_t errlen);
/* Whole-configuration checks of the networks (called by conf_validate). */
int conf_validate_nets(const struct conf *c, char *err, size_t errlen);
json_t *conf_net_to_json(const struct conf_net *n);
int conf_nets_from_json(struct conf *c, const json_t *nets, char *err, size_t errlen);
/* Whether port `name` is some network's nat= uplink. */
const struct conf_net *conf_net_using_port(const struct conf *c, const char *name);
/* The network address of `ip` in a /plen */
static inline uint32_t conf_mask(uint8_t plen)
{
    return plen ? ~0u << (32 - plen) : 0;
}

/* Version 2 adds "networks"; a configuration without networks is still
 * written as version 1, and both are read. */
#define CONF_SCHEMA_VERSION 2

/* JSON form, as stored in the db file and shown by `show --json`:
 * {"version":1,"bridges":[{"name":..,"ageing":..}],"ports":[{"name":..,
 * "bridge":..,"type":.., KEY: VALUE ...}]} where a port's keys are the
 * add-port keys (numbers as JSON integers). conf_from_json validates all of it
 * and refuses with a sentence; c is untouched on failure. docs/protocol.md. */
json_t *conf_to_json(const struct conf *c);
int conf_from_json(struct conf *c, const json_t *j, char *err, size_t errlen);
json_t *conf_port_to_json(const struct conf_port *p);

#endif
