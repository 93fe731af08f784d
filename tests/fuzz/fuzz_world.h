/* A small switch for the datapath fuzz targets (fuzz_vlan, fuzz_nat): one
 * bridge, ports of a capture type that hands every transmitted packet to the
 * target, the datapath snapshot and the L3 snapshot built from a struct conf
 * the way switch.c builds them, and the real bridge_input() — so a frame
 * takes the path it takes in vswitchd: VLAN in, learning, lookup, L3 gateway,
 * NAT, egress VLAN.
 *
 * Also the checks the targets share: an Internet checksum of our own (not
 * checksum.c's: the oracle must not be the code under test) and the
 * "frame within its buffer" test of an emitted packet. */
#ifndef FUZZ_WORLD_H
#define FUZZ_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "dp.h"

/* A broken invariant: says which and aborts (libFuzzer keeps the input). */
#define FW_CHECK(cond)                                                              \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                \
        }                                                                           \
    } while (0)

#define FW_PORTS_MAX 8
#define FW_FRAME_MAX 2048
#define FW_BATCH 8

/* Called for each packet a port transmits, with its egress TCI. */
typedef void (*fw_tx_cb)(struct port *out, struct pkt *p, uint16_t tci);

struct fw_world {
    struct conf conf;
    unsigned n_ports;          /* port numbers 1..n_ports, in conf order */
    struct port ports[FW_PORTS_MAX + 1];
    struct dp_port dps[FW_PORTS_MAX + 1];
    struct dp_bridge br;
    uint16_t members[FW_PORTS_MAX];
    struct dp_snapshot snap;
    struct l3_state *l3;       /* NULL: no networks */
    struct pmd *pmd;
    fw_tx_cb on_tx;
    bool trace;                /* FUZZ_TRACE set: what happens, on stderr */
    /* the received frames of the batch in flight (packets point into them) */
    uint8_t frames[FW_BATCH][FW_FRAME_MAX];
};

/* Builds the world for c (one bridge; ports in c's order; networks when c
 * has them). c is taken over. Aborts on failure: a harness bug. */
void fw_build(struct fw_world *w, struct conf *c, fw_tx_cb on_tx);
/* Forgets what the last input taught: FDB, neighbours, connections, leases,
 * counters. */
void fw_reset(struct fw_world *w);
/* Copies frame into batch slot `slot` and builds its packet as a port's
 * rx_burst does (split into two buffers at `cut` when 0 < cut < len; vh, if
 * not NULL, the offload request that came with it). false when the port
 * would drop it (pkt_from_bufs, pkt_vnet_untag). */
bool fw_receive(struct fw_world *w, unsigned slot, const uint8_t *frame, size_t len,
                size_t cut, const struct virtio_net_hdr *vh, struct pkt *p);
/* Whether p (head + segments) lies in memory the packet may point at: its
 * head, the batch's received frames, the PMD's generated-frame buffers. */
bool fw_pkt_in_bounds(const struct fw_world *w, const struct pkt *p);
/* bridge_input() of n packets received on port (FUZZ_TRACE in the
 * environment: each transmit and drop on stderr, for writing seeds). */
void fw_input(struct fw_world *w, unsigned port, struct pkt *pkts, unsigned n);
/* Drops counted on every port, all reasons. */
uint64_t fw_drops(const struct fw_world *w);
/* The frame as transmitted (tag written when tci != 0) into out; its length. */
size_t fw_flatten(const struct pkt *p, uint16_t tci, uint8_t *out, size_t cap);

/* One's complement sum, folded and complemented: 0 over data that includes
 * a valid checksum. */
uint16_t fw_csum(const uint8_t *d, size_t len, uint32_t sum);
/* Checksum validity of an Ethernet/IPv4 frame, as bits: */
#define FW_IP_OK 1u     /* IPv4 header checksum */
#define FW_L4_OK 2u     /* TCP/UDP/ICMP checksum over the IP length */
#define FW_INNER_OK 4u  /* the IPv4 header embedded in an ICMP error */
unsigned fw_csum_state(const uint8_t *f, size_t len);

/* Completes a NEEDS_CSUM request in a flat frame as a device would (sum
 * from csum_start to the end, stored at csum_start + csum_offset). */
void fw_complete_csum(const struct virtio_net_hdr *vh, uint8_t *f, size_t len);

/* Writes valid IPv4 and L4 checksums into an untagged or tagged Ethernet
 * frame where its lengths allow (the target's way past checksum walls). */
void fw_fix_csums(uint8_t *f, size_t len);

#endif
