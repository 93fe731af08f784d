/* The virtio 1.2 modern PCI transport (§4.1): vendor 0x1af4, device id
 * 0x1040 + virtio device type, revision 1, and four vendor capabilities
 * pointing into BAR 2 — common configuration, notifications, ISR status and
 * the device-specific configuration. MSI-X (table and PBA) lives in BAR 0.
 *
 *   BAR 2 layout:  0x0000 common cfg   0x1000 ISR   0x2000 device cfg
 *                  0x3000 notify: queue q at 0x3000 + q * 4
 *
 * The transport keeps the common-configuration state machine (feature words,
 * queue select and per-queue registers, device status with FEATURES_OK
 * checking, reset) and calls the device through virtio_pci_ops.
 *
 * Threads: everything runs on vCPU threads with vm_lock held, or on the
 * control thread after taking vm_lock. */
#ifndef VMM_VIRTIO_PCI_H
#define VMM_VIRTIO_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "msix.h"
#include "pci.h"
#include "vm.h"

#define VIRTIO_PCI_VENDOR        0x1af4
#define VIRTIO_PCI_DEVICE_BASE   0x1040
#define VIRTIO_PCI_MAX_QUEUES    16

/* virtio_pci_cap.cfg_type */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG    3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG    5

#define VIRTIO_PCI_MSIX_BAR     0
#define VIRTIO_PCI_BAR          2
#define VIRTIO_PCI_BAR_SIZE     0x4000
#define VIRTIO_PCI_COMMON_OFF   0x0000
#define VIRTIO_PCI_COMMON_LEN   0x38
#define VIRTIO_PCI_ISR_OFF      0x1000
#define VIRTIO_PCI_DEVICE_OFF   0x2000
#define VIRTIO_PCI_DEVICE_LEN   0x1000
#define VIRTIO_PCI_NOTIFY_OFF   0x3000
#define VIRTIO_PCI_NOTIFY_MULT  4

/* Common configuration register offsets (§4.1.4.3). */
#define VIRTIO_PCI_COMMON_DFSELECT  0x00
#define VIRTIO_PCI_COMMON_DF        0x04
#define VIRTIO_PCI_COMMON_GFSELECT  0x08
#define VIRTIO_PCI_COMMON_GF        0x0c
#define VIRTIO_PCI_COMMON_MSIX      0x10
#define VIRTIO_PCI_COMMON_NUMQ      0x12
#define VIRTIO_PCI_COMMON_STATUS    0x14
#define VIRTIO_PCI_COMMON_CFGGEN    0x15
#define VIRTIO_PCI_COMMON_Q_SELECT  0x16
#define VIRTIO_PCI_COMMON_Q_SIZE    0x18
#define VIRTIO_PCI_COMMON_Q_MSIX    0x1a
#define VIRTIO_PCI_COMMON_Q_ENABLE  0x1c
#define VIRTIO_PCI_COMMON_Q_NOFF    0x1e
#define VIRTIO_PCI_COMMON_Q_DESCLO  0x20
#define VIRTIO_PCI_COMMON_Q_DESCHI  0x24
#define VIRTIO_PCI_COMMON_Q_AVAILLO 0x28
#define VIRTIO_PCI_COMMON_Q_AVAILHI 0x2c
#define VIRTIO_PCI_COMMON_Q_USEDLO  0x30
#define VIRTIO_PCI_COMMON_Q_USEDHI  0x34

#define VIRTIO_PCI_ISR_QUEUE  0x1
#define VIRTIO_PCI_ISR_CONFIG 0x2

struct virtio_pci_queue {
    uint16_t size;       /* as set by the driver (starts at max_size) */
    uint16_t max_size;
    uint16_t msix_vector;
    bool enabled;
    uint64_t desc, driver, device; /* guest-physical */
};

struct virtio_pci_ops {
    /* Device-specific configuration space access (offset from its start). */
    void (*config_access)(void *opaque, uint64_t offset, uint8_t *data, unsigned len,
                          bool is_write);
    /* The driver set FEATURES_OK with these features (already checked to be
     * offered and to include VERSION_1). Return false to refuse. May be NULL. */
    bool (*features_ok)(void *opaque, uint64_t features);
    /* DRIVER_OK was set: queues are configured. */
    void (*driver_ok)(void *opaque);
    /* The driver wrote 0 to device status (or the VMM reset the device);
     * called before the transport state is cleared. */
    void (*reset)(void *opaque);
    /* A notify write that reached the VMM (no ioeventfd armed). May be NULL. */
    void (*notify)(void *opaque, unsigned queue);
    /* The notify area moved (BAR remapped) while the device is live:
     * re-aim ioeventfds. gpa is the area's base; mapped false: gone. */
    void (*notify_moved)(void *opaque, uint64_t gpa, bool mapped);
};

struct virtio_pci;

/* A virtio device of type device_type (1 = net) on bus, with nqueues
 * queues of at most queue_max entries, nvec MSI-X vectors, and config_size
 * bytes of device configuration. NULL on failure. */
struct virtio_pci *virtio_pci_create(struct vm *vm, struct pci_bus *bus,
                                     uint16_t device_type, uint32_t class_code,
                                     unsigned nqueues, uint16_t queue_max,
                                     unsigned nvec, unsigned config_size,
                                     uint64_t device_features,
                                     const struct virtio_pci_ops *ops, void *opaque);
void virtio_pci_destroy(struct virtio_pci *vp);

/* The offer may change only while the driver has not read it (no
 * backend yet); features the driver accepted are checked against it. */
void virtio_pci_set_device_features(struct virtio_pci *vp, uint64_t features);
uint64_t virtio_pci_device_features(const struct virtio_pci *vp);
uint64_t virtio_pci_driver_features(const struct virtio_pci *vp);
uint8_t virtio_pci_status(const struct virtio_pci *vp);
unsigned virtio_pci_num_queues(const struct virtio_pci *vp);
const struct virtio_pci_queue *virtio_pci_queue(const struct virtio_pci *vp, unsigned q);
/* Guest-physical address of queue q's notify register; 0 when BAR 2 does
 * not decode. */
uint64_t virtio_pci_notify_addr(const struct virtio_pci *vp, unsigned q);
uint16_t virtio_pci_config_vector(const struct virtio_pci *vp);

struct msix *virtio_pci_msix(struct virtio_pci *vp);
struct pci_dev *virtio_pci_dev(struct virtio_pci *vp);

/* The device configuration changed: bump config_generation and interrupt
 * (the config MSI-X vector, or ISR bit 1 on INTx) if DRIVER_OK. */
void virtio_pci_config_changed(struct virtio_pci *vp);
/* Only bump config_generation (a change before the driver is up). */
void virtio_pci_config_bump(struct virtio_pci *vp);
/* Resets the device as a driver write of 0 would. */
void virtio_pci_reset(struct virtio_pci *vp);
/* The device hit an error it cannot recover from: DEVICE_NEEDS_RESET. */
void virtio_pci_needs_reset(struct virtio_pci *vp);

/* BAR 2 access as the guest would make it (tests). */
void virtio_pci_bar_access(struct virtio_pci *vp, uint64_t offset, uint8_t *data,
                           unsigned len, bool is_write);

#endif
