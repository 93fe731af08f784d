/* 8250/16550A UART. Transmission is instantaneous (THR is always empty), so
 * the THR-empty interrupt is raised on enable and after every byte, and
 * cleared by reading IIR or writing THR, as the 16550A datasheet says. */
#include "serial.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define UART_RBR 0 /* DLAB=0 read */
#define UART_THR 0 /* DLAB=0 write */
#define UART_IER 1
#define UART_IIR 2 /* read */
#define UART_FCR 2 /* write */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define IER_RDI 0x01
#define IER_THRI 0x02
#define IER_RLSI 0x04
#define IER_MSI 0x08
#define IIR_NO_INT 0x01
#define IIR_MSI 0x00
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_RLSI 0x06
#define IIR_FIFO 0xc0
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define LCR_DLAB 0x80
#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MSR_DCTS 0x01
#define MSR_DDSR 0x02
#define MSR_TERI 0x04
#define MSR_DDCD 0x08
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

struct serial {
    int out_fd;
    void (*set_irq)(void *, bool);
    void *opaque;
    bool irq_level;

    uint8_t ier, lcr, mcr, lsr, msr, scr, fcr, dll, dlm;
    bool thri_pending;
    uint8_t rx[SERIAL_RX_BUF];
    size_t rx_head, rx_len;
};

static void serial_update_irq(struct serial *s)
{
    bool level = false;
    if ((s->ier & IER_RDI) && s->rx_len)
        level = true;
    if ((s->ier & IER_THRI) && s->thri_pending)
        level = true;
    if ((s->ier & IER_RLSI) && (s->lsr & LSR_OE))
        level = true;
    if ((s->ier & IER_MSI) && (s->msr & (MSR_DCTS | MSR_DDSR | MSR_TERI | MSR_DDCD)))
        level = true;
    /* OUT2 gates the interrupt onto the bus on a PC; Linux sets it. In loop
     * mode the line is not driven. */
    if (s->mcr & MCR_LOOP)
        level = false;
    if (level != s->irq_level) {
        s->irq_level = level;
        if (s->set_irq)
            s->set_irq(s->opaque, level);
    }
}

static uint8_t serial_iir(const struct serial *s)
{
    uint8_t fifo = (s->fcr & FCR_ENABLE) ? IIR_FIFO : 0;
    if ((s->ier & IER_RLSI) && (s->lsr & LSR_OE))
        return IIR_RLSI | fifo;
    if ((s->ier & IER_RDI) && s->rx_len)
        return IIR_RDI | fifo;
    if ((s->ier & IER_THRI) && s->thri_pending)
        return IIR_THRI | fifo;
    if ((s->ier & IER_MSI) && (s->msr & 0x0f))
        return IIR_MSI | fifo;
    return IIR_NO_INT | fifo;
}

/* MSR's status bits follow MCR in loop mode; otherwise carrier, DSR and
 * CTS are up (a console is always there). */
static uint8_t serial_msr_status(const struct serial *s)
{
    if (s->mcr & MCR_LOOP) {
        uint8_t v = 0;
        if (s->mcr & MCR_RTS)
            v |= MSR_CTS;
        if (s->mcr & MCR_DTR)
            v |= MSR_DSR;
        if (s->mcr & MCR_OUT1)
            v |= MSR_RI;
        if (s->mcr & MCR_OUT2)
            v |= MSR_DCD;
        return v;
    }
    return MSR_DCD | MSR_DSR | MSR_CTS;
}

static void rx_push(struct serial *s, uint8_t c)
{
    if (s->rx_len == SERIAL_RX_BUF) {
        s->lsr |= LSR_OE;
        return;
    }
    s->rx[(s->rx_head + s->rx_len) % SERIAL_RX_BUF] = c;
    s->rx_len++;
}

static void serial_write_out(struct serial *s, uint8_t c)
{
    if (s->out_fd < 0)
        return;
    for (;;) {
        ssize_t n = write(s->out_fd, &c, 1);
        if (n == 1 || (n < 0 && errno != EINTR && errno != EAGAIN))
            return;
    }
}

