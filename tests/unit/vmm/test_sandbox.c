/* sandbox.c: the VMM's own seccomp filter, installed in a forked child. What
 * running a guest needs still works; a call outside the list (exec, opening
 * a file, ptrace, an IP socket, fork, executable memory, a KVM ioctl that is
 * setup-only) kills the child with SIGSYS; log mode lets it through; vCPU
 * creation and threads are allowed only until the guest runs. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "sandbox.h"

typedef int (*child_fn)(int fd);

static char scratch_dir[] = "/tmp/vmm-sandbox-XXXXXX";

/* Runs fn in a child under the filter of the given mode, as it is while
 * vm_start runs (running false) or, with the second filter stacked, while
 * the guest runs. The child writes 'R' once the filters are in, and whatever
 * fn writes; returns the wait status and what was written in out. */
static int run_child_at(enum vmm_seccomp_mode mode, bool running, child_fn fn, char *out,
                        size_t outlen)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        char err[256];
        close(p[0]);
        setrlimit(RLIMIT_CORE, &no_core); /* SIGSYS would dump one */
        if (vmm_seccomp_install(mode, VMM_SANDBOX_SETUP_DONE, err, sizeof err) < 0 ||
            (running &&
             vmm_seccomp_install(mode, VMM_SANDBOX_RUNNING, err, sizeof err) < 0)) {
            dprintf(2, "%s\n", err);
            _exit(99);
        }
        if (write(p[1], "R", 1) != 1)
            _exit(98);
        _exit(fn(p[1]));
    }
    close(p[1]);
    size_t got = 0;
    ssize_t n;
    while (got + 1 < outlen && (n = read(p[0], out + got, outlen - 1 - got)) > 0)
        got += (size_t)n;
    out[got] = '\0';
    close(p[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static int run_child(enum vmm_seccomp_mode mode, child_fn fn, char *out, size_t outlen)
{
    return run_child_at(mode, true, fn, out, outlen);
}

static void assert_killed(int status, const char *out)
{
    assert_string_equal(out, "R"); /* the filter was in, the call came next */
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSYS);
}

/* What the running VMM does: eventfds, AF_UNIX sockets, timing, threads'
 * memory, writes, the API socket's file removal. */
static int allowed_calls(int fd)
{
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    uint64_t one = 1;
    if (efd < 0 || write(efd, &one, sizeof one) != sizeof one)
        return 1;
    /* a vCPU loop request: allowed, and an eventfd just does not know it */
    if (ioctl(efd, KVM_RUN, 0) != -1 || errno != ENOTTY)
        return 8;
    close(efd);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return 2;
    close(s);
    struct timespec ts, nap = {0, 1000};
    if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0 || nanosleep(&nap, NULL) < 0)
        return 3;
    void *m =
        mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || munmap(m, 1 << 20) < 0)
        return 4;
    char path[64];
    snprintf(path, sizeof path, "%s/gone", scratch_dir);
    if (unlink(path) == 0 ||
        errno != ENOENT) /* the call ran: the file just is not there */
        return 5;
    /* glibc's lazy opens (the CMOS clock's gmtime_r reads /etc/localtime
     * once; strerror its catalogue) were done before the filter went in */
    time_t now = time(NULL);
    struct tm tm;
    if (!gmtime_r(&now, &tm) || !*strerror(ENOENT))
        return 6;
    if (getpid() <= 0 || write(fd, "ok", 2) != 2)
        return 7;
    return 0;
}

