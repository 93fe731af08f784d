/* Serial output, boot information and the ways a guest can end.
 * Command line: exit=poweroff|reboot|triple|halt (default poweroff),
 * outs=N (N writes to port 0x80 first: an exit-cost benchmark). */
#include "guest.h"

int guest_main(void)
{
    printf("hello from the guest (%s entry, %u e820 entries)\n",
           boot_kind() == BOOT_KIND_PVH ? "PVH" : "64-bit bzImage", e820_count());
    printf("cmdline: %s\n", boot_cmdline());
    unsigned long outs = cmdline_uint("outs", 0);
    for (unsigned long i = 0; i < outs; i++)
        outb(0x80, (uint8_t)i);
    if (outs)
        printf("did %lu port writes\n", outs);
    char how[16] = "poweroff";
    cmdline_get("exit", how, sizeof(how));
    if (!strncmp(how, "reboot", 7)) {
        puts("rebooting\n");
        reboot();
    } else if (!strncmp(how, "triple", 7)) {
        puts("triple faulting\n");
        triple_fault();
    } else if (!strncmp(how, "halt", 5)) {
        puts("halting\n");
        halt_forever();
    }
    puts("powering off\n");
    return 0;
}
