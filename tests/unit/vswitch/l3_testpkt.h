/* Frames for the L3 unit tests: Ethernet + IPv4 + TCP/UDP/ICMP with valid
 * checksums, built into a struct pkt's head (small frames fit whole). */
#ifndef L3_TESTPKT_H
#define L3_TESTPKT_H

#include <arpa/inet.h>
#include <string.h>

#include "l3.h"

static inline void tp_ip(uint8_t *ip, uint8_t proto, uint32_t src, uint32_t dst,
                         unsigned l4len)
{
    uint16_t cs;
    uint32_t a;
    memset(ip, 0, 20);
    ip[0] = 0x45;
    ip[2] = (uint8_t)((20 + l4len) >> 8);
    ip[3] = (uint8_t)(20 + l4len);
    ip[8] = 64;
    ip[9] = proto;
    a = htonl(src);
    memcpy(ip + 12, &a, 4);
    a = htonl(dst);
    memcpy(ip + 16, &a, 4);
    cs = ipv4_csum(ip, 20);
    memcpy(ip + 10, &cs, 2);
}

/* the L4 checksum over pseudo-header + segment, as a receiver verifies it
 * (0 when valid) */
static inline uint16_t tp_l4_verify(const uint8_t *ip, unsigned l4len)
{
    uint8_t ph[12];
    memcpy(ph, ip + 12, 8);
    ph[8] = 0;
    ph[9] = ip[9];
    ph[10] = (uint8_t)(l4len >> 8);
    ph[11] = (uint8_t)l4len;
    uint32_t s = ip[9] == 1 ? 0 : csum_partial(ph, 12, 0);
    return csum_fold(csum_partial(ip + 20, l4len, s));
}

static inline void tp_l4_fill_csum(uint8_t *ip, unsigned l4len)
{
    uint8_t *l4 = ip + 20;
    unsigned at = ip[9] == 6 ? 16 : ip[9] == 17 ? 6 : 2;
    uint16_t cs;
    l4[at] = l4[at + 1] = 0;
    cs = tp_l4_verify(ip, l4len);
    if (ip[9] == 17 && !cs)
        cs = 0xffff;
    memcpy(l4 + at, &cs, 2);
}

/* proto 6/17/1 (ICMP echo request, id = sport); payload bytes of 0x5a */
/* the whole frame must fit the head: payload up to 60 */
static inline void tp_build(struct pkt *p, uint8_t proto, uint32_t src, uint16_t sport,
                            uint32_t dst, uint16_t dport, unsigned payload)
{
    unsigned hl = proto == 6 ? 20 : 8, l4len = hl + payload;
    uint8_t *h = p->head, *ip = h + 14, *l4 = ip + 20;
    memset(p, 0, sizeof *p);
    memcpy(h, "\x02\x76\x00\x00\x00\x01\x52\x54\x00\x00\x00\x01\x08\x00", 14);
    memset(l4, 0, hl);
    if (proto == 1) {
        l4[0] = 8;
        l4[4] = (uint8_t)(sport >> 8);
        l4[5] = (uint8_t)sport;
    } else {
        l4[0] = (uint8_t)(sport >> 8);
        l4[1] = (uint8_t)sport;
        l4[2] = (uint8_t)(dport >> 8);
        l4[3] = (uint8_t)dport;
        if (proto == 6) {
            l4[12] = 0x50;
            l4[13] = 0x02; /* SYN */
        } else {
            l4[4] = (uint8_t)(l4len >> 8);
            l4[5] = (uint8_t)l4len;
        }
    }
    memset(l4 + hl, 0x5a, payload);
    tp_ip(ip, proto, src, dst, l4len);
    tp_l4_fill_csum(ip, l4len);
    p->len = p->head_len = (uint16_t)(14 + 20 + l4len);
    p->ethertype = ETH_TYPE_IP;
}

#define IP4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

#endif
