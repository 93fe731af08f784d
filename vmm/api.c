/* JSON-RPC 2.0 control socket of the VMM. */
#include "api.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "unix_sock.h"

/* ---------------------------------------------------------------- requests */

static const char *api_error_name(int code)
{
    switch (code) {
    case API_PARSE_ERROR: return "parse-error";
    case API_INVALID_REQUEST: return "invalid-request";
    case API_METHOD_NOT_FOUND: return "method-not-found";
    case API_INVALID_PARAMS: return "invalid-params";
    case API_INVALID_STATE: return "invalid-state";
    default: return "internal-error";
    }
}

static json_t *api_error(json_t *id, int code, const char *msg)
{
    return json_pack("{s:s, s:{s:i, s:s, s:{s:s}}, s:O}", "jsonrpc", "2.0", "error", "code",
                     code, "message", msg, "data", "name", api_error_name(code), "id",
                     id ? id : json_null());
}

static json_t *api_result(json_t *id, json_t *result)
{
    return json_pack("{s:s, s:o, s:O}", "jsonrpc", "2.0", "result", result, "id", id);
}

json_t *api_handle_line(const struct api_ops *ops, const char *line, size_t len)
{
    json_error_t jerr;
    json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!req)
        return api_error(NULL, API_PARSE_ERROR, "the request is not JSON");
    json_t *resp = NULL;
    json_t *id = json_object_get(req, "id");
    if (!json_is_object(req)) {
        resp = api_error(NULL, API_INVALID_REQUEST, "a request is one JSON object");
        goto out;
    }
    const char *key;
    json_t *val;
    json_object_foreach(req, key, val) {
        if (strcmp(key, "jsonrpc") && strcmp(key, "method") && strcmp(key, "params") &&
            strcmp(key, "id")) {
            resp = api_error(NULL, API_INVALID_REQUEST, "unknown member in the request");
            goto out;
        }
    }
    if (id && !json_is_string(id) && !json_is_integer(id) && !json_is_null(id)) {
        resp = api_error(NULL, API_INVALID_REQUEST, "id must be a string, an integer or null");
        goto out;
    }
    json_t *ver = json_object_get(req, "jsonrpc");
    json_t *method = json_object_get(req, "method");
    if (!json_is_string(ver) || strcmp(json_string_value(ver), "2.0") ||
        !json_is_string(method)) {
        resp = api_error(id, API_INVALID_REQUEST,
                         "a request needs \"jsonrpc\": \"2.0\" and a string \"method\"");
        goto out;
    }
    json_t *params = json_object_get(req, "params");
    if (params && !json_is_null(params) &&
        !(json_is_object(params) && json_object_size(params) == 0)) {
        resp = api_error(id, API_INVALID_PARAMS, "this method takes no params");
        goto out;
    }
    const char *m = json_string_value(method);
    char msg[256] = "";
    int rc;
    if (!strcmp(m, "status")) {
        json_t *st = ops->status(ops->opaque);
        resp = st ? api_result(id, st)
                  : api_error(id, API_INTERNAL_ERROR, "cannot build the status");
        goto out;
    } else if (!strcmp(m, "pause")) {
        rc = ops->pause(ops->opaque, msg, sizeof(msg));
    } else if (!strcmp(m, "resume")) {
        rc = ops->resume(ops->opaque, msg, sizeof(msg));
    } else if (!strcmp(m, "stop")) {
        rc = ops->stop(ops->opaque, msg, sizeof(msg));
    } else {
        snprintf(msg, sizeof(msg), "no method \"%.64s\" (status, pause, resume, stop)", m);
        resp = api_error(id, API_METHOD_NOT_FOUND, msg);
        goto out;
    }
    resp = rc ? api_error(id, rc, msg[0] ? msg : "failed") : api_result(id, json_object());
out:
    /* a notification: carried out, nothing sent back, not even an error */
    if (json_is_object(req) && !json_object_get(req, "id")) {
        json_decref(resp);
        resp = NULL;
    }
    json_decref(req);
    return resp;
}

/* ---------------------------------------------------------------- server */

struct api_conn {
    struct api_server *srv;
    struct bufferevent *bev;
    struct api_conn *next;
    bool closing;
};

struct api_server {
    struct event_base *base;
    struct evconnlistener *listener;
    struct api_ops ops;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    struct api_conn *conns;
    unsigned nconns;
};

