/* vring.c: the split ring device side against a fake guest in a memfd. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <sys/eventfd.h>

#include "fake_guest.h"

#define QSIZE 8

static int setup(void **state)
{
    struct fake_guest *g = calloc(1, sizeof(*g));

    if (!g || fg_init(g, QSIZE) < 0)
        return -1;
    *state = g;
    return 0;
}

static int teardown(void **state)
{
    struct fake_guest *g = *state;

    if (g->vq.call_fd >= 0)
        close(g->vq.call_fd);
    fg_fini(g);
    free(g);
    return 0;
}

/* Pops and expects an error, the chain handed back with length 0. */
static void expect_refused(struct fake_guest *g, bool writable, uint16_t head,
                           enum vring_err want)
{
    struct vring_chain c;
    uint16_t used_before = g->vq.last_used_idx;

    assert_int_equal(vring_pop(&g->vq, writable, &c), want);
    assert_int_equal(g->vq.errors[want], 1);
    assert_false(g->vq.broken);
    vring_flush(&g->vq);
    assert_int_equal(g->used->idx, (uint16_t)(used_before + 1));
    assert_int_equal(g->used->ring[used_before % QSIZE].id, head);
    assert_int_equal(g->used->ring[used_before % QSIZE].len, 0);
}

static void test_empty_and_count(void **state)
{
    struct fake_guest *g = *state;
    struct vring_chain c;

    assert_int_equal(vring_avail_count(&g->vq), 0);
    assert_int_equal(vring_pop(&g->vq, false, &c), VRING_EMPTY);
    fg_desc(g->desc, 0, FG_BUF, 100, 0, 0);
    fg_avail(g, 0);
    fg_avail(g, 0);
    assert_int_equal(vring_avail_count(&g->vq), 2);
}

static void test_good_chain(void **state)
{
    struct fake_guest *g = *state;
    struct vring_chain c;

    fg_desc(g->desc, 3, FG_BUF, 12, VRING_DESC_F_NEXT, 5);
    fg_desc(g->desc, 5, FG_BUF + 0x1000, 0, VRING_DESC_F_NEXT, 1); /* skipped */
    fg_desc(g->desc, 1, FG_BUF + 0x2000, 1500, 0, 7);             /* next unused */
    fg_avail(g, 3);
    assert_int_equal(vring_pop(&g->vq, false, &c), VRING_OK);
    assert_int_equal(c.head, 3);
    assert_int_equal(c.nbufs, 2);
    assert_int_equal(c.len, 1512);
    assert_ptr_equal(c.bufs[0].addr, fg_hva(g, FG_BUF));
    assert_int_equal(c.bufs[0].len, 12);
    assert_ptr_equal(c.bufs[1].addr, fg_hva(g, FG_BUF + 0x2000));
    assert_int_equal(c.bufs[1].len, 1500);
    assert_int_equal(g->vq.last_avail_idx, 1);
    assert_int_equal(vring_pop(&g->vq, false, &c), VRING_EMPTY);
}

static void test_writable_chain(void **state)
{
    struct fake_guest *g = *state;
    struct vring_chain c;

    fg_desc(g->desc, 0, FG_BUF, 2048, VRING_DESC_F_WRITE, 0);
    fg_avail(g, 0);
    assert_int_equal(vring_pop(&g->vq, true, &c), VRING_OK);
    assert_int_equal(c.len, 2048);
}

static void test_wrong_direction(void **state)
{
    struct fake_guest *g = *state;

    fg_desc(g->desc, 2, FG_BUF, 64, VRING_DESC_F_NEXT, 4);
    fg_desc(g->desc, 4, FG_BUF + 64, 64, VRING_DESC_F_WRITE, 0);
    fg_avail(g, 2);
    expect_refused(g, false, 2, VRING_ERR_DIRECTION);
}

static void test_wrong_direction_rx(void **state)
{
    struct fake_guest *g = *state;

    fg_desc(g->desc, 2, FG_BUF, 64, 0, 0);
    fg_avail(g, 2);
    expect_refused(g, true, 2, VRING_ERR_DIRECTION);
}

