/* Every processor in the MP table comes up: the BSP starts the APs with
 * INIT-SIPI-SIPI (real mode -> long mode in head.S) and each AP prints. */
#include "guest.h"

static volatile unsigned done;

static void ap_main(unsigned cpu)
{
    printf("AP %u alive (APIC id %u)\n", cpu, lapic_id());
    __atomic_add_fetch(&done, 1, __ATOMIC_SEQ_CST);
}

int guest_main(void)
{
    uint8_t ids[16];
    unsigned n = mp_cpus(ids, 16);
    printf("BSP (APIC id %u): the MP table lists %u CPUs\n", lapic_id(), n);
    unsigned started = smp_start_aps(ap_main);
    while (done < started)
        cpu_relax();
    printf("%u of %u CPUs up\n", started + 1, n);
    return 0;
}
