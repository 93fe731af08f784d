/* What every port type shares: the type table, and taking a port away from
 * the datapath. */
#include <urcu-qsbr.h>

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

