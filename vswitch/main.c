/* vswitchd: restores the saved configuration, serves the control socket, and
 * runs until SIGINT or SIGTERM. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "config.h"
#include "conf.h"
#include "ctl_methods.h"
#include "ctl_server.h"
#include "db.h"
#include "etcd.h"
#include "log.h"
#include "privilege.h"
#include "switch.h"

#define DB_DEFAULT      "/var/lib/vswitch/conf.json"
#define RUN_DIR_DEFAULT "/run/vswitch"
#define PMD_THREADS_MAX 64

struct options {
    const char *socket;
    const char *db;        /* NULL: none */
    const char *run_dir;
    unsigned pmd_threads;
    const char *pidfile;
    bool detach;
    bool default_config;
    const char *etcd;      /* --etcd URL, NULL: no discovery */
    bool have_user;        /* --user USER[:GROUP] */
    struct priv_user user;
    gid_t group;           /* --group GROUP, (gid_t)-1: none */
    const char *group_name;
    bool keep_afxdp;       /* --keep-afxdp-caps */
};

/* The embedded default configuration (--default-config): the lab of the
 * README, a bridge and two guests' vhost-user sockets in RUN_DIR. */
static const char default_conf_json[] =
    "{\"version\": 1,"
    " \"bridges\": [{\"name\": \"br0\", \"ageing\": 300}],"
    " \"ports\": ["
    "  {\"name\": \"vm1\", \"bridge\": \"br0\", \"type\": \"vhost-user\"},"
    "  {\"name\": \"vm2\", \"bridge\": \"br0\", \"type\": \"vhost-user\"}]}";

static int load_default_conf(struct conf *c, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *j = json_loads(default_conf_json, 0, &jerr);
    int r;

    if (!j) {
        snprintf(err, errlen, "embedded default configuration: %s", jerr.text);
        return -1;
    }
    r = conf_from_json(c, j, err, errlen);
    json_decref(j);
    return r;
}

static bool conf_has_type(const struct conf *c, enum port_type t)
    __attribute__((unused));
static bool conf_has_type(const struct conf *c, enum port_type t)
{
    for (size_t i = 0; i < c->n_ports; i++)
        if (c->ports[i].type == t)
            return true;
    return false;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vswitchd [OPTIONS]\n"
            "A userspace virtual switch serving VMs over vhost-user.\n"
            "\n"
            "  --socket PATH        control socket (default " CTL_SOCKET_DEFAULT ")\n"
            "  --db PATH|none       configuration file (default " DB_DEFAULT ")\n"
            "  --run-dir DIR        directory for vhost-user server sockets\n"
            "                       (default " RUN_DIR_DEFAULT ")\n"
            "  --pmd-threads N      packet-processing threads, 1-%d (default 1)\n"
            "  --log-level LEVEL    err, warn, info or debug (default info)\n"
            "  --detach             run in the background once the control socket listens;\n"
            "                       logs go to syslog\n"
            "  --pidfile PATH       write the daemon's pid to PATH\n"
            "  --default-config     when the db holds no bridge, start from the embedded\n"
            "                       default: bridge br0 with vhost-user ports vm1, vm2\n"
            "                       listening on RUN_DIR/vm1.sock and RUN_DIR/vm2.sock\n"
            "  --etcd URL           discover VXLAN peers through etcd:\n"
            "                       http://IP:PORT[/PREFIX][?ttl=SECONDS]\n"
            "  --group GROUP        control socket, vhost-user sockets and RUN_DIR belong\n"
            "                       to GROUP, mode 0660 (RUN_DIR 2770): its members need\n"
            "                       no root to use the switch\n"
            "  --user USER[:GROUP]  once the sockets are open, run as USER keeping only\n"
            "                       CAP_NET_ADMIN, CAP_NET_RAW and CAP_IPC_LOCK\n"
            "  --keep-afxdp-caps    with --user, keep CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN\n"
            "                       too, for afxdp ports (implied when the db has one)\n"
            "  --help               show this help\n"
            "  --version            show the version\n"
            "\n"
            "Configure it with vswitchctl(8); see vswitchd(8).\n",
            PMD_THREADS_MAX);
}

static void bad_usage(const char *fmt, const char *arg)
{
    /* one line: the problem, then where the options are explained */
    fprintf(stderr, "vswitchd: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see vswitchd --help)\n");
    exit(2);
}

