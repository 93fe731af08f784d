/* What every port type shares: the type table, and taking a port away from
 * the datapath. */
#include <urcu-qsbr.h>

#include "config.h"
#include "port.h"

const struct port_ops *port_ops_for(enum port_type t)
{
    switch (t) {
    case PORT_TYPE_VHOST_USER:
        return &port_vhost_ops;
    case PORT_TYPE_TAP:
        return &port_tap_ops;
    case PORT_TYPE_INTERNAL:
        return &port_internal_ops;
#ifdef HAVE_AFXDP
    case PORT_TYPE_AFXDP:
        return &port_afxdp_ops;
#endif
#ifdef HAVE_DPDK
    case PORT_TYPE_DPDK:
        return &port_dpdk_ops;
#endif
    case PORT_TYPE_VXLAN:
        return &port_vxlan_ops;
    default:
        return NULL;
    }
}

void port_quiesce(struct port *p)
{
    for (unsigned q = 0; q < PORT_RXQ_MAX; q++)
        __atomic_store_n(&p->rxq_ready[q], false, __ATOMIC_RELEASE);
    __atomic_store_n(&p->tx_ready, false, __ATOMIC_RELEASE);
    synchronize_rcu();
}

