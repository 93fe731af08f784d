/* JSON-RPC 2.0 framing for the control socket: one JSON object per line, in
 * both directions. Parses requests, builds responses, names the error codes.
 * Codes and their meaning are part of the user's contract: docs/protocol.md. */
#ifndef VSWITCH_RPC_H
#define VSWITCH_RPC_H

#include <stddef.h>

#include <jansson.h>

/* A request line longer than this (without its newline) is refused. */
#define RPC_LINE_MAX (1024 * 1024)

enum rpc_code {
    RPC_PARSE_ERROR = -32700,      /* the line is not JSON */
    RPC_INVALID_REQUEST = -32600,  /* JSON, but not a JSON-RPC 2.0 request */
    RPC_METHOD_NOT_FOUND = -32601,
    RPC_INVALID_PARAMS = -32602,   /* a param missing, unknown or of the wrong type */
    RPC_INTERNAL_ERROR = -32603,   /* out of memory, a bug */
    /* application codes */
    RPC_NOT_FOUND = -32001,        /* a named bridge or port does not exist */
    RPC_ALREADY_EXISTS = -32002,   /* name, socket path or ifname already taken */
    RPC_INVALID_VALUE = -32003,    /* a bad name, option key or value */
    RPC_NOT_SUPPORTED = -32004,    /* valid, but not in this build */
    RPC_APPLY_FAILED = -32005,     /* the switch could not make it so (nothing changed) */
    RPC_IO_ERROR = -32006,         /* the db file could not be written (nothing changed) */
    RPC_BUSY = -32007,             /* too many clients; try again */
};

/* "parse-error", "not-found", ...; "unknown" for other codes. */
const char *rpc_code_name(int code);

struct rpc_request {
    json_t *root;       /* owns what follows */
    const char *method;
    json_t *params;     /* object or array; NULL when absent */
    json_t *id;         /* string, integer or null; NULL for a notification */
};

/* Parses one line (no newline needed; len bytes). 0 on success; otherwise -1
 * and *error_response is the response to send (id null unless the id could be
 * read). */
int rpc_parse_request(const char *line, size_t len, struct rpc_request *req,
                      json_t **error_response);
void rpc_request_free(struct rpc_request *req);

/* Responses. id is borrowed (copied); NULL is written as null. result is
 * stolen. */
json_t *rpc_result(json_t *id, json_t *result);
json_t *rpc_error(json_t *id, int code, const char *message);

/* The response as one line ending in "\n"; free() it. NULL on no memory. */
char *rpc_dump_line(const json_t *msg, size_t *len);

/* Runs a method: returns the result (new reference), or NULL with *code and a
 * sentence in err. */
typedef json_t *(*rpc_method_fn)(void *arg, const char *method, json_t *params,
                                 int *code, char *err, size_t errlen);

/* Parses one request line, calls fn, and returns the response to send, or NULL
 * when nothing is to be sent (a notification). */
json_t *rpc_handle_line(const char *line, size_t len, rpc_method_fn fn, void *arg);

#endif
