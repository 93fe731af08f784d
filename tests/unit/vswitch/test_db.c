/* The db file: round trip, atomic save, refusal of bad files (left as they
 * were, byte for byte). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include <cmocka.h>

#include "db.h"

static char dir[64], path[128], err[1024];

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/test_db.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/conf.json", dir);
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    chmod(dir, 0755);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

static void write_file(const char *p, const char *data, size_t len)
{
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static char *read_file(const char *p, size_t *len)
{
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    char *buf = malloc(1 << 20);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static void sample(struct conf *c)
{
    const char *o1[] = {"tag=10", "mac=52:54:00:00:00:01"};
    const char *o2[] = {"type=tap", "trunks=1-5,7"};
    conf_init(c);
    assert_int_equal(conf_add_bridge(c, "br0", err, sizeof err), 0);
    assert_int_equal(conf_add_port(c, "br0", "vm1", o1, 2, err, sizeof err), 0);
    assert_int_equal(conf_add_port(c, "br0", "tap1", o2, 2, err, sizeof err), 0);
}

static size_t count_entries(const char *d)
{
    size_t n = 0;
    DIR *dd = opendir(d);
    for (struct dirent *e; (e = readdir(dd));)
        n += e->d_name[0] != '.' || (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."));
    closedir(dd);
    return n;
}

static void test_missing_is_empty(void **state)
{
    struct conf c;
    assert_int_equal(db_load(path, &c, err, sizeof err), 0);
    assert_int_equal(c.n_bridges, 0);
    assert_int_equal(c.n_ports, 0);
    assert_int_equal(access(path, F_OK), -1); /* loading does not create it */
}

static void test_roundtrip(void **state)
{
    struct conf c, d;
    sample(&c);
    assert_int_equal(db_save(path, &c, err, sizeof err), 0);
    assert_int_equal(db_load(path, &d, err, sizeof err), 0);
    assert_int_equal(d.n_ports, 2);
    assert_memory_equal(d.ports, c.ports, 2 * sizeof *c.ports);
    assert_memory_equal(d.bridges, c.bridges, sizeof *c.bridges);
    assert_int_equal(count_entries(dir), 1); /* no temporary file left */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    /* save again over it */
    assert_int_equal(conf_del_port(&c, NULL, "vm1", err, sizeof err), 0);
    assert_int_equal(db_save(path, &c, err, sizeof err), 0);
    conf_free(&d);
    assert_int_equal(db_load(path, &d, err, sizeof err), 0);
    assert_int_equal(d.n_ports, 1);
    conf_free(&c);
    conf_free(&d);
}

static void test_creates_directory(void **state)
{
    struct conf c, d;
    char p[200];
    snprintf(p, sizeof p, "%s/a/b/conf.json", dir);
    sample(&c);
    assert_int_equal(db_save(p, &c, err, sizeof err), 0);
    assert_int_equal(db_load(p, &d, err, sizeof err), 0);
    assert_int_equal(d.n_ports, 2);
    conf_free(&c);
    conf_free(&d);
}

