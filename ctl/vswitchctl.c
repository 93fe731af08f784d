/* vswitchctl: the command line for vswitchd. Each command is one JSON-RPC
 * request on the control socket (docs/protocol.md); the result is printed as a
 * table, or as JSON with --json. Depends only on jansson and libc. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"

#define SOCKET_DEFAULT  "/run/vswitch/vswitchd.sock"
#define TIMEOUT_DEFAULT 30
#define RESPONSE_MAX    (64 * 1024 * 1024)

static const char *socket_path = SOCKET_DEFAULT;
static bool opt_json;
static long opt_timeout = TIMEOUT_DEFAULT;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    fputs("vswitchctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    /* A one-shot tool: what is still allocated goes with the process. */
    fflush(stdout);
    _exit(1);
}

static void die_usage(const char *fmt, ...)
{
    va_list ap;
    fputs("vswitchctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'vswitchctl --help' for more information.\n", stderr);
    fflush(stdout);
    _exit(2);
}

static void usage(void)
{
    printf("usage: vswitchctl [--socket PATH] [--json] [--timeout SECS] COMMAND [ARGS]\n"
           "Configures and inspects a running vswitchd.\n"
           "\n"
           "Commands:\n"
           "  show                          bridges, their ports, VLANs and state\n"
           "  add-br BR                     add a bridge\n"
           "  del-br BR                     delete a bridge and all its ports\n"
           "  list-br                       list the bridges\n"
           "  set-br BR ageing=SECS         set a bridge's MAC ageing time (0: never)\n"
           "  add-port BR PORT [type=TYPE] [KEY=VALUE ...]\n"
           "                                add a port; TYPE: vhost-user (default), tap,\n"
           "                                internal, vxlan, afxdp, dpdk (when the daemon\n"
           "                                was built with them)\n"
           "      vhost-user: socket=PATH mode=server|client queues=N\n"
           "      tap:        ifname=NAME\n"
           "      internal:   ifname=NAME ip=CIDR\n"
           "      vxlan:      vni=N|VNI:VLAN,... remote=IP[,IP...] local=IP dstport=N\n"
           "      afxdp:      dev=IFNAME queue=N\n"
           "      dpdk:       devargs=STRING\n"
           "      any port:   vlan_mode=access tag=N | vlan_mode=trunk trunks=LIST [native=N]\n"
           "                  mtu=N mac=MAC ip=CIDR [gw=IP]\n"
           "  del-port [BR] PORT            delete a port\n"
           "  list-ports BR                 list the ports of a bridge\n"
           "  set-port PORT KEY=VALUE ...   change a port's settings (KEY= resets KEY)\n"
           "  fdb-show BR [vlan=N]          learned MAC addresses\n"
           "  fdb-flush BR                  forget the learned MAC addresses\n"
           "  port-stats [PORT]             packets, bytes, drops by reason\n"
           "  add-net NET bridge=BR [vlan=N] subnet=CIDR gateway=IP [dhcp=FIRST-LAST]\n"
           "          [nat=PORT] [dns=IP] [lease=SECS] [reserve=MAC=IP,...] [ct_max=N]\n"
           "          [ct_timeout_NAME=SECS]\n"
           "                                a network: L3 gateway, DHCP, NAT to PORT\n"
           "  set-net NET KEY=VALUE ...     change a network (KEY= resets KEY)\n"
           "  del-net NET | list-nets       delete / list networks\n"
           "  list-leases NET               DHCP leases\n"
           "  add-forward NET proto=tcp|udp port=N to=IP:PORT\n"
           "  del-forward NET proto=tcp|udp port=N\n"
           "                                port forwards from the uplink's address\n"
           "  ct-show [NET] | ct-flush [NET]  NAT connections\n"
           "\n"
           "Options:\n"
           "  --socket PATH   vswitchd's control socket (default " SOCKET_DEFAULT ")\n"
           "  --json          print the daemon's result as JSON\n"
           "  --timeout SECS  give up after SECS seconds (default %d; 0: wait forever)\n"
           "  --help          show this help\n"
           "  --version       show the version\n"
           "\n"
           "See vswitchctl(8).\n",
           TIMEOUT_DEFAULT);
}

/* ---- talking to the daemon ---- */

