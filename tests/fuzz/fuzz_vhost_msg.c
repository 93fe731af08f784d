/* The vhost-user backend state machine fed a stream of messages with fds:
 * each record is [fd spec byte][12-byte header][payload]; the header's size
 * field is sent as is, whatever the payload really holds, so framing errors
 * are fuzzed too. Fds: memfds (for memory tables) and eventfds; once the
 * device is destroyed none of them may be left open. */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vhost_dev.h"
#include "vhost_user.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void nop(void *opaque)
{
    (void)opaque;
}

static void quiet(int level, const char *fmt, ...)
{
    (void)level;
    (void)fmt;
}

static const struct vhost_dev_ops ops = {.quiesce = nop, .resume = nop};

static void send_record(int sock, const uint8_t *p, size_t len, uint8_t spec)
{
    char control[CMSG_SPACE(4 * sizeof(int))];
    struct iovec iov = {.iov_base = (void *)p, .iov_len = len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    int fds[4], nfds = spec & 3;

    for (int i = 0; i < nfds; i++) {
        if (spec & (4 << i)) {
            fds[i] = memfd_create("fuzz", MFD_CLOEXEC);
            if (fds[i] >= 0 && ftruncate(fds[i], 1 << 16) < 0) {
                close(fds[i]);
                fds[i] = -1;
            }
        } else {
            fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        }
        if (fds[i] < 0)
            abort();
    }
    if (nfds) {
        memset(control, 0, sizeof(control));
        mh.msg_control = control;
        mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
    }
    if (sendmsg(sock, &mh, MSG_DONTWAIT) < 0 && errno != EAGAIN)
        abort();
    for (int i = 0; i < nfds; i++)
        close(fds[i]); /* ours; the backend got its own copies */
}

static void drain(int sock)
{
    char buf[4096];

    while (recv(sock, buf, sizeof(buf), MSG_DONTWAIT) > 0)
        ;
}

/* Open fds of the process: the device must close every fd a message
 * brought, kept or not, by the time it is destroyed. */
static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    if (!d)
        abort();
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vhost_dev *dev;
    int sv[2];
    size_t off = 0;
    int fds_before = open_fds();

    vhost_set_log(quiet);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
        abort();
    dev = vhost_dev_create("fuzz", 2, 1500, &ops, NULL);
    if (!dev)
        abort();
    while (off + 1 + VHOST_USER_HDR_SIZE <= size) {
        uint8_t spec = data[off];
        struct vhost_user_hdr hdr;
        size_t take;

        memcpy(&hdr, data + off + 1, sizeof(hdr));
        take = 1 + VHOST_USER_HDR_SIZE + (hdr.size < 512 ? hdr.size : 512);
        if (take > size - off)
            take = size - off;
        send_record(sv[0], data + off + 1, take - 1, spec);
        off += take;
        /* handle everything that arrived; a message may also stay partial */
        for (int i = 0; i < 8; i++) {
            struct pollfd p = {.fd = sv[1], .events = POLLIN};
            if (poll(&p, 1, 0) <= 0)
                break;
            if (vhost_dev_handle_msg(dev, sv[1]) < 0) {
                vhost_dev_disconnect(dev);
                break;
            }
        }
        drain(sv[0]);
    }
    close(sv[0]);
    close(sv[1]);
    vhost_dev_destroy(dev);
    if (open_fds() != fds_before)
        abort();
    return 0;
}
