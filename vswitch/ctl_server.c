/* Each client is a bufferevent. Lines are handled as they complete; a client
 * that does not read its responses stops being read from (its output is
 * bounded) instead of holding memory or the loop; the others go on. */
#include "ctl_server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "log.h"
#include "privilege.h"

#define CTL_OUTPUT_MAX (4 * 1024 * 1024)

struct ctl_client {
    struct ctl_server *srv;
    struct bufferevent *bev;
    struct ctl_client *next, **pprev;
    bool closing;   /* close once the output is flushed */
    bool throttled; /* reading paused until the output drains */
};

struct ctl_server {
    struct event_base *base;
    struct evconnlistener *listener;
    char *path;
    dev_t dev;
    ino_t ino;
    rpc_method_fn fn;
    void *arg;
    struct ctl_client *clients;
    unsigned n_clients;
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static void client_free(struct ctl_client *cl)
{
    *cl->pprev = cl->next;
    if (cl->next)
        cl->next->pprev = cl->pprev;
    cl->srv->n_clients--;
    bufferevent_free(cl->bev);
    free(cl);
}

static void client_send(struct ctl_client *cl, json_t *resp)
{
    size_t len;
    char *line = rpc_dump_line(resp, &len);
    json_decref(resp);
    if (!line) {
        cl->closing = true;
        return;
    }
    evbuffer_add(bufferevent_get_output(cl->bev), line, len);
    free(line);
}

static void client_handle(struct ctl_client *cl, const char *line, size_t len)
{
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
        i++;
    if (i == len)
        return; /* blank lines are allowed between requests */
    json_t *resp = rpc_handle_line(line, len, cl->srv->fn, cl->srv->arg);
    if (resp)
        client_send(cl, resp);
}

/* Handles the complete lines in the input; returns false if cl was freed. */
static bool client_process(struct ctl_client *cl)
{
    struct evbuffer *in = bufferevent_get_input(cl->bev);
    struct evbuffer *out = bufferevent_get_output(cl->bev);

    while (!cl->closing) {
        if (evbuffer_get_length(out) > CTL_OUTPUT_MAX) {
            /* Resume from the write callback once the client has read. */
            cl->throttled = true;
            bufferevent_disable(cl->bev, EV_READ);
            bufferevent_setwatermark(cl->bev, EV_WRITE, CTL_OUTPUT_MAX / 2, 0);
            return true;
        }
        size_t eol_len;
        struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
        if (eol.pos < 0) {
            if (evbuffer_get_length(in) > RPC_LINE_MAX) {
                char msg[128];
                snprintf(msg, sizeof msg,
                         "the request line is longer than %d bytes; requests are limited "
                         "to that size",
                         RPC_LINE_MAX);
                client_send(cl, rpc_error(NULL, RPC_INVALID_REQUEST, msg));
                cl->closing = true;
            }
            break;
        }
        size_t len = (size_t)eol.pos;
        char *line = malloc(len + 1);
        if (!line) {
            cl->closing = true;
            break;
        }
        evbuffer_remove(in, line, len);
        evbuffer_drain(in, eol_len);
        line[len] = '\0';
        client_handle(cl, line, len);
        free(line);
    }
    if (cl->closing) {
        bufferevent_disable(cl->bev, EV_READ);
        if (!evbuffer_get_length(out)) {
            client_free(cl);
            return false;
        }
        bufferevent_setwatermark(cl->bev, EV_WRITE, 0, 0);
    }
    return true;
}

static void client_read_cb(struct bufferevent *bev, void *arg)
{
    client_process(arg);
}

static void client_write_cb(struct bufferevent *bev, void *arg)
{
    struct ctl_client *cl = arg;
    if (cl->closing) {
        if (!evbuffer_get_length(bufferevent_get_output(bev)))
            client_free(cl);
        return;
    }
    if (cl->throttled) {
        cl->throttled = false;
        bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
        if (client_process(cl))
            if (!cl->throttled && !cl->closing)
                bufferevent_enable(bev, EV_READ);
    }
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct ctl_client *cl = arg;
    if (what & BEV_EVENT_EOF && !(what & BEV_EVENT_ERROR)) {
        /* The client has finished sending (e.g. shutdown(SHUT_WR) after its
         * request): answer a last unterminated line, then close. */
        if (!client_process(cl))
            return;
        struct evbuffer *in = bufferevent_get_input(bev);
        size_t len = evbuffer_get_length(in);
        if (len && !cl->closing) {
            char *line = malloc(len + 1);
            if (line) {
                evbuffer_remove(in, line, len);
                line[len] = '\0';
                client_handle(cl, line, len);
                free(line);
            }
        }
        cl->closing = true;
        client_process(cl);
        return;
    }
    client_free(cl);
}

static void refuse_busy(int fd)
{
    json_t *e = rpc_error(NULL, RPC_BUSY,
                          "vswitchd is serving too many control connections; try again");
    size_t len;
    char *line = rpc_dump_line(e, &len);
    json_decref(e);
    if (line) {
        ssize_t n = send(fd, line, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)n;
        free(line);
    }
    close(fd);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    struct ctl_server *s = arg;
    if (s->n_clients >= CTL_CLIENTS_MAX) {
        log_warn("control: refusing a connection: %u clients already", s->n_clients);
        refuse_busy(fd);
        return;
    }
    struct ctl_client *cl = calloc(1, sizeof *cl);
    if (!cl) {
        close(fd);
        return;
    }
    cl->srv = s;
    cl->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!cl->bev) {
        close(fd);
        free(cl);
        return;
    }
    cl->next = s->clients;
    if (cl->next)
        cl->next->pprev = &cl->next;
    cl->pprev = &s->clients;
    s->clients = cl;
    s->n_clients++;
    bufferevent_setcb(cl->bev, client_read_cb, client_write_cb, client_event_cb, cl);
    bufferevent_enable(cl->bev, EV_READ | EV_WRITE);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    /* EMFILE and the like: the listener keeps going; say why connections fail. */
    log_warn("control: accept failed: %s", strerror(errno));
}

