/* VLAN ingress and egress through bridge_input(): four ports whose VLAN
 * rules (access tag=, trunk trunks= native=, mtu=) come from the input and
 * pass through add-port's own parsing (conf_add_port), then frames —
 * untagged, 802.1Q, priority-tagged, 802.1ad or double-tagged — from any
 * port. fuzz_parse drives the tag strip and vlan_ingress/vlan_egress alone
 * with three fixed rules; this target varies the rules and follows the
 * frame through learning, lookup, flooding and the egress tag.
 *
 * The switch knows 802.1Q only: an 802.1ad (0x88a8) frame is an untagged
 * frame of that ethertype to it, and of a double 802.1Q tag only the outer
 * one is a VLAN (docs/datapath.md). The checks hold for those too.
 *
 * Input: 4 x 6 bytes of port rules [flags][a hi][a lo][b hi][b lo][c]
 * (flags bit 0 access (tag=a) else trunk; bit 1 trunks=a,b-(b+c);
 * bit 2 native=b; bit 3 mtu=100+c; bit 4 a rule the parser must refuse:
 * tag=4095), then records [ctl][len hi][len lo][frame]: ctl bits 0-1 the
 * receiving port, 2-3 clock step (0, 1, 4, 100 s; FDB ageing is 5 s),
 * 4 two receive buffers.
 *
 * Checked, against the rules as DESIGN.md words them (not vlan.c's code):
 * a frame leaves only through ports other than its own whose rule carries
 * its VLAN; access ports send untagged, trunks tag every VLAN but their
 * native one, with the received priority bits; the frame's bytes apart
 * from the tag are what came in; nothing longer than a port's MTU leaves
 * it; a refused rule leaves the configuration as it was; a frame that
 * leaves nowhere is counted as a drop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_world.h"
#include "vlan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NPORTS 4
#define RULE_LEN 6

static struct fw_world world;
static struct pkt batch[FW_BATCH];
static uint16_t in_tci[FW_BATCH];
static uint8_t in_frame[FW_BATCH][FW_FRAME_MAX]; /* untagged, as received */
static size_t in_len[FW_BATCH];
static unsigned emitted[FW_BATCH];
static unsigned in_port;

/* A trunk with no list carries all VLANs, untagged = native (VLAN 0 when
 * unset); with a list only those and native; untagged frames only with a
 * native VLAN or no list. VLAN 4095 is reserved. */
static bool carries(const struct conf_vlan *v, uint16_t vid)
{
    if (v->mode == VLAN_MODE_ACCESS)
        return vid == v->tag;
    if (vid == v->native)
        return vid != 0 || v->trunks_all;
    if (vid == 0 || vid > 4094)
        return false;
    return v->trunks_all || (v->trunks[vid / 64] >> (vid % 64) & 1);
}

/* The VLAN a frame received with tci belongs to; -1 if not admitted. */
static int expected_vlan(const struct conf_vlan *v, uint16_t tci)
{
    uint16_t vid = tci & 0xfff;
    if (v->mode == VLAN_MODE_ACCESS)
        return vid ? -1 : v->tag;
    if (!vid)
        return carries(v, v->native) ? v->native : -1;
    return carries(v, vid) ? vid : -1;
}

static void on_tx(struct port *out, struct pkt *p, uint16_t tci)
{
    static uint8_t f[FW_FRAME_MAX + 64];
    const struct conf_vlan *ov = &world.dps[out->no].vlan;
    const struct conf_vlan *iv = &world.dps[in_port].vlan;
    unsigned slot;
    size_t n;
    int vid;

    FW_CHECK(p >= batch && p < batch + FW_BATCH);
    slot = (unsigned)(p - batch);
    emitted[slot]++;
    FW_CHECK(out->no != in_port);
    FW_CHECK(fw_pkt_in_bounds(&world, p));
    vid = expected_vlan(iv, in_tci[slot]);
    FW_CHECK(vid >= 0 && p->vlan == vid);
    FW_CHECK(carries(ov, (uint16_t)vid));
    if (ov->mode == VLAN_MODE_ACCESS || vid == ov->native) {
        FW_CHECK(tci == 0);
    } else {
        FW_CHECK((tci & 0xfff) == vid);
        FW_CHECK((tci & 0xe000) == (in_tci[slot] & 0xe000));
    }
    FW_CHECK(p->len <= world.dps[out->no].max_frame);
    n = fw_flatten(p, tci, f, sizeof f);
    FW_CHECK(n == p->len + (tci ? VLAN_HLEN : 0u));
    if (tci) {
        FW_CHECK(rd16(f + 12) == ETH_TYPE_VLAN && rd16(f + 14) == tci);
        memmove(f + 12, f + 16, n - 16);
        n -= VLAN_HLEN;
    }
    FW_CHECK(n == in_len[slot] && !memcmp(f, in_frame[slot], n));
}

