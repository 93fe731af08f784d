/* vhost_fe_probe: the VMM's vhost-user frontend (vhost/vhost_frontend.c) with
 * a fake guest driver around it, to try the frontend against any backend
 * (DPDK net_vhost, vswitchd, Open vSwitch) without a VM.
 *
 *   vhost_fe_probe --socket PATH [--frames N] [--size BYTES] [--expect N]
 *                  [--timeout-ms MS] [--wait S] [--connect-wait S]
 *
 * Connects to PATH, runs handshake and start with 64 MiB of memfd "guest
 * RAM" and one queue pair (vring 0 the guest's RX, vring 1 its TX), pushes N
 * frames (02:00:00:00:aa:01 -> 02:00:00:00:bb:02, ethertype 0x88b5, a
 * sequence number and a pattern) into the TX ring and counts the frames that
 * come back on RX with the MACs swapped and the payload intact, waiting on the
 * call eventfds and kicking through the kick eventfds as a guest would. Then
 * stops the rings and prints their bases. Exit 0 when at least --expect
 * (default N) distinct frames came back intact and the TX base equals N; 1
 * otherwise; 2 on a usage error. One line per step on stdout. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vhost_frontend.h"
#include "virtio_net.h"
#include "vring.h"

#define MEM_SIZE (64u << 20)
#define QSIZE    256
#define BUF_SIZE 2048
#define HDR_LEN  VIRTIO_NET_HDR_LEN_V1 /* VERSION_1 */
#define WINDOW   (QSIZE / 2)           /* frames in flight at most */

/* guest-physical layout (gpa 0 = start of the memfd) */
#define RING_GPA(q) ((uint64_t)(q)*0x10000)
#define BUF_GPA(q)  (0x100000 + (uint64_t)(q)*QSIZE * BUF_SIZE)

static const uint8_t OUR_MAC[6] = {0x02, 0, 0, 0, 0xaa, 0x01};
static const uint8_t PEER_MAC[6] = {0x02, 0, 0, 0, 0xbb, 0x02};
static const uint8_t MAGIC[4] = {'V', 'F', 'E', 'P'};

struct queue {
    struct vring_desc *desc;
    struct vring_avail *avail;
    struct vring_used *used;
    uint16_t avail_idx, last_used;
    int kick_fd, call_fd;
    uint16_t free[QSIZE];
    unsigned nfree;
};

struct probe {
    uint8_t *mem;
    int memfd;
    struct queue q[2]; /* 0 RX, 1 TX */
    unsigned frames, size;
    uint8_t *seen;
    unsigned received, dup, bad;
};

static double t0;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
    va_list ap;

    printf("[probe %6.2fs] ", now() - t0);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static uint8_t *gpa_ptr(struct probe *p, uint64_t gpa)
{
    return p->mem + gpa;
}

static int dial(const char *path, double wait_s)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    double deadline = now() + wait_s;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(sa.sun_path, path);
    for (;;) {
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (s < 0)
            return -1;
        if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            return s;
        close(s);
        if (now() > deadline)
            return -1;
        usleep(50000);
    }
}

/* Tells the device about new buffers unless it said it does not need to be. */
static void kick(struct queue *q)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST); /* avail->idx before used->flags */
    if (!(__atomic_load_n(&q->used->flags, __ATOMIC_RELAXED) & VRING_USED_F_NO_NOTIFY))
        eventfd_write(q->kick_fd, 1);
}

static void publish(struct queue *q)
{
    __atomic_store_n(&q->avail->idx, q->avail_idx, __ATOMIC_RELEASE);
}

static void post(struct probe *p, unsigned qi, uint16_t id, uint32_t len, uint16_t flags)
{
    struct queue *q = &p->q[qi];

    q->desc[id].addr = BUF_GPA(qi) + (uint64_t)id * BUF_SIZE;
    q->desc[id].len = len;
    q->desc[id].flags = flags;
    q->desc[id].next = 0;
    q->avail->ring[q->avail_idx % QSIZE] = id;
    q->avail_idx++;
}

