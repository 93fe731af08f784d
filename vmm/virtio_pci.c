/* virtio 1.2 modern PCI transport (§4.1). See virtio_pci.h. */
#include "virtio_pci.h"

#include "mptable.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSIX_TABLE_OFF 0x000
#define MSIX_PBA_OFF   0x800
#define MSIX_BAR_SIZE  0x1000

#define STATUS_ACKNOWLEDGE 0x01
#define STATUS_DRIVER      0x02
#define STATUS_DRIVER_OK   0x04
#define STATUS_FEATURES_OK 0x08
#define STATUS_NEEDS_RESET 0x40
#define STATUS_FAILED      0x80

#define F_VERSION_1 (1ULL << 32)


struct virtio_pci {
    struct vm *vm;
    struct pci_dev *dev;
    struct msix *msix;
    const struct virtio_pci_ops *ops;
    void *opaque;

    uint64_t device_features;
    uint64_t driver_features;
    uint32_t dfselect, gfselect;
    uint16_t config_vector;
    uint8_t status;
    uint8_t config_generation;
    uint16_t queue_select;
    uint8_t isr;
    unsigned intx_gsi; /* INTA#, wired as the MP table and ACPI _PRT say */
    unsigned nqueues;
    uint16_t queue_max;
    unsigned config_size;
    struct virtio_pci_queue queues[VIRTIO_PCI_MAX_QUEUES];
};

