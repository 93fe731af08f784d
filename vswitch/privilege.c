/* Capabilities are per thread in Linux, so priv_drop() runs while vswitchd
 * is still one thread; the sockets it needs root for are bound before. */
#include "privilege.h"

#include <cap-ng.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "unix_sock.h"

#define PRIV_GROUPS_MAX 256

static uid_t owner_uid = (uid_t)-1;
static gid_t owner_gid = (gid_t)-1;
static char owner_group[PRIV_NAME_MAX];

/* A decimal id, or -1 when s is not one. */
static long parse_id(const char *s)
{
    char *end;
    if (!*s || *s == '-' || *s == '+')
        return -1;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v >= (unsigned long)INT_MAX)
        return -1;
    return (long)v;
}

static const struct group *lookup_group(const char *s)
{
    long id = parse_id(s);
    return id >= 0 ? getgrgid((gid_t)id) : getgrnam(s);
}

int priv_parse_group(const char *arg, gid_t *gid, char *err, size_t errlen)
{
    if (!*arg)
        return conf_fail(err, errlen, -1, "--group needs a group name");
    const struct group *g = lookup_group(arg);
    if (!g)
        return conf_fail(err, errlen, -1, "--group %s: no such group", arg);
    *gid = g->gr_gid;
    return 0;
}

int priv_parse_user(const char *arg, struct priv_user *u, char *err, size_t errlen)
{
    char name[PRIV_NAME_MAX];
    const char *colon = strchr(arg, ':');
    size_t n = colon ? (size_t)(colon - arg) : strlen(arg);

    memset(u, 0, sizeof *u);
    if (n == 0 || n >= sizeof name || (colon && !colon[1]))
        return conf_fail(err, errlen, -1, "--user must be USER or USER:GROUP, not \"%s\"",
                         arg);
    memcpy(name, arg, n);
    name[n] = '\0';
    long id = parse_id(name);
    const struct passwd *pw = id >= 0 ? getpwuid((uid_t)id) : getpwnam(name);
    if (!pw)
        return conf_fail(err, errlen, -1, "--user %s: no such user", name);
    if (pw->pw_uid == 0)
        return conf_fail(err, errlen, -1,
                         "--user %s: that is root; --user names the unprivileged account "
                         "vswitchd switches to",
                         name);
    u->uid = pw->pw_uid;
    u->gid = pw->pw_gid;
    snprintf(u->name, sizeof u->name, "%s", pw->pw_name);
    if (colon) {
        const struct group *g = lookup_group(colon + 1);
        if (!g)
            return conf_fail(err, errlen, -1, "--user %s: no such group %s", arg,
                             colon + 1);
        if (g->gr_gid == 0)
            return conf_fail(err, errlen, -1, "--user %s: group %s is root's group", arg,
                             g->gr_name);
        u->gid = g->gr_gid;
        snprintf(u->group, sizeof u->group, "%s", g->gr_name);
    } else {
        const struct group *g = getgrgid(u->gid);
        if (g)
            snprintf(u->group, sizeof u->group, "%s", g->gr_name);
        else
            snprintf(u->group, sizeof u->group, "%lu", (unsigned long)u->gid);
    }
    return 0;
}

void priv_set_owner(uid_t uid, gid_t gid, const char *group_name)
{
    owner_uid = uid;
    owner_gid = gid;
    unix_sock_set_owner(uid, gid);
    snprintf(owner_group, sizeof owner_group, "%s", group_name ? group_name : "");
}

int priv_bind_unix(int fd, const char *path, const char *noun, char *err, size_t errlen)
{
    enum unix_sock_step step;
    int r = unix_sock_bind(fd, path, 0660, &step);
    if (r == 0)
        return 0;
    if (r == -ENAMETOOLONG)
        return conf_fail(err, errlen, -1,
                         "%s path %.60s must be 1 to %zu characters long", noun, path,
                         sizeof((struct sockaddr_un *)0)->sun_path - 1);
    if (step == UNIX_SOCK_BIND)
        return conf_fail(err, errlen, -1, "cannot create %s %s: %s", noun, path,
                         strerror(-r));
    if (step == UNIX_SOCK_OWNER)
        return conf_fail(err, errlen, -1, "cannot give %s %s to group %s: %s", noun, path,
                         owner_group, strerror(-r));
    return conf_fail(err, errlen, -1,
                     "%s %s did not come out as a socket of mode 0660: %s", noun, path,
                     strerror(-r));
}

static bool shared_dir(const struct stat *st)
{
    return (st->st_mode & S_IWOTH) || (st->st_mode & S_ISVTX);
}

