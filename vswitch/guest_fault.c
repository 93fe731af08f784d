#include <string.h>

#include "guest_fault.h"

__thread struct guest_guard guest_guard;

static void on_sigbus(int sig, siginfo_t *si, void *uctx)
{
    (void)uctx;
    if (guest_guard.armed) {
        guest_guard.armed = 0;
        guest_guard.addr = si->si_addr;
        siglongjmp(guest_guard.env, 1);
    }
    /* not guest memory: a real bug; die with the signal */
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
}

void guest_fault_install(void)
{
    install();
}
