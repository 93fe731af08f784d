/* The L3 gateway of a network and the NAT behind it (docs/datapath.md, "L3
 * gateway", "NAT", "DHCP"). One header for the subsystem; one file per stage:
 *
 *   l3.c         the router stage: classify, validate IPv4, local delivery,
 *                route between networks and to an uplink
 *   arp.c        ARP replies/requests and the neighbour table
 *   icmp.c       echo replies, ICMP error parsing
 *   dhcp.c       the DHCP server and its lease table
 *   conntrack.c  connection tracking (rculfhash), TCP states, port allocation
 *   nat.c        SNAT/DNAT/hairpin rewrites, ICMP error translation
 *   checksum.c   Internet checksum and RFC 1624 incremental updates
 *   l3_state.c   the control side: snapshot build, leases file, ct-show
 *
 * Addresses and ports are host byte order in every struct here; packet bytes
 * are converted at the edge. */
#ifndef VSWITCH_L3_H
#define VSWITCH_L3_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "conf.h"
#include "pkt.h"

struct dp_bridge;
struct dp_snapshot;
struct pmd;
struct port;

#define IPPROTO_ICMP_ 1
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define L3_BUF_SIZE 1600 /* one generated frame (DHCP reply) per batch slot */

/* ---- checksum.c ---- */

/* One's complement sum of len bytes, folded, not complemented (start with 0). */
uint32_t csum_partial(const void *data, size_t len, uint32_t sum);
uint16_t csum_fold(uint32_t sum);
/* RFC 1624 eqn. 3: a complemented checksum field after a 16/32-bit word of
 * the data it covers changed from old to new (values in network order as read
 * from the packet with memcpy). */
uint16_t csum_update16(uint16_t csum, uint16_t old, uint16_t new_);
uint16_t csum_update32(uint16_t csum, uint32_t old, uint32_t new_);
/* The same for a field that holds an uncomplemented partial sum (a virtio
 * NEEDS_CSUM pseudo-header sum). */
uint16_t csum_partial_update32(uint16_t sum, uint32_t old, uint32_t new_);
/* Checksum of an IPv4 header (field included; 0 when valid). */
uint16_t ipv4_csum(const uint8_t *ip, unsigned ihl_bytes);

/* ---- the network's runtime state: lives across snapshots ---- */

enum dhcp_lease_state { LEASE_FREE, LEASE_OFFERED, LEASE_BOUND, LEASE_DECLINED };

struct dhcp_lease {
    uint8_t mac[6];
    uint8_t state;
    uint32_t ip;
    int64_t expires; /* wall clock, seconds */
    char hostname[32];
};

#define DHCP_LEASES_MAX 1024

/* Leases are changed by the PMD that receives a DHCP message and read by the
 * control thread (list-leases, the leases file): both under `lock`, held for
 * one message or one copy of the table, never across a syscall. */
struct l3_net_state {
    char name[CONF_NAME_MAX];
    pthread_spinlock_t lock;
    struct dhcp_lease leases[DHCP_LEASES_MAX];
    unsigned n_leases;
    bool leases_dirty;
    uint32_t ct_count; /* connections of this network (atomic) */
    uint32_t ct_timeouts[CT_TO__COUNT]; /* the network's, set by the control thread */
};

/* ---- the snapshot's view (immutable, RCU-published with dp_snapshot) ---- */

struct l3_uplink {
    uint16_t port_no;
    uint32_t addr, mask, gw; /* gw 0: on-link only */
    uint8_t mac[6];          /* the switch's side of the link */
    uint64_t fwd_ports[2][1024]; /* forwarded ports: [0] tcp, [1] udp */
};

struct l3_net {
    struct l3_net_state *st;
    const struct conf_net *conf; /* the snapshot's copy */
    const struct dp_bridge *br;
    unsigned idx;
    uint16_t vlan;
    uint32_t subnet, mask, gw;
    uint8_t mac[6];          /* gateway MAC: stable, locally administered */
    const struct l3_uplink *uplink; /* nat=; NULL without NAT */
};

struct l3_snapshot {
    struct l3_state *state;
    struct conf_net *confs;
    struct l3_net *nets;
    unsigned n_nets;
    struct l3_uplink *uplinks;
    unsigned n_uplinks;
    const struct l3_uplink *uplink_of[1024]; /* by port number: routed ports */
};

/* ---- l3.c: the router stage ---- */

enum l3_verdict {
    L3_DROP,       /* counted against the ingress port */
    L3_TO_PORT,    /* send to port out_port, untagged */
    L3_TO_L2,      /* forward at L2 on out_br in p->vlan, as from no port */
};

struct l3_out {
    uint16_t out_port;
    const struct dp_bridge *out_br;
};

/* Whether a frame received in (bridge, VLAN) of net n goes to the gateway:
 * to its MAC, an ARP for its address, or a DHCP broadcast. ARP senders are
 * learnt on the way. */
bool l3_wants(struct l3_snapshot *l3, const struct l3_net *n, struct pkt *p, uint32_t now);

