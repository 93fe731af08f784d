/* Stage 2 (ingress) and the last stage (egress): 802.1Q rules of a port.
 * VLAN 0 is "untagged" inside the switch. */
#ifndef VSWITCH_VLAN_H
#define VSWITCH_VLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "drop.h"

#define VLAN_VID_MASK 0x0fff
#define VLAN_PCP_MASK 0xe000

static inline bool vlan_bit(const uint64_t *bitmap, uint16_t vid)
{
    return bitmap[vid >> 6] >> (vid & 63) & 1;
}

/* Classifies a received frame. tci: the tag's TCI, 0 if the frame came
 * untagged. Returns -1 and the VLAN in *vid, or the drop reason. */
int vlan_ingress(const struct conf_vlan *v, uint16_t tci, uint16_t *vid);

/* Whether VLAN vid may leave through a port with rule v; *tci is the tag to
 * write (0: send untagged). pcp: priority bits of the received tag. */
bool vlan_egress(const struct conf_vlan *v, uint16_t vid, uint16_t pcp, uint16_t *tci);

#endif