int priv_prepare_dir(const char *dir, const char *what, char *err, size_t errlen)
{
    bool owned = owner_uid != (uid_t)-1 || owner_gid != (gid_t)-1;
    struct stat st;

    if (!owned) {
        /* as before --user/--group: made if possible, else when a port needs it */
        mkdir(dir, 0755);
        return 0;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return conf_fail(err, errlen, -1, "cannot create %s %s: %s", what, dir,
                         strerror(errno));
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return conf_fail(err, errlen, -1, "cannot open %s %s: %s", what, dir,
                         strerror(errno));
    if (fstat(fd, &st) < 0) {
        conf_fail(err, errlen, -1, "cannot open %s %s: %s", what, dir, strerror(errno));
        goto fail_close;
    }
    if (shared_dir(&st)) {
        conf_fail(
            err, errlen, -1,
            "%s %s is shared with every user (world-writable or sticky); give vswitchd a "
            "directory of its own",
            what, dir);
        goto fail_close;
    }
    uid_t uid = geteuid() == 0 ? owner_uid : (uid_t)-1;
    if ((uid != (uid_t)-1 || owner_gid != (gid_t)-1) && fchown(fd, uid, owner_gid) < 0) {
        conf_fail(err, errlen, -1, "cannot give %s %s to group %s: %s", what, dir,
                  owner_group, strerror(errno));
        goto fail_close;
    }
    if (fchmod(fd, owner_gid != (gid_t)-1 ? 02770 : 0700) < 0) {
        conf_fail(err, errlen, -1, "cannot set the mode of %s %s: %s", what, dir,
                  strerror(errno));
        goto fail_close;
    }
    close(fd);
    return 0;
fail_close:
    close(fd);
    return -1;
}

static int db_dir(const char *db, char *dir, size_t len)
{
    if (snprintf(dir, len, "%s", db) >= (int)len)
        return -1;
    char *d = dirname(dir);
    if (d != dir)
        memmove(dir, d, strlen(d) + 1);
    return 0;
}

int priv_prepare_db(const char *db, const struct priv_user *u, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    struct stat st;

    if (db_dir(db, dir, sizeof dir) < 0)
        return conf_fail(err, errlen, -1, "db path %.60s... is too long", db);
    if (stat(dir, &st) < 0) {
        if (errno != ENOENT)
            return conf_fail(err, errlen, -1, "db directory %s: %s", dir,
                             strerror(errno));
        /* made here for u; its parents as db_save would make them */
        char parent[PATH_MAX];
        snprintf(parent, sizeof parent, "%s", dir);
        for (char *p = parent + 1; *p; p++) {
            if (*p != '/')
                continue;
            *p = '\0';
            if (mkdir(parent, 0755) < 0 && errno != EEXIST)
                return conf_fail(err, errlen, -1, "cannot create %s: %s", parent,
                                 strerror(errno));
            *p = '/';
        }
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
            return conf_fail(err, errlen, -1, "cannot create db directory %s: %s", dir,
                             strerror(errno));
        if (chown(dir, u->uid, u->gid) < 0 || chmod(dir, 0750) < 0)
            return conf_fail(err, errlen, -1, "cannot give db directory %s to %s: %s",
                             dir, u->name, strerror(errno));
    }
    if (lstat(db, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid != u->uid &&
        lchown(db, u->uid, u->gid) < 0)
        return conf_fail(err, errlen, -1, "cannot give db %s to %s: %s", db, u->name,
                         strerror(errno));
    return 0;
}

int priv_check_db_dir(const char *db, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    struct stat st;

    if (db_dir(db, dir, sizeof dir) < 0)
        return conf_fail(err, errlen, -1, "db path %.60s... is too long", db);
    if (access(dir, W_OK | X_OK) == 0)
        return 0;
    int e = errno;
    if (stat(dir, &st) < 0)
        return conf_fail(err, errlen, -1, "db directory %s: %s", dir, strerror(e));
    const struct passwd *pw = getpwuid(getuid());
    const char *me = pw ? pw->pw_name : "this user";
    return conf_fail(
        err, errlen, -1,
        "%s cannot save the db in %s (owner uid %lu, mode %04o): the db is saved by "
        "replacing the file in its directory; chown the directory to %s or give "
        "another --db",
        me, dir, (unsigned long)st.st_uid, (unsigned)(st.st_mode & 07777), me);
}

size_t priv_kept_caps(bool afxdp, int caps[], size_t max)
{
    static const int base[] = {CAP_NET_ADMIN, CAP_NET_RAW, CAP_IPC_LOCK};
    /* Measured with libxdp 1.3 on Linux 6.x: CAP_BPF loads the programs,
     * CAP_PERFMON lets the verifier pass the dispatcher (EACCES without it),
     * CAP_SYS_ADMIN is what BPF_PROG_GET_FD_BY_ID asks for when libxdp looks
     * for a program already on the interface. */
    static const int xdp[] = {CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN};
    size_t n = 0;
    for (size_t i = 0; i < sizeof base / sizeof base[0] && n < max; i++)
        caps[n++] = base[i];
    for (size_t i = 0; afxdp && i < sizeof xdp / sizeof xdp[0] && n < max; i++)
        caps[n++] = xdp[i];
    return n;
}

int priv_prepare_xdp_lock_dir(const struct priv_user *u, char *err, size_t errlen)
{
    /* libxdp serialises attach and detach with a lock in this directory and
     * makes it root's, 0700; without it a detach as USER fails and leaves the
     * program on the interface. Root keeps its access to it in any case. */
    static const char dir[] = "/run/xdp";
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return conf_fail(err, errlen, -1, "cannot create libxdp's lock directory %s: %s",
                         dir, strerror(errno));
    if (lchown(dir, u->uid, (gid_t)-1) < 0)
        return conf_fail(err, errlen, -1,
                         "cannot give libxdp's lock directory %s to %s: %s", dir, u->name,
                         strerror(errno));
    return 0;
}

/* USER's groups (as initgroups would set them) plus extra. */
static int user_groups(const struct priv_user *u, gid_t extra, gid_t *groups, int *n)
{
    int max = *n - 1;
    if (getgrouplist(u->name, u->gid, groups, &max) < 0)
        return -1;
    bool have = extra == (gid_t)-1;
    for (int i = 0; i < max && !have; i++)
        have = groups[i] == extra;
    if (!have)
        groups[max++] = extra;
    *n = max;
    return 0;
}

int priv_drop(const struct priv_user *u, gid_t extra_gid, const int caps[], size_t ncaps,
              char *err, size_t errlen)
{
    gid_t groups[PRIV_GROUPS_MAX];
    int ngroups = PRIV_GROUPS_MAX;

    if (geteuid() != 0)
        return conf_fail(
            err, errlen, -1,
            "--user %s needs vswitchd to start as root (it runs as uid %lu); "
            "started as that user already (e.g. with ambient capabilities), leave "
            "--user out",
            u->name, (unsigned long)geteuid());
    if (user_groups(u, extra_gid, groups, &ngroups) < 0)
        return conf_fail(err, errlen, -1, "--user %s: more than %d groups", u->name,
                         PRIV_GROUPS_MAX - 1);
    if (setgroups((size_t)ngroups, groups) < 0)
        return conf_fail(err, errlen, -1, "cannot set the groups of %s: %s", u->name,
                         strerror(errno));

    capng_clear(CAPNG_SELECT_ALL);
    for (size_t i = 0; i < ncaps; i++)
        if (capng_update(CAPNG_ADD,
                         CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET,
                         (unsigned)caps[i]) < 0)
            return conf_fail(err, errlen, -1, "capability %d is unknown to libcap-ng",
                             caps[i]);
    /* The bounding set first, while CAP_SETPCAP is still there: afterwards
     * not even an exec of a file with capabilities can bring one back. */
    if (capng_apply(CAPNG_SELECT_BOUNDS) < 0)
        return conf_fail(err, errlen, -1, "cannot reduce the capability bounding set: %s",
                         strerror(errno));
    /* uid 0 is nothing special from here on (SECBIT_NOROOT, locked) and no
     * exec can gain privileges (no_new_privs). */
    if (capng_lock() < 0)
        return conf_fail(err, errlen, -1, "cannot lock the securebits: %s",
                         strerror(errno));
    int r = capng_change_id((int)u->uid, (int)u->gid, CAPNG_CLEAR_AMBIENT);
    if (r < 0)
        return conf_fail(err, errlen, -1,
                         "cannot switch to user %s (libcap-ng error %d): %s", u->name, r,
                         strerror(errno));
    /* Proof there is no way back. */
    if (setuid(0) == 0 || getuid() != u->uid || geteuid() != u->uid ||
        getegid() != u->gid)
        return conf_fail(err, errlen, -1, "switching to user %s did not take", u->name);
    return 0;
}

int priv_clear_ambient(void)
{
    return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
}

void priv_describe(char *buf, size_t len)
{
    const struct passwd *pw = getpwuid(geteuid());
    capng_clear(CAPNG_SELECT_ALL);
    capng_get_caps_process();
    char *caps = capng_print_caps_text(CAPNG_PRINT_BUFFER, CAPNG_EFFECTIVE);
    snprintf(buf, len, "uid %lu (%s), gid %lu, capabilities %s", (unsigned long)geteuid(),
             pw ? pw->pw_name : "?", (unsigned long)getegid(),
             caps && *caps ? caps : "none");
    free(caps);
}
