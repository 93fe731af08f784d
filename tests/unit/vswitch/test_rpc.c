/* JSON-RPC framing: parse errors, invalid requests, ids, long lines,
 * responses, notifications. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rpc.h"

static int calls;

/* "echo" returns its params; "fail" fails with not-found; others: unknown. */
static json_t *dispatch(void *arg, const char *method, json_t *params, int *code, char *err,
                        size_t errlen)
{
    calls++;
    if (!strcmp(method, "echo"))
        return params ? json_incref(params) : json_null();
    if (!strcmp(method, "fail")) {
        *code = RPC_NOT_FOUND;
        snprintf(err, errlen, "bridge br9 does not exist");
        return NULL;
    }
    *code = RPC_METHOD_NOT_FOUND;
    snprintf(err, errlen, "unknown method \"%s\"", method);
    return NULL;
}

static json_t *handle(const char *line)
{
    return rpc_handle_line(line, strlen(line), dispatch, NULL);
}

static int error_code(json_t *resp)
{
    json_t *e = json_object_get(resp, "error");
    assert_non_null(e);
    assert_non_null(json_string_value(json_object_get(e, "message")));
    assert_string_equal(json_string_value(json_object_get(resp, "jsonrpc")), "2.0");
    return (int)json_integer_value(json_object_get(e, "code"));
}

static void expect_error(const char *line, int code, bool id_null)
{
    json_t *r = handle(line);
    assert_non_null(r);
    if (error_code(r) != code)
        fail_msg("%s: code %d, expected %d", line, error_code(r), code);
    if (id_null)
        assert_true(json_is_null(json_object_get(r, "id")));
    json_decref(r);
}

static void test_parse_errors(void **state)
{
    (void)state;
    expect_error("{", RPC_PARSE_ERROR, true);
    expect_error("not json", RPC_PARSE_ERROR, true);
    expect_error("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":1} trailing",
                 RPC_PARSE_ERROR, true);
    expect_error("{\"a\":1,\"a\":2}", RPC_PARSE_ERROR, true); /* duplicate keys */
    expect_error("", RPC_PARSE_ERROR, true);
}

static void test_invalid_requests(void **state)
{
    (void)state;
    calls = 0;
    expect_error("[]", RPC_INVALID_REQUEST, true);
    expect_error("[{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":1}]", RPC_INVALID_REQUEST,
                 true);
    expect_error("1", RPC_INVALID_REQUEST, true);
    expect_error("\"x\"", RPC_INVALID_REQUEST, true);
    expect_error("{\"method\":\"echo\",\"id\":1}", RPC_INVALID_REQUEST, false);
    expect_error("{\"jsonrpc\":\"1.0\",\"method\":\"echo\",\"id\":1}", RPC_INVALID_REQUEST,
                 false);
    expect_error("{\"jsonrpc\":2.0,\"method\":\"echo\",\"id\":1}", RPC_INVALID_REQUEST, false);
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1}", RPC_INVALID_REQUEST, false);
    expect_error("{\"jsonrpc\":\"2.0\",\"method\":5,\"id\":1}", RPC_INVALID_REQUEST, false);
    expect_error("{\"jsonrpc\":\"2.0\",\"method\":\"\",\"id\":1}", RPC_INVALID_REQUEST, false);
    expect_error("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":3,\"id\":1}",
                 RPC_INVALID_REQUEST, false);
    expect_error("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":\"x\",\"id\":1}",
                 RPC_INVALID_REQUEST, false);
    expect_error("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":{}}", RPC_INVALID_REQUEST,
                 true);
    expect_error("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":[1]}", RPC_INVALID_REQUEST,
                 true);
    expect_error("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":1.5}", RPC_INVALID_REQUEST,
                 true);
    expect_error("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":1,\"x\":0}",
                 RPC_INVALID_REQUEST, false);
    assert_int_equal(calls, 0); /* nothing invalid reached a method */
}

