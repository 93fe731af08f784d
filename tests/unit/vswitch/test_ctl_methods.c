/* The control methods end to end against the switch API: params, error
 * codes, nothing changed on failure, the db file kept in step. Uses
 * vhost-user server ports in a temporary run dir (no root, no taps). */
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

#include <cmocka.h>

#include "ctl_methods.h"
#include "db.h"
#include "log.h"
#include "rpc.h"

struct fixture {
    char dir[64];
    char db[128];
    struct event_base *base;
    struct vswitch *sw;
    struct ctl_methods *m;
};

static char err[1024];
static int code;

static int setup_db(void **state, const char *db_rel)
{
    struct fixture *f = calloc(1, sizeof *f);
    struct conf c;
    snprintf(f->dir, sizeof f->dir, "/tmp/test_ctl.XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->db, sizeof f->db, "%s/%s", f->dir, db_rel);
    f->base = event_base_new();
    struct switch_options o = {.run_dir = f->dir, .pmd_threads = 1};
    f->sw = switch_create(f->base, &o);
    if (!f->sw)
        return -1;
    conf_init(&c);
    f->m = ctl_methods_create(f->sw, &c, f->db);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_db(state, "conf.json");
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    ctl_methods_destroy(f->m);
    switch_destroy(f->sw);
    event_base_free(f->base);
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    int r = system(cmd);
    free(f);
    return r;
}

/* Calls method with params given as JSON text (NULL: none). */
static json_t *call(struct fixture *f, const char *method, const char *params)
{
    json_t *p = params ? json_loads(params, 0, NULL) : NULL;
    if (params && !p)
        fail_msg("bad test params %s", params);
    err[0] = '\0';
    code = 0;
    json_t *r = ctl_methods_call(f->m, method, p, &code, err, sizeof err);
    json_decref(p);
    return r;
}

static void ok(struct fixture *f, const char *method, const char *params)
{
    json_t *r = call(f, method, params);
    if (!r)
        fail_msg("%s %s failed: %d %s", method, params ? params : "", code, err);
    json_decref(r);
}

static char *file_text(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return strdup("");
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

/* The call must fail with `want` and change neither the conf nor the db. */
static void refused(struct fixture *f, const char *method, const char *params, int want,
                    const char *says)
{
    json_t *before = conf_to_json(ctl_methods_conf(f->m));
    char *db_before = file_text(f->db);
    json_t *r = call(f, method, params);
    if (r || code != want || !strstr(err, says))
        fail_msg("%s %s: got %s %d \"%s\", expected %d \"...%s...\"", method,
                 params ? params : "", r ? "a result" : "error", code, err, want, says);
    json_t *after = conf_to_json(ctl_methods_conf(f->m));
    assert_true(json_equal(before, after));
    char *db_after = file_text(f->db);
    assert_string_equal(db_before, db_after);
    json_decref(before);
    json_decref(after);
    free(db_before);
    free(db_after);
}

static void test_bridges(void **state)
{
    struct fixture *f = *state;
    json_t *r = call(f, "list-br", NULL);
    assert_int_equal(json_array_size(r), 0);
    json_decref(r);
    ok(f, "add-br", "{\"bridge\":\"br1\"}");
    ok(f, "add-br", "{\"bridge\":\"br0\"}");
    r = call(f, "list-br", "{}");
    assert_int_equal(json_array_size(r), 2);
    assert_string_equal(json_string_value(json_array_get(r, 0)), "br0"); /* sorted */
    json_decref(r);
    refused(f, "add-br", "{\"bridge\":\"br0\"}", RPC_ALREADY_EXISTS, "already exists");
    refused(f, "add-br", "{\"bridge\":\"b r\"}", RPC_INVALID_VALUE, "invalid");
    refused(f, "add-br", "{}", RPC_INVALID_PARAMS, "needs param \"bridge\"");
    refused(f, "add-br", "{\"bridge\":5}", RPC_INVALID_PARAMS, "needs param \"bridge\"");
    refused(f, "add-br", "{\"bridge\":\"x\",\"color\":1}", RPC_INVALID_PARAMS,
            "does not take param \"color\"");
    refused(f, "del-br", "{\"bridge\":\"nope\"}", RPC_NOT_FOUND, "does not exist");
    ok(f, "set-br", "{\"bridge\":\"br0\",\"options\":{\"ageing\":\"60\"}}");
    ok(f, "set-br", "{\"bridge\":\"br1\",\"options\":{\"ageing\":0}}");
    refused(f, "set-br", "{\"bridge\":\"br0\",\"options\":{\"ageing\":\"x\"}}",
            RPC_INVALID_VALUE, "ageing=x");
    refused(f, "set-br", "{\"bridge\":\"br0\",\"options\":{\"ageing\":[1]}}",
            RPC_INVALID_PARAMS, "string or an integer");
    refused(f, "set-br", "{\"bridge\":\"br0\"}", RPC_INVALID_PARAMS, "options");
    assert_int_equal(conf_find_bridge(ctl_methods_conf(f->m), "br0")->ageing, 60);
    ok(f, "del-br", "{\"bridge\":\"br1\"}");
    assert_null(conf_find_bridge(ctl_methods_conf(f->m), "br1"));
}

static void test_ports(void **state)
{
    struct fixture *f = *state;
    ok(f, "add-br", "{\"bridge\":\"br0\"}");
    ok(f, "add-port", "{\"bridge\":\"br0\",\"port\":\"vm2\"}");
    ok(f, "add-port", "{\"bridge\":\"br0\",\"port\":\"vm1\",\"options\":{\"type\":"
                      "\"vhost-user\",\"mode\":\"server\",\"tag\":10,\"queues\":\"2\"}}");
    json_t *r = call(f, "list-ports", "{\"bridge\":\"br0\"}");
    assert_int_equal(json_array_size(r), 2);
    assert_string_equal(json_string_value(json_array_get(r, 0)), "vm1");
    json_decref(r);
    refused(f, "list-ports", "{\"bridge\":\"nope\"}", RPC_NOT_FOUND, "bridge nope");
    refused(f, "add-port", "{\"bridge\":\"br0\",\"port\":\"vm1\"}", RPC_ALREADY_EXISTS,
            "port vm1 already exists");
    refused(f, "add-port", "{\"bridge\":\"nope\",\"port\":\"x\"}", RPC_NOT_FOUND,
            "bridge nope does not exist");
    refused(f, "add-port", "{\"bridge\":\"br0\",\"port\":\"x\",\"options\":{\"tag\":4095}}",
            RPC_INVALID_VALUE, "1-4094");
    refused(f, "add-port", "{\"bridge\":\"br0\",\"port\":\"x\",\"options\":{\"type\":\"dpdk\"}}",
            RPC_NOT_SUPPORTED, "not supported by this build");
    refused(f, "add-port", "{\"bridge\":\"br0\"}", RPC_INVALID_PARAMS, "\"port\"");
    refused(f, "add-port", "{\"bridge\":\"br0\",\"port\":\"x\",\"options\":[]}",
            RPC_INVALID_PARAMS, "options");
    ok(f, "set-port", "{\"port\":\"vm1\",\"options\":{\"tag\":20,\"mtu\":9000}}");
    const struct conf_port *p = conf_find_port(ctl_methods_conf(f->m), "vm1");
    assert_int_equal(p->vlan.tag, 20);
    assert_int_equal(p->mtu, 9000);
    assert_int_equal(p->queues, 2);
    refused(f, "set-port", "{\"port\":\"vm1\",\"options\":{\"trunks\":\"1,2\"}}",
            RPC_INVALID_VALUE, "access port vm1");
    refused(f, "set-port", "{\"port\":\"nope\",\"options\":{\"tag\":1}}", RPC_NOT_FOUND,
            "port nope");
    refused(f, "del-port", "{\"bridge\":\"brX\",\"port\":\"vm1\"}", RPC_NOT_FOUND, "brX");
    refused(f, "del-port", "{\"port\":\"nope\"}", RPC_NOT_FOUND, "port nope");
    ok(f, "del-port", "{\"bridge\":\"br0\",\"port\":\"vm1\"}");
    ok(f, "del-port", "{\"port\":\"vm2\"}");
    assert_int_equal(ctl_methods_conf(f->m)->n_ports, 0);
}

static void test_show(void **state)
{
    struct fixture *f = *state;
    ok(f, "add-br", "{\"bridge\":\"br0\"}");
    ok(f, "add-br", "{\"bridge\":\"br1\"}");
    ok(f, "add-port", "{\"bridge\":\"br0\",\"port\":\"vm1\",\"options\":{\"trunks\":"
                      "\"10,20-22\"}}");
    json_t *r = call(f, "show", NULL);
    assert_non_null(r);
    json_t *bridges = json_object_get(r, "bridges");
    assert_int_equal(json_array_size(bridges), 2);
    json_t *b0 = json_array_get(bridges, 0);
    assert_string_equal(json_string_value(json_object_get(b0, "name")), "br0");
    assert_int_equal(json_integer_value(json_object_get(b0, "ageing")), 300);
    json_t *port = json_array_get(json_object_get(b0, "ports"), 0);
    assert_string_equal(json_string_value(json_object_get(port, "name")), "vm1");
    assert_string_equal(json_string_value(json_object_get(port, "type")), "vhost-user");
    assert_string_equal(json_string_value(json_object_get(port, "trunks")), "10,20-22");
    json_t *st = json_object_get(port, "status");
    assert_true(!st || json_is_object(st)); /* whatever the switch reports */
    assert_int_equal(json_array_size(json_object_get(json_array_get(bridges, 1), "ports")), 0);
    json_decref(r);
    refused(f, "show", "[]", RPC_INVALID_PARAMS, "must be an object");
    refused(f, "show", "{\"x\":1}", RPC_INVALID_PARAMS, "does not take");
    refused(f, "frobnicate", NULL, RPC_METHOD_NOT_FOUND, "unknown method");
}

static void test_fdb_and_stats(void **state)
{
    struct fixture *f = *state;
    ok(f, "add-br", "{\"bridge\":\"br0\"}");
    ok(f, "add-port", "{\"bridge\":\"br0\",\"port\":\"vm1\"}");
    json_t *r = call(f, "fdb-show", "{\"bridge\":\"br0\"}");
    assert_true(json_is_array(r));
    assert_int_equal(json_array_size(r), 0); /* nothing learned: no traffic */
    json_decref(r);
    r = call(f, "fdb-show", "{\"bridge\":\"br0\",\"vlan\":10}");
    assert_true(json_is_array(r));
    json_decref(r);
    refused(f, "fdb-show", "{\"bridge\":\"br0\",\"vlan\":4095}", RPC_INVALID_PARAMS, "0-4094");
    refused(f, "fdb-show", "{\"bridge\":\"br0\",\"vlan\":\"1\"}", RPC_INVALID_PARAMS, "vlan");
    refused(f, "fdb-show", "{\"bridge\":\"nope\"}", RPC_NOT_FOUND, "bridge nope");
    ok(f, "fdb-flush", "{\"bridge\":\"br0\"}");
    refused(f, "fdb-flush", "{\"bridge\":\"nope\"}", RPC_NOT_FOUND, "bridge nope");
    r = call(f, "port-stats", NULL);
    assert_true(json_is_object(r));
    json_t *s = json_object_get(r, "vm1");
    if (s) /* the stub switch reports nothing */
        assert_int_equal(json_integer_value(json_object_get(s, "rx_packets")), 0);
    json_decref(r);
    r = call(f, "port-stats", "{\"port\":\"vm1\"}");
    assert_true(json_is_object(r));
    json_decref(r);
    refused(f, "port-stats", "{\"port\":\"nope\"}", RPC_NOT_FOUND, "port nope");
}

static void test_db_kept_in_step(void **state)
{
    struct fixture *f = *state;
    struct conf c;
    ok(f, "add-br", "{\"bridge\":\"br0\"}");
    ok(f, "add-port", "{\"bridge\":\"br0\",\"port\":\"vm1\",\"options\":{\"tag\":7}}");
    assert_int_equal(db_load(f->db, &c, err, sizeof err), 0);
    json_t *a = conf_to_json(&c), *b = conf_to_json(ctl_methods_conf(f->m));
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);
    conf_free(&c);
    /* read-only methods do not write */
    struct stat st1, st2;
    assert_int_equal(stat(f->db, &st1), 0);
    json_decref(call(f, "show", NULL));
    json_decref(call(f, "list-br", NULL));
    assert_int_equal(stat(f->db, &st2), 0);
    assert_int_equal(st1.st_ino, st2.st_ino);
}

/* The db cannot be written (its directory is a file): the change is refused
 * and the running switch and the conf stay as they were. */
static int setup_bad_db(void **state)
{
    int r = setup_db(state, "file/conf.json");
    struct fixture *f = *state;
    char p[128];
    snprintf(p, sizeof p, "%s/file", f->dir);
    int fd = open(p, O_CREAT | O_WRONLY, 0644);
    close(fd);
    return r;
}

static void test_save_failure(void **state)
{
    struct fixture *f = *state;
    refused(f, "add-br", "{\"bridge\":\"br0\"}", RPC_IO_ERROR, "nothing was changed");
    assert_int_equal(ctl_methods_conf(f->m)->n_bridges, 0);
    json_t *r = call(f, "list-br", NULL);
    assert_int_equal(json_array_size(r), 0);
    json_decref(r);
}

/* The db cannot grow (a full disk, here a file size limit): the change is
 * refused before it runs. A del-port must not close the port and reopen it
 * (its guest would lose the link): the listening socket stays the same one. */
static void test_write_failure_changes_nothing(void **state)
{
    struct fixture *f = *state;
    char sock[160];
    struct stat st1, st2;
    struct rlimit old, zero = {0, RLIM_INFINITY};

    ok(f, "add-br", "{\"bridge\":\"br0\"}");
    ok(f, "add-port", "{\"bridge\":\"br0\",\"port\":\"vm1\"}");
    snprintf(sock, sizeof sock, "%s/vm1.sock", f->dir);
    assert_int_equal(stat(sock, &st1), 0);
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    zero.rlim_max = old.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &zero), 0);
    refused(f, "del-port", "{\"port\":\"vm1\"}", RPC_IO_ERROR, "File too large");
    refused(f, "add-br", "{\"bridge\":\"br1\"}", RPC_IO_ERROR, "nothing was changed");
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_int_equal(stat(sock, &st2), 0);
    assert_int_equal(st1.st_ino, st2.st_ino);
    ok(f, "del-port", "{\"port\":\"vm1\"}");
    assert_int_equal(stat(sock, &st2), -1);
}

