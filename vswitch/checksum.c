/* The Internet checksum (RFC 1071) and its incremental update (RFC 1624),
 * used by NAT so that a rewrite touches only the words it changes. All values
 * are kept in network byte order as they sit in the packet: one's complement
 * arithmetic is byte-order independent as long as it is consistent. */
#include <string.h>

#include "l3.h"

uint32_t csum_partial(const void *data, size_t len, uint32_t sum)
{
    const uint8_t *b = data;
    uint64_t s = sum;

    while (len >= 2) {
        uint16_t w;
        memcpy(&w, b, 2);
        s += w;
        b += 2;
        len -= 2;
    }
    if (len) {
        uint16_t w = 0;
        memcpy(&w, b, 1); /* the odd byte pads with zero on the right */
        s += w;
    }
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint32_t)s;
}

uint16_t csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* HC' = ~(~HC + ~m + m') */
uint16_t csum_update16(uint16_t csum, uint16_t old, uint16_t new_)
{
    uint32_t s = (uint16_t)~csum + (uint32_t)(uint16_t)~old + new_;
    return csum_fold(s);
}

uint16_t csum_update32(uint16_t csum, uint32_t old, uint32_t new_)
{
    uint32_t s = (uint16_t)~csum;
    s += (uint16_t)~(old & 0xffff) + (uint32_t)(uint16_t)~(old >> 16);
    s += (new_ & 0xffff) + (new_ >> 16);
    return csum_fold(s);
}

/* A NEEDS_CSUM field holds the folded pseudo-header sum itself (the device
 * adds the rest and complements): S' = S + ~m + m'. */
uint16_t csum_partial_update32(uint16_t sum, uint32_t old, uint32_t new_)
{
    return (uint16_t)~csum_update32((uint16_t)~sum, old, new_);
}

uint16_t ipv4_csum(const uint8_t *ip, unsigned ihl_bytes)
{
    return csum_fold(csum_partial(ip, ihl_bytes, 0));
}
