/* The allow-list is what the VMM does after setup, found by reading the code
 * and checked by running the e2e tests with --seccomp log. Arguments are
 * narrowed where the kernel lets a filter see them: ioctl to the requests the
 * vCPU loop, interrupt routing and the console use; socket to AF_UNIX; clone
 * to threads (no fork); mmap and mprotect never executable. A second filter,
 * stacked once the vCPUs run, takes away what only starting them needed:
 * the kernel applies both and the stricter answer wins. */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>

int vmm_seccomp_parse(const char *s, enum vmm_seccomp_mode *mode)
{
    if (!strcmp(s, "on"))
        *mode = VMM_SECCOMP_ON;
    else if (!strcmp(s, "off"))
        *mode = VMM_SECCOMP_OFF;
    else if (!strcmp(s, "log"))
        *mode = VMM_SECCOMP_LOG;
    else
        return -1;
    return 0;
}

/* Calls allowed whatever their arguments. */
/* clang-format off */
static const int plain[] = {
    /* memory (malloc, thread stacks, vCPU kvm_run areas) */
    SCMP_SYS(brk), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(madvise),
    /* threads: vCPUs start here, futexes, signals that kick them */
    SCMP_SYS(futex), SCMP_SYS(set_robust_list), SCMP_SYS(rseq), SCMP_SYS(sched_yield),
    SCMP_SYS(sched_getaffinity), SCMP_SYS(gettid), SCMP_SYS(getpid), SCMP_SYS(tgkill),
    SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn), SCMP_SYS(sigaltstack),
    /* libevent puts the SIGINT/SIGTERM handlers back when the VMM stops */
    SCMP_SYS(rt_sigaction),
    SCMP_SYS(exit), SCMP_SYS(exit_group),
    /* time, sleeping (vDSO calls that fall back to the kernel included) */
    SCMP_SYS(clock_gettime), SCMP_SYS(gettimeofday), SCMP_SYS(clock_nanosleep),
    SCMP_SYS(nanosleep),
    /* the event loop, eventfds, the API socket, console and vhost-user I/O */
    SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl), SCMP_SYS(poll),
    SCMP_SYS(ppoll), SCMP_SYS(read), SCMP_SYS(readv), SCMP_SYS(write), SCMP_SYS(writev),
    SCMP_SYS(recvfrom), SCMP_SYS(sendto), SCMP_SYS(recvmsg), SCMP_SYS(sendmsg),
    SCMP_SYS(accept4), SCMP_SYS(connect), SCMP_SYS(shutdown), SCMP_SYS(getsockopt),
    SCMP_SYS(close), SCMP_SYS(fcntl), SCMP_SYS(fstat), SCMP_SYS(newfstatat),
    SCMP_SYS(lseek),
    /* the API socket's file is removed when the VMM stops */
    SCMP_SYS(unlink),
};

/* ioctl requests while the guest runs: KVM_RUN and the registers a fatal
 * exit reports, interrupts, irqfd/ioeventfd (re)binding when a backend comes
 * back, libevent's FIONREAD, the terminal's restore. */
static const unsigned long ioctls_running[] = {
    KVM_RUN, KVM_GET_REGS, KVM_GET_SREGS,
    KVM_IRQ_LINE, KVM_SIGNAL_MSI, KVM_SET_GSI_ROUTING, KVM_IRQFD, KVM_IOEVENTFD,
    FIONREAD, FIONBIO, TCGETS, TCSETS,
};
/* and while the vCPUs are made and started (vm_start) */
static const unsigned long ioctls_start[] = {
    KVM_CREATE_VCPU, KVM_GET_VCPU_MMAP_SIZE, KVM_SET_CPUID2, KVM_SET_MSRS,
    KVM_GET_LAPIC, KVM_SET_LAPIC, KVM_SET_FPU, KVM_SET_REGS, KVM_SET_SREGS,
};
/* clang-format on */

static int add(scmp_filter_ctx ctx, int sys, unsigned n, const struct scmp_arg_cmp *cmp,
               char *err, size_t errlen)
{
    int r = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, sys, n, cmp);
    if (r < 0) {
        char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, sys);
        snprintf(err, errlen, "seccomp: cannot allow %s: %s", name ? name : "a call",
                 strerror(-r));
        free(name);
    }
    return r;
}

