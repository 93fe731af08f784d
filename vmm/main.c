/* vmm: a small KVM VMM whose virtio-net is served by a vhost-user backend.
 * main wires the parts: arguments, the VM, the boot image, the console, the
 * API socket, and the control thread's libevent loop; it turns the reason
 * the VM stopped into the exit status (see docs/vmm.1). */
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "acpi.h"
#include "api.h"
#include "boot.h"
#include "config.h"
#include "mptable.h"
#include "pci.h"
#include "platform.h"
#include "sandbox.h"
#include "serial.h"
#include "unix_sock.h"
#include "virtio_net.h"
#include "vm.h"

#define VMM_MAX_NICS 8

/* LeakSanitizer stops the world with ptrace and reads /proc at exit, which
 * the filter forbids: sanitizer builds log instead of killing. */
#if defined(__SANITIZE_ADDRESS__)
#define VMM_SECCOMP_DEFAULT VMM_SECCOMP_LOG
#else
#define VMM_SECCOMP_DEFAULT VMM_SECCOMP_ON
#endif

enum vmm_status {
    VMM_EXIT_OK = 0,
    VMM_EXIT_FAILURE = 1,
    VMM_EXIT_USAGE = 2,
    VMM_EXIT_REBOOT = 3,
    VMM_EXIT_TRIPLE_FAULT = 4,
    VMM_EXIT_CRASH = 5,
};

struct nic_config {
    char *socket;
    uint8_t mac[6];
    bool server;
};

struct vmm {
    const char *kernel, *initrd, *cmdline, *console, *api_socket;
    enum vmm_seccomp_mode seccomp;
    uint64_t mem_mib;
    unsigned ncpus;
    struct nic_config nics[VMM_MAX_NICS];
    unsigned nnics;

    struct event_base *base;
    struct vm *vm;
    struct serial *serial;
    struct pci_bus *pci;
    struct virtio_net_dev *net[VMM_MAX_NICS];
    struct api_server *api;
    struct event *stdin_ev, *sigint_ev, *sigterm_ev;
    int console_fd;
    bool tty_raw, escape;
    struct termios tty_saved;
    struct timespec started;
};

static const char usage_text[] =
    "usage: vmm --kernel BZIMAGE|VMLINUX [--initrd FILE] [--cmdline STR] [--memory MiB]\n"
    "           [--cpus N] [--net vhost-user,socket=PATH,mac=MAC[,server]] ...\n"
    "           [--console stdio|FILE] [--api-socket PATH] [--group GROUP]\n"
    "           [--seccomp on|off|log]\n";

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("vmm: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(VMM_EXIT_USAGE);
}

static bool parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-')
        return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool parse_mac(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    char tail;
    if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
               &tail) != 6 || strlen(s) != 17)
        return false;
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)v[i];
    return !(mac[0] & 1); /* not multicast */
}

/* vhost-user,socket=PATH,mac=MAC[,server] */
static void parse_net(struct vmm *v, const char *arg)
{
    if (v->nnics == VMM_MAX_NICS)
        usage_error("--net: at most %d NICs", VMM_MAX_NICS);
    char *dup = strdup(arg), *save = NULL;
    if (!dup)
        usage_error("out of memory");
    struct nic_config *n = &v->nics[v->nnics];
    bool have_mac = false;
    char *tok = strtok_r(dup, ",", &save);
    if (!tok || strcmp(tok, "vhost-user"))
        usage_error("--net %s: the only NIC type is vhost-user "
                    "(vhost-user,socket=PATH,mac=MAC[,server])", arg);
    while ((tok = strtok_r(NULL, ",", &save))) {
        if (!strncmp(tok, "socket=", 7) && tok[7]) {
            free(n->socket);
            n->socket = strdup(tok + 7);
        } else if (!strncmp(tok, "mac=", 4)) {
            if (!parse_mac(tok + 4, n->mac))
                usage_error("--net: bad mac \"%s\" (a unicast XX:XX:XX:XX:XX:XX)", tok + 4);
            have_mac = true;
        } else if (!strcmp(tok, "server")) {
            n->server = true;
        } else {
            usage_error("--net: unknown option \"%s\" (socket=PATH, mac=MAC, server)", tok);
        }
    }
    free(dup);
    if (!n->socket)
        usage_error("--net %s: socket=PATH is required", arg);
    if (!have_mac)
        usage_error("--net %s: mac=MAC is required", arg);
    for (unsigned i = 0; i < v->nnics; i++)
        if (!strcmp(v->nics[i].socket, n->socket))
            usage_error("--net: socket %s given twice", n->socket);
    v->nnics++;
}

