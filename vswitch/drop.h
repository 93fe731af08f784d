/* Why a packet was dropped. Every drop in the datapath is counted against a
 * port under one of these reasons; `vswitchctl port-stats` shows them by name. */
#ifndef VSWITCH_DROP_H
#define VSWITCH_DROP_H

enum drop_reason {
    /* ingress */
    DROP_RUNT,              /* shorter than an Ethernet header */
    DROP_OVERSIZED,         /* longer than any frame can be (64 KiB + headers) */
    DROP_SRC_MULTICAST,     /* source MAC is multicast */
    DROP_VLAN_TAGGED_ACCESS,/* tagged frame on an access port */
    DROP_VLAN_NOT_ALLOWED,  /* VLAN not in the port's trunks */
    DROP_VNET_HDR,          /* chain shorter than the virtio-net header */
    DROP_BAD_OFFLOAD,       /* checksum/GSO fields that do not fit the frame */
    DROP_DESC_INVALID,      /* a guest descriptor chain was refused (see vring_*) */
    DROP_RX_ERROR,          /* read from the port failed */
    /* forwarding */
    DROP_SAME_PORT,         /* destination is the port it came from */
    DROP_NO_DESTINATION,    /* nothing in its VLAN to flood to */
    /* egress */
    DROP_LINK_DOWN,         /* destination not connected or not ready */
    DROP_NO_BUFFER,         /* guest has posted no receive buffers */
    DROP_TOO_BIG,           /* larger than the guest's buffers (no MRG_RXBUF) */
    DROP_MTU,               /* larger than the egress MTU */
    DROP_GSO_UNSUPPORTED,   /* super-frame the egress cannot take */
    DROP_TX_ERROR,          /* write to the port failed */
    DROP_GUEST_FAULT,       /* guest memory vanished under the copy (SIGBUS) */
    /* L3 gateway, NAT (networks) */
    DROP_ARP_INVALID,       /* ARP that is not Ethernet/IPv4 or is truncated */
    DROP_IP_INVALID,        /* IPv4 header bad: version, length, options */
    DROP_IP_CHECKSUM,       /* IPv4 header checksum wrong */
    DROP_IP_FRAGMENT,       /* fragment where ports are needed (NAT) */
    DROP_L4_TRUNCATED,      /* TCP/UDP/ICMP header shorter than its minimum */
    DROP_TCP_BAD_FLAGS,     /* SYN+FIN, SYN+RST, no flags, ... */
    DROP_ICMP_INVALID,      /* ICMP error not about a tracked connection */
    DROP_L3_UNSUPPORTED,    /* to the gateway but not ARP/IPv4 (IPv6 for now) */
    DROP_TTL_EXCEEDED,      /* TTL would reach 0 */
    DROP_NO_ROUTE,          /* no network or uplink for the destination */
    DROP_ARP_PENDING,       /* next hop unknown: an ARP request went out instead */
    DROP_DHCP_INVALID,      /* malformed DHCP message */
    DROP_NAT_NO_MAPPING,    /* arrived on the uplink for no connection or forward */
    DROP_NAT_INVALID,       /* not valid for its connection's state */
    DROP_NAT_TABLE_FULL,    /* connection table (ct_max) full */
    DROP_NAT_PORTS_EXHAUSTED, /* no free port on the uplink address */
    /* end of L3 */
    /* VXLAN (overlay) */
    DROP_VXLAN_SHORT,       /* datagram shorter than VXLAN + Ethernet headers */
    DROP_VXLAN_BAD_FLAGS,   /* VXLAN header without the I (valid VNI) flag */
    DROP_VXLAN_UNKNOWN_VNI, /* no vxlan port on this socket carries the VNI */
    DROP_VXLAN_TRUNCATED,   /* datagram larger than the receive buffer */
    DROP_VXLAN_NO_VNI,      /* VLAN with no VNI on a vni=VNI:VLAN,... port */
    DROP_VXLAN_NO_REMOTE,   /* flood with no remote VTEP to send to */
    DROP_VXLAN_UNDERLAY_MTU,/* encapsulated frame too big for the underlay */
    DROP_VXLAN_DEMUX_FULL,  /* shared socket: the VNI's port had no room */
    /* end of VXLAN */
    DROP__COUNT
};

const char *drop_reason_name(enum drop_reason r);

#endif