static void test_indirect_chain(void **state)
{
    struct fake_guest *g = *state;
    struct vring_desc *ind = fg_ptr(g, FG_IND);
    struct vring_chain c;

    g->vq.indirect = true;
    fg_desc(ind, 0, FG_BUF, 12, VRING_DESC_F_NEXT, 2);
    fg_desc(ind, 2, FG_BUF + 100, 200, VRING_DESC_F_NEXT, 1);
    fg_desc(ind, 1, FG_BUF + 400, 300, 0, 0);
    fg_desc(g->desc, 6, FG_IND, 3 * 16, VRING_DESC_F_INDIRECT, 0);
    fg_avail(g, 6);
    assert_int_equal(vring_pop(&g->vq, false, &c), VRING_OK);
    assert_int_equal(c.head, 6);
    assert_int_equal(c.nbufs, 3);
    assert_int_equal(c.len, 512);
    assert_ptr_equal(c.bufs[1].addr, fg_hva(g, FG_BUF + 100));
    assert_ptr_equal(c.bufs[2].addr, fg_hva(g, FG_BUF + 400));
}

static void test_indirect_without_feature(void **state)
{
    struct fake_guest *g = *state;
    struct vring_desc *ind = fg_ptr(g, FG_IND);

    fg_desc(ind, 0, FG_BUF, 12, 0, 0);
    fg_desc(g->desc, 6, FG_IND, 16, VRING_DESC_F_INDIRECT, 0);
    fg_avail(g, 6);
    expect_refused(g, false, 6, VRING_ERR_INDIRECT_OFF);
}

static void test_indirect_nested(void **state)
{
    struct fake_guest *g = *state;
    struct vring_desc *ind = fg_ptr(g, FG_IND);

    g->vq.indirect = true;
    fg_desc(ind, 0, FG_BUF, 12, VRING_DESC_F_NEXT, 1);
    fg_desc(ind, 1, FG_IND + 0x100, 16, VRING_DESC_F_INDIRECT, 0);
    fg_desc(g->desc, 0, FG_IND, 32, VRING_DESC_F_INDIRECT, 0);
    fg_avail(g, 0);
    expect_refused(g, false, 0, VRING_ERR_INDIRECT_NESTED);
}

