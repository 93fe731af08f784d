/* The VMM's control socket (--api-socket PATH): JSON-RPC 2.0, one object
 * per line, framed and coded like vswitchd's (docs/protocol.md).
 *
 *   status  -> {"state":"running"|"paused","vcpus","memory_mib","uptime_s",
 *               "exits","nics":[{"id","mac","socket","mode","link"}]}
 *   pause   -> {}   every vCPU parked outside KVM_RUN; error invalid-state if paused
 *   resume  -> {}   error invalid-state if running
 *   stop    -> {}   the answer is sent, then the vCPUs stop and vmm exits 0
 *                   (there is no ACPI: the guest is not asked, it is stopped)
 *
 * Error codes: -32700 parse-error, -32600 invalid-request, -32601
 * method-not-found, -32602 invalid-params, -32603 internal-error, -32008
 * invalid-state. */
#ifndef VMM_API_H
#define VMM_API_H

#include <jansson.h>
#include <stddef.h>

struct event_base;

#define API_PARSE_ERROR -32700
#define API_INVALID_REQUEST -32600
#define API_METHOD_NOT_FOUND -32601
#define API_INVALID_PARAMS -32602
#define API_INTERNAL_ERROR -32603
#define API_INVALID_STATE -32008
#define API_MAX_LINE (1024 * 1024)
#define API_MAX_CONNS 16

/* What the API drives; main.c provides the real one, tests a fake. Each
 * returns 0, or API_INVALID_STATE etc. with msg filled. */
struct api_ops {
    json_t *(*status)(void *opaque);
    int (*pause)(void *opaque, char *msg, size_t msglen);
    int (*resume)(void *opaque, char *msg, size_t msglen);
    int (*stop)(void *opaque, char *msg, size_t msglen);
    void *opaque;
};

/* One request line to its response (a new reference), or NULL for a
 * notification. */
json_t *api_handle_line(const struct api_ops *ops, const char *line, size_t len);

struct api_server;
struct api_server *api_server_create(struct event_base *base, const char *path,
                                     const struct api_ops *ops, char *err, size_t errlen);
/* Sends what is still queued to clients, closes, unlinks the socket. */
void api_server_destroy(struct api_server *s);

#endif
