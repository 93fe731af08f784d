#include "drop.h"

static const char *const drop_names[DROP__COUNT] = {
    [DROP_RUNT] = "runt",
    [DROP_OVERSIZED] = "oversized",
    [DROP_SRC_MULTICAST] = "src_multicast",
    [DROP_VLAN_TAGGED_ACCESS] = "vlan_tagged_on_access",
    [DROP_VLAN_NOT_ALLOWED] = "vlan_not_allowed",
    [DROP_VNET_HDR] = "short_vnet_header",
    [DROP_BAD_OFFLOAD] = "bad_offload",
    [DROP_DESC_INVALID] = "bad_descriptor",
    [DROP_RX_ERROR] = "rx_error",
    [DROP_SAME_PORT] = "same_port",
    [DROP_NO_DESTINATION] = "no_destination",
    [DROP_LINK_DOWN] = "link_down",
    [DROP_NO_BUFFER] = "no_buffer",
    [DROP_TOO_BIG] = "too_big_for_guest",
    [DROP_MTU] = "mtu",
    [DROP_GSO_UNSUPPORTED] = "gso_unsupported",
    [DROP_TX_ERROR] = "tx_error",
    [DROP_GUEST_FAULT] = "guest_memory_fault",
    [DROP_ARP_INVALID] = "arp_invalid",
    [DROP_IP_INVALID] = "ip_invalid",
    [DROP_IP_CHECKSUM] = "ip_checksum",
    [DROP_IP_FRAGMENT] = "ip_fragment",
    [DROP_L4_TRUNCATED] = "l4_truncated",
    [DROP_TCP_BAD_FLAGS] = "tcp_bad_flags",
    [DROP_ICMP_INVALID] = "icmp_invalid",
    [DROP_L3_UNSUPPORTED] = "l3_unsupported",
    [DROP_TTL_EXCEEDED] = "ttl_exceeded",
    [DROP_NO_ROUTE] = "no_route",
    [DROP_ARP_PENDING] = "arp_pending",
    [DROP_DHCP_INVALID] = "dhcp_invalid",
    [DROP_NAT_NO_MAPPING] = "nat_no_mapping",
    [DROP_NAT_INVALID] = "nat_invalid",
    [DROP_NAT_TABLE_FULL] = "nat_table_full",
    [DROP_NAT_PORTS_EXHAUSTED] = "nat_ports_exhausted",
    [DROP_VXLAN_SHORT] = "vxlan_short",
    [DROP_VXLAN_BAD_FLAGS] = "vxlan_bad_flags",
    [DROP_VXLAN_UNKNOWN_VNI] = "vxlan_unknown_vni",
    [DROP_VXLAN_TRUNCATED] = "vxlan_truncated",
    [DROP_VXLAN_NO_VNI] = "vxlan_no_vni_for_vlan",
    [DROP_VXLAN_NO_REMOTE] = "vxlan_no_remote",
    [DROP_VXLAN_UNDERLAY_MTU] = "vxlan_underlay_mtu",
    [DROP_VXLAN_DEMUX_FULL] = "vxlan_demux_full",
};

const char *drop_reason_name(enum drop_reason r)
{
    if ((unsigned)r >= DROP__COUNT)
        return "unknown";
    return drop_names[r];
}