struct serial *serial_create(int out_fd, void (*set_irq)(void *opaque, bool level),
                             void *opaque)
{
    struct serial *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->out_fd = out_fd;
    s->set_irq = set_irq;
    s->opaque = opaque;
    s->lsr = LSR_THRE | LSR_TEMT;
    s->dll = 12; /* 9600 baud */
    s->mcr = MCR_OUT2;
    return s;
}

void serial_destroy(struct serial *s)
{
    free(s);
}

size_t serial_rx_room(const struct serial *s)
{
    return SERIAL_RX_BUF - s->rx_len;
}

size_t serial_input(struct serial *s, const uint8_t *buf, size_t n)
{
    size_t room = serial_rx_room(s), take = n < room ? n : room;
    for (size_t i = 0; i < take; i++)
        rx_push(s, buf[i]);
    serial_update_irq(s);
    return take;
}

static void serial_read(struct serial *s, unsigned reg, uint8_t *v)
{
    switch (reg) {
    case UART_RBR:
        if (s->lcr & LCR_DLAB) {
            *v = s->dll;
        } else if (s->rx_len) {
            *v = s->rx[s->rx_head];
            s->rx_head = (s->rx_head + 1) % SERIAL_RX_BUF;
            s->rx_len--;
        } else {
            *v = 0;
        }
        break;
    case UART_IER:
        *v = (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
        break;
    case UART_IIR:
        *v = serial_iir(s);
        if ((*v & 0x0f) == IIR_THRI)
            s->thri_pending = false;
        break;
    case UART_LCR:
        *v = s->lcr;
        break;
    case UART_MCR:
        *v = s->mcr;
        break;
    case UART_LSR:
        *v = s->lsr | (s->rx_len ? LSR_DR : 0);
        s->lsr &= (uint8_t)~LSR_OE;
        break;
    case UART_MSR:
        *v = serial_msr_status(s) | (s->msr & 0x0f);
        s->msr &= 0xf0;
        break;
    case UART_SCR:
        *v = s->scr;
        break;
    }
}

static void serial_write(struct serial *s, unsigned reg, uint8_t v)
{
    switch (reg) {
    case UART_THR:
        if (s->lcr & LCR_DLAB) {
            s->dll = v;
            break;
        }
        if (s->mcr & MCR_LOOP)
            rx_push(s, v);
        else
            serial_write_out(s, v);
        s->thri_pending = true;
        break;
    case UART_IER:
        if (s->lcr & LCR_DLAB) {
            s->dlm = v;
            break;
        }
        /* Enabling THRI with THR empty raises it at once. */
        if (!(s->ier & IER_THRI) && (v & IER_THRI))
            s->thri_pending = true;
        s->ier = v & 0x0f;
        break;
    case UART_FCR:
        if (v & FCR_CLEAR_RX) {
            s->rx_len = 0;
            s->rx_head = 0;
        }
        s->fcr = v & 0xc9; /* enable, DMA mode, trigger level */
        break;
    case UART_LCR:
        s->lcr = v;
        break;
    case UART_MCR: {
        uint8_t before = serial_msr_status(s);
        s->mcr = v & 0x1f;
        uint8_t after = serial_msr_status(s);
        uint8_t delta = before ^ after;
        if (delta & MSR_CTS)
            s->msr |= MSR_DCTS;
        if (delta & MSR_DSR)
            s->msr |= MSR_DDSR;
        if ((before & MSR_RI) && !(after & MSR_RI))
            s->msr |= MSR_TERI;
        if (delta & MSR_DCD)
            s->msr |= MSR_DDCD;
        break;
    }
    case UART_SCR:
        s->scr = v;
        break;
    default: /* LSR, MSR: read-only */
        break;
    }
}

void serial_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
    struct serial *s = opaque;
    if (offset > 7)
        return;
    if (is_write) {
        serial_write(s, (unsigned)offset, data[0]);
    } else {
        memset(data, 0, len);
        serial_read(s, (unsigned)offset, &data[0]);
    }
    serial_update_irq(s);
}
