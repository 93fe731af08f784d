/* Least privilege for vswitchd: who owns the sockets and directories it
 * creates (--group, --user) and the one-way switch from root to an
 * unprivileged user that keeps only the capabilities the port types need.
 * See vswitchd(8), PRIVILEGES. */
#ifndef VSWITCH_PRIVILEGE_H
#define VSWITCH_PRIVILEGE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define PRIV_NAME_MAX 64

struct priv_user {
    uid_t uid;
    gid_t gid; /* USER's group, or GROUP of USER:GROUP */
    char name[PRIV_NAME_MAX];
    char group[PRIV_NAME_MAX];
};

/* USER[:GROUP], names or numeric ids of existing, non-root accounts.
 * 0, or -1 and one sentence in err. */
int priv_parse_user(const char *arg, struct priv_user *u, char *err, size_t errlen);

/* An existing group, by name or number. */
int priv_parse_group(const char *arg, gid_t *gid, char *err, size_t errlen);

/* From now on, sockets (priv_bind_unix) and directories (priv_prepare_dir)
 * are given this owner and group; (uid_t)-1 / (gid_t)-1 leave them as the
 * process makes them. group_name is for messages. */
void priv_set_owner(uid_t uid, gid_t gid, const char *group_name);

/* Binds fd (AF_UNIX) to path. The socket file exists only as 0660 (never
 * wider) and then gets the configured owner and group; any failure is
 * reported (noun names the socket in the sentence) and the file removed. */
int priv_bind_unix(int fd, const char *path, const char *noun, char *err, size_t errlen);

/* A directory of vswitchd's own (the run dir): created if missing; with an
 * owner or group configured, given them and mode 2770 (setgid, so sockets
 * made in it inherit the group). A world-writable directory is refused. */
int priv_prepare_dir(const char *dir, const char *what, char *err, size_t errlen);

/* The db file and its directory before the switch to u: a missing directory
 * is created owned by u, an existing db file is given to u. Whether u can
 * save there is checked by priv_check_db_dir() after the switch. */
int priv_prepare_db(const char *db, const struct priv_user *u, char *err, size_t errlen);
int priv_check_db_dir(const char *db, char *err, size_t errlen);

/* The capabilities vswitchd keeps: CAP_NET_ADMIN (tap, internal, addresses,
 * XDP attach), CAP_NET_RAW (VXLAN's raw socket, AF_XDP sockets), CAP_IPC_LOCK
 * (AF_XDP UMEM and DPDK memory pinned beyond RLIMIT_MEMLOCK); with afxdp also
 * CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN, which libxdp needs to load and find
 * its XDP programs. Returns how many were written to caps. */
size_t priv_kept_caps(bool afxdp, int caps[], size_t max);

/* With afxdp under --user: libxdp's lock directory (/run/xdp) given to u. */
int priv_prepare_xdp_lock_dir(const struct priv_user *u, char *err, size_t errlen);

/* Switches uid, gid and supplementary groups (USER's, plus extra_gid unless
 * (gid_t)-1) to u with libcap-ng, keeping caps[] in the effective, permitted
 * and bounding sets and nothing else; securebits locked, no_new_privs set.
 * Must run before any thread starts (capabilities are per thread). */
int priv_drop(const struct priv_user *u, gid_t extra_gid, const int caps[], size_t ncaps,
              char *err, size_t errlen);

/* Started by an unprivileged user with ambient capabilities (systemd's
 * AmbientCapabilities=, setpriv --ambient-caps): they stay effective, but
 * nothing vswitchd might exec inherits them. Per thread, like priv_drop. */
int priv_clear_ambient(void);

/* "uid 998 (vswitch), gid 998, capabilities net_admin,net_raw" for the log. */
void priv_describe(char *buf, size_t len);

#endif