static uint64_t rd_le(const uint8_t *p, unsigned len)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < len; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void wr_le(uint8_t *p, unsigned len, uint64_t v)
{
    for (unsigned i = 0; i < len; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void queues_reset(struct virtio_pci *vp)
{
    for (unsigned q = 0; q < vp->nqueues; q++)
        vp->queues[q] = (struct virtio_pci_queue){.size = vp->queue_max,
                                                  .max_size = vp->queue_max,
                                                  .msix_vector = MSIX_NO_VECTOR};
}

void virtio_pci_reset(struct virtio_pci *vp)
{
    if (vp->ops->reset)
        vp->ops->reset(vp->opaque);
    vp->status = 0;
    vp->driver_features = 0;
    vp->dfselect = vp->gfselect = 0;
    vp->queue_select = 0;
    vp->config_vector = MSIX_NO_VECTOR;
    if (vp->isr) {
        vp->isr = 0;
        vm_irq_line(vp->vm, vp->intx_gsi, false);
    }
    queues_reset(vp);
}

static struct virtio_pci_queue *selected(struct virtio_pci *vp)
{
    return vp->queue_select < vp->nqueues ? &vp->queues[vp->queue_select] : NULL;
}

static uint16_t valid_vector(const struct virtio_pci *vp, uint16_t v)
{
    return v < msix_nvec(vp->msix) ? v : MSIX_NO_VECTOR;
}

/* The common configuration as the driver reads it. */
static void common_image(struct virtio_pci *vp, uint8_t *img)
{
    const struct virtio_pci_queue *q = selected(vp);

    memset(img, 0, 0x40);
    wr_le(img + VIRTIO_PCI_COMMON_DFSELECT, 4, vp->dfselect);
    wr_le(img + VIRTIO_PCI_COMMON_DF, 4,
          vp->dfselect < 2 ? (uint32_t)(vp->device_features >> (32 * vp->dfselect)) : 0);
    wr_le(img + VIRTIO_PCI_COMMON_GFSELECT, 4, vp->gfselect);
    wr_le(img + VIRTIO_PCI_COMMON_GF, 4,
          vp->gfselect < 2 ? (uint32_t)(vp->driver_features >> (32 * vp->gfselect)) : 0);
    wr_le(img + VIRTIO_PCI_COMMON_MSIX, 2, vp->config_vector);
    wr_le(img + VIRTIO_PCI_COMMON_NUMQ, 2, vp->nqueues);
    img[VIRTIO_PCI_COMMON_STATUS] = vp->status;
    img[VIRTIO_PCI_COMMON_CFGGEN] = vp->config_generation;
    wr_le(img + VIRTIO_PCI_COMMON_Q_SELECT, 2, vp->queue_select);
    if (q) {
        wr_le(img + VIRTIO_PCI_COMMON_Q_SIZE, 2, q->size);
        wr_le(img + VIRTIO_PCI_COMMON_Q_MSIX, 2, q->msix_vector);
        wr_le(img + VIRTIO_PCI_COMMON_Q_ENABLE, 2, q->enabled);
        wr_le(img + VIRTIO_PCI_COMMON_Q_NOFF, 2, vp->queue_select);
        wr_le(img + VIRTIO_PCI_COMMON_Q_DESCLO, 8, q->desc);
        wr_le(img + VIRTIO_PCI_COMMON_Q_AVAILLO, 8, q->driver);
        wr_le(img + VIRTIO_PCI_COMMON_Q_USEDLO, 8, q->device);
    } else {
        wr_le(img + VIRTIO_PCI_COMMON_Q_MSIX, 2, MSIX_NO_VECTOR);
    }
}

static void status_write(struct virtio_pci *vp, uint8_t val)
{
    uint8_t old = vp->status;

    if (val == 0) {
        virtio_pci_reset(vp);
        return;
    }
    if ((val & STATUS_FEATURES_OK) && !(old & STATUS_FEATURES_OK)) {
        uint64_t f = vp->driver_features;
        bool ok = (f & ~vp->device_features) == 0 && (f & F_VERSION_1);
        if (ok && vp->ops->features_ok)
            ok = vp->ops->features_ok(vp->opaque, f);
        if (!ok)
            val &= (uint8_t)~STATUS_FEATURES_OK;
    }
    /* DRIVER_OK without FEATURES_OK is a driver bug (§3.1.1): not taken */
    if ((val & STATUS_DRIVER_OK) && !(val & STATUS_FEATURES_OK))
        val &= (uint8_t)~STATUS_DRIVER_OK;
    /* NEEDS_RESET is the device's to set */
    val = (uint8_t)((val & ~STATUS_NEEDS_RESET) | (old & STATUS_NEEDS_RESET));
    vp->status = val;
    if ((val & STATUS_DRIVER_OK) && !(old & STATUS_DRIVER_OK) && vp->ops->driver_ok)
        vp->ops->driver_ok(vp->opaque);
}

static void common_write(struct virtio_pci *vp, unsigned off, unsigned len, uint64_t v)
{
    struct virtio_pci_queue *q = selected(vp);
    bool q_live = q && q->enabled;
    bool feat_locked = vp->status & STATUS_FEATURES_OK;

    switch (off) {
    case VIRTIO_PCI_COMMON_DFSELECT:
        if (len == 4)
            vp->dfselect = (uint32_t)v;
        break;
    case VIRTIO_PCI_COMMON_GFSELECT:
        if (len == 4)
            vp->gfselect = (uint32_t)v;
        break;
    case VIRTIO_PCI_COMMON_GF:
        if (len != 4 || feat_locked || vp->gfselect >= 2)
            break;
        vp->driver_features &= ~(0xffffffffULL << (32 * vp->gfselect));
        vp->driver_features |= (v & 0xffffffffULL) << (32 * vp->gfselect);
        break;
    case VIRTIO_PCI_COMMON_MSIX:
        if (len == 2)
            vp->config_vector = valid_vector(vp, (uint16_t)v);
        break;
    case VIRTIO_PCI_COMMON_STATUS:
        if (len == 1)
            status_write(vp, (uint8_t)v);
        break;
    case VIRTIO_PCI_COMMON_Q_SELECT:
        if (len == 2)
            vp->queue_select = (uint16_t)v;
        break;
    case VIRTIO_PCI_COMMON_Q_SIZE:
        /* split rings: a power of two no larger than the maximum */
        if (len == 2 && q && !q_live && v && v <= q->max_size && !(v & (v - 1)))
            q->size = (uint16_t)v;
        break;
    case VIRTIO_PCI_COMMON_Q_MSIX:
        if (len == 2 && q)
            q->msix_vector = valid_vector(vp, (uint16_t)v);
        break;
    case VIRTIO_PCI_COMMON_Q_ENABLE:
        if (len == 2 && q && v == 1)
            q->enabled = true; /* writing 0 is not allowed (§4.1.4.3.2) */
        break;
    case VIRTIO_PCI_COMMON_Q_DESCLO:
    case VIRTIO_PCI_COMMON_Q_DESCHI:
    case VIRTIO_PCI_COMMON_Q_AVAILLO:
    case VIRTIO_PCI_COMMON_Q_AVAILHI:
    case VIRTIO_PCI_COMMON_Q_USEDLO:
    case VIRTIO_PCI_COMMON_Q_USEDHI: {
        if (!q || q_live || (len != 4 && len != 8))
            break;
        unsigned base = off & ~7u;
        uint64_t *field = base == VIRTIO_PCI_COMMON_Q_DESCLO    ? &q->desc
                          : base == VIRTIO_PCI_COMMON_Q_AVAILLO ? &q->driver
                                                                : &q->device;
        if (len == 8 && !(off & 4))
            *field = v;
        else if (off & 4)
            *field = (*field & 0xffffffffULL) | (v & 0xffffffffULL) << 32;
        else
            *field = (*field & ~0xffffffffULL) | (v & 0xffffffffULL);
        break;
    }
    default:
        break; /* read-only or reserved */
    }
}

static void common_access(struct virtio_pci *vp, unsigned off, uint8_t *data,
                          unsigned len, bool is_write)
{
    if (!is_write) {
        uint8_t img[0x40];
        common_image(vp, img);
        if (off + len <= sizeof(img))
            memcpy(data, img + off, len);
        else
            memset(data, 0, len);
        return;
    }
    common_write(vp, off, len, rd_le(data, len));
}

void virtio_pci_bar_access(struct virtio_pci *vp, uint64_t offset, uint8_t *data,
                           unsigned len, bool is_write)
{
    if (offset < VIRTIO_PCI_ISR_OFF) {
        common_access(vp, (unsigned)offset, data, len, is_write);
    } else if (offset < VIRTIO_PCI_DEVICE_OFF) {
        if (is_write)
            return;
        memset(data, 0, len);
        if (offset == VIRTIO_PCI_ISR_OFF) {
            /* reading ISR acknowledges it and drops the INTx line */
            data[0] = vp->isr;
            if (vp->isr) {
                vp->isr = 0;
                vm_irq_line(vp->vm, vp->intx_gsi, false);
            }
        }
    } else if (offset < VIRTIO_PCI_NOTIFY_OFF) {
        uint64_t o = offset - VIRTIO_PCI_DEVICE_OFF;
        if (o + len > vp->config_size) {
            if (!is_write)
                memset(data, 0, len);
            return;
        }
        vp->ops->config_access(vp->opaque, o, data, len, is_write);
    } else {
        uint64_t q = (offset - VIRTIO_PCI_NOTIFY_OFF) / VIRTIO_PCI_NOTIFY_MULT;
        if (!is_write) {
            memset(data, 0, len);
            return;
        }
        if (q < vp->nqueues && vp->ops->notify)
            vp->ops->notify(vp->opaque, (unsigned)q);
    }
}

static void bar2_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len,
                    bool is_write)
{
    virtio_pci_bar_access(opaque, offset, data, len, is_write);
}

static void bar2_map(void *opaque, unsigned bar, uint64_t gpa, bool mapped)
{
    struct virtio_pci *vp = opaque;
    if (vp->ops->notify_moved)
        vp->ops->notify_moved(vp->opaque, gpa + VIRTIO_PCI_NOTIFY_OFF, mapped);
}

static void bar0_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len,
                    bool is_write)
{
    struct virtio_pci *vp = opaque;
    if (offset < MSIX_PBA_OFF)
        msix_table_access(vp->msix, offset - MSIX_TABLE_OFF, data, len, is_write);
    else
        msix_pba_access(vp->msix, offset - MSIX_PBA_OFF, data, len, is_write);
}

