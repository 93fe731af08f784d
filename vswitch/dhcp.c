/* The DHCP server of a network (RFC 2131, options RFC 2132): DISCOVER ->
 * OFFER, REQUEST -> ACK/NAK, RELEASE, DECLINE, INFORM. Leases by client MAC
 * (chaddr); a static reservation (reserve=MAC=IP) always wins. Options sent:
 * subnet mask, router (the gateway), DNS (dns=, else the gateway's address;
 * the switch does not answer DNS itself, so dns= should name a resolver the
 * guests can reach), lease time, T1/T2, broadcast address. */
#include <arpa/inet.h>
#include <string.h>

#include "l3.h"

#define BOOTP_MIN 236
#define DHCP_MAGIC 0x63825363u
#define OFFER_HOLD 60    /* seconds an offer keeps its address */
#define DECLINE_HOLD 600 /* an address a client found in use */

enum { DISCOVER = 1, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM };

bool dhcp_parse(const uint8_t *b, size_t len, struct dhcp_msg *m)
{
    size_t i = BOOTP_MIN + 4;

    memset(m, 0, sizeof *m);
    if (len < BOOTP_MIN + 4 || rd32(b + BOOTP_MIN) != DHCP_MAGIC)
        return false;
    m->op = b[0];
    m->htype = b[1];
    m->hlen = b[2];
    if (m->op != 1 || m->htype != 1 || m->hlen != 6)
        return false;
    m->xid = rd32(b + 4);
    m->flags = (uint16_t)(b[10] << 8 | b[11]);
    m->ciaddr = rd32(b + 12);
    m->yiaddr = rd32(b + 16);
    m->giaddr = rd32(b + 24);
    memcpy(m->chaddr, b + 28, 6);
    while (i < len) {
        uint8_t code = b[i], olen;
        if (code == 0) {
            i++;
            continue;
        }
        if (code == 255)
            break;
        if (i + 2 > len)
            return false;
        olen = b[i + 1];
        if (i + 2 + olen > len)
            return false;
        const uint8_t *v = b + i + 2;
        switch (code) {
        case 53:
            if (olen != 1)
                return false;
            m->type = v[0];
            break;
        case 50:
            if (olen != 4)
                return false;
            m->requested = rd32(v);
            break;
        case 54:
            if (olen != 4)
                return false;
            m->server_id = rd32(v);
            break;
        case 12: {
            size_t n = olen < sizeof m->hostname - 1 ? olen : sizeof m->hostname - 1;
            for (size_t k = 0; k < n; k++)
                m->hostname[k] = (v[k] >= 0x20 && v[k] < 0x7f && v[k] != '"') ? (char)v[k]
                                                                                : '_';
            m->hostname[n] = '\0';
            break;
        }
        default:
            break;
        }
        i += 2u + olen;
    }
    return m->type >= DISCOVER && m->type <= INFORM;
}

static bool in_range(const struct conf_net *n, uint32_t ip)
{
    return n->dhcp && ip >= n->dhcp_first && ip <= n->dhcp_last && ip != n->gateway;
}

static const struct conf_reservation *reservation_of_mac(const struct conf_net *n,
                                                         const uint8_t mac[6])
{
    for (size_t i = 0; i < n->n_reserve; i++)
        if (!memcmp(n->reserve[i].mac, mac, 6))
            return &n->reserve[i];
    return NULL;
}

static bool reserved_for_other(const struct conf_net *n, uint32_t ip, const uint8_t mac[6])
{
    for (size_t i = 0; i < n->n_reserve; i++)
        if (n->reserve[i].ip == ip && memcmp(n->reserve[i].mac, mac, 6))
            return true;
    return false;
}

static struct dhcp_lease *lease_of_mac(struct l3_net_state *st, const uint8_t mac[6])
{
    for (unsigned i = 0; i < st->n_leases; i++)
        if (st->leases[i].state != LEASE_FREE && !memcmp(st->leases[i].mac, mac, 6))
            return &st->leases[i];
    return NULL;
}

static struct dhcp_lease *lease_of_ip(struct l3_net_state *st, uint32_t ip)
{
    for (unsigned i = 0; i < st->n_leases; i++)
        if (st->leases[i].state != LEASE_FREE && st->leases[i].ip == ip)
            return &st->leases[i];
    return NULL;
}

/* Whether ip can go to mac now. */
static bool ip_free_for(struct l3_net_state *st, const struct conf_net *n, uint32_t ip,
                        const uint8_t mac[6], int64_t now)
{
    struct dhcp_lease *l = lease_of_ip(st, ip);
    if (ip == n->gateway || reserved_for_other(n, ip, mac))
        return false;
    return !l || !memcmp(l->mac, mac, 6) || l->expires <= now;
}

