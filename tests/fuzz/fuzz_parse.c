/* The first stages a frame meets: header copy and 802.1Q strip over
 * scattered buffers, L3/L4 offsets, the offload request in the virtio-net
 * header, VLAN rules, software checksum, and the gather for transmit. */
#include <stdint.h>
#include <string.h>

#include "parse.h"
#include "vlan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t frame[70000];
    struct vring_buf bufs[4];
    struct iovec iov[PKT_IOV_MAX];
    struct virtio_net_hdr vh;
    struct conf_vlan rules[3];
    struct pkt p;
    uint8_t tag[4];
    unsigned nbufs, cut[3];
    size_t flen;
    uint16_t tci, vid;

    if (size < 2 + 3 + sizeof(vh))
        return 0;
    nbufs = 1 + data[0] % 4;
    memcpy(&vh, data + 1, sizeof(vh));
    for (int i = 0; i < 3; i++)
        cut[i] = data[1 + sizeof(vh) + i];
    data += 4 + sizeof(vh);
    size -= 4 + sizeof(vh);
    flen = size < sizeof(frame) ? size : sizeof(frame);
    memcpy(frame, data, flen);

    /* split the frame at fuzzed places */
    size_t at = 0;
    for (unsigned i = 0; i < nbufs; i++) {
        size_t n = i + 1 == nbufs ? flen - at : (cut[i] < flen - at ? cut[i] : flen - at);
        bufs[i].addr = frame + at;
        bufs[i].len = (uint32_t)n;
        at += n;
    }
    if (!pkt_from_bufs(&p, bufs, nbufs, (uint32_t)flen, &tci))
        return 0;
    p.vnet = vh;
    pkt_parse_l3(&p);
    if (!pkt_vnet_untag(&p, tci))
        return 0;

    memset(rules, 0, sizeof(rules));
    rules[0].mode = VLAN_MODE_ACCESS;
    rules[0].tag = 10;
    rules[1].mode = VLAN_MODE_TRUNK;
    rules[1].trunks_all = true;
    rules[2].mode = VLAN_MODE_TRUNK;
    rules[2].trunks[0] = 1ULL << 10;
    rules[2].native = 20;
    for (int r = 0; r < 3; r++) {
        uint16_t out;
        if (vlan_ingress(&rules[r], tci, &vid) >= 0)
            continue;
        for (int e = 0; e < 3; e++)
            if (vlan_egress(&rules[e], vid, tci & VLAN_PCP_MASK, &out)) {
                struct virtio_net_hdr eh;
                pkt_vnet_for_egress(&p, out, &eh);
                int n = pkt_gather(&p, out, tag, iov);
                size_t total = 0;
                for (int k = 0; k < n; k++)
                    total += iov[k].iov_len;
                if (total != p.len + (out ? VLAN_HLEN : 0))
                    __builtin_trap();
            }
    }
    if (p.vnet.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
        (void)pkt_finish_csum(&p);
    return 0;
}
