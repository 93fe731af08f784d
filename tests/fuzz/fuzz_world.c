/* The fuzz targets' switch: see fuzz_world.h. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <urcu-qsbr.h>

#include "fuzz_world.h"

static struct fw_world *the_world; /* the capture port's way back */

static void cap_tx(struct port *p, struct pkt *const *pkts, const uint16_t *tcis, int n)
{
    for (int i = 0; i < n; i++) {
        if (the_world->trace) {
            uint8_t f[FW_FRAME_MAX + 64];
            size_t len = fw_flatten(pkts[i], 0, f, sizeof f);
            fprintf(stderr, "  tx %s tci %#x len %u ethertype %#06x csum %#x\n", p->name,
                    tcis[i], pkts[i]->len, pkts[i]->ethertype, fw_csum_state(f, len));
        }
        if (the_world->on_tx)
            the_world->on_tx(p, pkts[i], tcis[i]);
    }
    port_count_tx(p, (uint64_t)n, 0);
}

/* A routed port's address, from its ip= (what port_tap and the others do
 * when ip= is set). */
static int cap_uplink_addr(struct port *p, uint32_t *addr_be, uint8_t *prefix_len)
{
    char ip[64];
    char *slash;
    struct in_addr a;

    snprintf(ip, sizeof ip, "%s", p->conf.ip);
    slash = strchr(ip, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    if (inet_pton(AF_INET, ip, &a) != 1)
        return -1;
    *addr_be = a.s_addr;
    *prefix_len = (uint8_t)atoi(slash + 1);
    return 0;
}

static const struct port_ops cap_ops = {
    .type = "capture", .tx_burst = cap_tx, .uplink_addr = cap_uplink_addr};

static void die(const char *what, const char *err)
{
    fprintf(stderr, "fuzz_world: %s: %s\n", what, err);
    abort();
}

void fw_build(struct fw_world *w, struct conf *c, fw_tx_cb on_tx)
{
    struct port *by_no[PORT_MAX] = {0};
    char err[256];

    memset(w, 0, sizeof *w);
    the_world = w;
    w->trace = getenv("FUZZ_TRACE") != NULL;
    w->conf = *c;
    w->on_tx = on_tx;
    if (w->conf.n_bridges != 1 || w->conf.n_ports > FW_PORTS_MAX)
        die("conf", "one bridge and at most FW_PORTS_MAX ports");
    w->pmd = calloc(1, sizeof *w->pmd);
    w->br.fdb = fdb_create(w->conf.bridges[0].ageing);
    if (!w->pmd || !w->br.fdb)
        die("build", "out of memory");
    w->br.members = w->members;
    w->snap.bridges = &w->br;
    w->snap.n_bridges = 1;
    w->snap.ports = &w->dps[1];
    for (size_t i = 0; i < w->conf.n_ports; i++) {
        const struct conf_port *cp = &w->conf.ports[i];
        uint16_t no = (uint16_t)(i + 1);
        struct port *p = &w->ports[no];

        snprintf(p->name, sizeof p->name, "%s", cp->name);
        p->no = no;
        p->ops = &cap_ops;
        p->conf = *cp;
        p->tx_ready = true;
        w->dps[no].port = p;
        w->dps[no].br = &w->br;
        w->dps[no].vlan = cp->vlan;
        w->dps[no].max_frame = (cp->mtu ? cp->mtu : CONF_MTU_DEFAULT) + ETH_HLEN;
        w->members[w->br.n_members++] = no;
        w->snap.by_no[no] = &w->dps[no];
        by_no[no] = p;
        w->n_ports++;
    }
    w->snap.n_ports = w->n_ports;
    if (w->conf.n_nets) {
        w->l3 = l3_state_create();
        if (!w->l3)
            die("l3_state_create", "out of memory");
        if (l3_snapshot_build(w->l3, &w->conf, &w->snap, by_no, err, sizeof err) < 0)
            die("l3_snapshot_build", err);
        /* the PMD thread reads conntrack online, as pmd.c's threads do */
        rcu_register_thread();
    }
}

void fw_reset(struct fw_world *w)
{
    fdb_flush(w->br.fdb);
    for (unsigned no = 1; no <= w->n_ports; no++)
        memset(&w->ports[no].stats, 0, sizeof w->ports[no].stats);
    if (!w->l3)
        return;
    ct_expire(w->l3->ct, 0, true, NULL);
    rcu_quiescent_state(); /* lets the flushed connections be freed */
    memset(&w->l3->neigh, 0, sizeof w->l3->neigh);
    for (size_t i = 0; i < w->l3->n_nets; i++) {
        struct l3_net_state *ns = w->l3->nets[i];
        memset(ns->leases, 0, sizeof ns->leases);
        ns->n_leases = 0;
        ns->leases_dirty = false;
    }
}

bool fw_receive(struct fw_world *w, unsigned slot, const uint8_t *frame, size_t len,
                size_t cut, const struct virtio_net_hdr *vh, struct pkt *p)
{
    struct vring_buf b[2];
    unsigned nb = 1;
    uint16_t tci;

    if (len > FW_FRAME_MAX)
        len = FW_FRAME_MAX;
    memcpy(w->frames[slot], frame, len);
    b[0].addr = w->frames[slot];
    b[0].len = (uint32_t)len;
    if (cut > 0 && cut < len) {
        b[0].len = (uint32_t)cut;
        b[1].addr = w->frames[slot] + cut;
        b[1].len = (uint32_t)(len - cut);
        nb = 2;
    }
    if (!pkt_from_bufs(p, b, nb, (uint32_t)len, &tci))
        return false;
    /* as port_vhost's receive: the offload request moves with the tag */
    memset(&p->vnet, 0, sizeof p->vnet);
    if (vh) {
        p->vnet = *vh;
        if (!pkt_vnet_untag(p, tci))
            return false;
    }
    p->vlan = tci; /* what rx_burst hands the bridge: the received TCI */
    p->pcp = 0;
    return true;
}

static bool inside(const void *a, size_t n, const void *base, size_t size)
{
    const uint8_t *x = a, *b = base;
    return x >= b && n <= size && (size_t)(x - b) <= size - n;
}

bool fw_pkt_in_bounds(const struct fw_world *w, const struct pkt *p)
{
    uint64_t total = p->head_len;

    if (p->head_len > PKT_HEAD_MAX || p->nsegs > PKT_SEGS_MAX)
        return false;
    for (unsigned i = 0; i < p->nsegs; i++) {
        const struct vring_buf *s = &p->segs[i];
        bool ok = inside(s->addr, s->len, w->frames, sizeof w->frames);
        if (!ok && w->pmd)
            ok = inside(s->addr, s->len, w->pmd->l3_bufs, sizeof w->pmd->l3_bufs);
        if (!ok)
            return false;
        total += s->len;
    }
    return total == p->len;
}

uint64_t fw_drops(const struct fw_world *w)
{
    uint64_t n = 0;
    for (unsigned no = 1; no <= w->n_ports; no++)
        for (int r = 0; r < DROP__COUNT; r++)
            n += w->ports[no].stats.drops[r];
    return n;
}

void fw_input(struct fw_world *w, unsigned port, struct pkt *pkts, unsigned n)
{
    struct port_stats before[FW_PORTS_MAX + 1];

    if (w->trace) {
        fprintf(stderr, "rx %s: %u packets\n", w->ports[port].name, n);
        for (unsigned no = 1; no <= w->n_ports; no++)
            before[no] = w->ports[no].stats;
    }
    bridge_input(w->pmd, &w->snap, &w->ports[port], pkts, (int)n);
    if (!w->trace)
        return;
    for (unsigned no = 1; no <= w->n_ports; no++)
        for (int r = 0; r < DROP__COUNT; r++)
            if (w->ports[no].stats.drops[r] != before[no].drops[r])
                fprintf(stderr, "  drop on %s: %s\n", w->ports[no].name,
                        drop_reason_name((enum drop_reason)r));
}

size_t fw_flatten(const struct pkt *p, uint16_t tci, uint8_t *out, size_t cap)
{
    struct iovec iov[PKT_IOV_MAX];
    uint8_t tag[4];
    size_t at = 0;
    int n = pkt_gather(p, tci, tag, iov);

    for (int i = 0; i < n; i++) {
        size_t k = iov[i].iov_len < cap - at ? iov[i].iov_len : cap - at;
        memcpy(out + at, iov[i].iov_base, k);
        at += k;
    }
    return at;
}

uint16_t fw_csum(const uint8_t *d, size_t len, uint32_t sum)
{
    uint64_t s = sum;
    size_t i;

    for (i = 0; i + 1 < len; i += 2)
        s += (uint32_t)d[i] << 8 | d[i + 1];
    if (i < len)
        s += (uint32_t)d[i] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

/* The pseudo-header sum of an IPv4 header for an L4 segment of len bytes. */
static uint32_t pseudo_sum(const uint8_t *ip, size_t len)
{
    uint32_t s = 0;
    for (int i = 12; i < 20; i += 2)
        s += rd16(ip + i);
    return s + ip[9] + (uint32_t)len;
}

/* Offset of the L3 header and the IPv4 header length; 0 if not IPv4. */
static size_t l3_of(const uint8_t *f, size_t len, unsigned *ihl)
{
    size_t l3 = 14;

    if (len >= 18 && rd16(f + 12) == ETH_TYPE_VLAN)
        l3 = 18;
    if (len < l3 + 20 || rd16(f + l3 - 2) != ETH_TYPE_IP || (f[l3] >> 4) != 4)
        return 0;
    *ihl = (f[l3] & 0xfu) * 4;
    if (*ihl < 20 || len < l3 + *ihl)
        return 0;
    return l3;
}

unsigned fw_csum_state(const uint8_t *f, size_t len)
{
    unsigned ihl, st = 0;
    size_t l3 = l3_of(f, len, &ihl), tot, l4len;
    const uint8_t *ip = f + l3, *l4;

    if (!l3)
        return 0;
    if (fw_csum(ip, ihl, 0) == 0)
        st |= FW_IP_OK;
    tot = rd16(ip + 2);
    if (tot < ihl || l3 + tot > len || (rd16(ip + 6) & 0x3fff))
        return st;
    l4 = ip + ihl;
    l4len = tot - ihl;
    switch (ip[9]) {
    case 6:
        if (l4len >= 20 && fw_csum(l4, l4len, pseudo_sum(ip, l4len)) == 0)
            st |= FW_L4_OK;
        break;
    case 17:
        if (l4len >= 8 && ((l4[6] | l4[7]) == 0 ||
                           fw_csum(l4, l4len, pseudo_sum(ip, l4len)) == 0))
            st |= FW_L4_OK;
        break;
    case 1:
        if (l4len >= 8 && fw_csum(l4, l4len, 0) == 0)
            st |= FW_L4_OK;
        /* an error carries the IPv4 header of the packet it is about */
        if (l4len >= 8 + 20 && (l4[0] == 3 || l4[0] == 11 || l4[0] == 12)) {
            unsigned iihl = (l4[8] & 0xfu) * 4;
            if ((l4[8] >> 4) == 4 && iihl >= 20 && l4len >= 8 + iihl &&
                fw_csum(l4 + 8, iihl, 0) == 0)
                st |= FW_INNER_OK;
        }
        break;
    default:
        break;
    }
    return st;
}

void fw_fix_csums(uint8_t *f, size_t len)
{
    unsigned ihl;
    size_t l3 = l3_of(f, len, &ihl), tot, l4len;
    uint8_t *ip = f + l3, *l4;
    uint16_t cs;

    if (!l3)
        return;
    tot = rd16(ip + 2);
    l4 = ip + ihl;
    if (tot >= ihl && l3 + tot <= len && !(rd16(ip + 6) & 0x3fff)) {
        l4len = tot - ihl;
        if (ip[9] == 1 && l4len >= 8) {
            /* an error's embedded header first: the outer sum covers it */
            if (l4len >= 8 + 20 && (l4[0] == 3 || l4[0] == 11 || l4[0] == 12)) {
                unsigned iihl = (l4[8] & 0xfu) * 4;
                if (iihl >= 20 && l4len >= 8 + iihl) {
                    l4[8 + 10] = l4[8 + 11] = 0;
                    cs = fw_csum(l4 + 8, iihl, 0);
                    l4[8 + 10] = (uint8_t)(cs >> 8);
                    l4[8 + 11] = (uint8_t)cs;
                }
            }
            l4[2] = l4[3] = 0;
            cs = fw_csum(l4, l4len, 0);
            l4[2] = (uint8_t)(cs >> 8);
            l4[3] = (uint8_t)cs;
        } else if ((ip[9] == 6 && l4len >= 20) || (ip[9] == 17 && l4len >= 8)) {
            unsigned at = ip[9] == 6 ? 16 : 6;
            l4[at] = l4[at + 1] = 0;
            cs = fw_csum(l4, l4len, pseudo_sum(ip, l4len));
            if (ip[9] == 17 && cs == 0)
                cs = 0xffff;
            l4[at] = (uint8_t)(cs >> 8);
            l4[at + 1] = (uint8_t)cs;
        }
    }
    ip[10] = ip[11] = 0;
    cs = fw_csum(ip, ihl, 0);
    ip[10] = (uint8_t)(cs >> 8);
    ip[11] = (uint8_t)cs;
}

void fw_complete_csum(const struct virtio_net_hdr *vh, uint8_t *f, size_t len)
{
    size_t start = vh->csum_start, at = start + vh->csum_offset;
    uint16_t cs;

    if (!(vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) || start > len || at + 2 > len)
        return;
    /* the field holds the pseudo-header sum: it is summed with the rest */
    cs = fw_csum(f + start, len - start, 0);
    f[at] = (uint8_t)(cs >> 8);
    f[at + 1] = (uint8_t)cs;
}