static int mkdir_parents(const char *path)
{
    char tmp[sizeof ((struct sockaddr_un *)0)->sun_path];
    snprintf(tmp, sizeof tmp, "%s", path);
    char *slash = strrchr(tmp, '/');
    if (!slash || slash == tmp)
        return 0;
    *slash = '\0';
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* An existing socket file is stale if connecting to it is refused. */
static int replace_stale(const char *path, const struct sockaddr_un *sun, char *err,
                         size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0
                               : fail(err, errlen, "cannot use control socket %s: %s", path,
                                      strerror(errno));
    if (!S_ISSOCK(st.st_mode))
        return fail(err, errlen,
                    "%s exists and is not a socket; remove it or give another --socket",
                    path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail(err, errlen, "cannot create a socket: %s", strerror(errno));
    int r = connect(fd, (const struct sockaddr *)sun, sizeof *sun);
    int e = errno;
    close(fd);
    if (r == 0)
        return fail(err, errlen,
                    "another vswitchd is already listening on %s; stop it or give another "
                    "--socket",
                    path);
    if (e != ECONNREFUSED)
        return fail(err, errlen, "cannot check existing control socket %s: %s", path,
                    strerror(e));
    if (unlink(path) < 0 && errno != ENOENT)
        return fail(err, errlen, "cannot remove stale control socket %s: %s", path,
                    strerror(errno));
    log_info("control: removed stale socket %s", path);
    return 0;
}

struct ctl_server *ctl_server_create(struct event_base *base, const char *path,
                                     rpc_method_fn fn, void *arg, char *err, size_t errlen)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct ctl_server *s = NULL;
    struct stat st;
    int fd = -1;

    if (!*path || strlen(path) >= sizeof sun.sun_path) {
        fail(err, errlen, "control socket path %.60s must be 1 to %zu characters long", path,
             sizeof sun.sun_path - 1);
        return NULL;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    if (mkdir_parents(path) < 0) {
        fail(err, errlen, "cannot create the directory for control socket %s: %s", path,
             strerror(errno));
        return NULL;
    }
    if (replace_stale(path, &sun, err, errlen))
        return NULL;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail(err, errlen, "cannot create a socket: %s", strerror(errno));
        return NULL;
    }
    if (priv_bind_unix(fd, path, "control socket", err, errlen) < 0)
        goto fail_close;
    if (stat(path, &st) < 0) {
        fail(err, errlen, "cannot stat control socket %s: %s", path, strerror(errno));
        goto fail_unlink;
    }
    s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        fail(err, errlen, "out of memory");
        goto fail_unlink;
    }
    s->base = base;
    s->fn = fn;
    s->arg = arg;
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    s->listener = evconnlistener_new(base, accept_cb, s,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 64, fd);
    if (!s->listener) {
        fail(err, errlen, "cannot listen on control socket %s: %s", path, strerror(errno));
        goto fail_unlink;
    }
    evconnlistener_set_error_cb(s->listener, accept_error_cb);
    log_info("control: listening on %s", path);
    return s;

fail_unlink:
    unlink(path);
fail_close:
    close(fd);
    if (s)
        free(s->path);
    free(s);
    return NULL;
}

void ctl_server_set_handler(struct ctl_server *s, rpc_method_fn fn, void *arg)
{
    s->fn = fn;
    s->arg = arg;
}

void ctl_server_destroy(struct ctl_server *s)
{
    struct stat st;
    if (!s)
        return;
    while (s->clients)
        client_free(s->clients);
    evconnlistener_free(s->listener);
    /* Another daemon may have replaced the file since: leave that one alone. */
    if (stat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
        unlink(s->path);
    free(s->path);
    free(s);
}
