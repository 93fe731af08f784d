/* umask is per process: while bind runs here, another thread that creates a
 * file gets a narrower mode, never a wider one. */
#include "unix_sock.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static uid_t sock_uid = (uid_t)-1;
static gid_t sock_gid = (gid_t)-1;

void unix_sock_set_owner(uid_t uid, gid_t gid)
{
    sock_uid = uid;
    sock_gid = gid;
}

gid_t unix_sock_group(void)
{
    return sock_gid;
}

int unix_sock_bind(int fd, const char *path, mode_t mode, enum unix_sock_step *failed)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    int e;

    *failed = UNIX_SOCK_BIND;
    if (!*path || strlen(path) >= sizeof sa.sun_path)
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    mode_t old = umask(~mode & 0777);
    int r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    e = errno;
    umask(old);
    if (r < 0)
        return -e;
    uid_t uid = geteuid() == 0 ? sock_uid : (uid_t)-1;
    *failed = UNIX_SOCK_OWNER;
    if ((uid != (uid_t)-1 || sock_gid != (gid_t)-1) &&
        fchownat(AT_FDCWD, path, uid, sock_gid, AT_SYMLINK_NOFOLLOW) < 0)
        goto fail;
    *failed = UNIX_SOCK_CHECK;
    if (lstat(path, &st) < 0)
        goto fail;
    if (!S_ISSOCK(st.st_mode) || (st.st_mode & 07777) != mode) {
        errno = EPERM;
        goto fail;
    }
    return 0;
fail:
    e = errno;
    unlink(path);
    return -e;
}