static void make_frame(uint8_t *f, unsigned seq, unsigned size)
{
    memcpy(f, PEER_MAC, 6);
    memcpy(f + 6, OUR_MAC, 6);
    f[12] = 0x88;
    f[13] = 0xb5;
    memcpy(f + 14, MAGIC, 4);
    f[18] = (uint8_t)(seq >> 24);
    f[19] = (uint8_t)(seq >> 16);
    f[20] = (uint8_t)(seq >> 8);
    f[21] = (uint8_t)seq;
    for (unsigned i = 22; i < size; i++)
        f[i] = (uint8_t)(seq + i);
}

/* A frame back from the peer: MACs swapped, payload as we sent it. */
static void check_frame(struct probe *p, const uint8_t *f, uint32_t len)
{
    unsigned seq;

    if (len != p->size || memcmp(f, OUR_MAC, 6) || memcmp(f + 6, PEER_MAC, 6) ||
        f[12] != 0x88 || f[13] != 0xb5 || memcmp(f + 14, MAGIC, 4)) {
        if (p->bad++ < 5)
            say("unexpected frame of %u bytes: %02x:%02x:%02x:%02x:%02x:%02x <- "
                "%02x:%02x:%02x:%02x:%02x:%02x type %02x%02x",
                len, f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10],
                f[11], f[12], f[13]);
        return;
    }
    seq = (unsigned)f[18] << 24 | (unsigned)f[19] << 16 | (unsigned)f[20] << 8 | f[21];
    for (unsigned i = 22; i < len; i++) {
        if (f[i] != (uint8_t)(seq + i)) {
            if (p->bad++ < 5)
                say("frame %u: payload byte %u is 0x%02x", seq, i, f[i]);
            return;
        }
    }
    if (seq >= p->frames) {
        p->bad++;
        return;
    }
    if (p->seen[seq]) {
        p->dup++;
        return;
    }
    p->seen[seq] = 1;
    p->received++;
}

/* Takes the used RX buffers, checks their frames and posts them again. */
static int drain_rx(struct probe *p)
{
    struct queue *q = &p->q[0];
    uint16_t used = __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE);
    unsigned n = 0;

    while (q->last_used != used) {
        struct vring_used_elem e = q->used->ring[q->last_used % QSIZE];

        q->last_used++;
        if (e.id >= QSIZE || e.len < HDR_LEN || e.len > BUF_SIZE) {
            say("RX used entry id %u len %u is out of range", e.id, e.len);
            return -1;
        }
        check_frame(p, gpa_ptr(p, BUF_GPA(0) + (uint64_t)e.id * BUF_SIZE) + HDR_LEN,
                    e.len - HDR_LEN);
        post(p, 0, (uint16_t)e.id, BUF_SIZE, VRING_DESC_F_WRITE);
        n++;
    }
    if (n) {
        publish(q);
        kick(q);
    }
    return 0;
}

static int reclaim_tx(struct probe *p)
{
    struct queue *q = &p->q[1];
    uint16_t used = __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE);

    while (q->last_used != used) {
        uint32_t id = q->used->ring[q->last_used % QSIZE].id;

        q->last_used++;
        if (id >= QSIZE || q->nfree >= QSIZE) {
            say("TX used entry id %u is out of range", id);
            return -1;
        }
        q->free[q->nfree++] = (uint16_t)id;
    }
    return 0;
}

static void drain_eventfd(int fd)
{
    eventfd_t v;

    eventfd_read(fd, &v);
}

/* Sends every frame (never more than WINDOW ahead of what came back) and
 * waits for the rest; gives up after wait_s without any progress. */
