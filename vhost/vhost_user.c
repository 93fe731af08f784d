/* vhost-user message framing: a 12-byte header, then exactly hdr.size payload
 * bytes, with up to VHOST_USER_MAX_FDS descriptors passed as SCM_RIGHTS. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vhost_user.h"

/* A message may arrive in pieces on a non-blocking socket; wait this long for
 * the rest before calling the stream broken. The control thread blocks here
 * only when a peer sends half a message. */
#define VHOST_USER_IO_TIMEOUT_MS 1000

static const char *const request_names[VHOST_USER_MAX] = {
    [VHOST_USER_NONE] = "NONE",
    [VHOST_USER_GET_FEATURES] = "GET_FEATURES",
    [VHOST_USER_SET_FEATURES] = "SET_FEATURES",
    [VHOST_USER_SET_OWNER] = "SET_OWNER",
    [VHOST_USER_RESET_OWNER] = "RESET_OWNER",
    [VHOST_USER_SET_MEM_TABLE] = "SET_MEM_TABLE",
    [VHOST_USER_SET_LOG_BASE] = "SET_LOG_BASE",
    [VHOST_USER_SET_LOG_FD] = "SET_LOG_FD",
    [VHOST_USER_SET_VRING_NUM] = "SET_VRING_NUM",
    [VHOST_USER_SET_VRING_ADDR] = "SET_VRING_ADDR",
    [VHOST_USER_SET_VRING_BASE] = "SET_VRING_BASE",
    [VHOST_USER_GET_VRING_BASE] = "GET_VRING_BASE",
    [VHOST_USER_SET_VRING_KICK] = "SET_VRING_KICK",
    [VHOST_USER_SET_VRING_CALL] = "SET_VRING_CALL",
    [VHOST_USER_SET_VRING_ERR] = "SET_VRING_ERR",
    [VHOST_USER_GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
    [VHOST_USER_SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES",
    [VHOST_USER_GET_QUEUE_NUM] = "GET_QUEUE_NUM",
    [VHOST_USER_SET_VRING_ENABLE] = "SET_VRING_ENABLE",
    [VHOST_USER_SEND_RARP] = "SEND_RARP",
    [VHOST_USER_NET_SET_MTU] = "NET_SET_MTU",
    [VHOST_USER_SET_BACKEND_REQ_FD] = "SET_BACKEND_REQ_FD",
    [VHOST_USER_IOTLB_MSG] = "IOTLB_MSG",
    [VHOST_USER_SET_VRING_ENDIAN] = "SET_VRING_ENDIAN",
    [VHOST_USER_GET_CONFIG] = "GET_CONFIG",
    [VHOST_USER_SET_CONFIG] = "SET_CONFIG",
    [VHOST_USER_CREATE_CRYPTO_SESSION] = "CREATE_CRYPTO_SESSION",
    [VHOST_USER_CLOSE_CRYPTO_SESSION] = "CLOSE_CRYPTO_SESSION",
    [VHOST_USER_POSTCOPY_ADVISE] = "POSTCOPY_ADVISE",
    [VHOST_USER_POSTCOPY_LISTEN] = "POSTCOPY_LISTEN",
    [VHOST_USER_POSTCOPY_END] = "POSTCOPY_END",
    [VHOST_USER_GET_INFLIGHT_FD] = "GET_INFLIGHT_FD",
    [VHOST_USER_SET_INFLIGHT_FD] = "SET_INFLIGHT_FD",
    [VHOST_USER_GPU_SET_SOCKET] = "GPU_SET_SOCKET",
    [VHOST_USER_RESET_DEVICE] = "RESET_DEVICE",
    [VHOST_USER_VRING_KICK] = "VRING_KICK",
    [VHOST_USER_GET_MAX_MEM_SLOTS] = "GET_MAX_MEM_SLOTS",
    [VHOST_USER_ADD_MEM_REG] = "ADD_MEM_REG",
    [VHOST_USER_REM_MEM_REG] = "REM_MEM_REG",
    [VHOST_USER_SET_STATUS] = "SET_STATUS",
    [VHOST_USER_GET_STATUS] = "GET_STATUS",
};

const char *vhost_user_request_name(uint32_t request)
{
    if (request >= VHOST_USER_MAX || !request_names[request])
        return "UNKNOWN";
    return request_names[request];
}

static void close_fd_array(int *fds, int nfds)
{
    for (int i = 0; i < nfds; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
        fds[i] = -1;
    }
}

void vhost_user_close_fds(struct vhost_user_msg *msg)
{
    close_fd_array(msg->fds, msg->nfds);
    msg->nfds = 0;
}

static int wait_fd(int sock, short events)
{
    struct pollfd p = {.fd = sock, .events = events};
    int r;

    do {
        r = poll(&p, 1, VHOST_USER_IO_TIMEOUT_MS);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    if (r == 0)
        return -ETIMEDOUT;
    return 0;
}

/* Moves the fds a recvmsg brought into msg->fds; any beyond the maximum (or
 * cut off, MSG_CTRUNC) are closed and make it -EMSGSIZE. */
static int take_fds(struct msghdr *mh, struct vhost_user_msg *msg)
{
    int err = 0;

    for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char *data = CMSG_DATA(cm);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, data + i * sizeof(int), sizeof(int));
            if (msg->nfds < VHOST_USER_MAX_FDS) {
                msg->fds[msg->nfds++] = fd;
            } else {
                close(fd);
                err = -EMSGSIZE;
            }
        }
    }
    if (mh->msg_flags & MSG_CTRUNC)
        err = -EMSGSIZE;
    return err;
}

