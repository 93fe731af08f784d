/* The DHCP server: what dhcp_serve() in l3.c does with a message — parse
 * (dhcp_parse), decide and update the lease table (dhcp_decide), build the
 * reply frame (dhcp_build_reply) — over a sequence of messages from any
 * clients, against a pool of three addresses (10.0.0.10-12, one of them
 * reserved for 02:00:00:00:00:05) so that exhaustion, expiry and the
 * reservation all run. The clock is the input's: dhcp_decide takes it.
 *
 * Input: records [ctl][len hi][len lo][BOOTP message, the UDP payload]:
 * ctl bits 0-1 seconds the clock moves first (0, 1, 61, 700: past an
 * offer's hold, the 120 s lease, a decline's hold).
 *
 * Checked, by our own reading of the reply: a well-formed Ethernet/IPv4/UDP
 * frame (lengths, both checksums, ports 67 -> 68, from the gateway) carrying
 * a BOOTREPLY for the client's xid and chaddr with a well-formed option list
 * that says the decided type and the server id; an OFFER or ACK gives an
 * address of the pool or the client's reservation, never the gateway's,
 * never a reserved address to another client, never an address another
 * client holds an unexpired ACK for (unless it released or declined it);
 * the lease table holds no two live leases of one address or one MAC. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_world.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define IP4(a, b, c, d) ((uint32_t)(a) << 24 | (b) << 16 | (c) << 8 | (d))
#define POOL_FIRST IP4(10, 0, 0, 10)
#define POOL_LAST IP4(10, 0, 0, 12)
#define RESERVED IP4(10, 0, 0, 11)
#define GATEWAY IP4(10, 0, 0, 1)
#define LEASE 120

enum { DISCOVER = 1, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM };

static const uint8_t reserved_mac[6] = {2, 0, 0, 0, 0, 5};
static const uint8_t gw_mac[6] = {2, 0x76, 0, 0, 0, 1};

/* What an ACK promised: address -> (client, until) */
struct promise {
    bool held;
    uint8_t mac[6];
    int64_t until;
};

static struct conf conf;
static struct l3_net_state *st;
static struct promise promised[256]; /* by the address's last byte */

static void setup(void)
{
    static const char *const net[] = {
        "bridge=br0", "subnet=10.0.0.0/24", "gateway=10.0.0.1", "dhcp=10.0.0.10-10.0.0.12",
        "lease=120", "dns=10.0.0.53", "reserve=02:00:00:00:00:05=10.0.0.11"};
    char err[256];

    conf_init(&conf);
    if (conf_add_bridge(&conf, "br0", err, sizeof err) ||
        conf_add_net(&conf, "net0", net, sizeof net / sizeof *net, err, sizeof err)) {
        fprintf(stderr, "fuzz_dhcp: configuration: %s\n", err);
        abort();
    }
    st = calloc(1, sizeof *st);
    if (!st)
        abort();
}

/* The options of a reply: code -> value (first occurrence); false if the
 * list runs past the message or has no end. */
static bool reply_options(const uint8_t *o, size_t len, const uint8_t *val[256],
                          uint8_t vlen[256])
{
    size_t i = 0;

    memset(val, 0, 256 * sizeof *val);
    while (i < len) {
        uint8_t code = o[i];
        if (code == 255)
            return true;
        if (code == 0) {
            i++;
            continue;
        }
        if (i + 2 > len || i + 2 + o[i + 1] > len)
            return false;
        if (!val[code]) {
            val[code] = o + i + 2;
            vlen[code] = o[i + 1];
        }
        i += 2u + o[i + 1];
    }
    return false;
}

static void check_reply(const uint8_t *f, size_t flen, const struct dhcp_msg *m,
                        const struct dhcp_answer *a)
{
    const uint8_t *ip = f + 14, *udp = ip + 20, *b = udp + 8;
    const uint8_t *val[256];
    uint8_t vlen[256];
    size_t tot, ulen;
    uint32_t s;

    FW_CHECK(flen >= 14 + 20 + 8 + 240 + 4 && flen <= L3_BUF_SIZE);
    FW_CHECK(rd16(f + 12) == ETH_TYPE_IP && !memcmp(f + 6, gw_mac, 6));
    FW_CHECK(ip[0] == 0x45 && ip[8] > 0 && ip[9] == IPPROTO_UDP_);
    tot = rd16(ip + 2);
    FW_CHECK(tot == flen - 14);
    FW_CHECK(fw_csum(ip, 20, 0) == 0);
    FW_CHECK(rd32(ip + 12) == GATEWAY);
    FW_CHECK(rd16(udp) == 67 && rd16(udp + 2) == 68);
    ulen = rd16(udp + 4);
    FW_CHECK(ulen == tot - 20);
    s = rd16(ip + 12) + rd16(ip + 14) + rd16(ip + 16) + rd16(ip + 18) + IPPROTO_UDP_ +
        (uint32_t)ulen;
    FW_CHECK(rd16(udp + 6) != 0 && fw_csum(udp, ulen, s) == 0);

    FW_CHECK(b[0] == 2 && b[1] == 1 && b[2] == 6);
    FW_CHECK(rd32(b + 4) == m->xid && !memcmp(b + 28, m->chaddr, 6));
    FW_CHECK(rd32(b + 16) == (a->type == NAK ? 0 : a->yiaddr));
    FW_CHECK(rd32(b + 236) == 0x63825363u);
    FW_CHECK(reply_options(b + 240, ulen - 8 - 240, val, vlen));
    FW_CHECK(val[53] && vlen[53] == 1 && val[53][0] == a->type);
    FW_CHECK(val[54] && vlen[54] == 4 && rd32(val[54]) == GATEWAY);
    if (a->type == NAK) {
        FW_CHECK(!val[51] && !val[1] && !val[3]);
    } else {
        FW_CHECK(val[1] && vlen[1] == 4 && rd32(val[1]) == 0xffffff00u);
        FW_CHECK(val[3] && vlen[3] == 4 && rd32(val[3]) == GATEWAY);
        if (a->yiaddr)
            FW_CHECK(val[51] && vlen[51] == 4 && rd32(val[51]) == LEASE);
    }
    /* RFC 2131 4.1: where the reply goes */
    if (m->ciaddr)
        FW_CHECK(rd32(ip + 16) == m->ciaddr);
    else if (a->type == NAK || (m->flags & 0x8000))
        FW_CHECK(rd32(ip + 16) == 0xffffffffu && !memcmp(f, "\xff\xff\xff\xff\xff\xff", 6));
    else
        FW_CHECK(rd32(ip + 16) == a->yiaddr && !memcmp(f, m->chaddr, 6));
}

