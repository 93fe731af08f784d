/* The guest-memory guard: a SIGBUS from a mapping whose file was truncated
 * jumps back to the guard with the faulting address; outside a guard SIGBUS
 * still kills (checked in a child). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest_fault.h"

static volatile uint8_t *map_truncated(int *fdp)
{
    int fd = memfd_create("guest", MFD_CLOEXEC);
    void *p;

    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 8192), 0);
    p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(p != MAP_FAILED);
    ((uint8_t *)p)[0] = 1;
    assert_int_equal(ftruncate(fd, 0), 0);
    *fdp = fd;
    return p;
}

static void test_guard_catches(void **state)
{
    int fd;
    volatile uint8_t *p = map_truncated(&fd);
    volatile int faults = 0;
    pthread_spinlock_t lock;
    (void)state;

    guest_fault_install();
    pthread_spin_init(&lock, 0);
    for (int round = 0; round < 3; round++) {
        if (GUEST_GUARD_ENTER()) {
            guest_guard_recover();
            faults++;
            assert_ptr_equal(guest_guard.addr, (void *)(p + 4096));
            continue;
        }
        pthread_spin_lock(&lock);
        guest_guard.held = &lock;
        (void)p[4096];
        guest_guard.held = NULL;
        pthread_spin_unlock(&lock);
        guest_guard_leave();
    }
    /* every round faulted, and the lock was released each time */
    assert_int_equal(faults, 3);
    assert_int_equal(pthread_spin_trylock(&lock), 0);
    pthread_spin_unlock(&lock);
    munmap((void *)p, 8192);
    close(fd);
}

static void test_unguarded_is_fatal(void **state)
{
    int status;
    pid_t pid;
    (void)state;

    guest_fault_install();
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd;
        guest_fault_install(); /* over cmocka's own handler */
        volatile uint8_t *p = map_truncated(&fd);
        (void)p[4096];
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGBUS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_guard_catches),
        cmocka_unit_test(test_unguarded_is_fatal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