/* A socket path that cannot be created: with the real switch the apply fails
 * and nothing changes; the stub switch accepts anything. */
static void test_apply_failure(void **state)
{
    struct fixture *f = *state;
    char params[300], p[128];
    ok(f, "add-br", "{\"bridge\":\"br0\"}");
    snprintf(p, sizeof p, "%s/plainfile", f->dir);
    close(open(p, O_CREAT | O_WRONLY, 0644));
    snprintf(params, sizeof params,
             "{\"bridge\":\"br0\",\"port\":\"vm1\",\"options\":{\"socket\":\"%s/sock\"}}", p);
    json_t *before = conf_to_json(ctl_methods_conf(f->m));
    json_t *r = call(f, "add-port", params);
    if (!r) {
        assert_int_equal(code, RPC_APPLY_FAILED);
        assert_true(err[0] != '\0');
        json_t *after = conf_to_json(ctl_methods_conf(f->m));
        assert_true(json_equal(before, after));
        json_decref(after);
    }
    json_decref(r);
    json_decref(before);
}

/* Whole request lines through rpc_handle_line, as the server does it. */
static void test_lines(void **state)
{
    struct fixture *f = *state;
    const char *line = "{\"jsonrpc\":\"2.0\",\"method\":\"add-br\",\"params\":{\"bridge\":"
                       "\"br0\"},\"id\":1}";
    json_t *r = rpc_handle_line(line, strlen(line), ctl_methods_call, f->m);
    assert_true(json_is_object(json_object_get(r, "result")));
    json_decref(r);
    line = "{\"jsonrpc\":\"2.0\",\"method\":\"add-br\",\"params\":{\"bridge\":\"br0\"},\"id\":2}";
    r = rpc_handle_line(line, strlen(line), ctl_methods_call, f->m);
    json_t *e = json_object_get(r, "error");
    assert_int_equal(json_integer_value(json_object_get(e, "code")), RPC_ALREADY_EXISTS);
    assert_string_equal(json_string_value(json_object_get(e, "message")),
                        "bridge br0 already exists");
    json_decref(r);
}

int main(void)
{
    log_set_level(LOG_LVL_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bridges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ports, setup, teardown),
        cmocka_unit_test_setup_teardown(test_show, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fdb_and_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_db_kept_in_step, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_failure, setup_bad_db, teardown),
        cmocka_unit_test_setup_teardown(test_write_failure_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lines, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
