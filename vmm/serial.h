/* An 8250/16550A UART (as at 0x3F8, IRQ 4): the guest's console. Output
 * goes straight to out_fd; input is queued by serial_input() from the
 * control thread. The device itself knows nothing of KVM: the IRQ line is a
 * callback, so the tests drive it directly. Callers hold vm_lock. */
#ifndef VMM_SERIAL_H
#define VMM_SERIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SERIAL_COM1_BASE 0x3F8
#define SERIAL_COM1_IRQ 4
#define SERIAL_RX_BUF 4096

struct serial;

struct serial *serial_create(int out_fd, void (*set_irq)(void *opaque, bool level),
                             void *opaque);
void serial_destroy(struct serial *s);

/* The register file: offset 0..7 from the base, one byte at a time (a wider
 * access touches the first register only). A vm_io_fn. */
void serial_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write);

/* Host input for the guest; returns the bytes taken (the rest would
 * overflow the receive buffer). */
size_t serial_input(struct serial *s, const uint8_t *buf, size_t n);
/* Room left in the receive buffer. */
size_t serial_rx_room(const struct serial *s);

#endif