static int connect_daemon(void)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(socket_path) >= sizeof sun.sun_path)
        die("socket path %s is too long", socket_path);
    strcpy(sun.sun_path, socket_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("cannot create a socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0)
        return fd;
    switch (errno) {
    case ENOENT:
    case ECONNREFUSED:
        die("cannot connect to vswitchd at %s: %s (is vswitchd running?)", socket_path,
            errno == ENOENT ? "no such socket" : "nothing is listening");
    case EACCES:
        die("cannot connect to vswitchd at %s: permission denied (run as root or as a "
            "member of the socket's group)",
            socket_path);
    default:
        die("cannot connect to vswitchd at %s: %s", socket_path, strerror(errno));
    }
}

static long remaining_ms(const struct timespec *deadline)
{
    struct timespec now;
    if (!opt_timeout)
        return -1;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long ms = (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
    if (ms <= 0)
        die("vswitchd at %s did not answer within %ld seconds", socket_path, opt_timeout);
    return ms;
}

static void wait_fd(int fd, short ev, const struct timespec *deadline)
{
    struct pollfd pfd = {.fd = fd, .events = ev};
    for (;;) {
        int r = poll(&pfd, 1, (int)remaining_ms(deadline));
        if (r > 0)
            return;
        if (r < 0 && errno != EINTR)
            die("poll: %s", strerror(errno));
        if (r == 0)
            remaining_ms(deadline);
    }
}

/* Sends {"method", "params"} and returns the response's result; exits with the
 * daemon's error sentence on an error response. */
static json_t *call(const char *method, json_t *params)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += opt_timeout;

    json_t *req = json_pack("{s:s, s:s, s:o, s:i}", "jsonrpc", "2.0", "method", method,
                            "params", params ? params : json_object(), "id", 1);
    char *text = json_dumps(req, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(req);
    if (!text)
        die("out of memory");
    size_t len = strlen(text);
    text[len++] = '\n'; /* over the NUL: the buffer is not used as a string again */

    int fd = connect_daemon();
    for (size_t off = 0; off < len;) {
        wait_fd(fd, POLLOUT, &deadline);
        ssize_t n = send(fd, text + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            die("cannot send the request to vswitchd at %s: %s", socket_path,
                strerror(errno));
        off += (size_t)n;
    }
    free(text);

    size_t cap = 4096, got = 0;
    char *buf = malloc(cap);
    char *nl = NULL;
    while (buf && !nl) {
        if (got + 1 >= cap) {
            if (cap >= RESPONSE_MAX)
                die("the response from vswitchd is larger than %d MiB", RESPONSE_MAX >> 20);
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                die("out of memory");
            buf = nb;
            cap *= 2;
        }
        wait_fd(fd, POLLIN, &deadline);
        ssize_t n = recv(fd, buf + got, cap - got - 1, MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            die("cannot read the response from vswitchd at %s: %s", socket_path,
                strerror(errno));
        if (n == 0)
            die("vswitchd at %s closed the connection without answering", socket_path);
        got += (size_t)n;
        buf[got] = '\0';
        nl = memchr(buf, '\n', got);
    }
    if (!buf)
        die("out of memory");
    close(fd);

    json_error_t jerr;
    json_t *resp = json_loadb(buf, (size_t)(nl - buf), 0, &jerr);
    free(buf);
    if (!resp)
        die("vswitchd sent a response that is not JSON: %s", jerr.text);
    json_t *err = json_object_get(resp, "error");
    if (err) {
        const char *msg = json_string_value(json_object_get(err, "message"));
        if (json_integer_value(json_object_get(err, "code")) == -32601)
            die("command %s is not supported by this daemon", method);
        die("%s", msg ? msg : "vswitchd reported an error without a message");
    }
    json_t *result = json_object_get(resp, "result");
    if (!result)
        die("vswitchd sent a response without a result");
    json_incref(result);
    json_decref(resp);
    return result;
}

/* ---- tables ---- */

#define TABLE_COLS 8

struct table {
    size_t ncols, nrows;
    char *(*cells)[TABLE_COLS];
    bool right[TABLE_COLS];
    const char *indent;
};

static void table_row(struct table *t, ...)
{
    va_list ap;
    t->cells = realloc(t->cells, (t->nrows + 1) * sizeof *t->cells);
    if (!t->cells)
        die("out of memory");
    va_start(ap, t);
    for (size_t i = 0; i < t->ncols; i++) {
        const char *s = va_arg(ap, const char *);
        t->cells[t->nrows][i] = strdup(s ? s : "");
    }
    va_end(ap);
    t->nrows++;
}

static void table_print(struct table *t)
{
    size_t w[TABLE_COLS] = {0};
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++)
            if (strlen(t->cells[r][c]) > w[c])
                w[c] = strlen(t->cells[r][c]);
    for (size_t r = 0; r < t->nrows; r++) {
        char line[4096];
        size_t off = 0;
        off += (size_t)snprintf(line, sizeof line, "%s", t->indent ? t->indent : "");
        for (size_t c = 0; c < t->ncols && off < sizeof line; c++) {
            bool last = c + 1 == t->ncols;
            if (t->right[c])
                off += (size_t)snprintf(line + off, sizeof line - off, "%*s", (int)w[c],
                                        t->cells[r][c]);
            else
                off += (size_t)snprintf(line + off, sizeof line - off, "%-*s",
                                        last ? 0 : (int)w[c], t->cells[r][c]);
            if (!last && off < sizeof line)
                off += (size_t)snprintf(line + off, sizeof line - off, "  ");
        }
        while (off > 0 && off < sizeof line && line[off - 1] == ' ')
            line[--off] = '\0';
        puts(line);
        for (size_t c = 0; c < t->ncols; c++)
            free(t->cells[r][c]);
    }
    free(t->cells);
    t->cells = NULL;
    t->nrows = 0;
}

/* ---- printing results ---- */

static const char *jstr(const json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : dflt;
}

static json_int_t jint(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

static void print_names(json_t *r)
{
    size_t i;
    json_t *v;
    json_array_foreach (r, i, v)
        puts(json_string_value(v) ? json_string_value(v) : "");
}

static void port_vlan_text(const json_t *p, char *buf, size_t len)
{
    if (!strcmp(jstr(p, "vlan_mode", "trunk"), "access")) {
        snprintf(buf, len, "access %lld", (long long)jint(p, "tag"));
        return;
    }
    int n = snprintf(buf, len, "trunk %s", jstr(p, "trunks", "all"));
    if (json_object_get(p, "native") && n >= 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, " native %lld", (long long)jint(p, "native"));
}

static void port_details_text(const json_t *p, const json_t *st, char *buf, size_t len)
{
    const char *type = jstr(p, "type", "");
    size_t off = 0;
#define ADD(...)                                                                          \
    do {                                                                                  \
        if (off < len)                                                                    \
            off += (size_t)snprintf(buf + off, len - off, __VA_ARGS__);                   \
    } while (0)
    buf[0] = '\0';
    if (!strcmp(type, "vhost-user")) {
        const char *sock = jstr(st, "socket", jstr(p, "socket", "(run-dir)"));
        ADD("%s %s", jstr(p, "mode", "server"), sock);
        if (jint(p, "queues") > 1)
            ADD(" queues %lld", (long long)jint(p, "queues"));
    } else if (json_object_get(p, "ifname")) {
        ADD("ifname %s", jstr(p, "ifname", ""));
    }
    if (json_object_get(p, "mtu"))
        ADD("%smtu %lld", off ? ", " : "", (long long)jint(p, "mtu"));
    if (json_object_get(p, "mac"))
        ADD("%smac %s", off ? ", " : "", jstr(p, "mac", ""));
    if (json_object_get(p, "ip"))
        ADD("%sip %s", off ? ", " : "", jstr(p, "ip", ""));
    if (json_object_get(p, "gw"))
        ADD(" gw %s", jstr(p, "gw", ""));
#undef ADD
}

static const char *port_state_text(const json_t *st)
{
    json_t *link = json_object_get(st, "link");
    if (json_is_string(link))
        return json_string_value(link);
    if (json_is_boolean(link))
        return json_is_true(link) ? "up" : "down";
    json_t *conn = json_object_get(st, "connected");
    if (json_is_boolean(conn))
        return json_is_true(conn) ? "connected" : "waiting";
    return "-";
}

static void print_show(json_t *r)
{
    json_t *bridges = json_object_get(r, "bridges");
    size_t i, k;
    json_t *b, *p;
    if (!json_array_size(bridges)) {
        puts("no bridges (add one with: vswitchctl add-br BR)");
        return;
    }
    json_array_foreach (bridges, i, b) {
        json_t *ports = json_object_get(b, "ports");
        json_int_t ageing = jint(b, "ageing");
        if (i)
            putchar('\n');
        if (ageing)
            printf("bridge %s (MAC ageing %llds)\n", jstr(b, "name", "?"),
                   (long long)ageing);
        else
            printf("bridge %s (MAC ageing off)\n", jstr(b, "name", "?"));
        if (!json_array_size(ports)) {
            puts("    no ports");
            continue;
        }
        struct table t = {.ncols = 5, .indent = "    "};
        table_row(&t, "PORT", "TYPE", "VLAN", "STATE", "DETAILS");
        json_array_foreach (ports, k, p) {
            char vlan[256], details[512];
            json_t *st = json_object_get(p, "status");
            port_vlan_text(p, vlan, sizeof vlan);
            port_details_text(p, st, details, sizeof details);
            table_row(&t, jstr(p, "name", "?"), jstr(p, "type", "?"), vlan,
                      port_state_text(st), details);
        }
        table_print(&t);
    }
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const char **sorted_keys(json_t *o, size_t *n)
{
    const char *key;
    json_t *v;
    const char **keys = calloc(json_object_size(o) + 1, sizeof *keys);
    *n = 0;
    if (!keys)
        die("out of memory");
    json_object_foreach (o, key, v)
        keys[(*n)++] = key;
    qsort(keys, *n, sizeof *keys, cmp_key);
    return keys;
}

static json_int_t drops_total(json_t *drops)
{
    const char *key;
    json_t *v;
    json_int_t total = 0;
    json_object_foreach (drops, key, v)
        total += json_integer_value(v);
    return total;
}

static void print_port_stats(json_t *r)
{
    size_t n;
    const char **names = sorted_keys(r, &n);
    bool any_drops = false;
    if (!n) {
        puts("no ports");
        free(names);
        return;
    }
    struct table t = {.ncols = 6, .right = {false, true, true, true, true, true}};
    table_row(&t, "PORT", "RX PACKETS", "RX BYTES", "TX PACKETS", "TX BYTES", "DROPS");
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_object_get(r, names[i]);
        json_int_t total = drops_total(json_object_get(s, "drops"));
        char c[5][32];
        snprintf(c[0], sizeof c[0], "%lld", (long long)jint(s, "rx_packets"));
        snprintf(c[1], sizeof c[1], "%lld", (long long)jint(s, "rx_bytes"));
        snprintf(c[2], sizeof c[2], "%lld", (long long)jint(s, "tx_packets"));
        snprintf(c[3], sizeof c[3], "%lld", (long long)jint(s, "tx_bytes"));
        snprintf(c[4], sizeof c[4], "%lld", (long long)total);
        table_row(&t, names[i], c[0], c[1], c[2], c[3], c[4]);
        any_drops = any_drops || total;
    }
    table_print(&t);
    if (any_drops) {
        /* the reasons, for the ports that dropped anything */
        printf("\ndrops by reason:\n");
        for (size_t i = 0; i < n; i++) {
            json_t *drops = json_object_get(json_object_get(r, names[i]), "drops");
            size_t nd;
            const char **reasons = sorted_keys(drops, &nd);
            bool first = true;
            for (size_t k = 0; k < nd; k++) {
                json_int_t v = json_integer_value(json_object_get(drops, reasons[k]));
                if (!v)
                    continue;
                if (first)
                    printf("    %s: ", names[i]);
                printf("%s%s %lld", first ? "" : ", ", reasons[k], (long long)v);
                first = false;
            }
            if (!first)
                putchar('\n');
            free(reasons);
        }
    }
    free(names);
}

static int cmp_fdb(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    json_int_t vx = jint(x, "vlan"), vy = jint(y, "vlan");
    if (vx != vy)
        return vx < vy ? -1 : 1;
    return strcmp(jstr(x, "mac", ""), jstr(y, "mac", ""));
}

static void print_fdb(json_t *r)
{
    size_t n = json_array_size(r), i;
    json_t **e = calloc(n + 1, sizeof *e);
    json_t *v;
    if (!e)
        die("out of memory");
    json_array_foreach (r, i, v)
        e[i] = v;
    qsort(e, n, sizeof *e, cmp_fdb);
    struct table t = {.ncols = 4, .right = {true, true, false, true}};
    table_row(&t, "port", "VLAN", "MAC", "Age");
    for (i = 0; i < n; i++) {
        char vlan[16], age[24];
        snprintf(vlan, sizeof vlan, "%lld", (long long)jint(e[i], "vlan"));
        snprintf(age, sizeof age, "%lld", (long long)jint(e[i], "age"));
        table_row(&t, jstr(e[i], "port", "?"), vlan, jstr(e[i], "mac", "?"), age);
    }
    table_print(&t);
    free(e);
}

/* ---- commands ---- */

/* KEY=VALUE arguments as the "options" object; values go as strings and the
 * daemon checks them. */
static json_t *options_from_args(int argc, char **argv)
{
    json_t *o = json_object();
    for (int i = 0; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq || eq == argv[i])
            die_usage("\"%s\" is not KEY=VALUE", argv[i]);
        *eq = '\0';
        if (json_object_get(o, argv[i]))
            die_usage("%s= is given twice", argv[i]);
        json_object_set_new(o, argv[i], json_string(eq + 1));
        *eq = '=';
    }
    return o;
}

struct command {
    const char *name;
    int min_args, max_args; /* -1: any number */
    const char *args;       /* for messages */
    void (*run)(int argc, char **argv);
};

static void output(json_t *r, void (*print)(json_t *))
{
    if (opt_json) {
        char *s = json_dumps(r, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
        if (s)
            puts(s);
        free(s);
    } else if (print) {
        print(r);
    }
    json_decref(r);
}

static void run_show(int argc, char **argv)
{
    output(call("show", NULL), print_show);
}

static void run_add_br(int argc, char **argv)
{
    output(call("add-br", json_pack("{s:s}", "bridge", argv[0])), NULL);
}

static void run_del_br(int argc, char **argv)
{
    output(call("del-br", json_pack("{s:s}", "bridge", argv[0])), NULL);
}

static void run_list_br(int argc, char **argv)
{
    output(call("list-br", NULL), print_names);
}

static void run_set_br(int argc, char **argv)
{
    json_t *o = options_from_args(argc - 1, argv + 1);
    output(call("set-br", json_pack("{s:s, s:o}", "bridge", argv[0], "options", o)), NULL);
}

static void run_add_port(int argc, char **argv)
{
    json_t *o = options_from_args(argc - 2, argv + 2);
    output(call("add-port", json_pack("{s:s, s:s, s:o}", "bridge", argv[0], "port", argv[1],
                                      "options", o)),
           NULL);
}

static void run_del_port(int argc, char **argv)
{
    json_t *p = argc == 2 ? json_pack("{s:s, s:s}", "bridge", argv[0], "port", argv[1])
                          : json_pack("{s:s}", "port", argv[0]);
    output(call("del-port", p), NULL);
}

static void run_list_ports(int argc, char **argv)
{
    output(call("list-ports", json_pack("{s:s}", "bridge", argv[0])), print_names);
}

static void run_set_port(int argc, char **argv)
{
    json_t *o = options_from_args(argc - 1, argv + 1);
    output(call("set-port", json_pack("{s:s, s:o}", "port", argv[0], "options", o)), NULL);
}

static void run_fdb_show(int argc, char **argv)
{
    json_t *p = json_pack("{s:s}", "bridge", argv[0]);
    if (argc == 2) {
        char *end;
        if (strncmp(argv[1], "vlan=", 5))
            die_usage("fdb-show takes BR [vlan=N], not \"%s\"", argv[1]);
        long v = strtol(argv[1] + 5, &end, 10);
        if (!argv[1][5] || *end || v < 0 || v > 4094)
            die("%s is not a VLAN: use vlan=N with N in 0-4094 (0: untagged)", argv[1]);
        json_object_set_new(p, "vlan", json_integer(v));
    }
    output(call("fdb-show", p), print_fdb);
}

static void run_fdb_flush(int argc, char **argv)
{
    output(call("fdb-flush", json_pack("{s:s}", "bridge", argv[0])), NULL);
}

static void run_port_stats(int argc, char **argv)
{
    output(call("port-stats", argc ? json_pack("{s:s}", "port", argv[0]) : NULL),
           print_port_stats);
}

static void print_nets(json_t *r)
{
    size_t i;
    json_t *n;
    if (!json_array_size(r)) {
        puts("no networks (add one with: vswitchctl add-net NET bridge=BR subnet=CIDR "
             "gateway=IP)");
        return;
    }
    struct table t = {.ncols = 7};
    table_row(&t, "NETWORK", "BRIDGE", "VLAN", "SUBNET", "GATEWAY", "DHCP", "NAT");
    json_array_foreach (r, i, n) {
        char vlan[16];
        snprintf(vlan, sizeof vlan, "%lld", (long long)jint(n, "vlan"));
        table_row(&t, jstr(n, "name", "?"), jstr(n, "bridge", "?"), vlan,
                  jstr(n, "subnet", "?"), jstr(n, "gateway", "?"), jstr(n, "dhcp", "-"),
                  jstr(n, "nat", "-"));
    }
    table_print(&t);
}

static void print_leases(json_t *r)
{
    size_t i;
    json_t *l;
    struct table t = {.ncols = 5, .right = {false, false, false, true, false}};
    table_row(&t, "IP", "MAC", "STATE", "EXPIRES IN", "HOSTNAME");
    json_array_foreach (r, i, l) {
        char exp[24];
        snprintf(exp, sizeof exp, "%llds", (long long)jint(l, "expires_in"));
        table_row(&t, jstr(l, "ip", "?"), jstr(l, "mac", "?"), jstr(l, "state", "?"), exp,
                  jstr(l, "hostname", ""));
    }
    table_print(&t);
}

static void endpoint_text(const json_t *e, char *buf, size_t len)
{
    if (json_object_get(e, "id"))
        snprintf(buf, len, "%s -> %s id %lld", jstr(e, "src", "?"), jstr(e, "dst", "?"),
                 (long long)jint(e, "id"));
    else
        snprintf(buf, len, "%s:%lld -> %s:%lld", jstr(e, "src", "?"),
                 (long long)jint(e, "sport"), jstr(e, "dst", "?"),
                 (long long)jint(e, "dport"));
}

static void print_ct(json_t *r)
{
    size_t i;
    json_t *c;
    struct table t = {.ncols = 7, .right = {false, false, false, false, false, true, true}};
    table_row(&t, "NET", "PROTO", "STATE", "ORIGINAL", "REPLY", "EXPIRES", "PACKETS");
    json_array_foreach (r, i, c) {
        char o[96], rp[96], exp[24], pk[24];
        endpoint_text(json_object_get(c, "orig"), o, sizeof o);
        endpoint_text(json_object_get(c, "reply"), rp, sizeof rp);
        snprintf(exp, sizeof exp, "%llds", (long long)jint(c, "expires_in"));
        snprintf(pk, sizeof pk, "%lld", (long long)jint(c, "packets"));
        table_row(&t, jstr(c, "net", "?"), jstr(c, "proto", "?"), jstr(c, "state", "?"), o,
                  rp, exp, pk);
    }
    table_print(&t);
}

static void run_net_opts(const char *method, int argc, char **argv)
{
    json_t *o = options_from_args(argc - 1, argv + 1);
    output(call(method, json_pack("{s:s, s:o}", "network", argv[0], "options", o)), NULL);
}

static void run_add_net(int argc, char **argv)
{
    run_net_opts("add-net", argc, argv);
}

static void run_set_net(int argc, char **argv)
{
    run_net_opts("set-net", argc, argv);
}

static void run_add_forward(int argc, char **argv)
{
    run_net_opts("add-forward", argc, argv);
}

static void run_del_forward(int argc, char **argv)
{
    run_net_opts("del-forward", argc, argv);
}

static void run_del_net(int argc, char **argv)
{
    output(call("del-net", json_pack("{s:s}", "network", argv[0])), NULL);
}

static void run_list_nets(int argc, char **argv)
{
    output(call("list-nets", NULL), print_nets);
}

static void run_list_leases(int argc, char **argv)
{
    output(call("list-leases", json_pack("{s:s}", "network", argv[0])), print_leases);
}

static void run_ct_show(int argc, char **argv)
{
    output(call("ct-show", argc ? json_pack("{s:s}", "network", argv[0]) : NULL), print_ct);
}

static void run_ct_flush(int argc, char **argv)
{
    output(call("ct-flush", argc ? json_pack("{s:s}", "network", argv[0]) : NULL), NULL);
}

static const struct command commands[] = {
    {"show", 0, 0, "", run_show},
    {"add-br", 1, 1, "BR", run_add_br},
    {"del-br", 1, 1, "BR", run_del_br},
    {"list-br", 0, 0, "", run_list_br},
    {"set-br", 2, -1, "BR KEY=VALUE...", run_set_br},
    {"add-port", 2, -1, "BR PORT [KEY=VALUE...]", run_add_port},
    {"del-port", 1, 2, "[BR] PORT", run_del_port},
    {"list-ports", 1, 1, "BR", run_list_ports},
    {"set-port", 2, -1, "PORT KEY=VALUE...", run_set_port},
    {"fdb-show", 1, 2, "BR [vlan=N]", run_fdb_show},
    {"fdb-flush", 1, 1, "BR", run_fdb_flush},
    {"port-stats", 0, 1, "[PORT]", run_port_stats},
    {"add-net", 2, -1, "NET KEY=VALUE...", run_add_net},
    {"set-net", 2, -1, "NET KEY=VALUE...", run_set_net},
    {"del-net", 1, 1, "NET", run_del_net},
    {"list-nets", 0, 0, "", run_list_nets},
    {"list-leases", 1, 1, "NET", run_list_leases},
    {"add-forward", 4, 4, "NET proto=tcp|udp port=N to=IP:PORT", run_add_forward},
    {"del-forward", 3, 3, "NET proto=tcp|udp port=N", run_del_forward},
    {"ct-show", 0, 1, "[NET]", run_ct_show},
    {"ct-flush", 0, 1, "[NET]", run_ct_flush},
};

/* In vswitchctl's contract (DESIGN §4) but not served by this daemon yet. */
static const char *const later_commands[] = {
    "capture", NULL,
};

int main(int argc, char **argv)
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        size_t n = strcspn(a, "=");
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        if (!strcmp(a, "--help")) {
            usage();
            return 0;
        }
        if (!strcmp(a, "--version")) {
            printf("vswitchctl %s\n", VSWITCH_VERSION);
            return 0;
        }
        if (!strcmp(a, "--json")) {
            opt_json = true;
            continue;
        }
        bool is_socket = !strncmp(a, "--socket", n) && n == 8;
        bool is_timeout = !strncmp(a, "--timeout", n) && n == 9;
        if (!is_socket && !is_timeout)
            die_usage("unknown option %s", a);
        if (a[n] == '=')
            val = a + n + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else
            die_usage("option %s needs a value", a);
        if (is_socket) {
            if (!*val)
                die_usage("--socket needs a path");
            socket_path = val;
        } else {
            char *end;
            errno = 0;
            long t = strtol(val, &end, 10);
            if (errno || !*val || *end || t < 0 || t > 86400)
                die_usage("--timeout must be seconds in 0-86400, not \"%s\"", val);
            opt_timeout = t;
        }
    }
    if (i >= argc)
        die_usage("no command given");

    const char *cmd = argv[i];
    int nargs = argc - i - 1;
    char **args = argv + i + 1;
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++) {
        const struct command *c = &commands[k];
        if (strcmp(c->name, cmd))
            continue;
        if (nargs < c->min_args || (c->max_args >= 0 && nargs > c->max_args)) {
            if (c->args[0])
                die_usage("%s takes %s", cmd, c->args);
            die_usage("%s takes no arguments", cmd);
        }
        c->run(nargs, args);
        return 0;
    }
    for (size_t k = 0; later_commands[k]; k++)
        if (!strcmp(later_commands[k], cmd))
            die("command %s is not supported by this daemon yet", cmd);
    die_usage("unknown command \"%s\"", cmd);
}