static void test_failed_save_keeps_old(void **state)
{
    struct conf c, d;
    size_t len1, len2;
    if (geteuid() == 0) {
        /* root ignores directory permissions: fail the save another way, by
         * making the target a directory that rename() cannot replace */
        char p[200];
        snprintf(p, sizeof p, "%s/isdir", dir);
        assert_int_equal(mkdir(p, 0755), 0);
        sample(&c);
        assert_int_equal(db_save(p, &c, err, sizeof err), -1);
        assert_non_null(strstr(err, "cannot"));
        struct stat st;
        assert_int_equal(stat(p, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(count_entries(dir), 1); /* temp file removed */
        conf_free(&c);
        return;
    }
    sample(&c);
    assert_int_equal(db_save(path, &c, err, sizeof err), 0);
    char *before = read_file(path, &len1);
    assert_int_equal(chmod(dir, 0555), 0);
    assert_int_equal(conf_del_bridge(&c, "br0", err, sizeof err), 0);
    assert_int_equal(db_save(path, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, dir));
    char *after = read_file(path, &len2);
    assert_int_equal(len1, len2);
    assert_memory_equal(before, after, len1);
    assert_int_equal(db_load(path, &d, err, sizeof err), 0);
    assert_int_equal(d.n_bridges, 1);
    free(before);
    free(after);
    conf_free(&c);
    conf_free(&d);
}

/* A write that fails half-way (a full disk; here a file size limit): the old
 * file stays, byte for byte, and no temporary file is left. */
static void test_write_failure_keeps_old(void **state)
{
    struct conf c;
    size_t len1, len2;
    struct rlimit old, small;

    sample(&c);
    assert_int_equal(db_save(path, &c, err, sizeof err), 0);
    char *before = read_file(path, &len1);
    assert_int_equal(conf_del_port(&c, NULL, "vm1", err, sizeof err), 0);
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    small = (struct rlimit){16, old.rlim_max}; /* the first bytes go, then EFBIG */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    int r = db_save(path, &c, err, sizeof err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_int_equal(r, -1);
    if (!strstr(err, path) || !strstr(err, "File too large"))
        fail_msg("unexpected error: %s", err);
    char *after = read_file(path, &len2);
    assert_int_equal(len1, len2);
    assert_memory_equal(before, after, len1);
    assert_int_equal(count_entries(dir), 1);
    free(before);
    free(after);
    conf_free(&c);
}

/* Staged and then abandoned (the change was not applied): nothing changes. */
static void test_stage_abort_commit(void **state)
{
    struct conf c, d;
    struct db_staged st;
    size_t len1, len2;

    sample(&c);
    assert_int_equal(db_save(path, &c, err, sizeof err), 0);
    char *before = read_file(path, &len1);
    assert_int_equal(conf_del_bridge(&c, "br0", err, sizeof err), 0);
    assert_int_equal(db_stage(path, &c, &st, err, sizeof err), 0);
    assert_int_equal(count_entries(dir), 2); /* the staged file beside it */
    db_abort(&st);
    assert_int_equal(count_entries(dir), 1);
    char *after = read_file(path, &len2);
    assert_int_equal(len1, len2);
    assert_memory_equal(before, after, len1);
    assert_int_equal(db_stage(path, &c, &st, err, sizeof err), 0);
    assert_int_equal(db_commit(&st, err, sizeof err), 0);
    assert_int_equal(count_entries(dir), 1);
    assert_int_equal(db_load(path, &d, err, sizeof err), 0);
    assert_int_equal(d.n_bridges, 0);
    free(before);
    free(after);
    conf_free(&c);
    conf_free(&d);
}

static void expect_refused(const char *data, size_t len, const char *says)
{
    struct conf c;
    size_t n;
    write_file(path, data, len);
    c.n_ports = 777;
    if (db_load(path, &c, err, sizeof err) != -1 || !strstr(err, says) || !strstr(err, path))
        fail_msg("\"%.*s\": got \"%s\", expected \"...%s...\"", (int)len, data, err, says);
    assert_int_equal(c.n_ports, 777);
    char *back = read_file(path, &n);
    assert_int_equal(n, len);
    assert_memory_equal(back, data, len);
    free(back);
}

static void test_bad_files_refused(void **state)
{
    struct conf c;
    sample(&c);
    assert_int_equal(db_save(path, &c, err, sizeof err), 0);
    size_t len;
    char *good = read_file(path, &len);
    conf_free(&c);

    expect_refused("", 0, "empty");
    expect_refused("garbage", 7, "not valid JSON");
    expect_refused("\0\1\2\3", 4, "not valid JSON");
    for (size_t cut = 1; cut < len - 2; cut += 7) /* truncated anywhere */
        expect_refused(good, cut, "not valid JSON");
    expect_refused("{\"version\":1,\"bridges\":[{\"name\":\"b\"}],\"ports\":[{\"name\":\"p\","
                   "\"bridge\":\"nob\"}]}",
                   strlen("{\"version\":1,\"bridges\":[{\"name\":\"b\"}],\"ports\":[{\"name\":"
                          "\"p\",\"bridge\":\"nob\"}]}"),
                   "bridge nob does not exist");
    expect_refused("{\"version\":9}", 13, "schema version 9");
    expect_refused("[1,2]", 5, "not a valid vswitch configuration");
    expect_refused("{\"version\":1,\"version\":1}", 25, "not valid JSON");
    free(good);
}

static void test_unreadable(void **state)
{
    struct conf c;
    char p[200];
    snprintf(p, sizeof p, "%s/sub", dir);
    assert_int_equal(mkdir(p, 0755), 0);
    assert_int_equal(db_load(p, &c, err, sizeof err), -1); /* a directory */
    assert_non_null(strstr(err, p));
    if (geteuid() != 0) {
        write_file(path, "{}", 2);
        chmod(path, 0);
        assert_int_equal(db_load(path, &c, err, sizeof err), -1);
        assert_non_null(strstr(err, "Permission denied"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_missing_is_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_creates_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_save_keeps_old, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_failure_keeps_old, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stage_abort_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_files_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
