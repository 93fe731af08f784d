/* virtio-net (virtio 1.2 §5.1) on the modern PCI transport, as a vhost-user
 * frontend: the VMM negotiates with the backend (vswitchd, DPDK, Open
 * vSwitch), shares guest RAM (memfd regions), sends the guest's ring
 * addresses, wires each queue's notify address to a kick eventfd with
 * KVM_IOEVENTFD and each queue's call eventfd to its MSI-X vector with
 * KVM_IRQFD — after DRIVER_OK no packet enters the VMM.
 *
 * One queue pair (RX 0, TX 1), no control queue. Offered to the guest: the
 * backend's features ∩ VIRTIO_NET_VMM_FEATURES (MTU only when the backend
 * offers it). Before a backend was ever seen the offer is
 * VIRTIO_NET_VMM_FEATURES without MTU.
 *
 * Backend gone (EOF, failed request): link down in the config status and a
 * config-change interrupt; client mode redials every second, server mode
 * accepts the next connection. On return the setup is replayed with each
 * ring's base = its used->idx in guest memory, then link up and another
 * config-change interrupt. The guest is not restarted.
 *
 * Threads: socket and timer events on vm_event_base(vm), under vm_lock. */
#ifndef VMM_VIRTIO_NET_H
#define VMM_VIRTIO_NET_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pci.h"
/* the virtio-net constants shared with the backend (same name as this file) */
#include "../vhost/virtio_net.h"
#include "vm.h"

/* What this VMM can offer the guest (fixed per build). */
#define VIRTIO_NET_VMM_FEATURES                                                \
    (VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_NET_F_MAC) |           \
     VIRTIO_BIT(VIRTIO_NET_F_STATUS) | VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) |    \
     VIRTIO_BIT(VIRTIO_NET_F_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM) |     \
     VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) | VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6) |  \
     VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6) | \
     VIRTIO_BIT(VIRTIO_RING_F_EVENT_IDX) | VIRTIO_BIT(VIRTIO_RING_F_INDIRECT_DESC) | \
     VIRTIO_BIT(VIRTIO_NET_F_MTU))

struct virtio_net_dev;

/* Adds a virtio-net PCI function to bus served by the vhost-user backend at
 * socket. server: the VMM listens on socket (created, replaced if stale)
 * and the backend dials; otherwise the VMM dials, and redials every second
 * while the socket is absent. Waits up to VIRTIO_NET_FIRST_WAIT_MS for a
 * first backend so the guest sees its features; without one it starts with
 * link down. NULL with err filled on failure (bad path, bus full). */
struct virtio_net_dev *virtio_net_create(struct vm *vm, struct pci_bus *bus,
                                         const char *socket, const uint8_t mac[6],
                                         bool server, char *err, size_t errlen);
void virtio_net_destroy(struct virtio_net_dev *dev);

#define VIRTIO_NET_FIRST_WAIT_MS 3000

bool virtio_net_link_up(const struct virtio_net_dev *dev);
/* The PCI function (tests, the API's introspection). */
struct pci_dev *virtio_pci_dev_of(struct virtio_net_dev *dev);
/* {"socket", "mode", "mac", "link": "up"|"down", "connected", "driver_ok",
 *  "features" (negotiated, hex), "connects", "pci_slot"} — the API's status. Takes
 *  vm_lock. The caller owns the reference. */
json_t *virtio_net_status_json(struct virtio_net_dev *dev);

#endif