static void test_ids(void **state)
{
    (void)state;
    const char *ids[] = {"7", "\"abc\"", "null", "-3", "0"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char line[200];
        snprintf(line, sizeof line,
                 "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":{\"a\":1},\"id\":%s}",
                 ids[i]);
        json_t *r = handle(line);
        json_t *want = json_loads(ids[i], JSON_DECODE_ANY, NULL);
        assert_non_null(r);
        assert_true(json_equal(json_object_get(r, "id"), want));
        assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "result"), "a")),
                         1);
        assert_null(json_object_get(r, "error"));
        json_decref(want);
        json_decref(r);
    }
    /* the id comes back in an error too */
    json_t *r = handle("{\"jsonrpc\":\"2.0\",\"method\":\"fail\",\"id\":\"q1\"}");
    assert_int_equal(error_code(r), RPC_NOT_FOUND);
    assert_string_equal(json_string_value(json_object_get(r, "id")), "q1");
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "error"),
                                                          "message")),
                        "bridge br9 does not exist");
    assert_null(json_object_get(r, "result"));
    json_decref(r);
    expect_error("{\"jsonrpc\":\"2.0\",\"method\":\"nope\",\"id\":2}", RPC_METHOD_NOT_FOUND,
                 false);
    /* params may be absent or an array */
    r = handle("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":3}");
    assert_true(json_is_null(json_object_get(r, "result")));
    json_decref(r);
    r = handle("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[1,2],\"id\":3}");
    assert_int_equal(json_array_size(json_object_get(r, "result")), 2);
    json_decref(r);
}

static void test_notifications(void **state)
{
    (void)state;
    calls = 0;
    assert_null(handle("{\"jsonrpc\":\"2.0\",\"method\":\"echo\"}"));
    assert_null(handle("{\"jsonrpc\":\"2.0\",\"method\":\"fail\"}"));
    assert_int_equal(calls, 2);
}

static void test_long_line(void **state)
{
    (void)state;
    size_t n = RPC_LINE_MAX + 100;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, ' ', n);
    memcpy(big, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":1}", 40);
    big[n] = '\0';
    calls = 0;
    json_t *r = rpc_handle_line(big, n, dispatch, NULL);
    assert_int_equal(error_code(r), RPC_INVALID_REQUEST);
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(r, "error"),
                                                             "message")),
                           "limited"));
    assert_int_equal(calls, 0);
    json_decref(r);
    /* just under the limit is fine */
    r = rpc_handle_line(big, RPC_LINE_MAX, dispatch, NULL);
    assert_null(json_object_get(r, "error"));
    json_decref(r);
    free(big);
}

static void test_responses(void **state)
{
    (void)state;
    json_t *id = json_integer(5);
    json_t *r = rpc_result(id, json_pack("{s:s}", "k", "v"));
    size_t len;
    char *line = rpc_dump_line(r, &len);
    assert_string_equal(line, "{\"jsonrpc\":\"2.0\",\"result\":{\"k\":\"v\"},\"id\":5}\n");
    assert_int_equal(len, strlen(line));
    free(line);
    json_decref(r);
    r = rpc_error(NULL, RPC_IO_ERROR, "disk full");
    line = rpc_dump_line(r, NULL);
    assert_string_equal(line, "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32006,\"message\":"
                              "\"disk full\",\"data\":{\"name\":\"io-error\"}},\"id\":null}\n");
    free(line);
    json_decref(r);
    json_decref(id);
    assert_string_equal(rpc_code_name(RPC_PARSE_ERROR), "parse-error");
    assert_string_equal(rpc_code_name(RPC_ALREADY_EXISTS), "already-exists");
    assert_string_equal(rpc_code_name(1), "unknown");
    /* the line never contains a newline before its end */
    r = rpc_result(NULL, json_string("a\nb"));
    line = rpc_dump_line(r, &len);
    assert_ptr_equal(strchr(line, '\n'), line + len - 1);
    free(line);
    json_decref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_invalid_requests),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_notifications),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_responses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