static void check_address(const struct dhcp_msg *m, const struct dhcp_answer *a,
                          int64_t now)
{
    uint32_t ip = a->yiaddr;
    bool mine = !memcmp(m->chaddr, reserved_mac, 6);

    if ((a->type != OFFER && a->type != ACK) || !ip)
        return;
    FW_CHECK(ip != GATEWAY);
    FW_CHECK((ip >= POOL_FIRST && ip <= POOL_LAST) || (mine && ip == RESERVED));
    FW_CHECK((ip == RESERVED) == mine);
    struct promise *p = &promised[ip & 0xff];
    if (p->held && memcmp(p->mac, m->chaddr, 6))
        FW_CHECK(p->until <= now);
}

static void remember(const struct dhcp_msg *m, const struct dhcp_answer *a, int64_t now)
{
    struct promise *p;

    if (a->type == ACK && a->yiaddr) {
        for (int i = 0; i < 256; i++)
            if (promised[i].held && !memcmp(promised[i].mac, m->chaddr, 6))
                promised[i].held = false; /* a client holds one address */
        p = &promised[a->yiaddr & 0xff];
        p->held = true;
        memcpy(p->mac, m->chaddr, 6);
        p->until = now + LEASE;
    } else if (m->type == RELEASE || m->type == DECLINE) {
        uint32_t ip = m->type == RELEASE ? m->ciaddr : m->requested;
        p = &promised[ip & 0xff];
        if ((ip >> 8) == (GATEWAY >> 8) && p->held && !memcmp(p->mac, m->chaddr, 6))
            p->held = false;
    }
}

static void check_table(int64_t now)
{
    FW_CHECK(st->n_leases <= DHCP_LEASES_MAX);
    for (unsigned i = 0; i < st->n_leases; i++) {
        const struct dhcp_lease *x = &st->leases[i];
        if ((x->state != LEASE_OFFERED && x->state != LEASE_BOUND) || x->expires <= now)
            continue;
        for (unsigned k = i + 1; k < st->n_leases; k++) {
            const struct dhcp_lease *y = &st->leases[k];
            if ((y->state != LEASE_OFFERED && y->state != LEASE_BOUND) || y->expires <= now)
                continue;
            FW_CHECK(x->ip != y->ip);
            FW_CHECK(memcmp(x->mac, y->mac, 6));
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t steps[4] = {0, 1, 61, 700};
    static uint8_t frame[L3_BUF_SIZE];
    int64_t now = 1700000000;

    if (!st)
        setup();
    memset(st, 0, sizeof *st);
    memset(promised, 0, sizeof promised);

    while (size >= 3) {
        size_t len = (size_t)data[1] << 8 | data[2];
        struct dhcp_msg m;
        struct dhcp_answer a;
        size_t flen;

        now += steps[data[0] & 3];
        data += 3;
        size -= 3;
        if (len > size)
            len = size;
        /* dhcp_serve hands the parser at most 1024 bytes */
        bool ok = dhcp_parse(data, len < 1024 ? len : 1024, &m);
        data += len;
        size -= len;
        if (!ok)
            continue;
        FW_CHECK(m.op == 1 && m.htype == 1 && m.hlen == 6 && m.type >= 1 && m.type <= 8);
        FW_CHECK(memchr(m.hostname, 0, sizeof m.hostname));
        a = dhcp_decide(st, &conf.nets[0], &m, now);
        check_address(&m, &a, now);
        remember(&m, &a, now);
        check_table(now);
        if (!a.type)
            continue;
        FW_CHECK(a.type == OFFER || a.type == ACK || a.type == NAK);
        flen = dhcp_build_reply(frame, sizeof frame, &conf.nets[0], gw_mac, &m, &a);
        FW_CHECK(flen > 0);
        check_reply(frame, flen, &m, &a);
    }
    return 0;
}
