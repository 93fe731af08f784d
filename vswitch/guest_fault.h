/* Guest memory that vanishes. A frontend shares a file as guest memory and
 * may truncate it afterwards (QEMU seals its memfds against that; DPDK and a
 * hostile frontend do not): our next access to the lost pages faults with
 * SIGBUS. That must cost the frontend its connection, not the switch its life.
 *
 * Code that touches guest memory runs inside a guard: GUEST_GUARD_ENTER()
 * returns 0 when entered and non-zero when a SIGBUS inside the guard jumped
 * back to it (guest_guard.addr is the faulting address). A SIGBUS outside any
 * guard stays fatal, as it should. Guards do not nest. */
#ifndef VSWITCH_GUEST_FAULT_H
#define VSWITCH_GUEST_FAULT_H

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>

struct guest_guard {
    sigjmp_buf env;
    volatile sig_atomic_t armed;
    void *volatile addr;
    /* a spinlock taken inside the guard, released if the guard fires */
    pthread_spinlock_t *volatile held;
};

extern __thread struct guest_guard guest_guard;

/* Installs the SIGBUS handler (again, if something replaced it). */
void guest_fault_install(void);

/* sigsetjmp without saving the signal mask (no syscall); the handler runs
 * with SA_NODEFER so SIGBUS is not left blocked after the jump. */
#define GUEST_GUARD_ENTER() (guest_guard.armed = 1, sigsetjmp(guest_guard.env, 0))

static inline void guest_guard_leave(void)
{
    guest_guard.armed = 0;
}

/* After a fault: releases what the guarded code held. */
static inline void guest_guard_recover(void)
{
    guest_guard.armed = 0;
    if (guest_guard.held) {
        pthread_spin_unlock(guest_guard.held);
        guest_guard.held = NULL;
    }
}

#endif