static void build_world(void)
{
    struct conf c;
    char err[256];
    static const char *const ageing[] = {"ageing=5"};

    conf_init(&c);
    if (conf_add_bridge(&c, "br0", err, sizeof err) ||
        conf_set_bridge(&c, "br0", ageing, 1, err, sizeof err))
        goto fail;
    for (int i = 1; i <= NPORTS; i++) {
        char name[8];
        snprintf(name, sizeof name, "p%d", i);
        if (conf_add_port(&c, "br0", name, NULL, 0, err, sizeof err))
            goto fail;
    }
    fw_build(&world, &c, on_tx);
    return;
fail:
    fprintf(stderr, "fuzz_vlan: configuration: %s\n", err);
    abort();
}

/* The rules of the input's ports, through add-port's parser. */
static void set_rules(const uint8_t *r)
{
    struct conf c;
    char err[256];

    conf_init(&c);
    FW_CHECK(conf_add_bridge(&c, "br0", err, sizeof err) == 0);
    for (int i = 0; i < NPORTS; i++, r += RULE_LEN) {
        char name[8], o[5][64];
        const char *opts[5];
        unsigned a = rd16(r + 1), b = rd16(r + 3), k = 0;
        uint8_t fl = r[0];

        snprintf(name, sizeof name, "p%d", i + 1);
        if (fl & 1) {
            snprintf(o[k++], sizeof o[0], "vlan_mode=access");
            snprintf(o[k++], sizeof o[0], "tag=%u", a % 4096);
        } else {
            if (fl & 2)
                snprintf(o[k++], sizeof o[0], "trunks=%u,%u-%u", a % 4096, b % 4096,
                         b % 4096 + r[5]);
            if (fl & 4)
                snprintf(o[k++], sizeof o[0], "native=%u", b % 4096);
        }
        if (fl & 8)
            snprintf(o[k++], sizeof o[0], "mtu=%u", 100u + r[5]);
        if (fl & 16)
            snprintf(o[k++], sizeof o[0], "tag=4095");
        for (unsigned j = 0; j < k; j++)
            opts[j] = o[j];
        if (conf_add_port(&c, "br0", name, opts, k, err, sizeof err)) {
            /* refused with a sentence, and nothing changed */
            FW_CHECK(err[0] && !conf_find_port(&c, name) && c.n_ports == (size_t)i);
            FW_CHECK(conf_add_port(&c, "br0", name, NULL, 0, err, sizeof err) == 0);
        }
    }
    for (unsigned no = 1; no <= NPORTS; no++) {
        const struct conf_port *cp = &c.ports[no - 1];
        world.dps[no].vlan = cp->vlan;
        world.dps[no].max_frame = (cp->mtu ? cp->mtu : CONF_MTU_DEFAULT) + ETH_HLEN;
    }
    conf_free(&c);
}

static void run_batch(unsigned port, unsigned n)
{
    uint64_t drops;
    unsigned left = 0;

    if (!n)
        return;
    in_port = port;
    memset(emitted, 0, sizeof emitted);
    drops = fw_drops(&world);
    fw_input(&world, port, batch, n);
    for (unsigned i = 0; i < n; i++)
        left += emitted[i] == 0;
    FW_CHECK(fw_drops(&world) - drops >= left);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t steps[4] = {0, 1, 4, 100};
    unsigned port = 0, n = 0;

    if (size < NPORTS * RULE_LEN)
        return 0;
    if (!world.pmd)
        build_world();
    fw_reset(&world);
    set_rules(data);
    data += NPORTS * RULE_LEN;
    size -= NPORTS * RULE_LEN;
    world.pmd->now = 1000;

    while (size >= 3) {
        uint8_t ctl = data[0];
        size_t len = (size_t)data[1] << 8 | data[2];
        unsigned in = 1 + (ctl & 3);
        uint32_t step = steps[ctl >> 2 & 3];

        data += 3;
        size -= 3;
        if (len > size)
            len = size;
        if (len > FW_FRAME_MAX)
            len = FW_FRAME_MAX;
        if (in != port || step || n == FW_BATCH) {
            run_batch(port, n);
            n = 0;
        }
        port = in;
        world.pmd->now += step;
        if (fw_receive(&world, n, data, len, (ctl & 16) ? len / 3 : 0, NULL, &batch[n])) {
            /* what must come out again: the frame without its 802.1Q tag */
            in_tci[n] = batch[n].vlan;
            memcpy(in_frame[n], data, len);
            in_len[n] = len;
            if (len >= 16 && rd16(data + 12) == ETH_TYPE_VLAN) {
                memmove(in_frame[n] + 12, in_frame[n] + 16, len - 16);
                in_len[n] -= VLAN_HLEN;
            }
            n++;
        }
        data += len;
        size -= len;
    }
    run_batch(port, n);
    return 0;
}