static void parse_args(int argc, char **argv, struct options *o)
{
    enum { OPT_SOCKET = 256, OPT_DB, OPT_RUN_DIR, OPT_PMD, OPT_LOG, OPT_DETACH,
           OPT_PIDFILE, OPT_ETCD, OPT_DEFAULT_CONFIG, OPT_USER, OPT_GROUP, OPT_KEEP_AFXDP,
           OPT_HELP, OPT_VERSION };
    static const struct option longopts[] = {
        {"socket", required_argument, NULL, OPT_SOCKET},
        {"db", required_argument, NULL, OPT_DB},
        {"run-dir", required_argument, NULL, OPT_RUN_DIR},
        {"pmd-threads", required_argument, NULL, OPT_PMD},
        {"log-level", required_argument, NULL, OPT_LOG},
        {"detach", no_argument, NULL, OPT_DETACH},
        {"pidfile", required_argument, NULL, OPT_PIDFILE},
        {"etcd", required_argument, NULL, OPT_ETCD},
        {"default-config", no_argument, NULL, OPT_DEFAULT_CONFIG},
        {"user", required_argument, NULL, OPT_USER},
        {"group", required_argument, NULL, OPT_GROUP},
        {"keep-afxdp-caps", no_argument, NULL, OPT_KEEP_AFXDP},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    char e[256];
    int c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_SOCKET:
            o->socket = optarg;
            break;
        case OPT_DB:
            o->db = strcmp(optarg, "none") ? optarg : NULL;
            break;
        case OPT_RUN_DIR:
            o->run_dir = optarg;
            break;
        case OPT_PMD: {
            char *end;
            errno = 0;
            long n = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || n < 1 || n > PMD_THREADS_MAX)
                bad_usage("--pmd-threads must be a number in 1-64, not \"%s\"", optarg);
            o->pmd_threads = (unsigned)n;
            break;
        }
        case OPT_LOG: {
            int l = log_level_from_name(optarg);
            if (l < 0)
                bad_usage("--log-level must be err, warn, info or debug, not \"%s\"",
                          optarg);
            log_set_level((enum log_level)l);
            break;
        }
        case OPT_DETACH:
            o->detach = true;
            break;
        case OPT_PIDFILE:
            o->pidfile = optarg;
            break;
        case OPT_ETCD:
            o->etcd = optarg;
            break;
        case OPT_DEFAULT_CONFIG:
            o->default_config = true;
            break;
        case OPT_USER:
            if (priv_parse_user(optarg, &o->user, e, sizeof e) < 0)
                bad_usage("%s", e);
            o->have_user = true;
            break;
        case OPT_GROUP:
            if (priv_parse_group(optarg, &o->group, e, sizeof e) < 0)
                bad_usage("%s", e);
            o->group_name = optarg;
            break;
        case OPT_KEEP_AFXDP:
            o->keep_afxdp = true;
            break;
        case OPT_HELP:
            usage(stdout);
            exit(0);
        case OPT_VERSION:
            printf("vswitchd %s\n", VSWITCH_VERSION);
            exit(0);
        case ':':
            bad_usage("option %s needs a value", argv[optind - 1]);
            break;
        default:
            bad_usage("unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        bad_usage("unexpected argument \"%s\"", argv[optind]);
    if (o->socket && !*o->socket)
        bad_usage("--socket needs a path%s", "");
    if (o->run_dir && o->run_dir[0] != '/')
        bad_usage("--run-dir must be an absolute path, not \"%s\"", o->run_dir);
    if (o->etcd) {
        struct etcd_url u;
        if (etcd_parse_url(o->etcd, &u, e, sizeof e) < 0)
            bad_usage("%s", e);
    }
    if (o->keep_afxdp && !o->have_user)
        bad_usage("--keep-afxdp-caps goes with --user%s", "");
}

/* --detach: the parent waits until the child has its control socket listening
 * (or has failed) so that "vswitchd --detach && vswitchctl show" works, and
 * exits with the child's verdict. Forking before anything starts threads
 * (PMDs do not survive fork). */
static int detach_start(void)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        fprintf(stderr, "vswitchd: cannot detach: %s\n", strerror(errno));
        exit(1);
    }
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "vswitchd: cannot detach: %s\n", strerror(errno));
        exit(1);
    }
    if (pid > 0) {
        char c;
        close(p[1]);
        ssize_t n;
        do
            n = read(p[0], &c, 1);
        while (n < 0 && errno == EINTR);
        _exit(n == 1 ? 0 : 1);
    }
    close(p[0]);
    setsid();
    return p[1];
}

static void detach_finish(int fd)
{
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (chdir("/") < 0) {
        /* harmless: keep the old working directory */
    }
    log_to_syslog("vswitchd");
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        if (null > STDERR_FILENO)
            close(null);
    }
    ssize_t n = write(fd, "", 1);
    (void)n;
    close(fd);
}

