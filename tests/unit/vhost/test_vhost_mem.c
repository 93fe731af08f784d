/* vhost_mem.c: mapping SET_MEM_TABLE regions and translating addresses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>

#include "fake_guest.h"

#define PAGE 4096u
#define PAYLOAD(n) ((uint32_t)(8 + (n) * sizeof(struct vhost_user_mem_region)))

static int make_memfd(size_t size)
{
    int fd = memfd_create("mem-test", MFD_CLOEXEC);

    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    return fd;
}

static void region(struct vhost_user_memory *m, unsigned i, uint64_t gpa, uint64_t size,
                   uint64_t uva, uint64_t off)
{
    m->regions[i].guest_phys_addr = gpa;
    m->regions[i].memory_size = size;
    m->regions[i].userspace_addr = uva;
    m->regions[i].mmap_offset = off;
}

/* Two adjacent regions from two memfds: gpa [0, 64K) and [64K, 128K). */
static void map_two(struct vhost_mem *mem, int fds[2])
{
    struct vhost_user_memory m = {.nregions = 2};
    char err[128] = "";

    fds[0] = make_memfd(0x10000);
    fds[1] = make_memfd(0x10000);
    region(&m, 0, 0, 0x10000, 0x40000000, 0);
    region(&m, 1, 0x10000, 0x10000, 0x50000000, 0);
    assert_int_equal(vhost_mem_map(mem, &m, PAYLOAD(2), fds, 2, err, sizeof(err)), 0);
    assert_int_equal(mem->nregions, 2);
}

static void test_translate_inside(void **state)
{
    struct vhost_mem mem;
    int fds[2];
    uint8_t *p;

    map_two(&mem, fds);
    assert_int_equal(pwrite(fds[1], "abc", 3, 0x123), 3);
    p = vhost_mem_gpa_to_hva(&mem, 0x10123, 3);
    assert_non_null(p);
    assert_memory_equal(p, "abc", 3);
    assert_ptr_equal(vhost_mem_uva_to_hva(&mem, 0x50000123, 3), p);
    /* whole region, first and last byte */
    assert_ptr_equal(vhost_mem_gpa_to_hva(&mem, 0, 0x10000), mem.regions[0].host_addr);
    assert_ptr_equal(vhost_mem_gpa_to_hva(&mem, 0xffff, 1),
                     mem.regions[0].host_addr + 0xffff);
    assert_ptr_equal(vhost_mem_gpa_to_hva(&mem, 0x1ffff, 1),
                     mem.regions[1].host_addr + 0xffff);
    /* the fds stay open: the caller closes them */
    assert_true(fcntl(fds[0], F_GETFD) >= 0);
    vhost_mem_unmap(&mem);
    close(fds[0]);
    close(fds[1]);
}

static void test_translate_refused(void **state)
{
    struct vhost_mem mem;
    int fds[2];

    map_two(&mem, fds);
    /* straddles the two regions, though both are mapped */
    assert_null(vhost_mem_gpa_to_hva(&mem, 0xfff0, 0x20));
    /* past the end, before the start in uva, length 0 */
    assert_null(vhost_mem_gpa_to_hva(&mem, 0x20000, 1));
    assert_null(vhost_mem_gpa_to_hva(&mem, 0x1fff0, 0x11));
    assert_null(vhost_mem_uva_to_hva(&mem, 0x3fffffff, 2));
    assert_null(vhost_mem_gpa_to_hva(&mem, 0x100, 0));
    assert_null(vhost_mem_uva_to_hva(&mem, 0x40000000, 0));
    /* lengths that overflow addr + len */
    assert_null(vhost_mem_gpa_to_hva(&mem, 0x100, UINT64_MAX));
    assert_null(vhost_mem_gpa_to_hva(&mem, 0x100, UINT64_MAX - 0xff));
    assert_null(vhost_mem_gpa_to_hva(&mem, UINT64_MAX, 2));
    assert_null(vhost_mem_uva_to_hva(&mem, 0x40000100, UINT64_MAX - 0xff));
    /* a gpa is not a uva */
    assert_null(vhost_mem_uva_to_hva(&mem, 0x100, 1));
    vhost_mem_unmap(&mem);
    assert_int_equal(mem.nregions, 0);
    assert_null(vhost_mem_gpa_to_hva(&mem, 0x100, 1));
    close(fds[0]);
    close(fds[1]);
}

static void test_unaligned_offset(void **state)
{
    struct vhost_user_memory m = {.nregions = 1};
    struct vhost_mem mem;
    char err[128] = "";
    int fd = make_memfd(4 * PAGE);
    uint8_t *p;

    assert_int_equal(pwrite(fd, "XY", 2, PAGE + 100), 2);
    assert_int_equal(pwrite(fd, "Z", 1, PAGE + 100 + 2 * PAGE - 1), 1);
    region(&m, 0, 0x80000, 2 * PAGE, 0x9000000, PAGE + 100);
    assert_int_equal(vhost_mem_map(&mem, &m, PAYLOAD(1), &fd, 1, err, sizeof(err)), 0);
    p = vhost_mem_gpa_to_hva(&mem, 0x80000, 2);
    assert_non_null(p);
    assert_memory_equal(p, "XY", 2);
    p = vhost_mem_gpa_to_hva(&mem, 0x80000 + 2 * PAGE - 1, 1);
    assert_non_null(p);
    assert_int_equal(*p, 'Z');
    assert_null(vhost_mem_gpa_to_hva(&mem, 0x80000 + 2 * PAGE, 1));
    vhost_mem_unmap(&mem);
    close(fd);
}

