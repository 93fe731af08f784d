/* MSI-X for one PCI function (PCI Local Bus 3.0 §6.8.2): the capability, the
 * vector table and the pending-bit array, both served from a region of one of
 * the device's memory BARs.
 *
 * Delivery without the VMM: an "irqfd source" (e.g. a virtqueue's call
 * eventfd) is bound to a vector; while that vector is usable (MSI-X enabled,
 * function and vector unmasked) the eventfd is wired with KVM_IRQFD to a GSI
 * routed to the entry's address/data, and table writes re-aim the route.
 * While masked, the VMM watches the eventfd itself and records a signal as the
 * vector's pending bit; unmasking delivers it (KVM_SIGNAL_MSI) and re-wires
 * the irqfd. Vectors raised by the VMM (config change) follow the same rule.
 *
 * Threads: table/config accesses on vCPU threads with vm_lock held; eventfd
 * watching on the VM's event base (takes vm_lock). */
#ifndef VMM_MSIX_H
#define VMM_MSIX_H

#include <stdbool.h>
#include <stdint.h>

#include "pci.h"
#include "vm.h"

#define MSIX_MAX_VECTORS 64
#define MSIX_MAX_SOURCES 16
#define MSIX_NO_VECTOR   0xffff
#define MSIX_ENTRY_SIZE  16

/* Capability message-control bits. */
#define MSIX_CTRL_ENABLE 0x8000
#define MSIX_CTRL_MASKALL 0x4000
/* Vector control: per-vector mask. */
#define MSIX_VECTOR_MASKED 0x1

struct msix;

/* Adds the MSI-X capability to dev for nvec vectors, the table at table_off
 * and the PBA at pba_off in BAR bar (the device forwards those accesses with
 * msix_table_access / msix_pba_access). NULL on failure. */
struct msix *msix_create(struct vm *vm, struct pci_dev *dev, unsigned nvec,
                         unsigned bar, uint32_t table_off, uint32_t pba_off);
void msix_destroy(struct msix *m);

/* Accesses relative to the table or PBA start (the device's BAR handler). */
void msix_table_access(struct msix *m, uint64_t offset, uint8_t *data, unsigned len,
                       bool is_write);
void msix_pba_access(struct msix *m, uint64_t offset, uint8_t *data, unsigned len,
                     bool is_write);
/* Call from the device's config-write hook (enable / function mask). */
void msix_cfg_write(struct msix *m, unsigned offset, unsigned len);

unsigned msix_nvec(const struct msix *m);
bool msix_enabled(const struct msix *m);
bool msix_vector_masked(const struct msix *m, unsigned vector);
bool msix_pending(const struct msix *m, unsigned vector);

/* Raises vector now, or marks it pending while masked. -EINVAL when the
 * vector is out of range or MSI-X is disabled. */
int msix_notify(struct msix *m, unsigned vector);

/* Binds source slot (0..MSIX_MAX_SOURCES-1) to eventfd fd and vector, or
 * unbinds it (fd < 0). A source bound to MSIX_NO_VECTOR only matters for
 * the INTx fallback below. -EINVAL for a vector out of range. The fd stays
 * the caller's. */
int msix_set_source(struct msix *m, unsigned slot, int fd, unsigned vector);

/* While MSI-X is disabled (a guest that did not enable it, or booted with
 * pci=nomsi, uses INTx) the sources' signals go to fn, which raises the
 * function's INTx line, instead of being lost until MSI-X is enabled. */
void msix_set_intx(struct msix *m, void (*fn)(void *opaque), void *opaque);

#endif