static void test_allowed(void **state)
{
    char out[16];
    int status = run_child(VMM_SECCOMP_ON, allowed_calls, out, sizeof out);
    assert_string_equal(out, "Rok");
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static int do_execve(int fd)
{
    char *argv[] = {"true", NULL}, *envp[] = {NULL};
    execve("/bin/true", argv, envp);
    return 10;
}

static int do_open_new_file(int fd)
{
    char path[64];
    snprintf(path, sizeof path, "%s/new", scratch_dir);
    int f = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    return f >= 0 ? 11 : 12;
}

static int do_ptrace(int fd)
{
    return ptrace(PTRACE_TRACEME, 0, NULL, NULL) == 0 ? 13 : 14;
}

static int do_inet_socket(int fd)
{
    return socket(AF_INET, SOCK_DGRAM, 0) >= 0 ? 15 : 16;
}

static int do_fork(int fd)
{
    /* the raw call: glibc's fork() would come here too, as clone without
     * CLONE_THREAD */
    long r = syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
    if (r == 0)
        _exit(0);
    return 17;
}

static int do_exec_memory(int fd)
{
    void *m = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return m == MAP_FAILED ? 18 : 19;
}

static int do_setup_ioctl(int fd)
{
    /* KVM_CREATE_VM belongs to setup; on a non-KVM fd it would just fail */
    return ioctl(fd, KVM_CREATE_VM, 0) < 0 ? 20 : 21;
}

static int thread_token;

static void *thread_main(void *arg)
{
    return arg;
}

static int do_thread(int fd)
{
    pthread_t t;
    void *ret = NULL;
    if (pthread_create(&t, NULL, thread_main, &thread_token) != 0 ||
        pthread_join(t, &ret) != 0)
        return 22;
    return ret == &thread_token ? 23 : 24;
}

static int do_create_vcpu(int fd)
{
    /* vm_start's request: on a pipe it would just fail */
    return ioctl(fd, KVM_CREATE_VCPU, 0) < 0 && errno == ENOTTY ? 25 : 26;
}

/* While vm_start runs the vCPUs are made (their ioctls) and their threads
 * started; once they run, both are gone from the list. */
static void test_stages(void **state)
{
    char out[16];
    int status = run_child_at(VMM_SECCOMP_ON, false, do_thread, out, sizeof out);
    assert_string_equal(out, "R");
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 23);
    status = run_child_at(VMM_SECCOMP_ON, false, do_create_vcpu, out, sizeof out);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 25);
    assert_killed(run_child(VMM_SECCOMP_ON, do_thread, out, sizeof out), out);
    assert_killed(run_child(VMM_SECCOMP_ON, do_create_vcpu, out, sizeof out), out);
}

static void test_forbidden(void **state)
{
    static const child_fn calls[] = {do_execve,      do_open_new_file, do_ptrace,
                                     do_inet_socket, do_fork,          do_exec_memory,
                                     do_setup_ioctl};
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        char out[16];
        int status = run_child(VMM_SECCOMP_ON, calls[i], out, sizeof out);
        print_message("forbidden call %zu: status 0x%x\n", i, status);
        assert_killed(status, out);
    }
    char path[64];
    snprintf(path, sizeof path, "%s/new", scratch_dir);
    assert_int_equal(access(path, F_OK), -1); /* the open never happened */
}

static void test_log_mode_allows(void **state)
{
    char out[16];
    int status = run_child(VMM_SECCOMP_LOG, do_open_new_file, out, sizeof out);
    assert_string_equal(out, "R");
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 11); /* logged, not stopped */
    char path[64];
    snprintf(path, sizeof path, "%s/new", scratch_dir);
    assert_int_equal(unlink(path), 0);
}

static void test_off_installs_nothing(void **state)
{
    char err[64];
    assert_int_equal(
        vmm_seccomp_install(VMM_SECCOMP_OFF, VMM_SANDBOX_SETUP_DONE, err, sizeof err), 0);
    FILE *f = fopen("/proc/self/status", "r");
    char line[128];
    int mode = -1;
    assert_non_null(f);
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Seccomp: %d", &mode) == 1)
            break;
    fclose(f);
    assert_int_equal(mode, 0);
}

static void test_parse(void **state)
{
    enum vmm_seccomp_mode m;
    assert_int_equal(vmm_seccomp_parse("on", &m), 0);
    assert_int_equal(m, VMM_SECCOMP_ON);
    assert_int_equal(vmm_seccomp_parse("off", &m), 0);
    assert_int_equal(m, VMM_SECCOMP_OFF);
    assert_int_equal(vmm_seccomp_parse("log", &m), 0);
    assert_int_equal(m, VMM_SECCOMP_LOG);
    assert_int_equal(vmm_seccomp_parse("yes", &m), -1);
    assert_int_equal(vmm_seccomp_parse("", &m), -1);
}

static int setup(void **state)
{
    return mkdtemp(scratch_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    return rmdir(scratch_dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_allowed),
        cmocka_unit_test(test_forbidden),
        cmocka_unit_test(test_stages),
        cmocka_unit_test(test_log_mode_allows),
        cmocka_unit_test(test_off_installs_nothing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
