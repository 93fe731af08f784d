/* Loading refuses anything it cannot fully understand rather than start with
 * a partial configuration and then overwrite the file with it. */
#include "db.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DB_SIZE_MAX (64 * 1024 * 1024)

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

int db_load(const char *path, struct conf *c, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    struct stat st;
    int r = -1;
    json_error_t jerr;
    json_t *j = NULL;
    char e[512];

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            conf_init(c);
            return 0;
        }
        return fail(err, errlen, "cannot read configuration file %s: %s", path,
                    strerror(errno));
    }
    if (fstat(fd, &st) < 0) {
        fail(err, errlen, "cannot read configuration file %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        fail(err, errlen, "configuration file %s is not a regular file", path);
        goto out;
    }
    if (st.st_size > DB_SIZE_MAX) {
        fail(err, errlen, "configuration file %s is larger than %d MiB; refusing to load it",
             path, DB_SIZE_MAX >> 20);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        fail(err, errlen, "out of memory reading %s", path);
        goto out;
    }
    while (len < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fail(err, errlen, "cannot read configuration file %s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len == 0) {
        fail(err, errlen,
             "configuration file %s is empty (a crash while it was written elsewhere?); "
             "restore it or remove it to start with no configuration",
             path);
        goto out;
    }
    j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        fail(err, errlen,
             "configuration file %s is not valid JSON (line %d, column %d: %s); fix it or "
             "remove it to start with no configuration",
             path, jerr.line, jerr.column, jerr.text);
        goto out;
    }
    if (conf_from_json(c, j, e, sizeof e)) {
        fail(err, errlen,
             "configuration file %s is not a valid vswitch configuration: %s; fix it or "
             "remove it to start with no configuration",
             path, e);
        goto out;
    }
    r = 0;
out:
    json_decref(j);
    free(buf);
    close(fd);
    return r;
}

static int mkdir_parents(const char *dir)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", dir) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
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

static int write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

int db_stage(const char *path, const struct conf *c, struct db_staged *st, char *err,
             size_t errlen)
{
    char *text = NULL;
    int fd = -1, r = -1;

    st->path = path;
    st->tmp[0] = '\0';
    if (snprintf(st->dir, sizeof st->dir, "%s", path) >= (int)sizeof st->dir)
        return fail(err, errlen, "configuration file path %.60s... is too long", path);
    char *d = dirname(st->dir);
    if (d != st->dir)
        memmove(st->dir, d, strlen(d) + 1);
    if (mkdir_parents(st->dir) < 0)
        return fail(err, errlen, "cannot create directory %s for the configuration file: %s",
                    st->dir, strerror(errno));
    snprintf(st->tmp, sizeof st->tmp, "%s/.%s.XXXXXX", st->dir,
             strrchr(path, '/') ? strrchr(path, '/') + 1 : path);

    json_t *j = conf_to_json(c);
    text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!text) {
        st->tmp[0] = '\0';
        return fail(err, errlen, "out of memory writing %s", path);
    }
    fd = mkostemp(st->tmp, O_CLOEXEC);
    if (fd < 0) {
        fail(err, errlen, "cannot save the configuration to %s: %s (creating a file in %s)",
             path, strerror(errno), st->dir);
        st->tmp[0] = '\0';
        goto out;
    }
    /* Every block the file needs is allocated here, before anything runs the
     * change: a full disk fails now, not after the switch has changed. */
    if (fchmod(fd, 0640) < 0 || write_all(fd, text, strlen(text)) < 0 ||
        write_all(fd, "\n", 1) < 0 || fsync(fd) < 0) {
        fail(err, errlen, "cannot save the configuration to %s: %s", path, strerror(errno));
        goto out_unlink;
    }
    r = close(fd);
    fd = -1;
    if (r < 0) {
        fail(err, errlen, "cannot save the configuration to %s: %s", path, strerror(errno));
        goto out_unlink;
    }
    goto out;
out_unlink:
    unlink(st->tmp);
    st->tmp[0] = '\0';
out:
    if (fd >= 0)
        close(fd);
    free(text);
    return r;
}

int db_commit(struct db_staged *st, char *err, size_t errlen)
{
    int dfd, r;

    if (rename(st->tmp, st->path) < 0) {
        fail(err, errlen, "cannot save the configuration: cannot replace %s: %s", st->path,
             strerror(errno));
        unlink(st->tmp);
        st->tmp[0] = '\0';
        return -1;
    }
    st->tmp[0] = '\0';
    /* The rename is durable only once the directory is. */
    dfd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) < 0) {
        fail(err, errlen, "saved %s, but syncing directory %s failed: %s", st->path, st->dir,
             strerror(errno));
        r = 1;
    } else
        r = 0;
    if (dfd >= 0)
        close(dfd);
    return r;
}

void db_abort(struct db_staged *st)
{
    if (st->tmp[0])
        unlink(st->tmp);
    st->tmp[0] = '\0';
}

int db_save(const char *path, const struct conf *c, char *err, size_t errlen)
{
    struct db_staged st;
    if (db_stage(path, c, &st, err, errlen))
        return -1;
    return db_commit(&st, err, errlen) ? -1 : 0;
}