static void parse_args(struct vmm *v, int argc, char **argv)
{
    enum { O_KERNEL = 256, O_INITRD, O_CMDLINE, O_MEMORY, O_CPUS, O_NET, O_CONSOLE, O_API,
           O_SECCOMP, O_GROUP, O_HELP, O_VERSION };
    static const struct option opts[] = {
        {"kernel", required_argument, NULL, O_KERNEL},
        {"initrd", required_argument, NULL, O_INITRD},
        {"cmdline", required_argument, NULL, O_CMDLINE},
        {"memory", required_argument, NULL, O_MEMORY},
        {"cpus", required_argument, NULL, O_CPUS},
        {"net", required_argument, NULL, O_NET},
        {"console", required_argument, NULL, O_CONSOLE},
        {"api-socket", required_argument, NULL, O_API},
        {"seccomp", required_argument, NULL, O_SECCOMP},
        {"group", required_argument, NULL, O_GROUP},
        {"help", no_argument, NULL, O_HELP},
        {"version", no_argument, NULL, O_VERSION},
        {NULL, 0, NULL, 0},
    };
    v->mem_mib = 512;
    v->ncpus = 1;
    v->console = "stdio";
    v->cmdline = "console=ttyS0";
    v->seccomp = VMM_SECCOMP_DEFAULT;
    opterr = 0;
    int c;
    uint64_t u;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case O_KERNEL: v->kernel = optarg; break;
        case O_INITRD: v->initrd = optarg; break;
        case O_CMDLINE: v->cmdline = optarg; break;
        case O_MEMORY:
            if (!parse_uint(optarg, 16, 1u << 20, &u))
                usage_error("--memory %s: a size in MiB from 16 to 1048576", optarg);
            v->mem_mib = u;
            break;
        case O_CPUS:
            if (!parse_uint(optarg, 1, VM_MAX_VCPUS, &u))
                usage_error("--cpus %s: a count from 1 to %d", optarg, VM_MAX_VCPUS);
            v->ncpus = (unsigned)u;
            break;
        case O_NET: parse_net(v, optarg); break;
        case O_CONSOLE:
            if (!*optarg)
                usage_error("--console: stdio or a file name");
            v->console = optarg;
            break;
        case O_API:
            if (!*optarg)
                usage_error("--api-socket: a path");
            v->api_socket = optarg;
            break;
        case O_SECCOMP:
            if (vmm_seccomp_parse(optarg, &v->seccomp) < 0)
                usage_error("--seccomp %s: on, off or log", optarg);
            break;
        case O_GROUP: {
            const struct group *g = getgrnam(optarg);
            if (!g)
                usage_error("--group %s: no such group", optarg);
            unix_sock_set_owner((uid_t)-1, g->gr_gid);
            break;
        }
        case O_HELP: fputs(usage_text, stdout); exit(0);
        case O_VERSION: printf("vmm %s\n", VSWITCH_VERSION); exit(0);
        case ':':
            usage_error("%s needs a value", argv[optind - 1]);
        default:
            usage_error("unknown option %s (see vmm --help)", argv[optind - 1]);
        }
    }
    if (optind < argc)
        usage_error("unexpected argument \"%s\"", argv[optind]);
    if (!v->kernel)
        usage_error("--kernel is required");
}

static void *read_file(const char *path, size_t *len, const char *what)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "vmm: %s %s: %s\n", what, path,
                fd < 0 || errno ? strerror(errno) : "not a regular file");
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    uint8_t *buf = malloc(st.st_size ? (size_t)st.st_size : 1);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n <= 0) {
            fprintf(stderr, "vmm: %s %s: read failed\n", what, path);
            free(buf);
            buf = NULL;
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    *len = got;
    return buf;
}