static int run_traffic(struct probe *p, double wait_s)
{
    struct queue *tx = &p->q[1];
    unsigned sent = 0;
    double last_progress = now();

    while (sent < p->frames || p->received < p->frames) {
        struct pollfd pf[2] = {{.fd = p->q[0].call_fd, .events = POLLIN},
                               {.fd = tx->call_fd, .events = POLLIN}};
        unsigned before = p->received + tx->nfree, batch = 0;

        if (reclaim_tx(p) < 0 || drain_rx(p) < 0)
            return -1;
        while (sent < p->frames && tx->nfree && sent - p->received < WINDOW) {
            uint16_t id = tx->free[--tx->nfree];
            uint8_t *buf = gpa_ptr(p, BUF_GPA(1) + (uint64_t)id * BUF_SIZE);

            memset(buf, 0, HDR_LEN);
            make_frame(buf + HDR_LEN, sent, p->size);
            post(p, 1, id, HDR_LEN + p->size, 0);
            sent++;
            batch++;
        }
        if (batch) {
            publish(tx);
            kick(tx);
        }
        if (batch || p->received + tx->nfree + batch != before)
            last_progress = now();
        else if (now() - last_progress > wait_s)
            break;
        if (poll(pf, 2, 10) > 0) {
            if (pf[0].revents)
                drain_eventfd(pf[0].fd);
            if (pf[1].revents)
                drain_eventfd(pf[1].fd);
        }
    }
    reclaim_tx(p);
    say("sent %u frames, %u came back macswapped and intact (%u duplicates, %u bad)",
        sent, p->received, p->dup, p->bad);
    return (int)sent;
}