static void conn_free(struct api_conn *c)
{
    struct api_server *s = c->srv;
    for (struct api_conn **pp = &s->conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    s->nconns--;
    bufferevent_free(c->bev);
    free(c);
}

static void conn_send(struct api_conn *c, json_t *resp)
{
    char *text = json_dumps(resp, JSON_COMPACT | JSON_REAL_PRECISION(9));
    if (text) {
        bufferevent_write(c->bev, text, strlen(text));
        bufferevent_write(c->bev, "\n", 1);
        free(text);
    }
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    struct api_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        size_t n;
        char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);
        if (!line) {
            if (evbuffer_get_length(in) > API_MAX_LINE) {
                json_t *e = api_error(NULL, API_INVALID_REQUEST, "the line is longer than 1 MiB");
                conn_send(c, e);
                json_decref(e);
                evbuffer_drain(in, evbuffer_get_length(in));
                c->closing = true;
                bufferevent_disable(bev, EV_READ);
            }
            return;
        }
        bool blank = true;
        for (size_t i = 0; i < n; i++)
            if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
                blank = false;
        json_t *resp = blank ? NULL : api_handle_line(&c->srv->ops, line, n);
        free(line);
        if (resp) {
            conn_send(c, resp);
            json_decref(resp);
        }
    }
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    struct api_conn *c = arg;
    if (c->closing)
        conn_free(c);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct api_conn *c = arg;
    if (what & BEV_EVENT_EOF) {
        /* the client shut its side: answer what was asked, then close */
        conn_read_cb(bev, c);
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
            conn_free(c);
            return;
        }
        c->closing = true;
        bufferevent_disable(bev, EV_READ);
        return;
    }
    if (what & BEV_EVENT_ERROR)
        conn_free(c);
}

static void api_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                          int socklen, void *arg)
{
    struct api_server *s = arg;
    if (s->nconns >= API_MAX_CONNS) {
        static const char busy[] = "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32603,"
                                   "\"message\":\"too many API connections\",\"data\":"
                                   "{\"name\":\"internal-error\"}},\"id\":null}\n";
        if (write(fd, busy, sizeof(busy) - 1) < 0) {
            /* the client is gone already */
        }
        close(fd);
        return;
    }
    struct api_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    c->srv = s;
    c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        close(fd);
        free(c);
        return;
    }
    c->next = s->conns;
    s->conns = c;
    s->nconns++;
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* A socket file nobody listens on is stale (a previous vmm was killed). */
static bool socket_in_use(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool used = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
    close(fd);
    return used;
}

struct api_server *api_server_create(struct event_base *base, const char *path,
                                     const struct api_ops *ops, char *err, size_t errlen)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "--api-socket %s: the path is too long", path);
        return NULL;
    }
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "--api-socket %s: exists and is not a socket", path);
            return NULL;
        }
        if (socket_in_use(path)) {
            snprintf(err, errlen, "--api-socket %s: another process listens there", path);
            return NULL;
        }
        unlink(path);
    }
    struct api_server *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->base = base;
    s->ops = *ops;
    snprintf(s->path, sizeof(s->path), "%s", path);
    /* 0600, or 0660 with the group of vmm --group */
    mode_t mode = unix_sock_group() != (gid_t)-1 ? 0660 : 0600;
    enum unix_sock_step step;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int r = fd < 0 ? -errno : unix_sock_bind(fd, path, mode, &step);
    if (r < 0) {
        snprintf(err, errlen, "--api-socket %s: %s%s", path,
                 fd >= 0 && step == UNIX_SOCK_OWNER ? "cannot give it the --group: " : "",
                 strerror(-r));
        goto fail;
    }
    s->listener = evconnlistener_new(base, api_accept_cb, s,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16, fd);
    if (!s->listener) {
        snprintf(err, errlen, "--api-socket %s: %s", path, strerror(errno));
        unlink(path);
        goto fail;
    }
    return s;
fail:
    if (fd >= 0)
        close(fd);
    free(s);
    return NULL;
}

void api_server_destroy(struct api_server *s)
{
    if (!s)
        return;
    /* Answers still queued (the reply to "stop") are written out first. */
    while (s->conns) {
        struct api_conn *c = s->conns;
        evutil_socket_t fd = bufferevent_getfd(c->bev);
        struct evbuffer *out = bufferevent_get_output(c->bev);
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
            fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
        while (evbuffer_get_length(out) > 0)
            if (evbuffer_write(out, fd) <= 0)
                break;
        conn_free(c);
    }
    evconnlistener_free(s->listener);
    unlink(s->path);
    free(s);
}
