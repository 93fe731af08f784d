/* Discovery through etcd (vswitchd --etcd URL), over etcd's v3 JSON gateway.
 *
 * Each switch publishes, for every VNI of every vxlan port with local=, one key
 *     PREFIX/vni/VNI/VTEP-IP = {"vtep":"IP","macs":["52:54:..",...]}
 * (the MACs its bridge learned on non-VXLAN ports in the VNI's VLAN) under a
 * lease it keeps alive; it reads the prefix back and makes every other VTEP of
 * a VNI a flood remote of the ports carrying that VNI, and pins the MACs each
 * VTEP published to it. A switch that stops stops renewing; etcd deletes its
 * keys when the lease expires and the others drop it.
 *
 * The store is polled (one range read per second, applied when the store's
 * revision moved) rather than watched: the gateway's watch is a streaming
 * response, and a poll costs one small request a second. Control thread only. */
#ifndef VSWITCH_ETCD_H
#define VSWITCH_ETCD_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

struct vswitch;
struct etcd;

#define ETCD_PREFIX_DEFAULT "/vswitch"
#define ETCD_TTL_DEFAULT 10
#define ETCD_MACS_MAX 256 /* per VTEP and VNI */

/* URL: http://IP:PORT[/PREFIX][?ttl=SECONDS]. 0, or -1 and a sentence. */
struct etcd_url {
    char host[64];
    uint16_t port;
    char prefix[128];
    unsigned ttl;
};
int etcd_parse_url(const char *url, struct etcd_url *u, char *err, size_t errlen);

struct etcd *etcd_start(struct event_base *base, struct vswitch *sw, const char *url,
                        char *err, size_t errlen);
void etcd_stop(struct etcd *e);

/* ---- the JSON of the gateway (pure; unit-tested) ---- */

/* base64, as the gateway carries keys and values. Return malloc'd strings. */
char *etcd_b64_encode(const void *d, size_t len);
/* NULL if s is not base64. *len: decoded length (a NUL follows). */
char *etcd_b64_decode(const char *s, size_t *len);

struct etcd_vtep {
    uint32_t vni;
    uint32_t ip; /* network order */
    unsigned n_macs;
    uint8_t macs[ETCD_MACS_MAX][6];
};

struct etcd_view {
    int64_t revision;
    size_t n;
    struct etcd_vtep *vteps;
};

/* Parses a /v3/kv/range response for prefix into view (entries that are not
 * ours to read are skipped). 0, or -1 if the body is not a range response. */
int etcd_parse_range(const char *body, size_t len, const char *prefix,
                     struct etcd_view *view);
void etcd_view_free(struct etcd_view *view);

/* "PREFIX/vni/VNI/IP" <-> (vni, ip). */
void etcd_key(char *buf, size_t len, const char *prefix, uint32_t vni, uint32_t ip);
int etcd_parse_key(const char *key, const char *prefix, uint32_t *vni, uint32_t *ip);

/* {"vtep":"IP","macs":[...]} (malloc'd) and back (0 or -1). */
char *etcd_vtep_value(uint32_t ip, const uint8_t (*macs)[6], unsigned n);
int etcd_parse_vtep_value(const char *s, size_t len, struct etcd_vtep *v);

/* /v3/lease/grant and /v3/lease/keepalive responses: the lease ID; the TTL
 * left (0: the lease is gone). -1 if malformed. */
int etcd_parse_lease_grant(const char *body, size_t len, int64_t *id);
int etcd_parse_keepalive(const char *body, size_t len, int64_t *ttl);

#endif