static void test_indirect_with_next(void **state)
{
    struct fake_guest *g = *state;

    g->vq.indirect = true;
    fg_desc(g->desc, 0, FG_IND, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
    fg_desc(g->desc, 1, FG_BUF, 16, 0, 0);
    fg_avail(g, 0);
    expect_refused(g, false, 0, VRING_ERR_INDIRECT_NEXT);
}

static void check_indirect_size(struct fake_guest *g, uint32_t len)
{
    g->vq.indirect = true;
    fg_desc(g->desc, 1, FG_IND, len, VRING_DESC_F_INDIRECT, 0);
    fg_avail(g, 1);
    expect_refused(g, false, 1, VRING_ERR_INDIRECT_SIZE);
}

static void test_indirect_size_zero(void **state)
{
    check_indirect_size(*state, 0);
}

static void test_indirect_size_odd(void **state)
{
    check_indirect_size(*state, 17);
}

static void test_indirect_size_huge(void **state)
{
    check_indirect_size(*state, (VRING_SIZE_MAX + 1) * 16);
}

static void test_indirect_table_outside(void **state)
{
    struct fake_guest *g = *state;

    g->vq.indirect = true;
    /* straddles the end of the region */
    fg_desc(g->desc, 1, FG_GPA + FG_SIZE - 16, 32, VRING_DESC_F_INDIRECT, 0);
    fg_avail(g, 1);
    expect_refused(g, false, 1, VRING_ERR_ADDR);
}

static void test_indirect_loop(void **state)
{
    struct fake_guest *g = *state;
    struct vring_desc *ind = fg_ptr(g, FG_IND);

    g->vq.indirect = true;
    fg_desc(ind, 0, FG_BUF, 10, VRING_DESC_F_NEXT, 1);
    fg_desc(ind, 1, FG_BUF, 10, VRING_DESC_F_NEXT, 2);
    fg_desc(ind, 2, FG_BUF, 10, VRING_DESC_F_NEXT, 0);
    fg_desc(g->desc, 1, FG_IND, 48, VRING_DESC_F_INDIRECT, 0);
    fg_avail(g, 1);
    expect_refused(g, false, 1, VRING_ERR_LOOP);
}

static void test_loop(void **state)
{
    struct fake_guest *g = *state;

    fg_desc(g->desc, 0, FG_BUF, 10, VRING_DESC_F_NEXT, 1);
    fg_desc(g->desc, 1, FG_BUF, 10, VRING_DESC_F_NEXT, 0);
    fg_avail(g, 0);
    expect_refused(g, false, 0, VRING_ERR_LOOP);
}

static void test_loop_zero_length(void **state)
{
    struct fake_guest *g = *state;

    /* zero-length buffers add no bufs, yet the loop must still be caught */
    fg_desc(g->desc, 0, FG_BUF, 0, VRING_DESC_F_NEXT, 0);
    fg_avail(g, 0);
    expect_refused(g, false, 0, VRING_ERR_LOOP);
}

static void test_chain_as_long_as_ring(void **state)
{
    struct fake_guest *g = *state;
    struct vring_chain c;

    for (uint16_t i = 0; i < QSIZE; i++)
        fg_desc(g->desc, i, FG_BUF + i * 16, 16,
                i + 1 < QSIZE ? VRING_DESC_F_NEXT : 0, (uint16_t)(i + 1));
    fg_avail(g, 0);
    assert_int_equal(vring_pop(&g->vq, false, &c), VRING_OK);
    assert_int_equal(c.nbufs, QSIZE);
    assert_int_equal(c.len, QSIZE * 16);
}

static void test_next_out_of_range(void **state)
{
    struct fake_guest *g = *state;

    fg_desc(g->desc, 0, FG_BUF, 10, VRING_DESC_F_NEXT, QSIZE);
    fg_avail(g, 0);
    expect_refused(g, false, 0, VRING_ERR_DESC_INDEX);
}

static void test_addr_outside(void **state)
{
    struct fake_guest *g = *state;

    fg_desc(g->desc, 0, FG_GPA - 0x1000, 10, 0, 0);
    fg_avail(g, 0);
    expect_refused(g, false, 0, VRING_ERR_ADDR);
}

static void test_addr_straddling(void **state)
{
    struct fake_guest *g = *state;

    fg_desc(g->desc, 0, FG_GPA + FG_SIZE - 8, 16, 0, 0);
    fg_avail(g, 0);
    expect_refused(g, false, 0, VRING_ERR_ADDR);
}

static void test_addr_wraps(void **state)
{
    struct fake_guest *g = *state;

    fg_desc(g->desc, 0, UINT64_MAX - 4, 16, 0, 0);
    fg_avail(g, 0);
    expect_refused(g, false, 0, VRING_ERR_ADDR);
}

static void test_len_overflow(void **state)
{
    struct fake_guest *g = *state;

    fg_desc(g->desc, 0, FG_BUF, 16, VRING_DESC_F_NEXT, 1);
    fg_desc(g->desc, 1, FG_BUF, UINT32_MAX, 0, 0);
    fg_avail(g, 0);
    expect_refused(g, false, 0, VRING_ERR_LEN);
}

static void test_too_many_bufs(void **state)
{
    struct fake_guest *g = *state;
    struct vring_desc *ind = fg_ptr(g, FG_IND);
    const uint16_t n = VRING_CHAIN_MAX + 1;

    g->vq.indirect = true;
    for (uint16_t i = 0; i < n; i++)
        fg_desc(ind, i, FG_BUF + i, 1, i + 1 < n ? VRING_DESC_F_NEXT : 0,
                (uint16_t)(i + 1));
    fg_desc(g->desc, 0, FG_IND, n * 16, VRING_DESC_F_INDIRECT, 0);
    fg_avail(g, 0);
    expect_refused(g, false, 0, VRING_ERR_TOO_MANY_BUFS);
}

static void test_avail_idx_jump(void **state)
{
    struct fake_guest *g = *state;
    struct vring_chain c;

    fg_desc(g->desc, 0, FG_BUF, 10, 0, 0);
    g->avail->idx = QSIZE + 1;
    assert_int_equal(vring_pop(&g->vq, false, &c), VRING_ERR_AVAIL_IDX);
    assert_true(g->vq.broken);
    assert_int_equal(g->vq.errors[VRING_ERR_AVAIL_IDX], 1);
    assert_int_equal(vring_pop(&g->vq, false, &c), VRING_ERR_NOT_READY);
    assert_int_equal(vring_avail_count(&g->vq), 0);
    vring_flush(&g->vq);
    assert_int_equal(g->used->idx, 0);
}

static void test_head_out_of_range(void **state)
{
    struct fake_guest *g = *state;
    struct vring_chain c;

    fg_avail(g, QSIZE);
    assert_int_equal(vring_pop(&g->vq, false, &c), VRING_ERR_HEAD);
    assert_true(g->vq.broken);
    vring_flush(&g->vq);
    assert_int_equal(g->used->idx, 0); /* nothing valid to hand back */
}

static void test_not_configured(void **state)
{
    struct vring vq;
    struct vring_chain c;

    vring_init(&vq);
    assert_int_equal(vq.kick_fd, -1);
    assert_int_equal(vq.call_fd, -1);
    assert_int_equal(vring_pop(&vq, false, &c), VRING_ERR_NOT_READY);
    assert_int_equal(vring_avail_count(&vq), 0);
    vring_push(&vq, 0, 0); /* harmless */
    vring_flush(&vq);
    vring_set_notify(&vq, true);
}

static void test_set_addr(void **state)
{
    struct fake_guest *g = *state;
    struct vring *vq = &g->vq;

    assert_int_equal(vring_set_addr(vq, fg_uva(FG_DESC) + 8, fg_uva(FG_AVAIL),
                                    fg_uva(FG_USED)),
                     VRING_ERR_ADDR);
    assert_null(vq->desc);
    assert_int_equal(vring_set_addr(vq, fg_uva(FG_DESC), fg_uva(FG_AVAIL) + 1,
                                    fg_uva(FG_USED)),
                     VRING_ERR_ADDR);
    assert_int_equal(vring_set_addr(vq, fg_uva(FG_DESC), fg_uva(FG_AVAIL),
                                    fg_uva(FG_USED) + 2),
                     VRING_ERR_ADDR);
    /* used ring running past the end of memory */
    assert_int_equal(vring_set_addr(vq, fg_uva(FG_DESC), fg_uva(FG_AVAIL),
                                    fg_uva(FG_GPA + FG_SIZE - 16)),
                     VRING_ERR_ADDR);
    /* a guest-physical address is not a frontend address */
    assert_int_equal(vring_set_addr(vq, FG_DESC, FG_AVAIL, FG_USED), VRING_ERR_ADDR);
    vq->size = 6;
    assert_int_equal(vring_set_addr(vq, fg_uva(FG_DESC), fg_uva(FG_AVAIL),
                                    fg_uva(FG_USED)),
                     VRING_ERR_NOT_READY);
    vq->size = QSIZE;
    assert_int_equal(vring_set_addr(vq, fg_uva(FG_DESC), fg_uva(FG_AVAIL),
                                    fg_uva(FG_USED)),
                     0);
    assert_ptr_equal(vq->used, fg_hva(g, FG_USED));

    /* found by fuzz_vhost_msg: a region mapped at an odd file offset makes
     * aligned frontend addresses misaligned host pointers */
    struct vhost_user_memory m = {.nregions = 1};
    struct vhost_mem odd;
    char err[128];
    m.regions[0].guest_phys_addr = FG_GPA;
    m.regions[0].memory_size = FG_SIZE - 4096;
    m.regions[0].userspace_addr = FG_UVA;
    m.regions[0].mmap_offset = 2;
    memset(&odd, 0, sizeof(odd));
    assert_int_equal(vhost_mem_map(&odd, &m, 8 + sizeof(m.regions[0]), &g->fd, 1, err,
                                   sizeof(err)),
                     0);
    vq->mem = &odd;
    assert_int_equal(vring_set_addr(vq, fg_uva(FG_DESC), fg_uva(FG_AVAIL),
                                    fg_uva(FG_USED)),
                     VRING_ERR_ADDR);
    assert_null(vq->used);
    vq->mem = &g->mem;
    vhost_mem_unmap(&odd);
    assert_int_equal(vring_set_addr(vq, fg_uva(FG_DESC), fg_uva(FG_AVAIL),
                                    fg_uva(FG_USED)),
                     0);
}

static void test_used_ring_contents(void **state)
{
    struct fake_guest *g = *state;
    struct vring_chain c;

    for (uint16_t i = 0; i < 3; i++) {
        fg_desc(g->desc, i, FG_BUF + i * 0x100, 0x100, 0, 0);
        fg_avail(g, i);
    }
    for (uint16_t i = 0; i < 3; i++)
        assert_int_equal(vring_pop(&g->vq, false, &c), VRING_OK);
    vring_push(&g->vq, 2, 0);
    vring_push(&g->vq, 0, 77);
    assert_int_equal(g->used->idx, 0); /* not yet published */
    vring_flush(&g->vq);
    assert_int_equal(g->used->idx, 2);
    assert_int_equal(g->used->ring[0].id, 2);
    assert_int_equal(g->used->ring[0].len, 0);
    assert_int_equal(g->used->ring[1].id, 0);
    assert_int_equal(g->used->ring[1].len, 77);
    vring_push(&g->vq, 1, 5);
    vring_flush(&g->vq);
    assert_int_equal(g->used->idx, 3);
    assert_int_equal(g->vq.pending_used, 0);
}

static void test_used_ring_wraps(void **state)
{
    struct fake_guest *g = *state;
    struct vring_chain c;

    fg_desc(g->desc, 0, FG_BUF, 10, 0, 0);
    for (unsigned i = 0; i < 3 * QSIZE + 3; i++) {
        fg_avail(g, 0);
        assert_int_equal(vring_pop(&g->vq, false, &c), VRING_OK);
        vring_push(&g->vq, 0, i);
        vring_flush(&g->vq);
    }
    assert_int_equal(g->used->idx, 3 * QSIZE + 3);
    assert_int_equal(g->used->ring[2].len, 3 * QSIZE + 2);
}

static void test_unpop(void **state)
{
    struct fake_guest *g = *state;
    struct vring_chain c;

    fg_desc(g->desc, 4, FG_BUF, 10, 0, 0);
    fg_desc(g->desc, 5, FG_BUF, 20, 0, 0);
    fg_avail(g, 4);
    fg_avail(g, 5);
    assert_int_equal(vring_pop(&g->vq, false, &c), VRING_OK);
    assert_int_equal(vring_pop(&g->vq, false, &c), VRING_OK);
    assert_int_equal(vring_pop(&g->vq, false, &c), VRING_EMPTY);
    vring_unpop(&g->vq, 2);
    assert_int_equal(vring_avail_count(&g->vq), 2);
    assert_int_equal(vring_pop(&g->vq, false, &c), VRING_OK);
    assert_int_equal(c.head, 4);
    assert_int_equal(vring_pop(&g->vq, false, &c), VRING_OK);
    assert_int_equal(c.head, 5);
    assert_int_equal(c.len, 20);
}

static uint64_t read_call(struct fake_guest *g)
{
    uint64_t v = 0;

    if (read(g->vq.call_fd, &v, sizeof(v)) != sizeof(v))
        return 0;
    return v;
}

static void push_one(struct fake_guest *g)
{
    struct vring_chain c;

    fg_desc(g->desc, 0, FG_BUF, 10, 0, 0);
    fg_avail(g, 0);
    assert_int_equal(vring_pop(&g->vq, false, &c), VRING_OK);
    vring_push(&g->vq, 0, 0);
    vring_flush(&g->vq);
}

static void test_notify_flags(void **state)
{
    struct fake_guest *g = *state;

    g->vq.call_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    assert_true(g->vq.call_fd >= 0);
    push_one(g);
    assert_int_equal(read_call(g), 1);
    g->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
    push_one(g);
    assert_int_equal(read_call(g), 0);
    g->avail->flags = 0;
    push_one(g);
    assert_int_equal(read_call(g), 1);
    /* a flush with nothing pushed notifies nobody */
    vring_flush(&g->vq);
    assert_int_equal(read_call(g), 0);
}

static void test_notify_event_idx(void **state)
{
    struct fake_guest *g = *state;
    uint16_t *used_event = &g->avail->ring[QSIZE];

    g->vq.event_idx = true;
    g->vq.call_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    /* NO_INTERRUPT means nothing under EVENT_IDX */
    g->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
    *used_event = 100;
    push_one(g); /* used 0 -> 1: first flush always notifies */
    assert_int_equal(read_call(g), 1);
    push_one(g); /* 1 -> 2, event 100 not crossed */
    assert_int_equal(read_call(g), 0);
    *used_event = 2;
    push_one(g); /* 2 -> 3 crosses event 2 */
    assert_int_equal(read_call(g), 1);
    *used_event = 2;
    push_one(g); /* 3 -> 4: event 2 already behind */
    assert_int_equal(read_call(g), 0);
    /* an event crossed in a flush that did not notify still counts: the
     * window runs from the last notification (3) */
    *used_event = 5;
    push_one(g); /* 4 -> 5 */
    assert_int_equal(read_call(g), 0);
    push_one(g); /* 5 -> 6 crosses 5 */
    assert_int_equal(read_call(g), 1);
}

static void test_set_notify(void **state)
{
    struct fake_guest *g = *state;
    uint16_t *avail_event = (uint16_t *)&g->used->ring[QSIZE];

    vring_set_notify(&g->vq, false);
    assert_int_equal(g->used->flags, VRING_USED_F_NO_NOTIFY);
    vring_set_notify(&g->vq, true);
    assert_int_equal(g->used->flags, 0);

    g->vq.event_idx = true;
    g->vq.last_avail_idx = 42;
    *avail_event = 7;
    vring_set_notify(&g->vq, false);
    assert_int_equal(*avail_event, 7);
    vring_set_notify(&g->vq, true);
    assert_int_equal(*avail_event, 42);
}

static void test_err_names(void **state)
{
    assert_string_equal(vring_err_name(VRING_ERR_LOOP), "descriptor loop");
    assert_string_equal(vring_err_name(VRING_ERR__COUNT), "unknown");
    for (int i = 0; i < VRING_ERR__COUNT; i++)
        assert_non_null(vring_err_name(i));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_empty_and_count),
        T(test_good_chain),
        T(test_writable_chain),
        T(test_wrong_direction),
        T(test_wrong_direction_rx),
        T(test_indirect_chain),
        T(test_indirect_without_feature),
        T(test_indirect_nested),
        T(test_indirect_with_next),
        T(test_indirect_size_zero),
        T(test_indirect_size_odd),
        T(test_indirect_size_huge),
        T(test_indirect_table_outside),
        T(test_indirect_loop),
        T(test_loop),
        T(test_loop_zero_length),
        T(test_chain_as_long_as_ring),
        T(test_next_out_of_range),
        T(test_addr_outside),
        T(test_addr_straddling),
        T(test_addr_wraps),
        T(test_len_overflow),
        T(test_too_many_bufs),
        T(test_avail_idx_jump),
        T(test_head_out_of_range),
        cmocka_unit_test(test_not_configured),
        T(test_set_addr),
        T(test_used_ring_contents),
        T(test_used_ring_wraps),
        T(test_unpop),
        T(test_notify_flags),
        T(test_notify_event_idx),
        T(test_set_notify),
        cmocka_unit_test(test_err_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
