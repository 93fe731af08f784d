/* The L2 pipeline with capture ports (a test port type that records what it
 * is given): learning, unicast, flooding within a VLAN only, tagging on
 * egress, MAC moves, drops by reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dp.h"

#define NPORTS 5

struct capture {
    int n;
    uint16_t tcis[64];
    uint32_t lens[64];
    uint8_t dst[64][6];
};

static struct capture caps[NPORTS + 1];

static void cap_tx(struct port *p, struct pkt *const *pkts, const uint16_t *tcis, int n)
{
    struct capture *c = &caps[p->no];
    for (int i = 0; i < n; i++) {
        c->tcis[c->n] = tcis[i];
        c->lens[c->n] = pkts[i]->len;
        memcpy(c->dst[c->n], pkts[i]->head, 6);
        c->n++;
    }
    port_count_tx(p, (uint64_t)n, 0);
}

static const struct port_ops cap_ops = {.type = "capture", .tx_burst = cap_tx};

struct world {
    struct port ports[NPORTS + 1];
    struct dp_port dps[NPORTS + 1];
    struct dp_bridge br;
    uint16_t members[NPORTS];
    struct dp_snapshot snap;
    struct pmd *pmd;
};

static struct conf_vlan v_access(uint16_t tag)
{
    struct conf_vlan v;
    memset(&v, 0, sizeof(v));
    v.mode = VLAN_MODE_ACCESS;
    v.tag = tag;
    return v;
}

static struct conf_vlan v_trunk(uint16_t a, uint16_t b)
{
    struct conf_vlan v;
    memset(&v, 0, sizeof(v));
    v.mode = VLAN_MODE_TRUNK;
    v.trunks[a >> 6] |= 1ULL << (a & 63);
    v.trunks[b >> 6] |= 1ULL << (b & 63);
    return v;
}

/* ports: 1,2 access VLAN 10; 3 access VLAN 20; 4 trunk 10,20; 5 access 10, MTU 100 */
static int setup(void **state)
{
    struct world *w = calloc(1, sizeof(*w));
    w->pmd = calloc(1, sizeof(*w->pmd));
    w->br.fdb = fdb_create(300);
    w->br.members = w->members;
    for (int i = 1; i <= NPORTS; i++) {
        struct port *p = &w->ports[i];
        p->no = (uint16_t)i;
        p->ops = &cap_ops;
        p->tx_ready = true;
        w->dps[i].port = p;
        w->dps[i].br = &w->br;
        w->dps[i].max_frame = i == 5 ? 114 : 1514;
        w->members[w->br.n_members++] = (uint16_t)i;
        w->snap.by_no[i] = &w->dps[i];
    }
    w->dps[1].vlan = v_access(10);
    w->dps[2].vlan = v_access(10);
    w->dps[3].vlan = v_access(20);
    w->dps[4].vlan = v_trunk(10, 20);
    w->dps[5].vlan = v_access(10);
    w->pmd->now = 1000;
    memset(caps, 0, sizeof(caps));
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    struct world *w = *state;
    fdb_destroy(w->br.fdb);
    free(w->pmd);
    free(w);
    return 0;
}

static uint8_t frames[8][256];

static void make(struct pkt *p, int idx, const char *dst, const char *src, uint16_t tci,
                 uint32_t len)
{
    memset(p, 0, sizeof(*p));
    memcpy(frames[idx], dst, 6);
    memcpy(frames[idx] + 6, src, 6);
    frames[idx][12] = 0x08;
    memcpy(p->head, frames[idx], 64);
    p->head_len = 64;
    p->len = len;
    p->vlan = tci;
    p->ethertype = ETH_TYPE_IP;
}

#define BCAST "\xff\xff\xff\xff\xff\xff"
#define MAC1 "\x02\x00\x00\x00\x00\x01"
#define MAC2 "\x02\x00\x00\x00\x00\x02"
#define MAC4 "\x02\x00\x00\x00\x00\x04"

static void input(struct world *w, int port, struct pkt *pkts, int n)
{
    bridge_input(w->pmd, &w->snap, &w->ports[port], pkts, n);
}

static void test_flood_stays_in_vlan(void **state)
{
    struct world *w = *state;
    struct pkt p;
    make(&p, 0, BCAST, MAC1, 0, 60);
    input(w, 1, &p, 1);
    assert_int_equal(caps[1].n, 0); /* not back to the sender */
    assert_int_equal(caps[2].n, 1);
    assert_int_equal(caps[2].tcis[0], 0);
    assert_int_equal(caps[3].n, 0); /* VLAN 20 */
    assert_int_equal(caps[4].n, 1);
    assert_int_equal(caps[4].tcis[0], 10); /* tagged on the trunk */
    assert_int_equal(caps[5].n, 1);
}

