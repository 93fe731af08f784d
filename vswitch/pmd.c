/* PMD threads: each polls the receive queues the snapshot assigns to it and
 * forwards what it finds. After a run of empty polls it asks the guests to
 * kick, checks once more, and sleeps in epoll on the queues' wait fds, so an
 * idle switch costs almost no CPU. RCU QSBR: a quiescent state every loop,
 * offline while asleep. */
#include <errno.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <urcu-qsbr.h>

#include "dp.h"
#include "fdb.h"
#include "guest_fault.h"
#include "log.h"

/* Empty polls before sleeping: long enough that a busy guest never waits on a
 * wakeup, short enough (~tens of µs) that idle costs nothing. */
#define PMD_IDLE_POLLS 2000
#define PMD_SLEEP_MS 1000

struct wait_ref {
    int fd;
    bool is_eventfd;
};

/* A queue without a wait fd (a frontend that kicks with NOFD) must be polled:
 * then the PMD naps instead of sleeping. */
#define PMD_NAP_MS 1

static void pmd_build_epoll(struct pmd *pmd, const struct dp_snapshot *s,
                            struct wait_ref *refs, unsigned *nrefs, bool *must_poll)
{
    struct epoll_event ev;
    unsigned n = 0;

    *must_poll = false;
    if (pmd->epfd >= 0)
        close(pmd->epfd);
    pmd->epfd = epoll_create1(EPOLL_CLOEXEC);
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    epoll_ctl(pmd->epfd, EPOLL_CTL_ADD, pmd->wake_fd, &ev);

