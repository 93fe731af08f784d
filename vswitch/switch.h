/* The running switch: ports opened from a struct conf, the datapath snapshot
 * published to the PMD threads, learned state. Control-thread API. */
#ifndef VSWITCH_SWITCH_H
#define VSWITCH_SWITCH_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>
#include <jansson.h>

#include "conf.h"

struct vswitch;

struct switch_options {
    const char *run_dir;   /* default vhost-user socket dir */
    unsigned pmd_threads;  /* 1.. */
};

struct vswitch *switch_create(struct event_base *base, const struct switch_options *o);
void switch_destroy(struct vswitch *sw);

/* Makes the running switch match `next`: opens added ports, closes removed
 * ones, reconfigures changed ones, publishes a new datapath snapshot. All or
 * nothing: on failure (a socket path that cannot be created, a tap that cannot
 * be opened, ...) every port opened for this call is closed again, the running
 * switch is as before, and err holds one sentence. */
int switch_apply(struct vswitch *sw, const struct conf *next, char *err, size_t errlen);

/* Runtime state of a port for `show` (link, connected frontend, negotiated
 * features, socket path actually used). NULL if unknown. */
json_t *switch_port_status(struct vswitch *sw, const char *port);

/* {"port": {"rx_packets":..,"rx_bytes":..,"tx_packets":..,"tx_bytes":..,
 *           "drops": {"reason": n, ...}}, ...}; port NULL: all. NULL and err
 * if the port does not exist. */
json_t *switch_port_stats(struct vswitch *sw, const char *port, char *err, size_t errlen);

/* [{"mac":"..","vlan":n,"port":"..","age":s}, ...]; vlan -1: all. */
json_t *switch_fdb_show(struct vswitch *sw, const char *bridge, int vlan, char *err,
                        size_t errlen);
int switch_fdb_flush(struct vswitch *sw, const char *bridge, char *err, size_t errlen);

/* The networks' learned state (l3.h: leases, conntrack). */
struct l3_state *switch_l3(struct vswitch *sw);

#endif
