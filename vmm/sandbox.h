/* The VMM's seccomp filter (libseccomp; the file is not called seccomp.h so
 * that <seccomp.h> stays the library's), in the spirit of QEMU's -sandbox:
 * once the VM, its RAM, devices and sockets exist, the process may only do
 * what running a guest takes from then on — the vCPU loop's KVM ioctls, the
 * event loop, the API socket, the vhost-user frontend redialling its backend
 * and replaying its setup (the memfds already exist), console I/O, signals
 * and exit. Anything else kills the whole process with SIGSYS. */
#ifndef VMM_SANDBOX_H
#define VMM_SANDBOX_H

#include <stddef.h>

enum vmm_seccomp_mode {
    VMM_SECCOMP_OFF,
    VMM_SECCOMP_ON,  /* a call outside the list kills the process */
    VMM_SECCOMP_LOG, /* it is allowed and logged by the kernel (finding missing calls) */
};

enum vmm_sandbox_stage {
    VMM_SANDBOX_SETUP_DONE, /* before vm_start: vCPUs and their threads still to make */
    VMM_SANDBOX_RUNNING,    /* after it: no new vCPU, no register set-up, no thread */
};

/* "on", "off" or "log"; -1 for anything else. */
int vmm_seccomp_parse(const char *s, enum vmm_seccomp_mode *mode);

/* Installs the filter of a stage for every thread of the process (threads
 * started later inherit it); RUNNING is stacked on SETUP_DONE and narrows it.
 * 0, or -1 and a sentence in err. */
int vmm_seccomp_install(enum vmm_seccomp_mode mode, enum vmm_sandbox_stage stage, char *err,
                        size_t errlen);

#endif