static void usage(void)
{
    fprintf(stderr, "usage: vhost_fe_probe --socket PATH [--frames N] [--size BYTES] "
                    "[--expect N] [--timeout-ms MS] [--wait S] [--connect-wait S]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'},
        {"frames", required_argument, NULL, 'n'},
        {"size", required_argument, NULL, 'z'},
        {"expect", required_argument, NULL, 'e'},
        {"timeout-ms", required_argument, NULL, 't'},
        {"wait", required_argument, NULL, 'w'},
        {"connect-wait", required_argument, NULL, 'c'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    unsigned frames = 1000, size = 64, timeout_ms = 5000;
    long expect = -1;
    double wait_s = 10, connect_wait = 10;
    struct probe p;
    struct vhost_fe *fe = NULL;
    struct vhost_fe_region region;
    struct vhost_fe_vring rings[2];
    const unsigned indices[2] = {0, 1};
    uint16_t bases[2];
    uint64_t features;
    char err[300];
    int c, sock, sent, rc = 1;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            path = optarg;
            break;
        case 'n':
            frames = (unsigned)strtoul(optarg, NULL, 0);
            break;
        case 'z':
            size = (unsigned)strtoul(optarg, NULL, 0);
            break;
        case 'e':
            expect = strtol(optarg, NULL, 0);
            break;
        case 't':
            timeout_ms = (unsigned)strtoul(optarg, NULL, 0);
            break;
        case 'w':
            wait_s = strtod(optarg, NULL);
            break;
        case 'c':
            connect_wait = strtod(optarg, NULL);
            break;
        default:
            usage();
        }
    }
    if (!path || optind != argc || frames == 0 || size < 60 ||
        size > BUF_SIZE - HDR_LEN || timeout_ms == 0)
        usage();
    if (expect < 0)
        expect = frames;
    t0 = now();

    memset(&p, 0, sizeof(p));
    p.frames = frames;
    p.size = size;
    p.seen = calloc(frames, 1);
    p.memfd = memfd_create("vhost-fe-probe", MFD_CLOEXEC);
    if (!p.seen || p.memfd < 0 || ftruncate(p.memfd, MEM_SIZE) < 0) {
        perror("guest memory");
        return 1;
    }
    p.mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, p.memfd, 0);
    if (p.mem == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    region = (struct vhost_fe_region){.gpa = 0,
                                      .size = MEM_SIZE,
                                      .uva = (uint64_t)(uintptr_t)p.mem,
                                      .fd = p.memfd,
                                      .fd_offset = 0};
    for (unsigned qi = 0; qi < 2; qi++) {
        struct queue *q = &p.q[qi];
        uint8_t *r = gpa_ptr(&p, RING_GPA(qi));

        q->desc = (struct vring_desc *)r;
        q->avail = (struct vring_avail *)(r + 0x1000);
        q->used = (struct vring_used *)(r + 0x2000);
        q->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        q->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (q->kick_fd < 0 || q->call_fd < 0) {
            perror("eventfd");
            return 1;
        }
        rings[qi] = (struct vhost_fe_vring){
            .index = qi,
            .num = QSIZE,
            .desc_uva = (uint64_t)(uintptr_t)q->desc,
            .avail_uva = (uint64_t)(uintptr_t)q->avail,
            .used_uva = (uint64_t)(uintptr_t)q->used,
            .base = 0,
            .kick_fd = q->kick_fd,
            .call_fd = q->call_fd,
        };
    }
    /* the guest driver's part: RX buffers in place before the device starts */
    for (uint16_t i = 0; i < QSIZE; i++)
        post(&p, 0, i, BUF_SIZE, VRING_DESC_F_WRITE);
    publish(&p.q[0]);
    for (uint16_t i = 0; i < QSIZE; i++)
        p.q[1].free[p.q[1].nfree++] = (uint16_t)(QSIZE - 1 - i);

    sock = dial(path, connect_wait);
    if (sock < 0) {
        say("connect %s: %s", path, strerror(errno));
        goto out;
    }
    fe = vhost_fe_create("probe", sock, (int)timeout_ms);
    if (!fe) {
        say("vhost_fe_create: %s", strerror(errno));
        goto out;
    }
    if (vhost_fe_handshake(fe, err, sizeof(err)) < 0) {
        say("handshake failed: %s", err);
        goto out;
    }
    say("handshake: backend features 0x%llx, protocol features 0x%llx, %u queue pairs",
        (unsigned long long)vhost_fe_backend_features(fe),
        (unsigned long long)vhost_fe_protocol_features(fe), vhost_fe_max_queue_pairs(fe));

    features = vhost_fe_backend_features(fe) & VIRTIO_BIT(VIRTIO_F_VERSION_1);
    if (vhost_fe_start(fe, features, &region, 1, rings, 2, err, sizeof(err)) < 0) {
        say("start failed: %s", err);
        goto out;
    }
    say("started: features 0x%llx, 64 MiB memfd at uva %p, rings of %u",
        (unsigned long long)features, (void *)p.mem, QSIZE);
    /* a backend may look at the RX ring only once started */
    kick(&p.q[0]);

    sent = run_traffic(&p, wait_s);
    if (sent < 0)
        goto out;
    if (vhost_fe_stop(fe, indices, 2, bases) < 0) {
        say("stop failed: %s", vhost_fe_last_error(fe));
        goto out;
    }
    say("stopped: RX base %u, TX base %u", bases[0], bases[1]);
    rc = 0;
    if (p.received < (unsigned long)expect) {
        say("FAIL: %u frames came back, %ld expected", p.received, expect);
        rc = 1;
    }
    if (p.bad) {
        say("FAIL: %u frames came back wrong", p.bad);
        rc = 1;
    }
    if (bases[1] != (uint16_t)sent) {
        say("FAIL: TX base %u, %d frames were sent", bases[1], sent);
        rc = 1;
    }
    if (rc == 0)
        say("OK");
out:
    vhost_fe_destroy(fe);
    for (unsigned qi = 0; qi < 2; qi++) {
        close(p.q[qi].kick_fd);
        close(p.q[qi].call_fd);
    }
    munmap(p.mem, MEM_SIZE);
    close(p.memfd);
    free(p.seen);
    return rc;
}
