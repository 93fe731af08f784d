/* Interrupt delivery through the in-kernel LAPIC and IOAPIC: a self-IPI,
 * then COM1's THR-empty interrupt on ISA IRQ 4 (KVM_IRQ_LINE from vmm). */
#include "guest.h"

static volatile unsigned ipis, uart_irqs;

static void on_ipi(unsigned v, uint64_t e)
{
    ipis++;
    lapic_eoi();
}

static void on_uart(unsigned v, uint64_t e)
{
    uint8_t iir = inb(0x3F8 + 2); /* reading IIR clears THR-empty */
    if ((iir & 0x0f) == 0x02)
        uart_irqs++;
    outb(0x3F8 + 1, 0);           /* IER off: no more */
    lapic_eoi();
}

int guest_main(void)
{
    idt_init();
    pic_disable();
    lapic_enable();
    idt_set(0x40, on_ipi);
    idt_set(0x41, on_uart);

    lapic_self_ipi(0x40);
    wait_for_irq();
    printf("self-IPI: %u\n", ipis);

    ioapic_route(4, 0x41, lapic_id(), false);
    outb(0x3F8 + 1, 0x02);        /* IER: THR empty */
    for (int i = 0; i < 100 && !uart_irqs; i++)
        wait_for_irq();
    ioapic_mask(4);
    printf("uart irq: %u\n", uart_irqs);
    if (ipis == 1 && uart_irqs == 1)
        puts("irq test passed\n");
    else
        puts("irq test FAILED\n");
    return 0;
}