/* ---------------------------------------------------------------- console */

static void console_restore(struct vmm *v)
{
    if (v->tty_raw) {
        tcsetattr(STDIN_FILENO, TCSANOW, &v->tty_saved);
        v->tty_raw = false;
    }
}

static void serial_irq(void *opaque, bool level)
{
    vm_irq_line(opaque, SERIAL_COM1_IRQ, level);
}

/* Ctrl-A x leaves when the console is a terminal in raw mode (as in QEMU). */
static void stdin_cb(evutil_socket_t fd, short what, void *arg)
{
    struct vmm *v = arg;
    uint8_t buf[256], out[256];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) {
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            return;
        event_del(v->stdin_ev);
        return;
    }
    size_t m = 0;
    for (ssize_t i = 0; i < n; i++) {
        if (v->tty_raw && v->escape) {
            v->escape = false;
            if (buf[i] == 'x') {
                vm_request_exit(v->vm, VM_EXIT_STOPPED, "Ctrl-A x on the console");
                return;
            }
            if (buf[i] != 0x01)
                out[m++] = 0x01;
        } else if (v->tty_raw && buf[i] == 0x01) {
            v->escape = true;
            continue;
        }
        out[m++] = buf[i];
    }
    vm_lock(v->vm);
    serial_input(v->serial, out, m);
    vm_unlock(v->vm);
}