/* Sets ISR bits and asserts INTA# (level: until the driver reads the ISR),
 * unless the driver disabled INTx in the command register. */
static void intx_raise(struct virtio_pci *vp, uint8_t isr)
{
    vp->isr |= isr;
    const uint8_t *cfg = pci_dev_cfg(vp->dev);
    if (!((cfg[PCI_COMMAND] | cfg[PCI_COMMAND + 1] << 8) & PCI_COMMAND_INTX_DISABLE))
        vm_irq_line(vp->vm, vp->intx_gsi, true);
}

/* A queue's call with MSI-X off: the driver polls the ISR on INTx. */
static void queue_intx(void *opaque)
{
    struct virtio_pci *vp = opaque;
    if (vp->status & STATUS_DRIVER_OK)
        intx_raise(vp, VIRTIO_PCI_ISR_QUEUE);
}

static void cfg_write(void *opaque, unsigned offset, unsigned len)
{
    struct virtio_pci *vp = opaque;
    msix_cfg_write(vp->msix, offset, len);
}

static int add_vcap(struct pci_dev *dev, uint8_t type, uint32_t off, uint32_t len,
                    bool notify)
{
    uint8_t cap[20] = {PCI_CAP_ID_VENDOR};
    unsigned caplen = notify ? 20 : 16;

    cap[2] = (uint8_t)caplen;
    cap[3] = type;
    cap[4] = VIRTIO_PCI_BAR;
    wr_le(cap + 8, 4, off);
    wr_le(cap + 12, 4, len);
    if (notify)
        wr_le(cap + 16, 4, VIRTIO_PCI_NOTIFY_MULT);
    return pci_dev_add_cap(dev, cap, caplen, NULL);
}

