/* The vxlan port type (RFC 7348): a tunnel endpoint over the host's UDP stack.
 *
 * One port is one VTEP for one VNI (vni=N: the port's untagged VLAN) or for
 * several (vni=VNI:VLAN,...: a trunk, one bridge VLAN per VNI). Ports bound to
 * the same local:dstport share one UDP socket; whichever port reads it hands
 * the datagrams of the others' VNIs to their inboxes.
 *
 * Flood and learn: broadcast and unknown unicast go to every remote VTEP
 * (head-end replication); the VTEP behind each inner source MAC is learned
 * into a table inside the port (fixed size, no allocation on the datapath,
 * entries age). Remotes come from remote= and, with --etcd, from discovery
 * (etcd.c uses the control-thread API at the end of this header).
 *
 * The pure helpers below are what the unit tests check. */
#ifndef VSWITCH_PORT_VXLAN_H
#define VSWITCH_PORT_VXLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pkt.h"
#include "port.h"

#define VXLAN_HLEN 8
#define VXLAN_FLAG_I 0x08
/* outer Ethernet + IPv4 + UDP + VXLAN: what the underlay adds to a frame */
#define VXLAN_OVERHEAD (14 + 20 + 8 + VXLAN_HLEN)
#define VXLAN_UDP_OVERHEAD (20 + 8 + VXLAN_HLEN) /* inside the underlay's MTU */
/* RFC 7348 §5: the source port from the dynamic/private range */
#define VXLAN_SPORT_MIN 49152
#define VXLAN_SPORT_RANGE 16384
#define VXLAN_REMOTES_MAX 64    /* flood list of one VNI */
#define VXLAN_VTEP_AGEING 300   /* seconds, as the bridge's default */

extern const struct port_ops port_vxlan_ops;

/* ---- header, entropy ---- */

void vxlan_hdr_write(uint8_t h[VXLAN_HLEN], uint32_t vni);
/* The outer UDP header for an inner frame of inner_len bytes: checksum zero. */
void vxlan_udp_write(uint8_t h[8], uint16_t sport, uint16_t dport, uint32_t inner_len);
/* Checks a received UDP payload: -1 and the VNI, or the drop reason (too short
 * for the header and an Ethernet header; I flag clear). Reserved bits are
 * ignored, as RFC 7348 asks of a receiver. */
int vxlan_hdr_parse(const uint8_t *d, size_t len, uint32_t *vni);
/* Outer UDP source port from the inner flow (MACs, ethertype, IP addresses,
 * L4 ports), so the underlay's ECMP spreads flows and keeps each in order. */
uint16_t vxlan_src_port(const struct pkt *p);

/* ---- receive ---- */

struct vtep_table;

/* What decapsulation needs of a port: map ports take the bridge VLAN from
 * the VNI (vlan[VNI index]) and refuse an inner tag; the others keep the
 * inner tag as the received TCI. Inner source MACs are learned into vteps. */
struct vxlan_rx_map {
    bool map;
    const uint16_t *vlan;
    struct vtep_table *vteps;
};

/* Builds pk from the VXLAN payload d (header checked by vxlan_hdr_parse, VNI
 * index idx) that came from VTEP src (network order): the inner frame stays
 * in d. Returns -1, or the drop reason. */
int vxlan_decap(uint8_t *d, uint32_t len, const struct vxlan_rx_map *m, unsigned idx,
                uint32_t src, uint32_t now, struct pkt *pk);

/* ---- remote VTEP table: (VNI of the port, inner MAC) -> remote IPv4 ---- */

#define VTEP_SETS 1024
#define VTEP_WAYS 4
#define VTEP_PINNED UINT32_MAX /* `seen` of an entry from discovery: never ages */

struct vtep_entry {
    uint64_t key;  /* 1<<63 | vni index << 48 | mac; 0 = empty */
    uint32_t seen; /* seconds, or VTEP_PINNED */
    uint32_t ip;   /* network byte order */
};

struct vtep_table {
    unsigned ageing;
    uint64_t learned, moves;
    struct vtep_entry sets[VTEP_SETS][VTEP_WAYS];
};

void vtep_learn(struct vtep_table *t, unsigned vni_idx, const uint8_t *mac, uint32_t ip,
                uint32_t now);
/* Entry from discovery: kept until forgotten, but a frame that comes from the
 * MAC through another VTEP moves it (the data plane is the latest word). */
void vtep_pin(struct vtep_table *t, unsigned vni_idx, const uint8_t *mac, uint32_t ip);
/* The remote for (vni_idx, mac), 0 if unknown or aged. */
uint32_t vtep_lookup(struct vtep_table *t, unsigned vni_idx, const uint8_t *mac,
                     uint32_t now);
/* Drops every entry pointing at ip (a VTEP that went away); returns how many. */
size_t vtep_forget_ip(struct vtep_table *t, uint32_t ip);

/* ---- control-thread API (etcd.c, status) ---- */

struct vxlan_info {
    const char *port;
    const char *bridge;
    uint32_t local;                     /* network order; 0: not set */
    unsigned n_vni;
    uint32_t vni[CONF_VNI_MAP_MAX];
    uint16_t vlan[CONF_VNI_MAP_MAX];    /* bridge VLAN of each VNI */
};

typedef void (*vxlan_info_cb)(void *ctx, struct port *p, const struct vxlan_info *i);
/* Calls cb for every open vxlan port. */
void vxlan_foreach(vxlan_info_cb cb, void *ctx);
/* Whether p is an open vxlan port (p may be stale: compared, not read). */
bool vxlan_is_port(const struct port *p);
/* Sets the discovered remotes of VNI index i (flooded beside remote=); the
 * datapath sees the new list after an RCU grace period. */
int vxlan_set_discovered(struct port *p, unsigned i, const uint32_t *ips, unsigned n);
void vxlan_pin_mac(struct port *p, unsigned i, const uint8_t mac[6], uint32_t ip);
void vxlan_forget_remote(struct port *p, uint32_t ip);

#endif