static int console_open(struct vmm *v)
{
    if (strcmp(v->console, "stdio")) {
        v->console_fd = open(v->console, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (v->console_fd < 0) {
            fprintf(stderr, "vmm: --console %s: %s\n", v->console, strerror(errno));
            return -1;
        }
        return 0;
    }
    v->console_fd = STDOUT_FILENO;
    struct stat st;
    /* epoll takes terminals, pipes and sockets; not files or /dev/null */
    if (fstat(STDIN_FILENO, &st) < 0 ||
        !(isatty(STDIN_FILENO) || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
        return 0;
    if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &v->tty_saved) == 0) {
        struct termios raw = v->tty_saved;
        cfmakeraw(&raw);
        raw.c_oflag |= OPOST | ONLCR;
        if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
            v->tty_raw = true;
    }
    v->stdin_ev = event_new(v->base, STDIN_FILENO, EV_READ | EV_PERSIST, stdin_cb, v);
    if (v->stdin_ev && event_add(v->stdin_ev, NULL) < 0) {
        event_free(v->stdin_ev);
        v->stdin_ev = NULL;
    }
    return 0;
}

/* ---------------------------------------------------------------- API */

static json_t *api_status(void *opaque)
{
    struct vmm *v = opaque;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double up = (double)(now.tv_sec - v->started.tv_sec) +
                (double)(now.tv_nsec - v->started.tv_nsec) / 1e9;
    struct vm_stats st;
    vm_get_stats(v->vm, &st);
    json_t *nics = json_array();
    for (unsigned i = 0; i < v->nnics; i++) {
        json_t *n = v->net[i] ? virtio_net_status_json(v->net[i]) : NULL;
        if (n) {
            json_object_set_new(n, "id", json_integer(i));
            json_array_append_new(nics, n);
        }
    }
    return json_pack("{s:s, s:i, s:I, s:f, s:I, s:o}", "state",
                     vm_paused(v->vm) ? "paused" : "running", "vcpus", (int)v->ncpus,
                     "memory_mib", (json_int_t)v->mem_mib, "uptime_s", up, "exits",
                     (json_int_t)st.exits, "nics", nics);
}

static int api_pause(void *opaque, char *msg, size_t msglen)
{
    struct vmm *v = opaque;
    if (vm_paused(v->vm)) {
        snprintf(msg, msglen, "the VM is already paused");
        return API_INVALID_STATE;
    }
    vm_pause(v->vm);
    return 0;
}

static int api_resume(void *opaque, char *msg, size_t msglen)
{
    struct vmm *v = opaque;
    if (!vm_paused(v->vm)) {
        snprintf(msg, msglen, "the VM is not paused");
        return API_INVALID_STATE;
    }
    vm_resume(v->vm);
    return 0;
}

static int api_stop(void *opaque, char *msg, size_t msglen)
{
    struct vmm *v = opaque;
    vm_request_exit(v->vm, VM_EXIT_STOPPED, "stop requested on the API socket");
    return 0;
}

/* ---------------------------------------------------------------- main */

static void on_vm_exit(void *opaque)
{
    struct vmm *v = opaque;
    event_base_loopbreak(v->base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct vmm *v = arg;
    vm_request_exit(v->vm, VM_EXIT_STOPPED,
                    sig == SIGINT ? "stopped by SIGINT" : "stopped by SIGTERM");
}

static int exit_status(struct vmm *v)
{
    const char *detail;
    enum vm_exit_reason r = vm_exit_reason(v->vm, &detail);
    switch (r) {
    case VM_EXIT_POWEROFF:
        fprintf(stderr, "vmm: the guest powered off\n");
        return VMM_EXIT_OK;
    case VM_EXIT_STOPPED:
        fprintf(stderr, "vmm: %s\n", detail[0] ? detail : "stopped");
        return VMM_EXIT_OK;
    case VM_EXIT_REBOOT:
        fprintf(stderr, "vmm: the guest asked to reboot (%s); vmm does not restart guests\n",
                detail);
        return VMM_EXIT_REBOOT;
    case VM_EXIT_TRIPLE_FAULT:
        fprintf(stderr, "vmm: the guest reset itself: %s\n", detail);
        return VMM_EXIT_TRIPLE_FAULT;
    case VM_EXIT_CRASH:
        fprintf(stderr, "vmm: the guest crashed: %s\n", detail);
        return VMM_EXIT_CRASH;
    default:
        fprintf(stderr, "vmm: failed: %s\n", detail[0] ? detail : "unknown error");
        return VMM_EXIT_FAILURE;
    }
}

static int load_guest(struct vmm *v, struct vm_entry *entry)
{
    char err[256];
    size_t klen = 0, ilen = 0;
    uint8_t *kimg = read_file(v->kernel, &klen, "--kernel");
    if (!kimg)
        return -1;
    uint8_t *initrd = NULL;
    if (v->initrd && !(initrd = read_file(v->initrd, &ilen, "--initrd"))) {
        free(kimg);
        return -1;
    }
    unsigned nreg;
    const struct vm_ram_region *r = vm_ram_regions(v->vm, &nreg);
    struct boot_mem mem = {.low = r[0].hva, .low_size = r[0].size,
                           .high_size = nreg > 1 ? r[1].size : 0,
                           .rsdp = ACPI_TABLES_ADDR};
    struct boot_image bi;
    int rc = boot_parse(kimg, klen, mem.low_size, &bi, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "vmm: --kernel %s: %s\n", v->kernel, err);
        goto out;
    }
    rc = boot_load(&mem, &bi, kimg, v->cmdline, initrd, ilen, entry, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "vmm: %s\n", err);
        goto out;
    }
    if (mptable_write(mem.low, mem.low_size, BOOT_MPTABLE_ADDR, v->ncpus) < 0) {
        fprintf(stderr, "vmm: cannot write the MP table\n");
        rc = -1;
    }
    struct acpi_config acfg = {.ncpus = v->ncpus, .mmio_start = PCI_MMIO_HOLE_START,
                               .mmio_end = PCI_MMIO_HOLE_END};
    if (rc == 0 && acpi_write_tables(mem.low, mem.low_size, ACPI_TABLES_ADDR,
                                     ACPI_TABLES_MAX, &acfg) < 0) {
        fprintf(stderr, "vmm: cannot write the ACPI tables\n");
        rc = -1;
    }
out:
    free(kimg);
    free(initrd);
    return rc;
}