/* Reads exactly len bytes, collecting any fds that come along into
 * msg->fds. Returns len, 0 if the peer closed before the first byte, or
 * -errno. */
static ssize_t recv_full(int sock, void *buf, size_t len, struct vhost_user_msg *msg)
{
    union {
        char buf[CMSG_SPACE(VHOST_USER_MAX_FDS * sizeof(int))];
        struct cmsghdr align;
    } control;
    size_t got = 0;

    while (got < len) {
        struct iovec iov = {.iov_base = (char *)buf + got, .iov_len = len - got};
        struct msghdr mh = {
            .msg_iov = &iov,
            .msg_iovlen = 1,
            .msg_control = control.buf,
            .msg_controllen = sizeof(control.buf),
        };
        ssize_t r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        int err = 0;

        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                int w = wait_fd(sock, POLLIN);
                if (w < 0)
                    return w;
                continue;
            }
            return -errno;
        }

        /* Take every fd first so that none leaks, whatever else is wrong. */
        err = take_fds(&mh, msg);
        if (err)
            return err;
        if (r == 0)
            return got == 0 ? 0 : -EPROTO;
        got += (size_t)r;
    }
    return (ssize_t)len;
}

int vhost_user_recv(int sock, struct vhost_user_msg *msg)
{
    ssize_t r;
    int err;

    msg->nfds = 0;
    for (int i = 0; i < VHOST_USER_MAX_FDS; i++)
        msg->fds[i] = -1;

    r = recv_full(sock, &msg->hdr, VHOST_USER_HDR_SIZE, msg);
    if (r == 0 && msg->nfds == 0)
        return 0;
    if (r <= 0) {
        err = r == 0 ? -EPROTO : (int)r;
        goto fail;
    }
    if (msg->hdr.size > sizeof(msg->payload)) {
        err = -EMSGSIZE;
        goto fail;
    }
    if (msg->hdr.size) {
        r = recv_full(sock, &msg->payload, msg->hdr.size, msg);
        if (r <= 0) {
            err = r == 0 ? -EPROTO : (int)r;
            goto fail;
        }
    }
    return 1;

fail:
    vhost_user_close_fds(msg);
    return err;
}

void vhost_user_reader_init(struct vhost_user_reader *rd)
{
    rd->got = 0;
    rd->msg.nfds = 0;
    for (int i = 0; i < VHOST_USER_MAX_FDS; i++)
        rd->msg.fds[i] = -1;
}

