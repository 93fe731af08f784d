#include "vlan.h"

/* As in Open vSwitch: a trunk with no trunks= list carries every VLAN and its
 * untagged frames are VLAN 0; a trunk with a list carries only those (and its
 * native VLAN), so untagged frames are dropped unless native= is set. */
static bool trunk_carries(const struct conf_vlan *v, uint16_t vid)
{
    if (vid == 0)
        return v->native == 0 && v->trunks_all;
    if (vid == v->native)
        return true;
    return v->trunks_all || vlan_bit(v->trunks, vid);
}

int vlan_ingress(const struct conf_vlan *v, uint16_t tci, uint16_t *vid)
{
    uint16_t tagged = tci & VLAN_VID_MASK; /* priority-tagged (VID 0) = untagged */

    if (v->mode == VLAN_MODE_ACCESS) {
        if (tagged)
            return DROP_VLAN_TAGGED_ACCESS;
        *vid = v->tag;
        return -1;
    }
    if (!tagged) {
        if (!trunk_carries(v, v->native))
            return DROP_VLAN_NOT_ALLOWED;
        *vid = v->native;
        return -1;
    }
    if (tagged == VLAN_VID_MASK || !trunk_carries(v, tagged))
        return DROP_VLAN_NOT_ALLOWED;
    *vid = tagged;
    return -1;
}

bool vlan_egress(const struct conf_vlan *v, uint16_t vid, uint16_t pcp, uint16_t *tci)
{
    if (v->mode == VLAN_MODE_ACCESS) {
        *tci = 0;
        return vid == v->tag;
    }
    if (!trunk_carries(v, vid))
        return false;
    *tci = vid == v->native ? 0 : (uint16_t)(pcp | vid);
    return true;
}