static struct dhcp_lease *lease_slot(struct l3_net_state *st, int64_t now)
{
    struct dhcp_lease *oldest = NULL;
    for (unsigned i = 0; i < st->n_leases; i++) {
        struct dhcp_lease *l = &st->leases[i];
        if (l->state == LEASE_FREE)
            return l;
        if (l->expires <= now && (!oldest || l->expires < oldest->expires))
            oldest = l;
    }
    if (st->n_leases < DHCP_LEASES_MAX)
        return &st->leases[st->n_leases++];
    return oldest;
}

/* The address for mac: its reservation, its lease, the one it asks for, or
 * the first free one in the range. 0: none. */
static uint32_t choose(struct l3_net_state *st, const struct conf_net *n,
                       const uint8_t mac[6], uint32_t requested, int64_t now)
{
    const struct conf_reservation *r = reservation_of_mac(n, mac);
    struct dhcp_lease *l = lease_of_mac(st, mac);

    if (r)
        return r->ip;
    if (l && l->state != LEASE_DECLINED && in_range(n, l->ip))
        return l->ip;
    if (requested && in_range(n, requested) && ip_free_for(st, n, requested, mac, now))
        return requested;
    if (!n->dhcp)
        return 0;
    for (uint32_t ip = n->dhcp_first; ip <= n->dhcp_last && ip >= n->dhcp_first; ip++)
        if (ip != n->gateway && !lease_of_ip(st, ip) && !reserved_for_other(n, ip, mac))
            return ip;
    for (uint32_t ip = n->dhcp_first; ip <= n->dhcp_last && ip >= n->dhcp_first; ip++)
        if (ip_free_for(st, n, ip, mac, now))
            return ip; /* an expired lease's address */
    return 0;
}

static void lease_bind(struct l3_net_state *st, const uint8_t mac[6], uint32_t ip,
                       uint8_t state, int64_t expires, const char *hostname)
{
    struct dhcp_lease *l = lease_of_mac(st, mac), *other = lease_of_ip(st, ip);

    if (other && other != l)
        other->state = LEASE_FREE; /* expired: its address moves on */
    if (!l)
        l = lease_slot(st, expires);
    if (!l)
        return;
    memcpy(l->mac, mac, 6);
    l->ip = ip;
    l->state = state;
    l->expires = expires;
    if (hostname && hostname[0])
        snprintf(l->hostname, sizeof l->hostname, "%s", hostname);
    st->leases_dirty = true;
}

struct dhcp_answer dhcp_decide(struct l3_net_state *st, const struct conf_net *n,
                               const struct dhcp_msg *m, int64_t now)
{
    struct dhcp_answer a = {0, 0};
    struct dhcp_lease *l;
    uint32_t want, ip;

    switch (m->type) {
    case DISCOVER:
        ip = choose(st, n, m->chaddr, m->requested, now);
        if (!ip)
            return a; /* no address: stay silent (RFC 2131 4.3.1) */
        l = lease_of_mac(st, m->chaddr);
        if (!l || l->ip != ip || l->state != LEASE_BOUND || l->expires <= now)
            lease_bind(st, m->chaddr, ip, LEASE_OFFERED, now + OFFER_HOLD, m->hostname);
        a.type = OFFER;
        a.yiaddr = ip;
        return a;
    case REQUEST:
        if (m->server_id && m->server_id != n->gateway) {
            /* the client took another server's offer: ours is free again */
            l = lease_of_mac(st, m->chaddr);
            if (l && l->state == LEASE_OFFERED) {
                l->state = LEASE_FREE;
                st->leases_dirty = true;
            }
            return a;
        }
        want = m->requested ? m->requested : m->ciaddr;
        ip = choose(st, n, m->chaddr, want, now);
        a.yiaddr = want;
        if (!want || (want & conf_mask(n->plen)) != n->subnet) {
            a.type = NAK;
            a.yiaddr = 0;
            return a;
        }
        if (ip != want) {
            /* INIT-REBOOT with an address we hold for no one else (e.g. after
             * the leases file was lost): let it keep it */
            l = lease_of_ip(st, want);
            if (m->server_id || !ip_free_for(st, n, want, m->chaddr, now) ||
                (l && memcmp(l->mac, m->chaddr, 6)) || reservation_of_mac(n, m->chaddr) ||
                !in_range(n, want)) {
                a.type = NAK;
                a.yiaddr = 0;
                return a;
            }
        }
        lease_bind(st, m->chaddr, want, LEASE_BOUND, now + n->lease, m->hostname);
        a.type = ACK;
        return a;
    case DECLINE:
        if (m->requested && (l = lease_of_mac(st, m->chaddr)) && l->ip == m->requested) {
            memset(l->mac, 0, 6);
            l->state = LEASE_DECLINED;
            l->expires = now + DECLINE_HOLD;
            st->leases_dirty = true;
        }
        return a;
    case RELEASE:
        if ((l = lease_of_mac(st, m->chaddr)) && l->ip == m->ciaddr) {
            l->state = LEASE_FREE;
            st->leases_dirty = true;
        }
        return a;
    case INFORM:
        a.type = ACK;
        a.yiaddr = 0;
        return a;
    default:
        return a;
    }
}