/* The stage: p came from network n (or, n NULL, from routed port `up`).
 * slot: p's index in the batch (its generated-frame buffer). */
enum l3_verdict l3_input(struct pmd *pmd, struct l3_snapshot *l3, const struct l3_net *n,
                         const struct l3_uplink *up, struct port *in, struct pkt *p,
                         unsigned slot, struct l3_out *out);

/* Validates the IPv4 packet in p (header, length, checksum, L4 header):
 * sets l3_ofs/l4_ofs/l4_proto; -1 or a drop reason. Never reads past the
 * frame or the head. */
int l3_parse_ipv4(struct pkt *p);

/* Copies len bytes at frame offset off out of p (head, then segments).
 * Returns the bytes copied. */
uint32_t pkt_copy_out(const struct pkt *p, uint32_t off, uint32_t len, uint8_t *dst);

/* The stable gateway MAC of a name (locally administered, unicast). */
void l3_derive_mac(const char *name, uint8_t salt, uint8_t mac[6]);

/* ---- arp.c ---- */

#define NEIGH_SIZE 4096

struct neigh_entry {
    uint32_t seq;  /* odd while written */
    uint32_t ip;
    uint32_t seen;
    uint8_t mac[6];
};

struct neigh_table {
    struct neigh_entry e[NEIGH_SIZE];
};

void neigh_learn(struct neigh_table *t, uint32_t ip, const uint8_t mac[6], uint32_t now);
bool neigh_lookup(struct neigh_table *t, uint32_t ip, uint8_t mac[6]);
/* Turns the ARP request in p into the reply from (mac, ip) in place; false
 * if p is not a request for ip. Malformed: *bad set. */
bool arp_reply_in_place(struct pkt *p, const uint8_t mac[6], uint32_t ip, bool *bad);
/* Sender of an ARP packet (request or reply); false if not ARP/IPv4. */
bool arp_sender(const struct pkt *p, uint32_t *ip, uint8_t mac[6]);
/* Makes p an ARP request (broadcast) for target from (mac, ip). */
void arp_build_request(struct pkt *p, const uint8_t mac[6], uint32_t ip, uint32_t target);

/* ---- icmp.c ---- */

/* Echo request in p (IPv4 parsed) turned into the reply in place. */
bool icmp_echo_reply_in_place(struct pkt *p);
/* After an incremental update left the ICMP checksum of p (IPv4 parsed) at
 * 0x0000: sets it to 0xffff when the message is all zeros, the one case
 * where RFC 1624 eqn. 3 gives 0x0000 and only 0xffff verifies. */
void icmp_csum_fix_zero(struct pkt *p);
static inline bool icmp_is_error(uint8_t type)
{
    return type == 3 || type == 11 || type == 12;
}
/* Builds in buf (cap bytes) the ICMP error (type, code) about p (IPv4
 * parsed) that a router with (mac, from) sends back to p's sender: as much of
 * p's datagram as fits in 576 bytes of IP (RFC 1812 4.3.2.3). Returns the
 * frame's length; 0 where RFC 1812 4.3.2.7 forbids an error (about an ICMP
 * error, a later fragment, a broadcast, multicast or martian source). */
size_t icmp_error_build(const struct pkt *p, uint8_t type, uint8_t code, const uint8_t mac[6],
                        uint32_t from, uint8_t *buf, size_t cap);

/* ---- dhcp.c ---- */

struct dhcp_msg {
    uint8_t op, htype, hlen, type;
    uint32_t xid, ciaddr, yiaddr, giaddr;
    uint16_t flags;
    uint8_t chaddr[6];
    uint32_t requested, server_id;
    char hostname[32];
};

/* Parses a BOOTP/DHCP message (the UDP payload); false if malformed. */
bool dhcp_parse(const uint8_t *b, size_t len, struct dhcp_msg *m);

struct dhcp_answer {
    uint8_t type;   /* 2 OFFER, 5 ACK, 6 NAK, 0: no answer */
    uint32_t yiaddr;
};

/* The server's decision for message m in network n at time now (updates the
 * lease table; caller holds st->lock). */
struct dhcp_answer dhcp_decide(struct l3_net_state *st, const struct conf_net *n,
                               const struct dhcp_msg *m, int64_t now);
/* Builds the reply frame (Ethernet..DHCP) into buf; returns its length. */
size_t dhcp_build_reply(uint8_t *buf, size_t cap, const struct conf_net *n,
                        const uint8_t gw_mac[6], const struct dhcp_msg *m,
                        const struct dhcp_answer *a);

/* ---- conntrack.c ---- */

struct ct_tuple {
    uint32_t src, dst;
    uint16_t sport, dport; /* ICMP echo: the identifier in both */
    uint8_t proto;
    uint8_t pad[3];
};

enum ct_tcp_state {
    CT_NONE, CT_SYN_SENT, CT_SYN_RECV, CT_ESTABLISHED, CT_FIN_WAIT, CT_CLOSE_WAIT,
    CT_LAST_ACK, CT_TIME_WAIT, CT_CLOSE, CT_INVALID
};

struct ct_conn;
struct ct_table;

