/* The datapath's view of the configuration: an immutable snapshot published
 * to the PMD threads with RCU (liburcu QSBR) and the PMD threads themselves.
 * Internal to vswitch/: switch.c builds snapshots, pmd.c runs them, bridge.c
 * forwards through them. */
#ifndef VSWITCH_DP_H
#define VSWITCH_DP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "fdb.h"
#include "l3.h"
#include "pkt.h"
#include "port.h"

#define PMD_MAX 16

struct dp_bridge {
    struct fdb *fdb;         /* owned by the switch; lives across snapshots */
    unsigned n_members;
    uint16_t *members;       /* port numbers */
    const struct l3_net **nets; /* by VLAN 0..4094; NULL: no networks here */
};

struct dp_port {
    struct port *port;
    struct dp_bridge *br;
    struct conf_vlan vlan;
    uint32_t max_frame;      /* MTU + Ethernet header (untagged) */
};

struct dp_rxq {
    struct port *port;
    unsigned q;
};

struct dp_snapshot {
    struct dp_port *by_no[PORT_MAX];
    struct dp_port *ports;
    unsigned n_ports;
    struct dp_bridge *bridges;
    unsigned n_bridges;
    struct dp_rxq *rxqs[PMD_MAX]; /* per PMD */
    unsigned n_rxqs[PMD_MAX];
    struct l3_snapshot *l3;  /* networks and uplinks (l3_state.c); may be NULL */
};

/* Transmit staging: what one rx batch sends to each output port. */
struct pmd_txq {
    int n;
    struct pkt *pkts[PKT_BATCH];
    uint16_t tcis[PKT_BATCH];
};

struct pmd {
    unsigned id;
    pthread_t thread;
    struct vswitch *sw;
    int wake_fd;             /* eventfd: the control thread wants attention */
    int epfd;
    uint64_t seen_gen;       /* generation the epoll set was built for */
    bool stop;
    bool must_poll;          /* a ready queue has no wait fd */
    uint32_t now;            /* seconds, refreshed every loop */
    uint64_t loops, busy_loops, sleeps;
    /* what is in flight, for recovery from a guest memory fault */
    struct port *cur_port;
    unsigned cur_q;
    int cur_n;
    struct pkt rx[PKT_BATCH];
    uint16_t touched[PORT_MAX];
    unsigned n_touched;
    struct pmd_txq txq[PORT_MAX];
    /* ICMP errors sent by the gateway in the second `icmp_err_sec`: at most
     * ICMP_ERR_PER_SEC (Linux's icmp_msgs_per_sec default) per PMD */
    uint32_t icmp_err_sec, icmp_err_n;
    /* frames the gateway makes (DHCP replies, ICMP errors): one per batch slot */
    uint8_t l3_bufs[PKT_BATCH][L3_BUF_SIZE];
};

/* bridge.c: forwards a received batch (stages: VLAN in, learn, lookup or
 * flood, egress VLAN, tx). */
void bridge_input(struct pmd *pmd, const struct dp_snapshot *s, struct port *in,
                  struct pkt *pkts, int n);

/* pmd.c */
int pmd_start(struct pmd *pmd, struct vswitch *sw, unsigned id);
void pmd_stop(struct pmd *pmd);
void pmd_wake(struct pmd *pmd);

/* switch.c, for the PMD threads */
struct dp_snapshot *switch_snapshot(struct vswitch *sw); /* rcu_dereference */
uint64_t switch_generation(struct vswitch *sw);

#endif
