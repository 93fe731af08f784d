/* Logging for the daemon: one line per event, to stderr (or syslog when
 * detached), with a level threshold set by --log-level. */
#ifndef VSWITCH_LOG_H
#define VSWITCH_LOG_H

enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_set_level(enum log_level lvl);
int log_level_from_name(const char *name); /* -1 if unknown */
const char *log_level_name(enum log_level lvl);
/* From now on lines go to syslog (facility daemon) instead of stderr. */
void log_to_syslog(const char *ident);
void vlog(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)   vlog(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...)  vlog(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  vlog(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) vlog(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
