/* A port: one object per configured port, one vtable per port type
 * (port_vhost.c, port_tap.c, port_internal.c). The control thread opens,
 * reconfigures and closes ports; PMD threads call rx_burst/tx_burst.
 *
 * Receive queues are owned by one PMD thread each. Transmit may come from any
 * PMD thread: tx_burst serialises internally where the port needs it. */
#ifndef VSWITCH_PORT_H
#define VSWITCH_PORT_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "conf.h"
#include "drop.h"
#include "pkt.h"

#define PORT_MAX 1024 /* port numbers 1..PORT_MAX-1 */
#define PORT_RXQ_MAX CONF_QUEUES_MAX

struct port;
struct vswitch;

/* What a port type may use of the switch when it opens. */
struct port_env {
    struct event_base *base;
    const char *run_dir;
    struct vswitch *sw;
};

struct port_stats {
    uint64_t rx_packets, rx_bytes;
    uint64_t tx_packets, tx_bytes;
    uint64_t drops[DROP__COUNT];
};

struct port_ops {
    const char *type;
    /* Opens the port for conf c (type-specific options). On failure returns
     * -1, leaves nothing behind and writes one sentence to err. */
    int (*open)(struct port *p, const struct conf_port *c, const struct port_env *env,
                char *err, size_t errlen);
    void (*close)(struct port *p);
    /* Whether the type-specific options of a running port can change from a
     * to b in place; if not (or NULL) the port is closed and opened again. */
    bool (*same_options)(const struct conf_port *a, const struct conf_port *b);
    /* Receives up to max packets from queue q into pkts[]. The packets may
     * point into the port's memory until rx_done(). */
    int (*rx_burst)(struct port *p, unsigned q, struct pkt *pkts, int max);
    /* The batch from rx_burst has been transmitted: give buffers back. */
    void (*rx_done)(struct port *p, unsigned q, struct pkt *pkts, int n);
    /* Transmits n packets with their egress TCIs (0: untagged). Counts its own
     * drops and tx stats. */
    void (*tx_burst)(struct port *p, struct pkt *const *pkts, const uint16_t *tcis,
                     int n);
    /* fd that becomes readable when queue q has work (kick eventfd, tap fd),
     * and enable/disable of the peer's notifications around sleeping.
     * *is_eventfd: the PMD must read it to reset it after waking. */
    int (*wait_fd)(struct port *p, unsigned q, bool *is_eventfd);
    void (*set_notify)(struct port *p, unsigned q, bool enable);
    /* Whether queue q has work right now (checked after set_notify(true)). */
    bool (*rx_pending)(struct port *p, unsigned q);
    /* Guest memory (types that map a frontend's memory): whether addr is in
     * it, and, called on a PMD thread after an access to it faulted, take
     * the port out of the datapath and drop its frontend (see guest_fault.h). */
    bool (*owns_addr)(struct port *p, const void *addr);
    void (*fault)(struct port *p);
    /* An uplink's IPv4 address and prefix (NAT source, gateway routes): from
     * the port's ip= when set, else learned from its interface (libnl). -1 if
     * it has none. NULL for types that are never uplinks. */
    int (*uplink_addr)(struct port *p, uint32_t *addr_be, uint8_t *prefix_len);
    /* Runtime state for `show`: link, connection, features. */
    json_t *(*status)(struct port *p);
};

struct port {
    char name[CONF_NAME_MAX];
    uint16_t no;                 /* port number, key of the FDB */
    const struct port_ops *ops;
    struct vswitch *sw;
    void *priv;                  /* the type's state */
    struct conf_port conf;       /* what it was opened with */
    /* Number of receive queues the datapath may poll now, and per queue
     * whether it may be touched. Written by the control thread, read by PMDs
     * inside RCU read-side sections. */
    unsigned n_rxq;
    bool rxq_ready[PORT_RXQ_MAX];
    bool tx_ready;
    struct port_stats stats;     /* updated with relaxed atomics */
};

extern const struct port_ops port_vhost_ops;
extern const struct port_ops port_tap_ops;
extern const struct port_ops port_internal_ops;
extern const struct port_ops port_vxlan_ops;
extern const struct port_ops port_afxdp_ops; /* HAVE_AFXDP */
extern const struct port_ops port_dpdk_ops;  /* HAVE_DPDK */

const struct port_ops *port_ops_for(enum port_type t);

static inline void port_count_drop(struct port *p, enum drop_reason r, uint64_t n)
{
    __atomic_fetch_add(&p->stats.drops[r], n, __ATOMIC_RELAXED);
}

static inline void port_count_rx(struct port *p, uint64_t pkts, uint64_t bytes)
{
    __atomic_fetch_add(&p->stats.rx_packets, pkts, __ATOMIC_RELAXED);
    __atomic_fetch_add(&p->stats.rx_bytes, bytes, __ATOMIC_RELAXED);
}

static inline void port_count_tx(struct port *p, uint64_t pkts, uint64_t bytes)
{
    __atomic_fetch_add(&p->stats.tx_packets, pkts, __ATOMIC_RELAXED);
    __atomic_fetch_add(&p->stats.tx_bytes, bytes, __ATOMIC_RELAXED);
}

/* Called by a port type on the control thread when its queues' readiness or
 * wait fds changed: PMD threads re-read them. */
void switch_port_changed(struct vswitch *sw, struct port *p);

/* Makes every PMD stop touching port p (or anything the datapath may have
 * taken from it) before returning: clears its ready flags and waits one RCU
 * grace period. */
void port_quiesce(struct port *p);

#endif
