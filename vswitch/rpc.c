/* JSON-RPC 2.0 (https://www.jsonrpc.org/specification) over newline-framed
 * JSON. Batches are refused: the CLI never sends them and a refusal is clearer
 * than half a feature. */
#include "rpc.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *rpc_code_name(int code)
{
    switch (code) {
    case RPC_PARSE_ERROR: return "parse-error";
    case RPC_INVALID_REQUEST: return "invalid-request";
    case RPC_METHOD_NOT_FOUND: return "method-not-found";
    case RPC_INVALID_PARAMS: return "invalid-params";
    case RPC_INTERNAL_ERROR: return "internal-error";
    case RPC_NOT_FOUND: return "not-found";
    case RPC_ALREADY_EXISTS: return "already-exists";
    case RPC_INVALID_VALUE: return "invalid-value";
    case RPC_NOT_SUPPORTED: return "not-supported";
    case RPC_APPLY_FAILED: return "apply-failed";
    case RPC_IO_ERROR: return "io-error";
    case RPC_BUSY: return "busy";
    default: return "unknown";
    }
}

json_t *rpc_result(json_t *id, json_t *result)
{
    json_t *r = json_object();
    json_object_set_new(r, "jsonrpc", json_string("2.0"));
    json_object_set_new(r, "result", result ? result : json_null());
    json_object_set_new(r, "id", id ? json_deep_copy(id) : json_null());
    return r;
}

json_t *rpc_error(json_t *id, int code, const char *message)
{
    json_t *r = json_object();
    json_object_set_new(r, "jsonrpc", json_string("2.0"));
    json_object_set_new(r, "error",
                        json_pack("{s:i, s:s, s:{s:s}}", "code", code, "message", message,
                                  "data", "name", rpc_code_name(code)));
    json_object_set_new(r, "id", id ? json_deep_copy(id) : json_null());
    return r;
}

static bool id_valid(const json_t *id)
{
    return json_is_string(id) || json_is_integer(id) || json_is_null(id);
}

int rpc_parse_request(const char *line, size_t len, struct rpc_request *req,
                      json_t **error_response)
{
    json_error_t jerr;
    char msg[256];
    json_t *root, *id;

    memset(req, 0, sizeof *req);
    *error_response = NULL;
    if (len > RPC_LINE_MAX) {
        snprintf(msg, sizeof msg,
                 "the request is %zu bytes long; requests are limited to %d bytes", len,
                 RPC_LINE_MAX);
        *error_response = rpc_error(NULL, RPC_INVALID_REQUEST, msg);
        return -1;
    }
    root = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root) {
        snprintf(msg, sizeof msg, "the request is not valid JSON: %s at column %d",
                 jerr.text, jerr.column);
        *error_response = rpc_error(NULL, RPC_PARSE_ERROR, msg);
        return -1;
    }
    if (json_is_array(root)) {
        *error_response = rpc_error(NULL, RPC_INVALID_REQUEST,
                                    "batch requests are not supported: send one request "
                                    "object per line");
        goto fail;
    }
    if (!json_is_object(root)) {
        *error_response = rpc_error(NULL, RPC_INVALID_REQUEST,
                                    "the request must be a JSON object");
        goto fail;
    }
    id = json_object_get(root, "id");
    if (id && !id_valid(id)) {
        *error_response = rpc_error(NULL, RPC_INVALID_REQUEST,
                                    "\"id\" must be a string, an integer or null");
        goto fail;
    }
    json_t *version = json_object_get(root, "jsonrpc");
    if (!json_is_string(version) || strcmp(json_string_value(version), "2.0")) {
        *error_response = rpc_error(id, RPC_INVALID_REQUEST,
                                    "the request must have \"jsonrpc\": \"2.0\"");
        goto fail;
    }
    json_t *method = json_object_get(root, "method");
    if (!json_is_string(method) || !json_string_length(method)) {
        *error_response = rpc_error(id, RPC_INVALID_REQUEST,
                                    "the request must have a \"method\" string");
        goto fail;
    }
    json_t *params = json_object_get(root, "params");
    if (params && !json_is_object(params) && !json_is_array(params)) {
        *error_response = rpc_error(id, RPC_INVALID_REQUEST,
                                    "\"params\" must be an object or an array");
        goto fail;
    }
    const char *k;
    json_t *v;
    json_object_foreach (root, k, v) {
        if (strcmp(k, "jsonrpc") && strcmp(k, "method") && strcmp(k, "params") &&
            strcmp(k, "id")) {
            snprintf(msg, sizeof msg, "the request has an unknown member \"%.40s\"", k);
            *error_response = rpc_error(id, RPC_INVALID_REQUEST, msg);
            goto fail;
        }
    }
    req->root = root;
    req->method = json_string_value(method);
    req->params = params;
    req->id = id;
    return 0;
fail:
    json_decref(root);
    return -1;
}

void rpc_request_free(struct rpc_request *req)
{
    json_decref(req->root);
    memset(req, 0, sizeof *req);
}

char *rpc_dump_line(const json_t *msg, size_t *len)
{
    char *s = json_dumps(msg, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *line = realloc(s, n + 2);
    if (!line) {
        free(s);
        return NULL;
    }
    line[n] = '\n';
    line[n + 1] = '\0';
    if (len)
        *len = n + 1;
    return line;
}

json_t *rpc_handle_line(const char *line, size_t len, rpc_method_fn fn, void *arg)
{
    struct rpc_request req;
    json_t *resp;
    char err[512] = "";
    int code = RPC_INTERNAL_ERROR;

    if (rpc_parse_request(line, len, &req, &resp))
        return resp;
    json_t *result = fn(arg, req.method, req.params, &code, err, sizeof err);
    if (!req.id) {
        /* A notification: the spec forbids any reply, even an error. */
        json_decref(result);
        rpc_request_free(&req);
        return NULL;
    }
    if (result)
        resp = rpc_result(req.id, result);
    else
        resp = rpc_error(req.id, code, err[0] ? err : "internal error");
    rpc_request_free(&req);
    return resp;
}
