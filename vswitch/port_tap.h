/* The tap port type, shared with `internal` (a tap that stands for the
 * bridge on the host side). */
#ifndef VSWITCH_PORT_TAP_H
#define VSWITCH_PORT_TAP_H

#include "port.h"

int port_tap_open(struct port *p, const struct conf_port *c, const char *ifname,
                  char *err, size_t errlen);
void port_tap_close(struct port *p);
const char *port_tap_ifname(const struct port *p);

/* ops shared by tap and internal */
int port_tap_rx_burst(struct port *p, unsigned q, struct pkt *pkts, int max);
void port_tap_tx_burst(struct port *p, struct pkt *const *pkts, const uint16_t *tcis,
                       int n);
int port_tap_wait_fd(struct port *p, unsigned q, bool *is_eventfd);
bool port_tap_rx_pending(struct port *p, unsigned q);
json_t *port_tap_status(struct port *p);
/* uplink_addr of tap and internal ports: ip= if set, else the interface's
 * first IPv4 address (rtnetlink, libnl-route-3). port_internal.c. */
int port_uplink_addr_of(struct port *p, uint32_t *addr_be, uint8_t *prefix_len);

#endif