/* The PCI host bridge is always there; one virtio-net function per --net. */
static int create_devices(struct vmm *v)
{
    char err[256];
    v->pci = pci_bus_create(v->vm);
    if (!v->pci) {
        fprintf(stderr, "vmm: cannot create the PCI bus\n");
        return -1;
    }
    for (unsigned i = 0; i < v->nnics; i++) {
        struct nic_config *n = &v->nics[i];
        v->net[i] = virtio_net_create(v->vm, v->pci, n->socket, n->mac, n->server, err,
                                      sizeof(err));
        if (!v->net[i]) {
            fprintf(stderr, "vmm: --net socket=%s: %s\n", n->socket, err);
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct vmm v = {.console_fd = -1};
    char err[256];
    int status = VMM_EXIT_FAILURE;

    parse_args(&v, argc, argv);
    signal(SIGPIPE, SIG_IGN);
    clock_gettime(CLOCK_MONOTONIC, &v.started);
    if (evthread_use_pthreads() < 0 || !(v.base = event_base_new())) {
        fprintf(stderr, "vmm: cannot set up libevent\n");
        return VMM_EXIT_FAILURE;
    }
    struct vm_config cfg = {.mem_bytes = v.mem_mib << 20, .ncpus = v.ncpus};
    v.vm = vm_create(&cfg, v.base, err, sizeof(err));
    if (!v.vm) {
        fprintf(stderr, "vmm: %s\n", err);
        goto out;
    }
    vm_set_exit_cb(v.vm, on_vm_exit, &v);
    struct vm_entry entry;
    if (load_guest(&v, &entry) < 0)
        goto out;
    if (console_open(&v) < 0)
        goto out;
    v.serial = serial_create(v.console_fd, serial_irq, v.vm);
    if (!v.serial || vm_register_pio(v.vm, SERIAL_COM1_BASE, 8, serial_io, v.serial) < 0 ||
        platform_init(v.vm) < 0) {
        fprintf(stderr, "vmm: cannot set up the legacy devices\n");
        goto out;
    }
    if (create_devices(&v) < 0)
        goto out;
    if (v.api_socket) {
        struct api_ops ops = {api_status, api_pause, api_resume, api_stop, &v};
        v.api = api_server_create(v.base, v.api_socket, &ops, err, sizeof(err));
        if (!v.api) {
            fprintf(stderr, "vmm: %s\n", err);
            goto out;
        }
    }
    v.sigint_ev = evsignal_new(v.base, SIGINT, on_signal, &v);
    v.sigterm_ev = evsignal_new(v.base, SIGTERM, on_signal, &v);
    if (!v.sigint_ev || !v.sigterm_ev || event_add(v.sigint_ev, NULL) < 0 ||
        event_add(v.sigterm_ev, NULL) < 0) {
        fprintf(stderr, "vmm: cannot watch signals\n");
        goto out;
    }
    /* Setup is over: from here on only what running the guest takes (the
     * vCPU threads start under the filter and inherit it). jansson seeds its
     * hash tables from /dev/urandom on first use: that happens now. */
    json_object_seed(0);
    if (vmm_seccomp_install(v.seccomp, VMM_SANDBOX_SETUP_DONE, err, sizeof(err)) < 0) {
        fprintf(stderr, "vmm: %s\n", err);
        goto out;
    }
    if (vm_start(v.vm, &entry, err, sizeof(err)) < 0 ||
        vmm_seccomp_install(v.seccomp, VMM_SANDBOX_RUNNING, err, sizeof(err)) < 0) {
        fprintf(stderr, "vmm: %s\n", err);
        vm_stop_vcpus(v.vm);
        goto out;
    }
    event_base_dispatch(v.base);
    vm_stop_vcpus(v.vm);
    console_restore(&v);
    status = exit_status(&v);
out:
    /* A stop signal that arrives while tearing down (Ctrl-C or a kill of the
     * process group reaches vmm twice) stays pending: freeing the signal
     * events puts the default action back, which would kill the exit status. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    console_restore(&v);
    api_server_destroy(v.api);
    if (v.stdin_ev)
        event_free(v.stdin_ev);
    if (v.sigint_ev)
        event_free(v.sigint_ev);
    if (v.sigterm_ev)
        event_free(v.sigterm_ev);
    for (unsigned i = 0; i < v.nnics; i++)
        virtio_net_destroy(v.net[i]);
    pci_bus_destroy(v.pci);
    serial_destroy(v.serial);
    vm_destroy(v.vm);
    if (v.console_fd > STDERR_FILENO)
        close(v.console_fd);
    for (unsigned i = 0; i < v.nnics; i++)
        free(v.nics[i].socket);
    if (v.base)
        event_base_free(v.base);
    return status;
}
