/* The 32-bit hash the datapath's tables and flow spreading share: MurmurHash3's
 * block mix and finalizer, one word at a time. */
#ifndef VSWITCH_HASH_H
#define VSWITCH_HASH_H

#include <stdint.h>

static inline uint32_t hash_mix(uint32_t h, uint32_t v)
{
    v *= 0xcc9e2d51u;
    v = v << 15 | v >> 17;
    v *= 0x1b873593u;
    h ^= v;
    h = h << 13 | h >> 19;
    return h * 5 + 0xe6546b64u;
}

static inline uint32_t hash_finish(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    return h ^ (h >> 16);
}

#endif