static void test_unmap_unmaps(void **state)
{
    struct vhost_mem mem;
    int fds[2];
    void *a;
    size_t len;

    map_two(&mem, fds);
    a = mem.regions[0].mmap_addr;
    len = (size_t)mem.regions[0].mmap_size;
    assert_int_equal(msync(a, len, MS_ASYNC), 0);
    vhost_mem_unmap(&mem);
    assert_int_equal(msync(a, len, MS_ASYNC), -1);
    assert_int_equal(errno, ENOMEM);
    close(fds[0]);
    close(fds[1]);
}

/* Expects vhost_mem_map to refuse, leave nothing mapped and explain. */
static void expect_bad(const struct vhost_user_memory *m, uint32_t payload,
                       const int *fds, int nfds)
{
    struct vhost_mem mem;
    char err[200] = "";

    memset(&mem, 0xab, sizeof(mem));
    assert_true(vhost_mem_map(&mem, m, payload, fds, nfds, err, sizeof(err)) < 0);
    assert_int_equal(mem.nregions, 0);
    assert_true(strlen(err) > 0);
}

static void test_bad_tables(void **state)
{
    struct vhost_user_memory m;
    int fds[VHOST_USER_MAX_REGIONS + 1];
    int before;

    for (int i = 0; i <= VHOST_USER_MAX_REGIONS; i++)
        fds[i] = make_memfd(0x10000);
    before = count_open_fds();

    memset(&m, 0, sizeof(m));
    expect_bad(&m, PAYLOAD(0), fds, 0); /* no regions */
    m.nregions = VHOST_USER_MAX_REGIONS + 1;
    expect_bad(&m, PAYLOAD(8), fds, 9); /* too many */

    memset(&m, 0, sizeof(m));
    m.nregions = 1;
    region(&m, 0, 0, 0x10000, 0x1000000, 0);
    expect_bad(&m, PAYLOAD(1), fds, 0);     /* fd missing */
    expect_bad(&m, PAYLOAD(1), fds, 2);     /* fd too many */
    expect_bad(&m, PAYLOAD(2), fds, 1);     /* payload size for 2 */
    expect_bad(&m, 4, fds, 1);              /* shorter than the header */
    int bad = -1;
    expect_bad(&m, PAYLOAD(1), &bad, 1);    /* not an fd */
    region(&m, 0, 0, 0, 0x1000000, 0);
    expect_bad(&m, PAYLOAD(1), fds, 1);     /* size 0 */
    region(&m, 0, UINT64_MAX - 0xfff, 0x2000, 0x1000000, 0);
    expect_bad(&m, PAYLOAD(1), fds, 1);     /* gpa wraps */
    region(&m, 0, 0, 0x2000, UINT64_MAX - 0xfff, 0);
    expect_bad(&m, PAYLOAD(1), fds, 1);     /* uva wraps */
    region(&m, 0, 0, 0x2000, 0x1000000, UINT64_MAX - 0xfff);
    expect_bad(&m, PAYLOAD(1), fds, 1);     /* offset + size wraps */
    region(&m, 0, 0, 0x20000, 0x1000000, 0);
    expect_bad(&m, PAYLOAD(1), fds, 1);     /* file shorter than the region */

    m.nregions = 2;
    region(&m, 0, 0, 0x10000, 0x1000000, 0);
    region(&m, 1, 0xf000, 0x1000, 0x2000000, 0);
    expect_bad(&m, PAYLOAD(2), fds, 2);     /* guest ranges overlap */
    region(&m, 1, 0x10000, 0x10000, 0x100f000, 0);
    expect_bad(&m, PAYLOAD(2), fds, 2);     /* frontend ranges overlap */

    /* a failure after the first region was mapped unmaps it */
    region(&m, 1, 0x10000, 0x10000, 0x2000000, 0);
    int mixed[2] = {fds[0], -1};
    expect_bad(&m, PAYLOAD(2), mixed, 2);

    /* nothing leaked, the caller's fds untouched */
    assert_int_equal(count_open_fds(), before);
    for (int i = 0; i <= VHOST_USER_MAX_REGIONS; i++) {
        assert_true(fcntl(fds[i], F_GETFD) >= 0);
        close(fds[i]);
    }
}

static void test_eight_regions(void **state)
{
    struct vhost_user_memory m = {.nregions = VHOST_USER_MAX_REGIONS};
    struct vhost_mem mem;
    int fds[VHOST_USER_MAX_REGIONS];
    char err[128] = "";

    for (int i = 0; i < VHOST_USER_MAX_REGIONS; i++) {
        fds[i] = make_memfd(PAGE);
        region(&m, i, (uint64_t)i * 0x100000, PAGE, 0x10000000 + (uint64_t)i * PAGE, 0);
    }
    assert_int_equal(vhost_mem_map(&mem, &m, PAYLOAD(8), fds, 8, err, sizeof(err)), 0);
    assert_int_equal(mem.nregions, 8);
    assert_ptr_equal(vhost_mem_gpa_to_hva(&mem, 7 * 0x100000 + 5, 1),
                     mem.regions[7].host_addr + 5);
    assert_null(vhost_mem_gpa_to_hva(&mem, 7 * 0x100000 + PAGE, 1));
    vhost_mem_unmap(&mem);
    for (int i = 0; i < VHOST_USER_MAX_REGIONS; i++)
        close(fds[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_translate_inside),
        cmocka_unit_test(test_translate_refused),
        cmocka_unit_test(test_unaligned_offset),
        cmocka_unit_test(test_unmap_unmaps),
        cmocka_unit_test(test_bad_tables),
        cmocka_unit_test(test_eight_regions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
