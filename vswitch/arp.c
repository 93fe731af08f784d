/* ARP for the gateway: replies for its addresses, requests for next hops it
 * does not know, and the neighbour table (IPv4 -> MAC) the router resolves
 * next hops with. The table is written by any PMD and read by all: each entry
 * carries a sequence number (odd while written), so a reader never uses a
 * torn entry, and writers of one entry exclude each other with it. */
#include <arpa/inet.h>
#include <string.h>

#include "l3.h"

#define ARP_LEN 28

static inline void wr32(uint8_t *p, uint32_t v)
{
    v = htonl(v);
    memcpy(p, &v, 4);
}

static unsigned neigh_slot(uint32_t ip)
{
    return (ip * 2654435761u) >> 20; /* 12 bits */
}

void neigh_learn(struct neigh_table *t, uint32_t ip, const uint8_t mac[6], uint32_t now)
{
    struct neigh_entry *e = &t->e[neigh_slot(ip) % NEIGH_SIZE];
    uint32_t seq = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);

    /* unchanged: only refresh (the common case costs no write) */
    if (!(seq & 1) && __atomic_load_n(&e->ip, __ATOMIC_RELAXED) == ip &&
        !memcmp(e->mac, mac, 6)) {
        if (__atomic_load_n(&e->seen, __ATOMIC_RELAXED) != now)
            __atomic_store_n(&e->seen, now, __ATOMIC_RELAXED);
        return;
    }
    if ((seq & 1) || !__atomic_compare_exchange_n(&e->seq, &seq, seq + 1, false,
                                                  __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return; /* someone else is writing it: learn it next time */
    __atomic_store_n(&e->ip, ip, __ATOMIC_RELAXED);
    for (int i = 0; i < 6; i++)
        __atomic_store_n(&e->mac[i], mac[i], __ATOMIC_RELAXED);
    __atomic_store_n(&e->seen, now, __ATOMIC_RELAXED);
    __atomic_store_n(&e->seq, seq + 2, __ATOMIC_RELEASE);
}

bool neigh_lookup(struct neigh_table *t, uint32_t ip, uint8_t mac[6])
{
    struct neigh_entry *e = &t->e[neigh_slot(ip) % NEIGH_SIZE];

    for (int tries = 0; tries < 4; tries++) {
        uint32_t s1 = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
        if (s1 & 1)
            continue;
        bool hit = __atomic_load_n(&e->ip, __ATOMIC_RELAXED) == ip && s1 != 0;
        for (int i = 0; i < 6; i++)
            mac[i] = __atomic_load_n(&e->mac[i], __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&e->seq, __ATOMIC_RELAXED) == s1)
            return hit;
    }
    return false;
}

/* htype 1, ptype IPv4, hlen 6, plen 4 */
static bool arp_ipv4(const struct pkt *p)
{
    static const uint8_t hdr[6] = {0, 1, 8, 0, 6, 4};
    return p->ethertype == ETH_TYPE_ARP && p->head_len >= ETH_HLEN + ARP_LEN &&
           p->len >= ETH_HLEN + ARP_LEN && !memcmp(p->head + ETH_HLEN, hdr, 6);
}

bool arp_sender(const struct pkt *p, uint32_t *ip, uint8_t mac[6])
{
    const uint8_t *a = p->head + ETH_HLEN;
    if (!arp_ipv4(p))
        return false;
    memcpy(mac, a + 8, 6);
    *ip = rd32(a + 14);
    return !(mac[0] & 1) && *ip != 0;
}

bool arp_reply_in_place(struct pkt *p, const uint8_t mac[6], uint32_t ip, bool *bad)
{
    uint8_t *a = p->head + ETH_HLEN;
    uint8_t smac[6];
    uint32_t sip;

    *bad = false;
    if (!arp_ipv4(p)) {
        *bad = true;
        return false;
    }
    if (a[6] != 0 || a[7] != 1 || rd32(a + 24) != ip)
        return false; /* not a request, or not for us */
    memcpy(smac, a + 8, 6);
    sip = rd32(a + 14);
    a[7] = 2;
    memcpy(a + 18, smac, 6);
    wr32(a + 24, sip);
    memcpy(a + 8, mac, 6);
    wr32(a + 14, ip);
    memcpy(p->head, smac, 6);
    memcpy(p->head + 6, mac, 6);
    /* the reply is the 42 bytes of head; padding is the egress port's business */
    p->head_len = ETH_HLEN + ARP_LEN;
    p->len = p->head_len;
    p->nsegs = 0;
    memset(&p->vnet, 0, sizeof p->vnet);
    return true;
}

void arp_build_request(struct pkt *p, const uint8_t mac[6], uint32_t ip, uint32_t target)
{
    static const uint8_t hdr[8] = {0, 1, 8, 0, 6, 4, 0, 1};
    uint8_t *h = p->head;

    memset(h, 0xff, 6);
    memcpy(h + 6, mac, 6);
    h[12] = ETH_TYPE_ARP >> 8;
    h[13] = ETH_TYPE_ARP & 0xff;
    memcpy(h + 14, hdr, 8);
    memcpy(h + 22, mac, 6);
    wr32(h + 28, ip);
    memset(h + 32, 0, 6);
    wr32(h + 38, target);
    p->ethertype = ETH_TYPE_ARP;
    p->head_len = ETH_HLEN + ARP_LEN;
    p->len = p->head_len;
    p->nsegs = 0;
    p->l3_ofs = p->l4_ofs = 0;
    memset(&p->vnet, 0, sizeof p->vnet);
}