void vhost_user_reader_reset(struct vhost_user_reader *rd)
{
    vhost_user_close_fds(&rd->msg);
    vhost_user_reader_init(rd);
}

int vhost_user_recv_nb(int sock, struct vhost_user_reader *rd)
{
    union {
        char buf[CMSG_SPACE(VHOST_USER_MAX_FDS * sizeof(int))];
        struct cmsghdr align;
    } control;
    struct vhost_user_msg *msg = &rd->msg;

    for (;;) {
        size_t want;
        char *dst;
        struct iovec iov;
        struct msghdr mh = {
            .msg_iov = &iov,
            .msg_iovlen = 1,
            .msg_control = control.buf,
            .msg_controllen = sizeof(control.buf),
        };
        ssize_t r;
        int err = 0;

        if (rd->got < VHOST_USER_HDR_SIZE) {
            dst = (char *)&msg->hdr + rd->got;
            want = VHOST_USER_HDR_SIZE - rd->got;
        } else {
            if (msg->hdr.size > sizeof(msg->payload)) {
                vhost_user_reader_reset(rd);
                return -EMSGSIZE;
            }
            want = VHOST_USER_HDR_SIZE + msg->hdr.size - rd->got;
            if (want == 0)
                return 1;
            dst = (char *)&msg->payload + (rd->got - VHOST_USER_HDR_SIZE);
        }
        iov.iov_base = dst;
        iov.iov_len = want;
        r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return -EAGAIN;
            err = -errno;
            vhost_user_reader_reset(rd);
            return err;
        }
        err = take_fds(&mh, msg);
        if (!err && r == 0)
            err = rd->got == 0 && msg->nfds == 0 ? 0 : -EPROTO;
        if (err || r == 0) {
            vhost_user_reader_reset(rd);
            return err;
        }
        rd->got += (size_t)r;
        if (rd->got == VHOST_USER_HDR_SIZE && msg->hdr.size == 0)
            return 1;
    }
}

int vhost_user_send(int sock, const struct vhost_user_msg *msg, const int *fds,
                    int nfds)
{
    union {
        char buf[CMSG_SPACE(VHOST_USER_MAX_FDS * sizeof(int))];
        struct cmsghdr align;
    } control;
    size_t len, sent = 0;

    if (msg->hdr.size > sizeof(msg->payload) || nfds < 0 || nfds > VHOST_USER_MAX_FDS ||
        (nfds > 0 && !fds))
        return -EINVAL;

    /* not one iovec: the packed header is followed by padding in
     * struct vhost_user_msg, not by the payload */
    len = VHOST_USER_HDR_SIZE + msg->hdr.size;
    while (sent < len) {
        struct iovec iov[2];
        struct msghdr mh = {.msg_iov = iov};
        ssize_t r;

        if (sent < VHOST_USER_HDR_SIZE) {
            iov[0].iov_base = (char *)&msg->hdr + sent;
            iov[0].iov_len = VHOST_USER_HDR_SIZE - sent;
            iov[1].iov_base = (void *)&msg->payload;
            iov[1].iov_len = msg->hdr.size;
            mh.msg_iovlen = msg->hdr.size ? 2 : 1;
        } else {
            iov[0].iov_base = (char *)&msg->payload + (sent - VHOST_USER_HDR_SIZE);
            iov[0].iov_len = len - sent;
            mh.msg_iovlen = 1;
        }

        /* fds ride on the first byte only */
        if (sent == 0 && nfds > 0) {
            memset(&control, 0, sizeof(control));
            mh.msg_control = control.buf;
            mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
            struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
            memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
        }
        r = sendmsg(sock, &mh, MSG_NOSIGNAL);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                int w = wait_fd(sock, POLLOUT);
                if (w < 0)
                    return w;
                continue;
            }
            return -errno;
        }
        sent += (size_t)r;
    }
    return 0;
}
