/* One line per event. Each line is formatted into a local buffer and written
 * with a single write(2), so lines from PMD threads never interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_threshold = LOG_LVL_INFO;
static atomic_bool log_syslog;

static const char *const level_names[] = {
    [LOG_LVL_ERR] = "err",
    [LOG_LVL_WARN] = "warn",
    [LOG_LVL_INFO] = "info",
    [LOG_LVL_DEBUG] = "debug",
};

void log_set_level(enum log_level lvl)
{
    atomic_store(&log_threshold, (int)lvl);
}

int log_level_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
        if (!strcasecmp(name, level_names[i]))
            return (int)i;
    if (!strcasecmp(name, "error"))
        return LOG_LVL_ERR;
    if (!strcasecmp(name, "warning"))
        return LOG_LVL_WARN;
    return -1;
}

const char *log_level_name(enum log_level lvl)
{
    return (unsigned)lvl < sizeof level_names / sizeof level_names[0] ? level_names[lvl]
                                                                       : "?";
}

void log_to_syslog(const char *ident)
{
    openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
    atomic_store(&log_syslog, true);
}

void vlog(enum log_level lvl, const char *fmt, ...)
{
    static const int syslog_prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
    char line[1024];
    va_list ap;

    if ((int)lvl > atomic_load(&log_threshold))
        return;

    if (atomic_load(&log_syslog)) {
        va_start(ap, fmt);
        vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        syslog(syslog_prio[lvl], "%s", line);
        return;
    }

    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    n += snprintf(line + n, sizeof line - (size_t)n, ".%03ldZ %-5s ", ts.tv_nsec / 1000000,
                  log_level_name(lvl));
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += m;
    if ((size_t)n > sizeof line - 2) {
        n = (int)sizeof line - 5;
        memcpy(line + n, "...", 3);
        n += 3;
    }
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
