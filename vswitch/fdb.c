#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fdb.h"

#define FDB_VALID (1ULL << 63)

static inline uint64_t fdb_key(uint16_t vid, const uint8_t *mac)
{
    uint64_t m = (uint64_t)mac[0] << 40 | (uint64_t)mac[1] << 32 |
                 (uint64_t)mac[2] << 24 | (uint64_t)mac[3] << 16 |
                 (uint64_t)mac[4] << 8 | mac[5];
    return FDB_VALID | (uint64_t)(vid & 0xfff) << 48 | m;
}

static inline struct fdb_entry *fdb_set(struct fdb *f, uint64_t key)
{
    uint64_t h = key * 0x9e3779b97f4a7c15ULL;
    return f->sets[h >> (64 - 12)];
}

static inline uint64_t ld64(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline bool fdb_expired(const struct fdb *f, uint32_t seen, uint32_t now)
{
    return f->ageing && now - seen > f->ageing;
}

struct fdb *fdb_create(unsigned ageing)
{
    struct fdb *f = calloc(1, sizeof(*f));

    if (f)
        f->ageing = ageing;
    return f;
}

void fdb_destroy(struct fdb *f)
{
    free(f);
}

void fdb_set_ageing(struct fdb *f, unsigned ageing)
{
    __atomic_store_n(&f->ageing, ageing, __ATOMIC_RELAXED);
}

void fdb_learn(struct fdb *f, uint16_t vid, const uint8_t *mac, uint16_t port,
               uint32_t now)
{
    uint64_t key = fdb_key(vid, mac);
    struct fdb_entry *set = fdb_set(f, key);
    struct fdb_entry *victim = NULL;

    for (int i = 0; i < FDB_WAYS; i++) {
        struct fdb_entry *e = &set[i];
        uint64_t k = ld64(&e->key);

        if (k == key) {
            if (e->port != port) {
                __atomic_store_n(&e->port, port, __ATOMIC_RELAXED);
                __atomic_fetch_add(&f->moves, 1, __ATOMIC_RELAXED);
            }
            if (e->seen != now)
                __atomic_store_n(&e->seen, now, __ATOMIC_RELAXED);
            return;
        }
        if (!k) {
            if (!victim || victim->key)
                victim = e;
        } else if (!victim || (victim->key && e->seen < victim->seen)) {
            victim = e;
        }
    }
    if (victim->key && !fdb_expired(f, victim->seen, now))
        __atomic_fetch_add(&f->evictions, 1, __ATOMIC_RELAXED);
    /* Port and time first, key last: a reader that sees the key sees them. */
    __atomic_store_n(&victim->key, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&victim->port, port, __ATOMIC_RELAXED);
    __atomic_store_n(&victim->seen, now, __ATOMIC_RELAXED);
    __atomic_store_n(&victim->key, key, __ATOMIC_RELEASE);
    __atomic_fetch_add(&f->learned, 1, __ATOMIC_RELAXED);
}

int fdb_lookup(struct fdb *f, uint16_t vid, const uint8_t *mac, uint32_t now)
{
    uint64_t key = fdb_key(vid, mac);
    struct fdb_entry *set = fdb_set(f, key);

    for (int i = 0; i < FDB_WAYS; i++) {
        if (ld64(&set[i].key) == key) {
            uint16_t port = __atomic_load_n(&set[i].port, __ATOMIC_RELAXED);
            uint32_t seen = __atomic_load_n(&set[i].seen, __ATOMIC_RELAXED);
            if (fdb_expired(f, seen, now))
                return -1;
            return port;
        }
    }
    return -1;
}

void fdb_flush(struct fdb *f)
{
    for (int s = 0; s < FDB_SETS; s++)
        for (int i = 0; i < FDB_WAYS; i++)
            __atomic_store_n(&f->sets[s][i].key, 0, __ATOMIC_RELEASE);
}

void fdb_flush_port(struct fdb *f, uint16_t port)
{
    for (int s = 0; s < FDB_SETS; s++)
        for (int i = 0; i < FDB_WAYS; i++)
            if (f->sets[s][i].port == port)
                __atomic_store_n(&f->sets[s][i].key, 0, __ATOMIC_RELEASE);
}

size_t fdb_expire(struct fdb *f, uint32_t now)
{
    size_t n = 0;

    for (int s = 0; s < FDB_SETS; s++) {
        for (int i = 0; i < FDB_WAYS; i++) {
            struct fdb_entry *e = &f->sets[s][i];
            if (ld64(&e->key) && fdb_expired(f, e->seen, now)) {
                __atomic_store_n(&e->key, 0, __ATOMIC_RELEASE);
                n++;
            }
        }
    }
    return n;
}

size_t fdb_dump(struct fdb *f, int vid, uint32_t now, fdb_dump_cb cb, void *ctx)
{
    size_t n = 0;

    for (int s = 0; s < FDB_SETS; s++) {
        for (int i = 0; i < FDB_WAYS; i++) {
            struct fdb_entry *e = &f->sets[s][i];
            uint64_t k = ld64(&e->key);
            uint8_t mac[6];
            uint16_t v;

            if (!k)
                continue;
            uint32_t seen = __atomic_load_n(&e->seen, __ATOMIC_RELAXED);
            uint16_t port = __atomic_load_n(&e->port, __ATOMIC_RELAXED);
            if (fdb_expired(f, seen, now))
                continue;
            v = (k >> 48) & 0xfff;
            if (vid >= 0 && v != vid)
                continue;
            for (int b = 0; b < 6; b++)
                mac[b] = k >> (40 - 8 * b);
            cb(ctx, v, mac, port, now - seen);
            n++;
        }
    }
    return n;
}

uint32_t fdb_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint32_t)ts.tv_sec;
}
