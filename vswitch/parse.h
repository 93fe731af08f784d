/* Stage 1: parse. Builds a packet's head and metadata from its received
 * buffers: Ethernet, one 802.1Q tag (stripped into metadata), IPv4/IPv6 and the
 * L4 protocol. Never reads past the frame. */
#ifndef VSWITCH_PARSE_H
#define VSWITCH_PARSE_H

#include "pkt.h"

/* Parses L3/L4 offsets of an already built head (pkt_from_bufs). Headers that
 * do not fit in head leave l3_ofs/l4_ofs at 0. */
void pkt_parse_l3(struct pkt *p);

#endif