    for (unsigned i = 0; s && i < s->n_rxqs[pmd->id]; i++) {
        const struct dp_rxq *rq = &s->rxqs[pmd->id][i];
        struct port *p = rq->port;
        bool is_ev = false;
        int fd;

        if (!__atomic_load_n(&p->rxq_ready[rq->q], __ATOMIC_ACQUIRE))
            continue;
        fd = p->ops->wait_fd(p, rq->q, &is_ev);
        if (fd < 0) {
            *must_poll = true;
            continue;
        }
        refs[n].fd = fd;
        refs[n].is_eventfd = is_ev;
        ev.data.ptr = &refs[n];
        if (epoll_ctl(pmd->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
            n++;
    }
    *nrefs = n;
}

static void drain_eventfd(int fd)
{
    uint64_t v;

    if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        return;
}

static void set_notify_all(const struct dp_snapshot *s, unsigned id, bool enable)
{
    for (unsigned i = 0; s && i < s->n_rxqs[id]; i++) {
        struct port *p = s->rxqs[id][i].port;
        unsigned q = s->rxqs[id][i].q;

        if (p->ops->set_notify && __atomic_load_n(&p->rxq_ready[q], __ATOMIC_ACQUIRE))
            p->ops->set_notify(p, q, enable);
    }
}

static bool any_pending(const struct dp_snapshot *s, unsigned id)
{
    for (unsigned i = 0; s && i < s->n_rxqs[id]; i++) {
        struct port *p = s->rxqs[id][i].port;
        unsigned q = s->rxqs[id][i].q;

        if (__atomic_load_n(&p->rxq_ready[q], __ATOMIC_ACQUIRE) && p->ops->rx_pending &&
            p->ops->rx_pending(p, q))
            return true;
    }
    return false;
}

static void pmd_sleep(struct pmd *pmd, struct wait_ref *refs, unsigned *nrefs)
{
    struct dp_snapshot *s = switch_snapshot(pmd->sw);
    uint64_t gen = switch_generation(pmd->sw);
    struct epoll_event evs[64];
    int n;

    if (gen != pmd->seen_gen) {
        pmd_build_epoll(pmd, s, refs, nrefs, &pmd->must_poll);
        pmd->seen_gen = gen;
    }
    set_notify_all(s, pmd->id, true);
    if (any_pending(s, pmd->id)) {
        set_notify_all(s, pmd->id, false);
        return;
    }
    pmd->sleeps++;
    rcu_thread_offline();
    n = epoll_wait(pmd->epfd, evs, 64, pmd->must_poll ? PMD_NAP_MS : PMD_SLEEP_MS);
    rcu_thread_online();
    for (int i = 0; i < n; i++) {
        struct wait_ref *r = evs[i].data.ptr;
        if (!r)
            drain_eventfd(pmd->wake_fd);
        else if (r->is_eventfd)
            drain_eventfd(r->fd);
    }
    /* The snapshot may have changed while we slept. */
    s = switch_snapshot(pmd->sw);
    set_notify_all(s, pmd->id, false);
}

/* A guarded access to guest memory faulted (a frontend truncated the file it
 * shared): find whose memory it was, take that port out and drop its
 * frontend, and finish the batch in flight for everyone else. */
static void pmd_guest_fault(struct pmd *pmd, const struct dp_snapshot *s)
{
    void *addr = guest_guard.addr;
    struct port *culprit = NULL;
    struct port *src = pmd->cur_port;

    guest_guard_recover();
    for (unsigned i = 0; s && i < pmd->n_touched; i++)
        pmd->txq[pmd->touched[i]].n = 0;
    pmd->n_touched = 0;
    for (unsigned i = 0; s && i < s->n_ports && !culprit; i++) {
        struct port *p = s->ports[i].port;
        if (p->ops->owns_addr && p->ops->owns_addr(p, addr))
            culprit = p;
    }
    if (!culprit) {
        /* not guest memory: a bug of ours, not the guest's */
        log_err("pmd%u: SIGBUS at %p outside guest memory", pmd->id, addr);
        abort();
    }
    port_count_drop(culprit, DROP_GUEST_FAULT, pmd->cur_n > 0 ? (uint64_t)pmd->cur_n : 1);
    culprit->ops->fault(culprit);
    if (src && src != culprit && pmd->cur_n > 0 && src->ops->rx_done) {
        /* give the sender its buffers back; its memory is fine */
        if (GUEST_GUARD_ENTER() == 0)
            src->ops->rx_done(src, pmd->cur_q, pmd->rx, pmd->cur_n);
        else
            guest_guard_recover();
        guest_guard_leave();
    }
    pmd->cur_port = NULL;
    pmd->cur_n = 0;
}

static void *pmd_main(void *arg)
{
    struct pmd *pmd = arg;
    /* wait fds referenced by epoll; rebuilt with the epoll set */
    static __thread struct wait_ref refs[PORT_MAX * 2];
    unsigned nrefs = 0;
    volatile unsigned idle = 0; /* these survive a guest-fault jump */
    char name[16];

    snprintf(name, sizeof(name), "pmd%u", pmd->id);
    pthread_setname_np(pthread_self(), name);
    rcu_register_thread();

    while (!__atomic_load_n(&pmd->stop, __ATOMIC_ACQUIRE)) {
        struct dp_snapshot *s = switch_snapshot(pmd->sw);
        volatile unsigned work = 0; /* survives a guest-fault jump */

        pmd->now = fdb_now();
        pmd->loops++;
        for (volatile unsigned i = 0; s && i < s->n_rxqs[pmd->id]; i++) {
            struct port *p = s->rxqs[pmd->id][i].port;
            unsigned q = s->rxqs[pmd->id][i].q;
            int n;

            if (!__atomic_load_n(&p->rxq_ready[q], __ATOMIC_ACQUIRE))
                continue;
            pmd->cur_port = p;
            pmd->cur_q = q;
            pmd->cur_n = 0;
            if (GUEST_GUARD_ENTER()) {
                pmd_guest_fault(pmd, s);
                continue;
            }
            n = p->ops->rx_burst(p, q, pmd->rx, PKT_BATCH);
            pmd->cur_n = n;
            if (n > 0) {
                bridge_input(pmd, s, p, pmd->rx, n);
                if (p->ops->rx_done)
                    p->ops->rx_done(p, q, pmd->rx, n);
                work += n;
            }
            guest_guard_leave();
        }
        rcu_quiescent_state();
        if (work) {
            pmd->busy_loops++;
            idle = 0;
            continue;
        }
        if (++idle < PMD_IDLE_POLLS)
            continue;
        idle = 0;
        pmd->cur_port = NULL;
        pmd->cur_n = 0;
        if (GUEST_GUARD_ENTER()) {
            pmd_guest_fault(pmd, switch_snapshot(pmd->sw));
            continue;
        }
        pmd_sleep(pmd, refs, &nrefs);
        guest_guard_leave();
        rcu_quiescent_state();
    }
    if (pmd->epfd >= 0)
        close(pmd->epfd);
    pmd->epfd = -1;
    rcu_unregister_thread();
    return NULL;
}

int pmd_start(struct pmd *pmd, struct vswitch *sw, unsigned id)
{
    pmd->id = id;
    pmd->sw = sw;
    pmd->epfd = -1;
    pmd->seen_gen = UINT64_MAX;
    pmd->stop = false;
    pmd->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (pmd->wake_fd < 0)
        return -1;
    if (pthread_create(&pmd->thread, NULL, pmd_main, pmd) != 0) {
        close(pmd->wake_fd);
        return -1;
    }
    return 0;
}

void pmd_wake(struct pmd *pmd)
{
    uint64_t one = 1;

    if (write(pmd->wake_fd, &one, sizeof(one)) < 0)
        log_debug("pmd%u: wake: %s", pmd->id, strerror(errno));
}

void pmd_stop(struct pmd *pmd)
{
    __atomic_store_n(&pmd->stop, true, __ATOMIC_RELEASE);
    pmd_wake(pmd);
    pthread_join(pmd->thread, NULL);
    close(pmd->wake_fd);
}
