/* Listening unix socket files for vswitchd and the VMM (vhost-user servers,
 * the control and API sockets): created with their final mode, so there is
 * no moment in which the file is wider, then given the process-wide owner
 * and group that --user/--group asked for. libc only. */
#ifndef VHOST_UNIX_SOCK_H
#define VHOST_UNIX_SOCK_H

#include <sys/types.h>

/* Owner and group of the socket files bound from now on; (uid_t)-1 and
 * (gid_t)-1 leave them as the process makes them. Only a root process can
 * give a file away; any process can give it a group it is a member of. */
void unix_sock_set_owner(uid_t uid, gid_t gid);
gid_t unix_sock_group(void);

enum unix_sock_step { UNIX_SOCK_BIND, UNIX_SOCK_OWNER, UNIX_SOCK_CHECK };

/* Binds fd (AF_UNIX) to path with mode (0600 or 0660), then the owner and
 * group. 0, or -errno with *failed set to the step that failed (the file is
 * removed again if bind made it). */
int unix_sock_bind(int fd, const char *path, mode_t mode, enum unix_sock_step *failed);

#endif