static void test_learn_then_unicast(void **state)
{
    struct world *w = *state;
    struct pkt p;
    make(&p, 0, BCAST, MAC1, 0, 60);
    input(w, 1, &p, 1);
    memset(caps, 0, sizeof(caps));
    /* reply from the trunk, tagged 10, to MAC1: only port 1 gets it */
    make(&p, 1, MAC1, MAC4, 10, 60);
    input(w, 4, &p, 1);
    assert_int_equal(caps[1].n, 1);
    assert_int_equal(caps[1].tcis[0], 0);
    assert_int_equal(caps[2].n + caps[3].n + caps[5].n, 0);
    assert_int_equal(fdb_lookup(w->br.fdb, 10, (const uint8_t *)MAC4, 1000), 4);
    /* the same MAC in VLAN 20 is a different entry: flooded in 20 */
    memset(caps, 0, sizeof(caps));
    make(&p, 2, MAC1, MAC4, 20, 60);
    input(w, 4, &p, 1);
    assert_int_equal(caps[3].n, 1);
    assert_int_equal(caps[1].n, 0);
}

static void test_mac_move(void **state)
{
    struct world *w = *state;
    struct pkt p;
    make(&p, 0, BCAST, MAC2, 0, 60);
    input(w, 2, &p, 1);
    assert_int_equal(fdb_lookup(w->br.fdb, 10, (const uint8_t *)MAC2, 1000), 2);
    make(&p, 0, BCAST, MAC2, 0, 60);
    input(w, 5, &p, 1);
    assert_int_equal(fdb_lookup(w->br.fdb, 10, (const uint8_t *)MAC2, 1000), 5);
    memset(caps, 0, sizeof(caps));
    make(&p, 1, MAC2, MAC1, 0, 60);
    input(w, 1, &p, 1);
    assert_int_equal(caps[5].n, 1);
    assert_int_equal(caps[2].n, 0);
}

static void test_drops_counted(void **state)
{
    struct world *w = *state;
    struct pkt p[4];
    make(&p[0], 0, BCAST, MAC1, 10, 60);                  /* tagged on access */
    make(&p[1], 1, BCAST, "\x03\x00\x00\x00\x00\x01", 0, 60); /* multicast source */
    make(&p[2], 2, BCAST, MAC1, 0, 60);                   /* fine: learns MAC1 on 1 */
    make(&p[3], 3, MAC1, MAC1, 0, 60);                    /* back to itself */
    input(w, 1, p, 4);
    assert_int_equal(w->ports[1].stats.drops[DROP_VLAN_TAGGED_ACCESS], 1);
    assert_int_equal(w->ports[1].stats.drops[DROP_SRC_MULTICAST], 1);
    assert_int_equal(w->ports[1].stats.drops[DROP_SAME_PORT], 1);
    /* VLAN not on the trunk */
    make(&p[0], 0, BCAST, MAC4, 30, 60);
    input(w, 4, p, 1);
    assert_int_equal(w->ports[4].stats.drops[DROP_VLAN_NOT_ALLOWED], 1);
    /* too big for port 5's MTU, fine for the others */
    memset(caps, 0, sizeof(caps));
    make(&p[0], 0, BCAST, MAC2, 0, 200);
    input(w, 2, p, 1);
    assert_int_equal(w->ports[5].stats.drops[DROP_MTU], 1);
    assert_int_equal(caps[5].n, 0);
    assert_int_equal(caps[1].n, 1);
    /* a destination that is down counts there */
    w->ports[1].tx_ready = false;
    make(&p[0], 0, BCAST, MAC2, 0, 60);
    input(w, 2, p, 1);
    assert_int_equal(w->ports[1].stats.drops[DROP_LINK_DOWN], 1);
    /* alone in its VLAN: nothing to flood to */
    w->dps[4].vlan = v_access(10);
    make(&p[0], 0, BCAST, "\x02\x00\x00\x00\x00\x03", 0, 60);
    input(w, 3, p, 1);
    assert_int_equal(w->ports[3].stats.drops[DROP_NO_DESTINATION], 1);
}

static void test_batch_mixed_destinations(void **state)
{
    struct world *w = *state;
    struct pkt p[PKT_BATCH];
    /* learn MAC2 on port 2 first */
    make(&p[0], 0, BCAST, MAC2, 0, 60);
    input(w, 2, p, 1);
    memset(caps, 0, sizeof(caps));
    for (int i = 0; i < PKT_BATCH; i++)
        make(&p[i], i % 8, i % 2 ? MAC2 : BCAST, MAC1, 0, 60 + (uint32_t)i);
    input(w, 1, p, PKT_BATCH);
    assert_int_equal(caps[2].n, PKT_BATCH);      /* every packet */
    assert_int_equal(caps[5].n, PKT_BATCH / 2);  /* only the broadcasts */
    assert_int_equal(caps[4].n, PKT_BATCH / 2);
    /* order kept per destination */
    for (int i = 0; i < PKT_BATCH; i++)
        assert_int_equal(caps[2].lens[i], 60 + i);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_flood_stays_in_vlan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_learn_then_unicast, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mac_move, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drops_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_mixed_destinations, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