struct virtio_pci *virtio_pci_create(struct vm *vm, struct pci_bus *bus,
                                     uint16_t device_type, uint32_t class_code,
                                     unsigned nqueues, uint16_t queue_max,
                                     unsigned nvec, unsigned config_size,
                                     uint64_t device_features,
                                     const struct virtio_pci_ops *ops, void *opaque)
{
    if (nqueues == 0 || nqueues > VIRTIO_PCI_MAX_QUEUES || nvec > MSIX_MAX_VECTORS ||
        config_size > VIRTIO_PCI_DEVICE_LEN || queue_max == 0 ||
        (queue_max & (queue_max - 1)))
        return NULL;
    struct virtio_pci *vp = calloc(1, sizeof(*vp));
    if (!vp)
        return NULL;
    vp->vm = vm;
    vp->ops = ops;
    vp->opaque = opaque;
    vp->nqueues = nqueues;
    vp->queue_max = queue_max;
    vp->config_size = config_size;
    vp->device_features = device_features;
    vp->config_vector = MSIX_NO_VECTOR;
    queues_reset(vp);

    vp->dev = pci_dev_create(bus, VIRTIO_PCI_VENDOR,
                             (uint16_t)(VIRTIO_PCI_DEVICE_BASE + device_type), 1,
                             class_code, VIRTIO_PCI_VENDOR, 0x1100);
    if (!vp->dev)
        goto err_free;
    /* INTA# of slot d is GSI mptable_pci_gsi(d) (IOAPIC pin 16 + d % 8,
     * level, active low: MP table and _PRT); the interrupt line register
     * says the same, for guests that read it */
    vp->intx_gsi = mptable_pci_gsi(pci_dev_slot(vp->dev));
    pci_dev_set_intx(vp->dev, (uint8_t)vp->intx_gsi);
    vp->msix = msix_create(vm, vp->dev, nvec, VIRTIO_PCI_MSIX_BAR, MSIX_TABLE_OFF,
                           MSIX_PBA_OFF);
    if (!vp->msix)
        goto err_free;
    msix_set_intx(vp->msix, queue_intx, vp);
    pci_dev_set_cfg_write(vp->dev, cfg_write, vp);
    if (add_vcap(vp->dev, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFF,
                 VIRTIO_PCI_COMMON_LEN, false) < 0 ||
        add_vcap(vp->dev, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_OFF,
                 nqueues * VIRTIO_PCI_NOTIFY_MULT, true) < 0 ||
        add_vcap(vp->dev, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFF, 1, false) < 0 ||
        (config_size &&
         add_vcap(vp->dev, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVICE_OFF, config_size,
                  false) < 0))
        goto err_msix;
    if (pci_dev_add_bar(vp->dev, VIRTIO_PCI_MSIX_BAR, MSIX_BAR_SIZE, bar0_io, vp, NULL) <
            0 ||
        pci_dev_add_bar(vp->dev, VIRTIO_PCI_BAR, VIRTIO_PCI_BAR_SIZE, bar2_io, vp,
                        bar2_map) < 0)
        goto err_msix;
    return vp;

err_msix:
    msix_destroy(vp->msix);
err_free:
    /* a function once on the bus stays there (the bus owns it) */
    free(vp);
    return NULL;
}

