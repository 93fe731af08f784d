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

int db_save(const char *path, const struct conf *c, char *err, size_t errlen)
{
    char dir[4096], tmp[4200];
    char *text = NULL;
    int fd = -1, dfd = -1, r = -1;

    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
        return fail(err, errlen, "configuration file path %.60s... is too long", path);
    char *d = dirname(dir);
    if (mkdir_parents(d) < 0)
        return fail(err, errlen, "cannot create directory %s for the configuration file: %s",
                    d, strerror(errno));
    snprintf(tmp, sizeof tmp, "%s/.%s.XXXXXX", d, strrchr(path, '/') ? strrchr(path, '/') + 1 : path);

    json_t *j = conf_to_json(c);
    text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!text)
        return fail(err, errlen, "out of memory writing %s", path);

    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        fail(err, errlen, "cannot save the configuration: cannot create a file in %s: %s", d,
             strerror(errno));
        goto out;
    }
    if (fchmod(fd, 0640) < 0 || write_all(fd, text, strlen(text)) < 0 ||
        write_all(fd, "\n", 1) < 0 || fsync(fd) < 0) {
        fail(err, errlen, "cannot save the configuration: writing %s failed: %s", tmp,
             strerror(errno));
        goto out_unlink;
    }
    if (close(fd) < 0) {
        fd = -1;
        fail(err, errlen, "cannot save the configuration: writing %s failed: %s", tmp,
             strerror(errno));
        goto out_unlink;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        fail(err, errlen, "cannot save the configuration: cannot replace %s: %s", path,
             strerror(errno));
        goto out_unlink;
    }
    /* The rename is durable only once the directory is. */
    dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) < 0) {
        fail(err, errlen, "cannot save the configuration: syncing directory %s failed: %s",
             d, strerror(errno));
        goto out;
    }
    r = 0;
    goto out;
out_unlink:
    unlink(tmp);
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    free(text);
    return r;
}
