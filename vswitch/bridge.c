/* The L2 pipeline of one received batch, in the order a packet visits it:
 * ingress VLAN (vlan.c), learning and lookup (fdb.c), flood or unicast,
 * egress VLAN, then one tx_burst per output port. Frames for a network's
 * gateway, and everything from a NAT uplink (a routed port), take the L3
 * stage (l3.c, then nat.c) and come back here to leave. */
#include "dp.h"
#include "vlan.h"

static inline void txq_add(struct pmd *pmd, uint16_t no, struct pkt *p, uint16_t tci)
{
    struct pmd_txq *t = &pmd->txq[no];

    if (t->n == 0)
        pmd->touched[pmd->n_touched++] = no;
    t->pkts[t->n] = p;
    t->tcis[t->n] = tci;
    t->n++;
}

/* Queues p for port `out` if its VLAN leaves there and it fits. */
static inline bool forward_to(struct pmd *pmd, const struct dp_port *out, struct pkt *p)
{
    uint16_t tci;

    if (!vlan_egress(&out->vlan, p->vlan, p->pcp, &tci))
        return false;
    if (p->len > out->max_frame && p->vnet.gso_type == VIRTIO_NET_HDR_GSO_NONE) {
        port_count_drop(out->port, DROP_MTU, 1);
        return true;
    }
    txq_add(pmd, out->port->no, p, tci);
    return true;
}

/* in_no 0: from the router. Routed ports are never flooded to. */
static void flood(struct pmd *pmd, const struct dp_snapshot *s,
                  const struct dp_bridge *br, uint16_t in_no, struct port *count_on,
                  struct pkt *p)
{
    bool sent = false;

    for (unsigned i = 0; i < br->n_members; i++) {
        uint16_t no = br->members[i];
        const struct dp_port *out = s->by_no[no];

        if (no == in_no || !out || (s->l3 && s->l3->uplink_of[no]))
            continue;
        sent |= forward_to(pmd, out, p);
    }
    if (!sent)
        port_count_drop(count_on, DROP_NO_DESTINATION, 1);
}

/* A frame the router sends into (br, p->vlan): unicast by the FDB or flood. */
static void l2_output(struct pmd *pmd, const struct dp_snapshot *s,
                      const struct dp_bridge *br, struct port *in, struct pkt *p)
{
    if (!mac_is_multicast(pkt_dst_mac(p))) {
        int out = fdb_lookup(br->fdb, p->vlan, pkt_dst_mac(p), pmd->now);
        if (out > 0 && s->by_no[out] && forward_to(pmd, s->by_no[out], p))
            return;
    }
    flood(pmd, s, br, 0, in, p);
}

static void l3_stage(struct pmd *pmd, const struct dp_snapshot *s, struct port *in,
                     const struct l3_net *n, const struct l3_uplink *up, struct pkt *p,
                     unsigned slot)
{
    struct l3_out o = {0, NULL};

    switch (l3_input(pmd, s->l3, n, up, in, p, slot, &o)) {
    case L3_TO_PORT:
        if (s->by_no[o.out_port])
            forward_to(pmd, s->by_no[o.out_port], p);
        break;
    case L3_TO_L2:
        l2_output(pmd, s, o.out_br, in, p);
        break;
    default:
        break;
    }
}

void bridge_input(struct pmd *pmd, const struct dp_snapshot *s, struct port *in,
                  struct pkt *pkts, int n)
{
    const struct dp_port *dpin = s->by_no[in->no];
    struct fdb *fdb;

    if (!dpin || !dpin->br) {
        port_count_drop(in, DROP_NO_DESTINATION, n);
        return;
    }
    fdb = dpin->br->fdb;
    pmd->n_touched = 0;

    for (int i = 0; i < n; i++) {
        struct pkt *p = &pkts[i];
        uint16_t tci = p->vlan;
        const struct l3_net *net;

        if (s->l3 && s->l3->uplink_of[in->no]) {
            p->vlan = 0;
            p->pcp = 0;
            l3_stage(pmd, s, in, NULL, s->l3->uplink_of[in->no], p, (unsigned)i);
            continue;
        }
        int drop = vlan_ingress(&dpin->vlan, tci, &p->vlan);

        if (drop >= 0) {
            port_count_drop(in, drop, 1);
            continue;
        }
        p->pcp = tci & VLAN_PCP_MASK;
        if (mac_is_multicast(pkt_src_mac(p))) {
            port_count_drop(in, DROP_SRC_MULTICAST, 1);
            continue;
        }
        fdb_learn(fdb, p->vlan, pkt_src_mac(p), in->no, pmd->now);

        if (dpin->br->nets && (net = dpin->br->nets[p->vlan]) &&
            l3_wants(s->l3, net, p, pmd->now)) {
            l3_stage(pmd, s, in, net, NULL, p, (unsigned)i);
            continue;
        }

        if (!mac_is_multicast(pkt_dst_mac(p))) {
            int out = fdb_lookup(fdb, p->vlan, pkt_dst_mac(p), pmd->now);
            if (out == in->no) {
                port_count_drop(in, DROP_SAME_PORT, 1);
                continue;
            }
            if (out > 0 && s->by_no[out] && forward_to(pmd, s->by_no[out], p))
                continue;
        }
        flood(pmd, s, dpin->br, in->no, in, p);
    }

    for (unsigned i = 0; i < pmd->n_touched; i++) {
        uint16_t no = pmd->touched[i];
        struct pmd_txq *t = &pmd->txq[no];
        struct port *out = s->by_no[no]->port;

        if (__atomic_load_n(&out->tx_ready, __ATOMIC_ACQUIRE))
            out->ops->tx_burst(out, t->pkts, t->tcis, t->n);
        else
            port_count_drop(out, DROP_LINK_DOWN, t->n);
        t->n = 0;
    }
}
