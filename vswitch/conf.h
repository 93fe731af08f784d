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

struct conf {
    struct conf_bridge *bridges;
    size_t n_bridges;
    struct conf_port *ports;
    size_t n_ports;
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

#define CONF_SCHEMA_VERSION 1

/* JSON form, as stored in the db file and shown by `show --json`:
 * {"version":1,"bridges":[{"name":..,"ageing":..}],"ports":[{"name":..,
 * "bridge":..,"type":.., KEY: VALUE ...}]} where a port's keys are the
 * add-port keys (numbers as JSON integers). conf_from_json validates all of it
 * and refuses with a sentence; c is untouched on failure. docs/protocol.md. */
json_t *conf_to_json(const struct conf *c);
int conf_from_json(struct conf *c, const json_t *j, char *err, size_t errlen);
json_t *conf_port_to_json(const struct conf_port *p);

#endif
