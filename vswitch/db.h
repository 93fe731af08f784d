/* The configuration file (--db PATH): the conf as JSON (conf_to_json), written
 * atomically after every change that succeeded. Learned state is not kept. */
#ifndef VSWITCH_DB_H
#define VSWITCH_DB_H

#include <stddef.h>

#include "conf.h"

/* Reads PATH into *c (which is overwritten, not freed). A missing file is an
 * empty configuration. An unreadable, empty, truncated or invalid file is
 * refused: -1 and a sentence naming the file and the problem; the file is
 * never modified. */
int db_load(const char *path, struct conf *c, char *err, size_t errlen);

/* Writes c to PATH: a temporary file in the same directory, fsync, rename over
 * PATH, fsync of the directory (created if missing). On any failure PATH keeps
 * its old contents, the temporary file is removed, and -1 comes back with a
 * sentence. */
int db_save(const char *path, const struct conf *c, char *err, size_t errlen);

#endif
