/* api.c: JSON-RPC request handling against a fake VM, and the server over
 * a real unix socket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "api.h"

struct fake {
    bool paused;
    int stops;
};

static json_t *f_status(void *o)
{
    struct fake *f = o;
    return json_pack("{s:s}", "state", f->paused ? "paused" : "running");
}

static int f_pause(void *o, char *msg, size_t n)
{
    struct fake *f = o;
    if (f->paused) {
        snprintf(msg, n, "already paused");
        return API_INVALID_STATE;
    }
    f->paused = true;
    return 0;
}

static int f_resume(void *o, char *msg, size_t n)
{
    struct fake *f = o;
    if (!f->paused) {
        snprintf(msg, n, "not paused");
        return API_INVALID_STATE;
    }
    f->paused = false;
    return 0;
}

static int f_stop(void *o, char *msg, size_t n)
{
    ((struct fake *)o)->stops++;
    return 0;
}

static struct fake fake;
static const struct api_ops ops = {f_status, f_pause, f_resume, f_stop, &fake};

static json_t *call(const char *line)
{
    return api_handle_line(&ops, line, strlen(line));
}

static int err_code(json_t *r)
{
    json_t *e = json_object_get(r, "error");
    return e ? (int)json_integer_value(json_object_get(e, "code")) : 0;
}

static const char *err_name(json_t *r)
{
    return json_string_value(json_object_get(json_object_get(json_object_get(r, "error"),
                                                             "data"), "name"));
}

static void test_methods(void **state)
{
    fake = (struct fake){0};
    json_t *r = call("{\"jsonrpc\":\"2.0\",\"method\":\"status\",\"id\":7}");
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "result"),
                                                           "state")), "running");
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 7);
    assert_string_equal(json_string_value(json_object_get(r, "jsonrpc")), "2.0");
    json_decref(r);

    r = call("{\"jsonrpc\":\"2.0\",\"method\":\"pause\",\"id\":\"a\"}");
    assert_true(json_is_object(json_object_get(r, "result")));
    assert_string_equal(json_string_value(json_object_get(r, "id")), "a");
    json_decref(r);
    assert_true(fake.paused);

    r = call("{\"jsonrpc\":\"2.0\",\"method\":\"pause\",\"id\":1}");
    assert_int_equal(err_code(r), API_INVALID_STATE);
    assert_string_equal(err_name(r), "invalid-state");
    json_decref(r);

    r = call("{\"jsonrpc\":\"2.0\",\"method\":\"resume\",\"params\":{},\"id\":2}");
    assert_int_equal(err_code(r), 0);
    json_decref(r);
    r = call("{\"jsonrpc\":\"2.0\",\"method\":\"resume\",\"id\":3}");
    assert_int_equal(err_code(r), API_INVALID_STATE);
    json_decref(r);

    r = call("{\"jsonrpc\":\"2.0\",\"method\":\"stop\",\"id\":null}");
    assert_int_equal(err_code(r), 0);
    assert_true(json_is_null(json_object_get(r, "id")));
    json_decref(r);
    assert_int_equal(fake.stops, 1);
}

static void test_errors(void **state)
{
    static const struct {
        const char *line;
        int code;
    } cases[] = {
        {"{not json", API_PARSE_ERROR},
        {"[1,2]", API_INVALID_REQUEST},
        {"{\"method\":\"status\",\"id\":1}", API_INVALID_REQUEST},
        {"{\"jsonrpc\":\"1.0\",\"method\":\"status\",\"id\":1}", API_INVALID_REQUEST},
        {"{\"jsonrpc\":\"2.0\",\"method\":5,\"id\":1}", API_INVALID_REQUEST},
        {"{\"jsonrpc\":\"2.0\",\"method\":\"status\",\"id\":1,\"x\":1}", API_INVALID_REQUEST},
        {"{\"jsonrpc\":\"2.0\",\"method\":\"status\",\"id\":[1]}", API_INVALID_REQUEST},
        {"{\"jsonrpc\":\"2.0\",\"method\":\"reboot\",\"id\":1}", API_METHOD_NOT_FOUND},
        {"{\"jsonrpc\":\"2.0\",\"method\":\"pause\",\"params\":{\"now\":true},\"id\":1}",
         API_INVALID_PARAMS},
        {"{\"jsonrpc\":\"2.0\",\"method\":\"pause\",\"params\":[],\"id\":1}", API_INVALID_PARAMS},
    };
    fake = (struct fake){0};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *r = call(cases[i].line);
        assert_non_null(r);
        assert_int_equal(err_code(r), cases[i].code);
        assert_non_null(json_string_value(json_object_get(json_object_get(r, "error"),
                                                          "message")));
        json_decref(r);
    }
    assert_false(fake.paused); /* a refused pause changed nothing */
}

static void test_notification(void **state)
{
    fake = (struct fake){0};
    assert_null(call("{\"jsonrpc\":\"2.0\",\"method\":\"pause\"}"));
    assert_true(fake.paused);
    assert_null(call("{\"jsonrpc\":\"2.0\",\"method\":\"nosuch\"}"));
}

/* The server: two requests on one line each, the client half-closes, both
 * answers arrive in order. */
static void test_server(void **state)
{
    fake = (struct fake){0};
    struct event_base *base = event_base_new();
    char path[64], err[256];
    snprintf(path, sizeof(path), "/tmp/vmm-test-api-%d.sock", (int)getpid());
    struct api_server *s = api_server_create(base, path, &ops, err, sizeof(err));
    assert_non_null(s);
    /* a second server on the same live socket is refused */
    assert_null(api_server_create(base, path, &ops, err, sizeof(err)));
    assert_non_null(strstr(err, "another process"));

    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    const char *req = "{\"jsonrpc\":\"2.0\",\"method\":\"pause\",\"id\":1}\n\n"
                      "{\"jsonrpc\":\"2.0\",\"method\":\"status\",\"id\":2}\n";
    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    shutdown(fd, SHUT_WR);
    char buf[1024] = "";
    size_t got = 0;
    for (int i = 0; i < 200; i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, MSG_DONTWAIT);
        if (n > 0)
            got += (size_t)n;
        if (n == 0)
            break;
        usleep(5000);
    }
    buf[got] = 0;
    assert_non_null(strstr(buf, "{\"jsonrpc\":\"2.0\",\"result\":{},\"id\":1}\n"));
    assert_non_null(strstr(buf, "\"state\":\"paused\""));
    assert_true(strstr(buf, "\"id\":1") < strstr(buf, "\"id\":2"));
    close(fd);
    api_server_destroy(s);
    assert_int_equal(access(path, F_OK), -1); /* unlinked */
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_notification),
        cmocka_unit_test(test_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
