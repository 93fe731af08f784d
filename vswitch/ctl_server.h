/* The control socket: a unix stream socket speaking JSON-RPC 2.0, one object
 * per line (rpc.h). Runs on the control thread's event_base; every client is
 * served without blocking the others. */
#ifndef VSWITCH_CTL_SERVER_H
#define VSWITCH_CTL_SERVER_H

#include <stddef.h>

#include <event2/event.h>

#include "rpc.h"

#define CTL_SOCKET_DEFAULT "/run/vswitch/vswitchd.sock"
#define CTL_CLIENTS_MAX    64

struct ctl_server;

/* Creates PATH (and its parent directory), mode 0660 with the owner and group
 * of priv_set_owner(), and listens. An existing socket is replaced only if
 * nothing answers on it. Requests go to fn(arg,...), which may be set later
 * (before the loop runs) with ctl_server_set_handler. NULL and a sentence in
 * err on failure. */
struct ctl_server *ctl_server_create(struct event_base *base, const char *path,
                                     rpc_method_fn fn, void *arg, char *err,
                                     size_t errlen);

void ctl_server_set_handler(struct ctl_server *s, rpc_method_fn fn, void *arg);

/* Closes every client and removes the socket file (if it is still ours). */
void ctl_server_destroy(struct ctl_server *s);

#endif