struct ct_table *ct_create(uint16_t port_min, uint16_t port_max);
void ct_destroy(struct ct_table *t);

/* Finds the connection a packet with tuple k belongs to; *dir 0 if k is the
 * original direction, 1 the reply. RCU read side (PMD or online thread). */
struct ct_conn *ct_lookup(struct ct_table *t, const struct ct_tuple *k, int *dir);

/* Creates the connection for orig whose reply comes back as reply. When
 * alloc_src_port is set, reply.dport is chosen (port preservation first,
 * endpoint-independent mapping by (proto, orig.src, orig.sport, reply.dst)).
 * Returns the connection (maybe one another thread created a moment before),
 * or NULL with *why = DROP_NAT_TABLE_FULL / DROP_NAT_PORTS_EXHAUSTED. */
struct ct_conn *ct_create_conn(struct ct_table *t, struct l3_net_state *owner,
                               uint32_t limit, const struct ct_tuple *orig,
                               struct ct_tuple *reply, bool alloc_src_port,
                               const uint64_t *reserved_ports, uint32_t now, int *why,
                               int *dir);

const struct ct_tuple *ct_conn_tuple(const struct ct_conn *c, int dir);
/* TCP: the state after a segment with flags in direction dir (pure). */
enum ct_tcp_state ct_tcp_next(enum ct_tcp_state s, int dir, uint8_t flags);
/* Accounts a packet: state, timeout, counters. false: invalid for its state
 * (a SYN in the reply direction of a new connection). Timeouts: the owner's. */
bool ct_conn_update(struct ct_conn *c, int dir, uint8_t tcp_flags, uint32_t len,
                    uint32_t now);
/* Control thread: removes expired connections (all with flush; only those of
 * owner if not NULL), then sizes the hash tables for what is left (ct_buckets:
 * the bucket count, at least one per node). Returns how many were removed. */
size_t ct_expire(struct ct_table *t, uint32_t now, bool flush,
                 const struct l3_net_state *owner);
/* Control thread: [{proto, state, orig:{src,sport,dst,dport}, reply:{...},
 * expires_in, packets, bytes, net}] */
json_t *ct_dump(struct ct_table *t, uint32_t now, const struct l3_net_state *owner);
size_t ct_count(struct ct_table *t);
size_t ct_buckets(const struct ct_table *t);
/* Ports tried for new mappings, ever (a search of a range found full is not
 * repeated until a mapping is freed). */
uint64_t ct_port_probes(const struct ct_table *t);

/* ---- nat.c ---- */

/* Rewrites p (head only) from tuple `from` to tuple `to` (addresses, ports or
 * ICMP id), updating the IPv4 and L4 checksums incrementally; with a virtio
 * NEEDS_CSUM request only the pseudo-header part of the L4 field moves. */
void nat_rewrite(struct pkt *p, const struct ct_tuple *from, const struct ct_tuple *to);
/* Translates an ICMP error in p whose embedded packet belongs to a tracked
 * connection: outer destination (and source when it is the peer) and the
 * embedded header, with every checksum involved. Returns 0 or a drop reason. */
int nat_icmp_error(struct ct_table *t, struct pkt *p);
/* The stage: NAT (and connection tracking) of an IPv4 packet routed by the
 * gateway from net n (NULL: arrived on uplink up). On success p's addresses
 * are as they leave; returns -1, or a drop reason. */
int nat_process(struct pmd *pmd, struct l3_snapshot *l3, const struct l3_net *n,
                const struct l3_uplink *up, struct pkt *p);
/* The tuple of a parsed IPv4 TCP/UDP/ICMP-echo packet; false if none. */
bool nat_tuple(const struct pkt *p, struct ct_tuple *k, uint8_t *tcp_flags);

/* ---- l3_state.c: the control side ---- */

struct l3_state {
    struct ct_table *ct;
    struct neigh_table neigh;
    struct l3_net_state **nets;
    size_t n_nets;
    char leases_path[4096];
    json_t *leases_loaded; /* from the file, for networks not yet created */
};

struct l3_state *l3_state_create(void);
void l3_state_destroy(struct l3_state *s);
/* Builds the L3 part of snapshot s (s->l3, NULL without networks) for conf
 * c: nets, uplinks with their addresses, per-bridge VLAN tables. -1 and err
 * on failure. */
int l3_snapshot_build(struct l3_state *st, const struct conf *c, struct dp_snapshot *s,
                      struct port *const *by_no, char *err, size_t errlen);
void l3_snapshot_free(struct l3_snapshot *l3, struct dp_snapshot *s);
/* After a snapshot for c is published: drops state of networks that left. */
void l3_state_commit(struct l3_state *st, const struct conf *c);
/* Every second on the control thread: conntrack expiry, leases file. */
void l3_state_tick(struct l3_state *st);
void l3_state_set_leases_path(struct l3_state *st, const char *path);
json_t *l3_leases_json(struct l3_state *st, const char *net);
json_t *l3_ct_show(struct l3_state *st, const char *net);
void l3_ct_flush(struct l3_state *st, const char *net);
uint32_t l3_now(void);

#endif
