/* VXLAN receive: what vxlan_rx_burst does with each datagram the socket
 * gives it — outer header check (vxlan_hdr_parse), VNI to port and index,
 * decapsulation into a packet whose payload stays in the datagram, the
 * VNI -> VLAN mapping of map ports, learning of the remote VTEP behind the
 * inner source MAC — then the packet's L3 parse and the outer source port
 * a reply would get. Discovery's pins and forgets come between datagrams.
 *
 * Input: [n VNIs 1..4][map?] + 4 x [VNI 3 bytes][VLAN 2 bytes], then records
 * [ctl][source IPv4 4][len hi][len lo][UDP payload]: ctl bits 0-1 clock step
 * (0, 1, 100, 400 s; VTEP ageing is 300 s); bit 2 discovery pins the inner
 * source MAC to this source first; bit 3 discovery forgets this source after.
 *
 * Checked: a datagram is refused exactly when it is too short, lacks the I
 * flag, or (map port) carries an inner VLAN tag; a packet's frame is the
 * inner frame, byte for byte, lying in the datagram, with its tag as the
 * received TCI (or, map port, the VNI's VLAN); after a unicast source MAC
 * was seen its VTEP is the datagram's source, and after a forget it is
 * unknown. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_world.h"
#include "parse.h"
#include "port_vxlan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HDR_LEN (2 + 4 * 5)
#define DGRAM_MAX 4096

static bool in_dgram(const struct pkt *p, const uint8_t *d, uint32_t len)
{
    for (unsigned i = 0; i < p->nsegs; i++)
        if (p->segs[i].addr < d || p->segs[i].addr + p->segs[i].len > d + len)
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct vtep_table *vteps;
    static uint8_t d[DGRAM_MAX], flat[DGRAM_MAX + 8];
    static const uint32_t steps[4] = {0, 1, 100, 400};
    uint32_t vnis[4];
    uint16_t vlans[4];
    unsigned n_vni;
    struct vxlan_rx_map m;
    uint32_t now = 1000;
    struct pkt pk;

    if (size < HDR_LEN)
        return 0;
    if (!vteps && !(vteps = calloc(1, sizeof *vteps)))
        abort();
    memset(vteps, 0, sizeof *vteps);
    vteps->ageing = VXLAN_VTEP_AGEING;
    n_vni = 1 + data[0] % 4;
    for (unsigned i = 0; i < 4; i++) {
        const uint8_t *v = data + 2 + 5 * i;
        vnis[i] = (uint32_t)v[0] << 16 | (uint32_t)v[1] << 8 | v[2];
        vlans[i] = rd16(v + 3) % 4095;
    }
    m.map = data[1] & 1;
    m.vlan = vlans;
    m.vteps = vteps;
    data += HDR_LEN;
    size -= HDR_LEN;

    while (size >= 7) {
        uint8_t ctl = data[0];
        uint32_t src, vni = 0, len = (uint32_t)data[5] << 8 | data[6];
        unsigned idx = n_vni;
        int r;

        memcpy(&src, data + 1, 4);
        data += 7;
        size -= 7;
        if (len > size)
            len = (uint32_t)size;
        if (len > DGRAM_MAX)
            len = DGRAM_MAX;
        memcpy(d, data, len);
        data += len;
        size -= len;
        now += steps[ctl & 3];

        r = vxlan_hdr_parse(d, len, &vni);
        if (r >= 0) {
            FW_CHECK(len < VXLAN_HLEN + ETH_HLEN || !(d[0] & VXLAN_FLAG_I));
            continue;
        }
        FW_CHECK(vni == ((uint32_t)d[4] << 16 | (uint32_t)d[5] << 8 | d[6]));
        for (unsigned i = 0; i < n_vni && idx == n_vni; i++)
            if (vnis[i] == vni)
                idx = i;
        if (idx == n_vni)
            continue; /* not this port's: DROP_VXLAN_UNKNOWN_VNI */

        const uint8_t *inner = d + VXLAN_HLEN, *smac = inner + ETH_ALEN;
        uint32_t ilen = len - VXLAN_HLEN;
        bool tagged = ilen >= ETH_HLEN && rd16(inner + 12) == ETH_TYPE_VLAN;
        uint16_t tci = tagged && ilen >= 16 ? rd16(inner + 14) : 0;

        if (ctl & 4)
            vtep_pin(vteps, idx, smac, src ^ 1);
        r = vxlan_decap(d, len, &m, idx, src, now, &pk);
        if (r >= 0) {
            FW_CHECK((r == DROP_VXLAN_SHORT && tagged && ilen < ETH_HLEN + VLAN_HLEN) ||
                  (r == DROP_VLAN_TAGGED_ACCESS && m.map && (tci & 0xfff)));
            continue;
        }
        FW_CHECK(!(tagged && ilen < ETH_HLEN + VLAN_HLEN));
        FW_CHECK(!(m.map && (tci & 0xfff)));
        FW_CHECK(in_dgram(&pk, d, len));
        FW_CHECK(pk.len == ilen - (tagged ? VLAN_HLEN : 0));
        FW_CHECK(pk.vlan == (m.map ? vlans[idx] : tci));
        /* the frame as it came, the tag back in place (a map port's priority
         * tag is gone for good) */
        size_t n = fw_flatten(&pk, m.map ? 0 : tci, flat, sizeof flat);
        if (m.map && tagged) {
            FW_CHECK(n == ilen - VLAN_HLEN && !memcmp(flat, inner, 12) &&
                  !memcmp(flat + 12, inner + 16, n - 12));
        } else if (tagged && !tci) {
            /* a tag with TCI 0 is not written back */
            FW_CHECK(n == ilen - VLAN_HLEN && !memcmp(flat + 12, inner + 16, n - 12));
        } else {
            FW_CHECK(n == ilen && !memcmp(flat, inner, n));
        }
        if (!mac_is_multicast(smac))
            FW_CHECK(vtep_lookup(vteps, idx, smac, now) == src);
        pkt_parse_l3(&pk);
        (void)vxlan_src_port(&pk);
        if (ctl & 8) {
            vtep_forget_ip(vteps, src);
            if (!mac_is_multicast(smac))
                FW_CHECK(vtep_lookup(vteps, idx, smac, now) == 0);
        }
    }
    return 0;
}
