/* vhost_user.c: message framing and fd passing over a socketpair. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "fake_guest.h"
#include "vhost_user.h"

struct pair {
    int front; /* the frontend's end */
    int back;  /* ours */
};

static int setup(void **state)
{
    struct pair *p = calloc(1, sizeof(*p));
    int sv[2];

    if (!p || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
    p->front = sv[0];
    p->back = sv[1];
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    struct pair *p = *state;

    if (p->front >= 0)
        close(p->front);
    close(p->back);
    free(p);
    return 0;
}

/* Sends raw bytes with any number of fds, bypassing vhost_user_send. */
static void send_raw(int sock, const void *buf, size_t len, const int *fds, int nfds)
{
    char control[CMSG_SPACE(32 * sizeof(int))];
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

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
    assert_int_equal(sendmsg(sock, &mh, 0), (ssize_t)len);
}

static void test_message_with_fds(void **state)
{
    struct pair *p = *state;
    struct vhost_user_msg out, in;
    int fds[2] = {eventfd(0, EFD_CLOEXEC), eventfd(0, EFD_CLOEXEC)};
    uint64_t v = 5;

    memset(&out, 0, sizeof(out));
    out.hdr.request = VHOST_USER_SET_VRING_ADDR;
    out.hdr.flags = VHOST_USER_VERSION;
    out.hdr.size = sizeof(out.payload.addr);
    out.payload.addr.index = 3;
    out.payload.addr.used_user_addr = 0x1234567890ULL;
    assert_int_equal(vhost_user_send(p->front, &out, fds, 2), 0);
    assert_int_equal(vhost_user_recv(p->back, &in), 1);
    assert_int_equal(in.hdr.request, VHOST_USER_SET_VRING_ADDR);
    assert_int_equal(in.hdr.size, sizeof(out.payload.addr));
    assert_int_equal(in.payload.addr.index, 3);
    assert_int_equal(in.payload.addr.used_user_addr, 0x1234567890ULL);
    assert_int_equal(in.nfds, 2);
    /* the received fds are the same eventfds */
    assert_int_equal(write(in.fds[1], &v, sizeof(v)), sizeof(v));
    assert_int_equal(read(fds[1], &v, sizeof(v)), sizeof(v));
    assert_int_equal(v, 5);
    assert_true(fcntl(in.fds[0], F_GETFD) & FD_CLOEXEC);
    int r0 = in.fds[0], r1 = in.fds[1];
    vhost_user_close_fds(&in);
    assert_int_equal(in.nfds, 0);
    assert_int_equal(fcntl(r0, F_GETFD), -1);
    assert_int_equal(fcntl(r1, F_GETFD), -1);
    close(fds[0]);
    close(fds[1]);
}

static void test_back_to_back(void **state)
{
    struct pair *p = *state;
    struct vhost_user_msg out, in;

    memset(&out, 0, sizeof(out));
    out.hdr.request = VHOST_USER_GET_FEATURES;
    out.hdr.flags = VHOST_USER_VERSION;
    assert_int_equal(vhost_user_send(p->front, &out, NULL, 0), 0);
    out.hdr.request = VHOST_USER_SET_FEATURES;
    out.hdr.size = 8;
    out.payload.u64 = 0xabcdef;
    assert_int_equal(vhost_user_send(p->front, &out, NULL, 0), 0);
    assert_int_equal(vhost_user_recv(p->back, &in), 1);
    assert_int_equal(in.hdr.request, VHOST_USER_GET_FEATURES);
    assert_int_equal(in.hdr.size, 0);
    assert_int_equal(in.nfds, 0);
    assert_int_equal(vhost_user_recv(p->back, &in), 1);
    assert_int_equal(in.hdr.request, VHOST_USER_SET_FEATURES);
    assert_int_equal(in.payload.u64, 0xabcdef);
}

static void test_peer_closed(void **state)
{
    struct pair *p = *state;
    struct vhost_user_msg in;

    close(p->front);
    p->front = -1;
    assert_int_equal(vhost_user_recv(p->back, &in), 0);
    assert_int_equal(in.nfds, 0);
}

static void test_oversized_payload(void **state)
{
    struct pair *p = *state;
    struct vhost_user_hdr h = {VHOST_USER_SET_MEM_TABLE, VHOST_USER_VERSION,
                               sizeof(union vhost_user_payload) + 1};
    struct vhost_user_msg in;
    int fd = eventfd(0, EFD_CLOEXEC);
    int before = count_open_fds();

    send_raw(p->front, &h, sizeof(h), &fd, 1);
    assert_int_equal(vhost_user_recv(p->back, &in), -EMSGSIZE);
    assert_int_equal(in.nfds, 0);
    assert_int_equal(count_open_fds(), before); /* the received copy is closed */
    close(fd);
}

static void test_truncated_payload(void **state)
{
    struct pair *p = *state;
    uint8_t buf[sizeof(struct vhost_user_hdr) + 10];
    struct vhost_user_hdr h = {VHOST_USER_SET_VRING_ADDR, VHOST_USER_VERSION, 40};
    struct vhost_user_msg in;
    int fd = eventfd(0, EFD_CLOEXEC);
    int before = count_open_fds();

    memcpy(buf, &h, sizeof(h));
    memset(buf + sizeof(h), 0, 10);
    send_raw(p->front, buf, sizeof(buf), &fd, 1);
    close(p->front);
    p->front = -1;
    assert_int_equal(vhost_user_recv(p->back, &in), -EPROTO);
    assert_int_equal(count_open_fds(), before - 1); /* less the closed front */
    close(fd);
}

static void test_truncated_header(void **state)
{
    struct pair *p = *state;
    struct vhost_user_msg in;

    send_raw(p->front, "\x01\x00\x00", 3, NULL, 0);
    close(p->front);
    p->front = -1;
    assert_int_equal(vhost_user_recv(p->back, &in), -EPROTO);
}

static void test_too_many_fds(void **state)
{
    struct pair *p = *state;
    struct vhost_user_hdr h = {VHOST_USER_SET_MEM_TABLE, VHOST_USER_VERSION, 0};
    struct vhost_user_msg in;
    int fds[VHOST_USER_MAX_FDS + 1];
    int before;

    for (int i = 0; i <= VHOST_USER_MAX_FDS; i++)
        fds[i] = eventfd(0, EFD_CLOEXEC);
    before = count_open_fds();
    send_raw(p->front, &h, sizeof(h), fds, VHOST_USER_MAX_FDS + 1);
    assert_int_equal(vhost_user_recv(p->back, &in), -EMSGSIZE);
    assert_int_equal(in.nfds, 0);
    assert_int_equal(count_open_fds(), before);
    for (int i = 0; i <= VHOST_USER_MAX_FDS; i++)
        close(fds[i]);
}

static void test_max_fds_ok(void **state)
{
    struct pair *p = *state;
    struct vhost_user_msg out, in;
    int fds[VHOST_USER_MAX_FDS];

    for (int i = 0; i < VHOST_USER_MAX_FDS; i++)
        fds[i] = eventfd(0, EFD_CLOEXEC);
    memset(&out, 0, sizeof(out));
    out.hdr.request = VHOST_USER_SET_MEM_TABLE;
    out.hdr.flags = VHOST_USER_VERSION;
    out.hdr.size = 8;
    assert_int_equal(vhost_user_send(p->front, &out, fds, VHOST_USER_MAX_FDS), 0);
    assert_int_equal(vhost_user_recv(p->back, &in), 1);
    assert_int_equal(in.nfds, VHOST_USER_MAX_FDS);
    vhost_user_close_fds(&in);
    for (int i = 0; i < VHOST_USER_MAX_FDS; i++)
        close(fds[i]);
}

static void test_payload_arrives_late(void **state)
{
    struct pair *p = *state;
    struct vhost_user_hdr h = {VHOST_USER_SET_FEATURES, VHOST_USER_VERSION, 8};
    uint64_t v = 0x42;
    struct vhost_user_msg in;
    pid_t pid;
    int status;

    /* our end is non-blocking, as under libevent */
    assert_int_equal(fcntl(p->back, F_SETFL, O_NONBLOCK), 0);
    send_raw(p->front, &h, sizeof(h), NULL, 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        usleep(50 * 1000);
        _exit(write(p->front, &v, sizeof(v)) == sizeof(v) ? 0 : 1);
    }
    assert_int_equal(vhost_user_recv(p->back, &in), 1);
    assert_int_equal(in.payload.u64, 0x42);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(status, 0);
}

static void test_send_rejects(void **state)
{
    struct pair *p = *state;
    struct vhost_user_msg out;
    int fds[VHOST_USER_MAX_FDS + 1] = {0};

    memset(&out, 0, sizeof(out));
    out.hdr.size = sizeof(out.payload) + 1;
    assert_int_equal(vhost_user_send(p->front, &out, NULL, 0), -EINVAL);
    out.hdr.size = 0;
    assert_int_equal(vhost_user_send(p->front, &out, fds, VHOST_USER_MAX_FDS + 1),
                     -EINVAL);
    close(p->back);
    p->back = socket(AF_UNIX, SOCK_STREAM, 0); /* for teardown */
    assert_int_equal(vhost_user_send(p->front, &out, NULL, 0), -EPIPE);
}

static void test_request_names(void **state)
{
    assert_string_equal(vhost_user_request_name(VHOST_USER_SET_MEM_TABLE),
                        "SET_MEM_TABLE");
    assert_string_equal(vhost_user_request_name(VHOST_USER_GET_STATUS), "GET_STATUS");
    assert_string_equal(vhost_user_request_name(VHOST_USER_MAX), "UNKNOWN");
    assert_string_equal(vhost_user_request_name(UINT32_MAX), "UNKNOWN");
    for (uint32_t i = 0; i < VHOST_USER_MAX; i++)
        assert_string_not_equal(vhost_user_request_name(i), "UNKNOWN");
}

/* A message dribbled in one byte at a time: the non-blocking reader never
 * waits, keeps the fds that came with the first byte, and completes once. */
static void test_nb_byte_at_a_time(void **state)
{
    struct pair *p = *state;
    struct vhost_user_reader rd;
    uint8_t wire[VHOST_USER_HDR_SIZE + 8];
    struct vhost_user_hdr hdr = {.request = VHOST_USER_SET_VRING_CALL,
                                 .flags = VHOST_USER_VERSION, .size = 8};
    uint64_t idx = 1;
    int efd = eventfd(0, EFD_CLOEXEC);

    memcpy(wire, &hdr, sizeof(hdr));
    memcpy(wire + sizeof(hdr), &idx, 8);
    vhost_user_reader_init(&rd);
    assert_int_equal(vhost_user_recv_nb(p->back, &rd), -EAGAIN);
    for (size_t i = 0; i < sizeof(wire); i++) {
        send_raw(p->front, wire + i, 1, i == 0 ? &efd : NULL, i == 0);
        int r = vhost_user_recv_nb(p->back, &rd);
        if (i + 1 < sizeof(wire))
            assert_int_equal(r, -EAGAIN);
        else
            assert_int_equal(r, 1);
    }
    assert_int_equal(rd.msg.hdr.request, VHOST_USER_SET_VRING_CALL);
    assert_int_equal(rd.msg.payload.u64, 1);
    assert_int_equal(rd.msg.nfds, 1);
    vhost_user_close_fds(&rd.msg);
    vhost_user_reader_init(&rd);
    close(efd);
}

/* Two messages in one write are taken one at a time, never mixed. */
static void test_nb_two_in_one_write(void **state)
{
    struct pair *p = *state;
    struct vhost_user_reader rd;
    struct vhost_user_hdr h1 = {.request = VHOST_USER_GET_FEATURES,
                                .flags = VHOST_USER_VERSION};
    struct vhost_user_hdr h2 = {.request = VHOST_USER_SET_OWNER,
                                .flags = VHOST_USER_VERSION};
    uint8_t wire[2 * VHOST_USER_HDR_SIZE];

    memcpy(wire, &h1, sizeof(h1));
    memcpy(wire + sizeof(h1), &h2, sizeof(h2));
    send_raw(p->front, wire, sizeof(wire), NULL, 0);
    vhost_user_reader_init(&rd);
    assert_int_equal(vhost_user_recv_nb(p->back, &rd), 1);
    assert_int_equal(rd.msg.hdr.request, VHOST_USER_GET_FEATURES);
    vhost_user_reader_init(&rd);
    assert_int_equal(vhost_user_recv_nb(p->back, &rd), 1);
    assert_int_equal(rd.msg.hdr.request, VHOST_USER_SET_OWNER);
    vhost_user_reader_init(&rd);
    assert_int_equal(vhost_user_recv_nb(p->back, &rd), -EAGAIN);
}

/* Closed mid-message: a framing error, and the fds already taken are closed. */
static void test_nb_closed_midway(void **state)
{
    struct pair *p = *state;
    struct vhost_user_reader rd;
    struct vhost_user_hdr hdr = {.request = VHOST_USER_SET_MEM_TABLE,
                                 .flags = VHOST_USER_VERSION, .size = 40};
    int efd = eventfd(0, EFD_CLOEXEC);
    int before;

    send_raw(p->front, &hdr, sizeof(hdr), &efd, 1);
    close(efd);
    vhost_user_reader_init(&rd);
    assert_int_equal(vhost_user_recv_nb(p->back, &rd), -EAGAIN);
    assert_int_equal(rd.msg.nfds, 1);
    before = rd.msg.fds[0];
    close(p->front);
    p->front = -1;
    assert_int_equal(vhost_user_recv_nb(p->back, &rd), -EPROTO);
    assert_int_equal(rd.msg.nfds, 0);
    assert_int_equal(fcntl(before, F_GETFD), -1); /* closed */
}

/* An oversized size field is refused as soon as the header is in. */
static void test_nb_oversized(void **state)
{
    struct pair *p = *state;
    struct vhost_user_reader rd;
    struct vhost_user_hdr hdr = {.request = VHOST_USER_SET_MEM_TABLE,
                                 .flags = VHOST_USER_VERSION, .size = 0x10000};

    send_raw(p->front, &hdr, sizeof(hdr), NULL, 0);
    vhost_user_reader_init(&rd);
    assert_int_equal(vhost_user_recv_nb(p->back, &rd), -EMSGSIZE);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_message_with_fds),
        T(test_back_to_back),
        T(test_peer_closed),
        T(test_oversized_payload),
        T(test_truncated_payload),
        T(test_truncated_header),
        T(test_too_many_fds),
        T(test_max_fds_ok),
        T(test_payload_arrives_late),
        T(test_send_rejects),
        T(test_nb_byte_at_a_time),
        T(test_nb_two_in_one_write),
        T(test_nb_closed_midway),
        T(test_nb_oversized),
        cmocka_unit_test(test_request_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