static int pidfile_write(const char *path)
{
    char tmp[4096], buf[32];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        log_err("pidfile path %s is too long", path);
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        log_err("cannot write pidfile %s: %s", path, strerror(errno));
        return -1;
    }
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (write(fd, buf, (size_t)n) != n || close(fd) < 0 || rename(tmp, path) < 0) {
        log_err("cannot write pidfile %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    log_info("%s: shutting down", strsignal((int)sig));
    event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
    struct options o = {
        .socket = CTL_SOCKET_DEFAULT,
        .db = DB_DEFAULT,
        .run_dir = RUN_DIR_DEFAULT,
        .pmd_threads = 1,
        .group = (gid_t)-1,
    };
    struct conf conf;
    char err[1024];
    int ready_fd = -1, status = 1;
    struct event_base *base = NULL;
    struct vswitch *sw = NULL;
    struct etcd *etcd = NULL;
    struct ctl_methods *methods = NULL;
    struct ctl_server *srv = NULL;
    struct event *sigint = NULL, *sigterm = NULL;
    bool pidfile_written = false;

    parse_args(argc, argv, &o);
    signal(SIGPIPE, SIG_IGN);

    /* A db that cannot be read stops the daemon before anything else starts,
     * and the file stays as it is. */
    if (o.db) {
        if (db_load(o.db, &conf, err, sizeof err)) {
            fprintf(stderr, "vswitchd: %s\n", err);
            return 1;
        }
    } else {
        conf_init(&conf);
    }
    if (o.default_config && conf.n_bridges == 0) {
        conf_free(&conf);
        conf_init(&conf);
        if (load_default_conf(&conf, err, sizeof err)) {
            fprintf(stderr, "vswitchd: %s\n", err);
            return 1;
        }
    }

    if (o.detach)
        ready_fd = detach_start();

    if (evthread_use_pthreads() < 0 || !(base = event_base_new())) {
        log_err("cannot create the event loop");
        goto out;
    }
    /* What needs root comes first: the run dir, the db's directory and the
     * control socket, made for the user and group vswitchd will run as. */
    if (o.have_user || o.group != (gid_t)-1)
        priv_set_owner(o.have_user ? o.user.uid : (uid_t)-1,
                       o.group != (gid_t)-1 ? o.group : o.user.gid,
                       o.group != (gid_t)-1 ? o.group_name : o.user.group);
    if (priv_prepare_dir(o.run_dir, "run dir", err, sizeof err) < 0 ||
        (o.have_user && o.db && priv_prepare_db(o.db, &o.user, err, sizeof err) < 0)) {
        log_err("%s", err);
        conf_free(&conf);
        goto out;
    }
    srv = ctl_server_create(base, o.socket, NULL, NULL, err, sizeof err);
    if (!srv) {
        log_err("%s", err);
        conf_free(&conf);
        goto out;
    }
    if (o.pidfile) {
        if (pidfile_write(o.pidfile)) {
            conf_free(&conf);
            goto out;
        }
        pidfile_written = true;
    }
    /* Before any thread starts: capabilities belong to each thread. */
    if (o.have_user) {
        int caps[8];
#ifdef HAVE_AFXDP
        bool afxdp = o.keep_afxdp || conf_has_type(&conf, PORT_TYPE_AFXDP);
#else
        bool afxdp = false;
#endif
        size_t ncaps = priv_kept_caps(afxdp, caps, 8);
        if ((afxdp && priv_prepare_xdp_lock_dir(&o.user, err, sizeof err) < 0) ||
            priv_drop(&o.user, o.group, caps, ncaps, err, sizeof err) < 0 ||
            (o.db && priv_check_db_dir(o.db, err, sizeof err) < 0)) {
            log_err("%s", err);
            conf_free(&conf);
            goto out;
        }
    }
    if (priv_clear_ambient() < 0)
        log_warn("cannot clear the ambient capabilities: %s", strerror(errno));
    priv_describe(err, sizeof err);
    log_info("running as %s", err);

    struct switch_options so = {.run_dir = o.run_dir, .pmd_threads = o.pmd_threads};
    sw = switch_create(base, &so);
    if (!sw) {
        log_err("cannot create the switch");
        conf_free(&conf);
        goto out;
    }
    if (switch_apply(sw, &conf, err, sizeof err)) {
        log_err("cannot restore the configuration from %s: %s", o.db ? o.db : "(none)", err);
        conf_free(&conf);
        goto out;
    }
    log_info("restored %zu bridge(s) and %zu port(s)%s%s", conf.n_bridges, conf.n_ports,
             o.db ? " from " : "", o.db ? o.db : "");
    if (o.etcd && !(etcd = etcd_start(base, sw, o.etcd, err, sizeof err))) {
        log_err("%s", err);
        conf_free(&conf);
        goto out;
    }
    methods = ctl_methods_create(sw, &conf, o.db);
    if (!methods) {
        log_err("out of memory");
        conf_free(&conf);
        goto out;
    }
    ctl_server_set_handler(srv, ctl_methods_call, methods);
    sigint = evsignal_new(base, SIGINT, on_signal, base);
    sigterm = evsignal_new(base, SIGTERM, on_signal, base);
    if (!sigint || !sigterm || evsignal_add(sigint, NULL) || evsignal_add(sigterm, NULL)) {
        log_err("cannot install signal handlers");
        goto out;
    }
    if (ready_fd >= 0) {
        detach_finish(ready_fd);
        ready_fd = -1;
    }
    log_info("vswitchd %s started (pid %ld)", VSWITCH_VERSION, (long)getpid());

    event_base_dispatch(base);
    status = 0;

out:
    ctl_server_destroy(srv);
    if (sigint)
        event_free(sigint);
    if (sigterm)
        event_free(sigterm);
    etcd_stop(etcd);
    if (sw)
        switch_destroy(sw);
    ctl_methods_destroy(methods);
    if (base)
        event_base_free(base);
    if (pidfile_written)
        unlink(o.pidfile);
    if (ready_fd >= 0)
        close(ready_fd); /* the waiting parent exits 1 */
    if (status == 0)
        log_info("vswitchd stopped");
    return status;
}