void virtio_pci_destroy(struct virtio_pci *vp)
{
    if (!vp)
        return;
    msix_destroy(vp->msix);
    free(vp);
}

void virtio_pci_set_device_features(struct virtio_pci *vp, uint64_t features)
{
    vp->device_features = features;
}

uint64_t virtio_pci_device_features(const struct virtio_pci *vp)
{
    return vp->device_features;
}

uint64_t virtio_pci_driver_features(const struct virtio_pci *vp)
{
    return vp->driver_features;
}

uint8_t virtio_pci_status(const struct virtio_pci *vp)
{
    return vp->status;
}

unsigned virtio_pci_num_queues(const struct virtio_pci *vp)
{
    return vp->nqueues;
}

const struct virtio_pci_queue *virtio_pci_queue(const struct virtio_pci *vp, unsigned q)
{
    return q < vp->nqueues ? &vp->queues[q] : NULL;
}

uint64_t virtio_pci_notify_addr(const struct virtio_pci *vp, unsigned q)
{
    if (q >= vp->nqueues || !pci_dev_bar_mapped(vp->dev, VIRTIO_PCI_BAR))
        return 0;
    return pci_dev_bar_addr(vp->dev, VIRTIO_PCI_BAR) + VIRTIO_PCI_NOTIFY_OFF +
           (uint64_t)q * VIRTIO_PCI_NOTIFY_MULT;
}

uint16_t virtio_pci_config_vector(const struct virtio_pci *vp)
{
    return vp->config_vector;
}

struct msix *virtio_pci_msix(struct virtio_pci *vp)
{
    return vp->msix;
}

struct pci_dev *virtio_pci_dev(struct virtio_pci *vp)
{
    return vp->dev;
}

void virtio_pci_config_bump(struct virtio_pci *vp)
{
    vp->config_generation++;
}

void virtio_pci_config_changed(struct virtio_pci *vp)
{
    vp->config_generation++;
    if (!(vp->status & STATUS_DRIVER_OK))
        return;
    if (msix_enabled(vp->msix)) {
        if (vp->config_vector != MSIX_NO_VECTOR)
            msix_notify(vp->msix, vp->config_vector);
        return;
    }
    intx_raise(vp, VIRTIO_PCI_ISR_CONFIG);
}

void virtio_pci_needs_reset(struct virtio_pci *vp)
{
    vp->status |= STATUS_NEEDS_RESET;
    virtio_pci_config_changed(vp);
}