static int add_ioctls(scmp_filter_ctx ctx, const unsigned long *req, size_t n, char *err,
                      size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        /* the request is an unsigned int in the kernel: compare 32 bits */
        struct scmp_arg_cmp c = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, req[i]);
        if (add(ctx, SCMP_SYS(ioctl), 1, &c, err, errlen) < 0)
            return -1;
    }
    return 0;
}

static int add_rules(scmp_filter_ctx ctx, enum vmm_sandbox_stage stage, char *err,
                     size_t errlen)
{
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        if (add(ctx, plain[i], 0, NULL, err, errlen) < 0)
            return -1;
    if (add_ioctls(ctx, ioctls_running, sizeof ioctls_running / sizeof ioctls_running[0],
                   err, errlen) < 0)
        return -1;
    struct scmp_arg_cmp thread = SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD);
    /* loading the second filter (which only ever narrows what is allowed) */
    struct scmp_arg_cmp nnp = SCMP_A0(SCMP_CMP_EQ, PR_SET_NO_NEW_PRIVS);
    if (stage == VMM_SANDBOX_SETUP_DONE &&
        (add_ioctls(ctx, ioctls_start, sizeof ioctls_start / sizeof ioctls_start[0], err,
                    errlen) < 0 ||
         add(ctx, SCMP_SYS(clone), 1, &thread, err, errlen) < 0 ||
         add(ctx, SCMP_SYS(seccomp), 0, NULL, err, errlen) < 0 ||
         add(ctx, SCMP_SYS(prctl), 1, &nnp, err, errlen) < 0))
        return -1;
    struct scmp_arg_cmp set_name = SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME); /* "vcpu0" */
    struct scmp_arg_cmp unix_only = SCMP_A0(SCMP_CMP_EQ, AF_UNIX);
    struct scmp_arg_cmp map_noexec = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
    /* an eventfd or a socket may be made when a backend comes back */
    struct scmp_arg_cmp efd =
        SCMP_A1(SCMP_CMP_MASKED_EQ, ~(unsigned long)(EFD_NONBLOCK | EFD_CLOEXEC), 0);
    if (add(ctx, SCMP_SYS(prctl), 1, &set_name, err, errlen) < 0 ||
        add(ctx, SCMP_SYS(socket), 1, &unix_only, err, errlen) < 0 ||
        add(ctx, SCMP_SYS(mmap), 1, &map_noexec, err, errlen) < 0 ||
        add(ctx, SCMP_SYS(mprotect), 1, &map_noexec, err, errlen) < 0 ||
        add(ctx, SCMP_SYS(eventfd2), 1, &efd, err, errlen) < 0)
        return -1;
    /* glibc starts threads with clone3 first, whose flags a filter cannot
     * read: "not implemented" sends it to clone, which is checked above (and
     * once the vCPUs run, not allowed at all). */
    int r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    if (r < 0) {
        snprintf(err, errlen, "seccomp: cannot divert clone3: %s", strerror(-r));
        return -1;
    }
    return 0;
}

int vmm_seccomp_install(enum vmm_seccomp_mode mode, enum vmm_sandbox_stage stage,
                        char *err, size_t errlen)
{
    if (mode == VMM_SECCOMP_OFF)
        return 0;
    /* glibc opens files lazily the first time: strerror its message
     * catalogue (under a locale other than C), gmtime_r (the CMOS clock)
     * /etc/localtime through tzset. Now, while that is allowed (not under
     * the first filter: tzset reads the file again each time it is called). */
    if (stage == VMM_SANDBOX_SETUP_DONE) {
        (void)strerror(EIO);
        tzset();
    }
    scmp_filter_ctx ctx =
        seccomp_init(mode == VMM_SECCOMP_LOG ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS);
    if (!ctx) {
        snprintf(err, errlen, "seccomp: cannot create a filter");
        return -1;
    }
    int r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    if (r < 0) {
        snprintf(err, errlen, "seccomp: cannot ask for every thread: %s", strerror(-r));
        goto out;
    }
    if (mode == VMM_SECCOMP_LOG)
        seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1);
    r = add_rules(ctx, stage, err, errlen);
    if (r < 0)
        goto out;
    r = seccomp_load(ctx);
    if (r < 0)
        snprintf(err, errlen, "seccomp: cannot install the filter: %s", strerror(-r));
out:
    seccomp_release(ctx);
    return r < 0 ? -1 : 0;
}
