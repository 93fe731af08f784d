/* Stage 3: the MAC learning table of one bridge, keyed by (VLAN, MAC).
 *
 * Written by the PMD threads while they forward, read by the control thread
 * for fdb-show: no locks. Each entry is a few independently atomic words; a
 * reader may see an entry mid-update, which for a learning table only means a
 * frame flooded or sent to the previous port once. A fixed table (set-assoc,
 * 4 ways, replacing the stalest entry when a set is full) bounds memory and
 * never allocates on the datapath. */
#ifndef VSWITCH_FDB_H
#define VSWITCH_FDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FDB_WAYS 4
#define FDB_SETS 4096 /* 16384 entries per bridge */

struct fdb_entry {
    uint64_t key;  /* 1<<63 | vid << 48 | mac; 0 = empty */
    uint32_t seen; /* seconds (monotonic) of the last frame from this MAC */
    uint16_t port;
    uint16_t pad;
};

struct fdb {
    unsigned ageing; /* seconds; 0: never */
    uint64_t learned;
    uint64_t moves;
    uint64_t evictions;
    struct fdb_entry sets[FDB_SETS][FDB_WAYS];
};

struct fdb *fdb_create(unsigned ageing);
void fdb_destroy(struct fdb *f);
void fdb_set_ageing(struct fdb *f, unsigned ageing);

/* Records that (vid, mac) was seen on port at time now. */
void fdb_learn(struct fdb *f, uint16_t vid, const uint8_t *mac, uint16_t port,
               uint32_t now);

/* The port (vid, mac) was last seen on, or -1 if unknown or aged out. */
int fdb_lookup(struct fdb *f, uint16_t vid, const uint8_t *mac, uint32_t now);

void fdb_flush(struct fdb *f);
void fdb_flush_port(struct fdb *f, uint16_t port);
/* Removes entries older than the ageing time; returns how many. */
size_t fdb_expire(struct fdb *f, uint32_t now);

typedef void (*fdb_dump_cb)(void *ctx, uint16_t vid, const uint8_t *mac, uint16_t port,
                            uint32_t age);
/* Calls cb for every live entry; vid < 0: all VLANs. Returns the count. */
size_t fdb_dump(struct fdb *f, int vid, uint32_t now, fdb_dump_cb cb, void *ctx);

/* Seconds on the monotonic clock, as fdb times are kept. */
uint32_t fdb_now(void);

#endif
