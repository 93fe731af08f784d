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

/* db_save in two steps, so a change can be written before it is applied:
 * db_stage writes and syncs the temporary file (where a full disk or a quota
 * shows), db_commit renames it over PATH and syncs the directory, db_abort
 * removes it. After a failed db_stage or db_commit (-1) nothing is left to
 * abort, and PATH keeps its old contents; db_commit returns 1 (and a sentence)
 * when PATH was replaced but the directory could not be synced. */
struct db_staged {
    const char *path;
    char dir[4096];
    char tmp[4200]; /* "" when nothing is staged */
};
int db_stage(const char *path, const struct conf *c, struct db_staged *st, char *err,
             size_t errlen);
int db_commit(struct db_staged *st, char *err, size_t errlen);
void db_abort(struct db_staged *st);

#endif