static uint8_t *opt_u32(uint8_t *o, uint8_t code, uint32_t v)
{
    o[0] = code;
    o[1] = 4;
    v = htonl(v);
    memcpy(o + 2, &v, 4);
    return o + 6;
}

size_t dhcp_build_reply(uint8_t *buf, size_t cap, const struct conf_net *n,
                        const uint8_t gw_mac[6], const struct dhcp_msg *m,
                        const struct dhcp_answer *a)
{
    uint8_t *eth = buf, *ip = buf + 14, *udp = ip + 20, *b = udp + 8, *o;
    uint32_t mask = conf_mask(n->plen), dst;
    bool bcast;
    size_t blen, len;
    uint16_t v16;

    if (cap < 14 + 20 + 8 + 300 + 64)
        return 0;
    memset(buf, 0, 14 + 20 + 8 + 300 + 64);
    b[0] = 2;
    b[1] = 1;
    b[2] = 6;
    uint32_t x = htonl(m->xid);
    memcpy(b + 4, &x, 4);
    b[10] = (uint8_t)(m->flags >> 8);
    x = htonl(m->ciaddr);
    memcpy(b + 12, &x, 4);
    x = htonl(a->type == NAK ? 0 : a->yiaddr);
    memcpy(b + 16, &x, 4);
    x = htonl(m->giaddr);
    memcpy(b + 24, &x, 4);
    memcpy(b + 28, m->chaddr, 6);
    x = htonl(DHCP_MAGIC);
    memcpy(b + BOOTP_MIN, &x, 4);
    o = b + BOOTP_MIN + 4;
    *o++ = 53;
    *o++ = 1;
    *o++ = a->type;
    o = opt_u32(o, 54, n->gateway);
    if (a->type != NAK) {
        if (a->yiaddr) { /* not for INFORM */
            o = opt_u32(o, 51, n->lease);
            o = opt_u32(o, 58, n->lease / 2);
            o = opt_u32(o, 59, n->lease / 8 * 7);
        }
        o = opt_u32(o, 1, mask);
        o = opt_u32(o, 3, n->gateway);
        o = opt_u32(o, 6, n->dns ? n->dns : n->gateway);
        o = opt_u32(o, 28, n->subnet | ~mask);
    }
    *o++ = 255;
    blen = (size_t)(o - b);
    if (blen < 300)
        blen = 300; /* BOOTP's minimum, zero padded */

    /* RFC 2131 4.1: to ciaddr if known, broadcast if asked or NAK, else to
     * the new address at the client's MAC */
    bcast = a->type == NAK || (!m->ciaddr && (m->flags & 0x8000));
    dst = m->ciaddr ? m->ciaddr : bcast ? 0xffffffffu : a->yiaddr;
    if (bcast && !m->ciaddr)
        memset(eth, 0xff, 6);
    else
        memcpy(eth, m->chaddr, 6);
    memcpy(eth + 6, gw_mac, 6);
    eth[12] = 0x08;
    eth[13] = 0x00;
    len = 20 + 8 + blen;
    ip[0] = 0x45;
    ip[2] = (uint8_t)(len >> 8);
    ip[3] = (uint8_t)len;
    ip[8] = 64;
    ip[9] = IPPROTO_UDP_;
    x = htonl(n->gateway);
    memcpy(ip + 12, &x, 4);
    x = htonl(dst);
    memcpy(ip + 16, &x, 4);
    v16 = ipv4_csum(ip, 20);
    memcpy(ip + 10, &v16, 2);
    udp[1] = 67;
    udp[3] = 68;
    udp[4] = (uint8_t)((8 + blen) >> 8);
    udp[5] = (uint8_t)(8 + blen);
    {
        uint8_t ph[12];
        memcpy(ph, ip + 12, 8);
        ph[8] = 0;
        ph[9] = IPPROTO_UDP_;
        ph[10] = udp[4];
        ph[11] = udp[5];
        uint32_t s = csum_partial(ph, 12, 0);
        s = csum_partial(udp, 8 + blen, s);
        v16 = csum_fold(s);
        if (!v16)
            v16 = 0xffff;
        memcpy(udp + 6, &v16, 2);
    }
    return 14 + len;
}
