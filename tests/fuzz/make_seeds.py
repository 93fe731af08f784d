#!/usr/bin/python3
"""Writes the seed corpora of tests/fuzz (small, kept in the tree). Run again
after changing an input format; libFuzzer grows the corpus from these."""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- fuzz_vring: [qsize log2][flags][last_avail lo][hi] + guest memory image
# guest memory: desc table at 0, avail at 0x1000, used at 0x2000, buffers at 0x3000
GPA = 0x40000


def desc(addr, length, flags, nxt):
    return struct.pack("<QIHH", addr, length, flags, nxt)


def vring_image(descs, avail, extra=b"", extra_at=0x3000):
    mem = bytearray(0x3000 + 2048)
    for i, d in enumerate(descs):
        mem[16 * i:16 * i + 16] = d
    mem[0x1000:0x1004] = struct.pack("<HH", 0, len(avail))
    for i, h in enumerate(avail):
        mem[0x1004 + 2 * i:0x1006 + 2 * i] = struct.pack("<H", h)
    mem[extra_at:extra_at + len(extra)] = extra
    return bytes(mem)


frame = bytes(12) + b"\xff" * 6 + b"\x02" * 6 + b"\x08\x00" + bytes(46)
put("fuzz_vring", "simple", bytes([4, 0, 0, 0]) + vring_image(
    [desc(GPA + 0x3000, len(frame), 0, 0)], [0], frame))
put("fuzz_vring", "chain2", bytes([4, 0, 0, 0]) + vring_image(
    [desc(GPA + 0x3000, 12, 1, 1), desc(GPA + 0x3100, 60, 0, 0)], [0], frame))
put("fuzz_vring", "indirect", bytes([4, 1, 0, 0]) + vring_image(
    [desc(GPA + 0x3400, 32, 4, 0)], [0],
    desc(GPA + 0x3000, 12, 1, 1) + desc(GPA + 0x3100, 60, 0, 0), 0x3400))
put("fuzz_vring", "rx_mrg", bytes([4, 0x10 | 0x4 | 0x2, 0, 0]) + vring_image(
    [desc(GPA + 0x3000, 512, 2, 0), desc(GPA + 0x3200, 512, 2, 0)], [0, 1]))
put("fuzz_vring", "loop", bytes([4, 0, 0, 0]) + vring_image(
    [desc(GPA + 0x3000, 12, 1, 1), desc(GPA + 0x3100, 60, 1, 0)], [0]))

# ---- fuzz_vhost_msg: records [fd spec][hdr][payload]
def rec(req, payload=b"", spec=0, flags=1):
    return bytes([spec]) + struct.pack("<III", req, flags, len(payload)) + payload


u64 = lambda v: struct.pack("<Q", v)
state = lambda i, n: struct.pack("<II", i, n)
mem_table = struct.pack("<II", 1, 0) + struct.pack("<QQQQ", 0x0, 1 << 16, 0x7f0000000000, 0)
addr = lambda i: struct.pack("<IIQQQQ", i, 0, 0x7f0000000000, 0x7f0000002000,
                             0x7f0000001000, 0)
dpdk = (rec(3) + rec(1) + rec(15) + rec(16, u64(0x10019)) +
        rec(13, u64(0), 1) + rec(13, u64(1), 1) + rec(2, u64((1 << 32) | (1 << 15))) +
        rec(39, u64(0xb)) + rec(40) + rec(5, mem_table, 1 | 4) +
        rec(8, state(0, 256)) + rec(10, state(0, 0)) + rec(9, addr(0)) + rec(12, u64(0), 1) +
        rec(18, state(0, 1)) + rec(39, u64(0xf)) + rec(11, state(0, 0)))
put("fuzz_vhost_msg", "dpdk_order", dpdk)
put("fuzz_vhost_msg", "unknown_and_bad", rec(99) + rec(8, b"\x01") + rec(5, bytes(8), 3))
put("fuzz_vhost_msg", "reply_ack", rec(1) + rec(16, u64(8)) + rec(3, b"", 0, 1 | 8))

# ---- fuzz_parse: [nbufs][12-byte vnet hdr][3 cut points] + frame
def parse_seed(vnet, cuts, frm):
    return bytes([cuts[0]]) + vnet + bytes(cuts[1:4]) + frm


ip = bytes.fromhex("4500001c000100004011000a0a0000010a000002")
udp = bytes.fromhex("303900350008 0000".replace(" ", ""))
eth = b"\x02" * 6 + b"\x04" * 6
put("fuzz_parse", "udp", parse_seed(bytes(12), [0, 5, 9, 30], eth + b"\x08\x00" + ip + udp))
put("fuzz_parse", "tagged", parse_seed(bytes(12), [2, 13, 1, 4],
                                       eth + b"\x81\x00\x20\x0a\x08\x00" + ip + udp))
csum = struct.pack("<BBHHHHH", 1, 0, 0, 0, 34, 6, 0)
put("fuzz_parse", "csum", parse_seed(csum, [1, 40, 0, 0], eth + b"\x08\x00" + ip + udp))
ip6 = bytes.fromhex("6000000000081140") + bytes(32)
put("fuzz_parse", "ipv6", parse_seed(bytes(12), [0, 0, 0, 0], eth + b"\x86\xdd" + ip6 + udp))

# ---- fuzz_jsonrpc: request lines
def req(method, params, i=1):
    return json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params})


lines = [req("add-br", {"bridge": "br0"}),
         req("add-port", {"bridge": "br0", "port": "p1",
                          "options": {"type": "vhost-user", "tag": 10}}),
         req("add-port", {"bridge": "br0", "port": "p2",
                          "options": {"trunks": "10,20-30", "native": "10"}}),
         req("set-port", {"port": "p1", "options": {"mtu": "9000", "mac": "02:00:00:00:00:01"}}),
         req("set-br", {"bridge": "br0", "options": {"ageing": "60"}}),
         req("del-port", {"port": "p2"}),
         '{"jsonrpc":"2.0","method":"x"}', "not json", '{"id":1}']
put("fuzz_jsonrpc", "session", "\n".join(lines).encode())

# ---- fuzz_conf: db files
db = {"version": 1, "bridges": [{"name": "br0", "ageing": 300}],
      "ports": [{"name": "vm1", "bridge": "br0", "type": "vhost-user"},
                {"name": "vm2", "bridge": "br0", "type": "vhost-user", "mode": "client",
                 "socket": "/tmp/vm2.sock", "vlan_mode": "access", "tag": 10}]}
put("fuzz_conf", "lab", json.dumps(db).encode())
put("fuzz_conf", "empty", b'{"version": 1, "bridges": [], "ports": []}')

# ---- the datapath targets below build frames with scapy
from scapy.all import ARP, BOOTP, DHCP, ICMP, IP, TCP, UDP, Dot1Q, Ether, Raw  # noqa: E402
from scapy.layers.l2 import Dot1AD  # noqa: E402


def derive_mac(name, salt):
    """vswitch/l3.c l3_derive_mac: the gateway MACs of fuzz_nat's world"""
    h = 2166136261
    for c in name.encode() + bytes([salt]):
        h = ((h ^ c) * 16777619) & 0xffffffff
    return "02:76:%02x:%02x:%02x:%02x" % (h >> 24, h >> 16 & 0xff, h >> 8 & 0xff, h & 0xff)


def frame_rec(ctl, pkt):
    b = bytes(pkt)
    return bytes([ctl]) + struct.pack(">H", len(b)) + b


MAC_A, MAC_B, MAC_C = "02:00:00:00:00:0a", "02:00:00:00:00:0b", "02:00:00:00:00:0c"
BCAST = "ff:ff:ff:ff:ff:ff"

# ---- fuzz_vlan: 4 x [flags][a][b][c] port rules, then [ctl][len][frame]
def rule(flags, a=0, b=0, c=0):
    return struct.pack(">BHHB", flags, a, b, c)


def l2(src, dst, *inner):
    p = Ether(src=src, dst=dst)
    for layer in inner:
        p = p / layer
    return p / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / Raw(b"v" * 20)


rules = rule(1, 10) + rule(1, 20) + rule(2 | 4, 10, 20, 10) + rule(0)
put("fuzz_vlan", "access_trunk", rules +
    frame_rec(0, l2(MAC_A, BCAST)) +                            # p1 access 10: flood
    frame_rec(2, l2(MAC_B, MAC_A, Dot1Q(vlan=10, prio=5))) +    # p3 trunk: to MAC_A
    frame_rec(3, l2(MAC_C, BCAST, Dot1Q(vlan=20))) +            # p4 trunk all
    frame_rec(2, l2(MAC_C, BCAST)) +                            # p3 native 20
    frame_rec(0, l2(MAC_A, MAC_B, Dot1Q(vlan=0, prio=3))) +     # priority tag
    frame_rec(0, l2(MAC_A, BCAST, Dot1Q(vlan=10))) +            # tagged on access
    frame_rec(4 | 3, l2(MAC_B, MAC_A, Dot1Q(vlan=10))) +        # after ageing
    frame_rec(16 | 3, l2(MAC_C, BCAST, Dot1Q(vlan=4095))))
put("fuzz_vlan", "qinq", rule(0) + rule(2, 100, 200, 5) + rule(1 | 8, 100, 0, 0) +
    rule(4, 0, 300) +
    frame_rec(0, l2(MAC_A, BCAST, Dot1AD(vlan=100), Dot1Q(vlan=7))) +
    frame_rec(1, l2(MAC_B, BCAST, Dot1Q(vlan=100), Dot1Q(vlan=7))) +
    frame_rec(1, Ether(src=MAC_B, dst=BCAST) / Dot1Q(vlan=100) / Raw(b"x" * 200)) +
    frame_rec(3, l2(MAC_C, MAC_A)) + frame_rec(0, Ether(src=MAC_A, dst=MAC_C, type=0x8100)))
put("fuzz_vlan", "refused", rule(16 | 1, 10) + rule(1, 4095) + rule(2, 4000, 4090, 200) +
    rule(4 | 8, 0, 5000, 255) + frame_rec(0, l2(MAC_A, BCAST)) +
    frame_rec(3, l2(MAC_B, BCAST, Dot1Q(vlan=4090))))

# ---- fuzz_nat: [ctl][len][frame]; ctl & 3: 0 g1, 1 g2, 2 up; see fuzz_nat.c
GW0, GW1, UPMAC = derive_mac("net0", 0), derive_mac("net1", 0), derive_mac("up", 1)
ROUTER = "02:00:00:00:00:fe"
G1, G2, TICK, STEP1, STEP9, STEP130 = 0, 1, 0x80, 4, 8, 12
UP = 2
up_arp = frame_rec(UP, Ether(src=ROUTER, dst=UPMAC) /
                   ARP(op=2, hwsrc=ROUTER, psrc="192.0.2.1", hwdst=UPMAC, pdst="192.0.2.2"))


def out(src_ip, dst_ip, l4, mac=MAC_A, vlan=None, gw=GW0):
    p = Ether(src=mac, dst=gw)
    if vlan:
        p = p / Dot1Q(vlan=vlan)
    return p / IP(src=src_ip, dst=dst_ip) / l4


def inb(src_ip, l4, dst_ip="192.0.2.2"):
    return Ether(src=ROUTER, dst=UPMAC) / IP(src=src_ip, dst=dst_ip) / l4


req = out("10.0.0.10", "8.8.8.8", UDP(sport=33333, dport=53) / Raw(b"q" * 12))
put("fuzz_nat", "udp_snat", up_arp + frame_rec(G1, req) +
    frame_rec(UP, inb("8.8.8.8", UDP(sport=53, dport=33333) / Raw(b"a" * 30))) +
    frame_rec(UP, inb("198.51.100.1", ICMP(type=11, code=0) /
                      bytes(IP(src="192.0.2.2", dst="8.8.8.8") /
                            UDP(sport=33333, dport=53) / Raw(b"q" * 12))[:28])) +
    frame_rec(UP, inb("8.8.8.8", ICMP(type=3, code=3) /
                      bytes(IP(src="192.0.2.2", dst="8.8.8.8") /
                            UDP(sport=33333, dport=53) / Raw(b"q" * 12)))) +
    frame_rec(G1 | 0x10, req) + frame_rec(G1 | STEP9 | TICK, req))

syn = TCP(sport=40001, dport=443, flags="S", seq=1000)
put("fuzz_nat", "tcp_flow", up_arp +
    frame_rec(G1, out("10.0.0.10", "93.184.216.34", syn)) +
    frame_rec(UP, inb("93.184.216.34", TCP(sport=443, dport=40001, flags="SA", seq=5, ack=1001))) +
    frame_rec(G1 | 0x10, out("10.0.0.10", "93.184.216.34",
                             TCP(sport=40001, dport=443, flags="A", seq=1001, ack=6) /
                             Raw(b"GET / HTTP/1.0\r\n\r\n"))) +
    frame_rec(G1 | 0x40, out("10.0.0.10", "93.184.216.34",
                             TCP(sport=40001, dport=443, flags="FA", seq=1019, ack=6))) +
    frame_rec(UP | STEP1, inb("93.184.216.34", TCP(sport=443, dport=40001, flags="FA"))) +
    frame_rec(G1, out("10.0.0.10", "93.184.216.34", TCP(sport=40001, dport=443, flags="A"))) +
    frame_rec(UP, inb("93.184.216.34", TCP(sport=443, dport=40001, flags="R"))) +
    frame_rec(G1 | STEP130 | TICK, out("10.0.0.10", "93.184.216.34",
                                       TCP(sport=40001, dport=443, flags="A"))))

put("fuzz_nat", "forward_hairpin", up_arp +
    frame_rec(G2, out("10.0.0.5", "10.0.0.1", ICMP(type=8, id=7) / Raw(b"p" * 8),
                      mac="02:00:00:00:00:05")) +
    frame_rec(UP, inb("203.0.113.9", TCP(sport=40000, dport=8080, flags="S"))) +
    frame_rec(G2, out("10.0.0.5", "203.0.113.9", TCP(sport=80, dport=40000, flags="SA"),
                      mac="02:00:00:00:00:05")) +
    frame_rec(UP, inb("203.0.113.9", UDP(sport=999, dport=5353) / Raw(b"d" * 10))) +
    frame_rec(G1, out("10.0.0.10", "192.0.2.2", TCP(sport=50000, dport=8080, flags="S"))) +
    frame_rec(G2, out("10.0.0.5", "192.0.2.2", TCP(sport=80, dport=50000, flags="SA"),
                      mac="02:00:00:00:00:05")))

put("fuzz_nat", "icmp_vlan", up_arp +
    frame_rec(G1, out("10.0.0.10", "10.0.0.1", ICMP(type=8, id=1, seq=1) / Raw(b"x" * 56))) +
    frame_rec(G1, out("10.0.0.10", "192.0.2.2", ICMP(type=8, id=2))) +
    frame_rec(G1, out("10.0.0.10", "1.1.1.1", ICMP(type=8, id=3) / Raw(b"y" * 1400))) +
    frame_rec(UP, inb("1.1.1.1", ICMP(type=0, id=3))) +
    frame_rec(UP, inb("203.0.113.1", ICMP(type=8, id=4))) +
    frame_rec(G1, out("10.1.0.20", "10.1.0.1", ICMP(type=8, id=5), mac=MAC_B, vlan=20, gw=GW1)) +
    frame_rec(G1, out("10.1.0.20", "10.0.0.10", UDP(sport=7, dport=7), mac=MAC_B, vlan=20,
                      gw=GW1)) +
    frame_rec(G1, out("10.1.0.20", "9.9.9.9", UDP(sport=7, dport=7), mac=MAC_B, vlan=20,
                      gw=GW1)) +
    frame_rec(G1, Ether(src=MAC_A, dst=BCAST) /
              ARP(op=1, hwsrc=MAC_A, psrc="10.0.0.10", pdst="10.0.0.1")))

dhcp_disc = (Ether(src=MAC_A, dst=BCAST) / IP(src="0.0.0.0", dst="255.255.255.255") /
             UDP(sport=68, dport=67) / BOOTP(chaddr=bytes.fromhex("02000000000a"), xid=9) /
             DHCP(options=[("message-type", "discover"), "end"]))
dhcp_req = (Ether(src=MAC_A, dst=BCAST) / IP(src="0.0.0.0", dst="255.255.255.255") /
            UDP(sport=68, dport=67) / BOOTP(chaddr=bytes.fromhex("02000000000a"), xid=9) /
            DHCP(options=[("message-type", "request"), ("server_id", "10.0.0.1"),
                          ("requested_addr", "10.0.0.100"), ("hostname", "g1"), "end"]))
put("fuzz_nat", "dhcp", frame_rec(G1, dhcp_disc) + frame_rec(G1, dhcp_req) +
    frame_rec(G2, dhcp_disc) + frame_rec(G1 | 0x40, dhcp_req))

flows = b"".join(frame_rec(G1, out("10.0.0.10", "8.8.4.4", UDP(sport=2000 + i, dport=53)))
                 for i in range(6))
put("fuzz_nat", "exhaust_expire", up_arp + flows +
    frame_rec(G1 | STEP9 | TICK, out("10.0.0.10", "8.8.4.4", UDP(sport=3000, dport=53))) +
    frame_rec(G1, Ether(src=MAC_A, dst=GW0) / IP(src="10.0.0.10", dst="8.8.4.4", flags="MF") /
              UDP(sport=1, dport=2) / Raw(b"f" * 40)) +
    frame_rec(G1, Ether(src=MAC_A, dst=GW0) / IP(src="10.0.0.10", dst="8.8.4.4", frag=5) /
              Raw(b"g" * 40)) +
    frame_rec(G1 | 0x20, bytes(out("10.0.0.10", "8.8.4.4", TCP(sport=1, dport=2)))[:40]) +
    frame_rec(G1, out("10.0.0.10", "8.8.4.4", TCP(sport=1, dport=2, flags="SF"))))

# ---- fuzz_vxlan: [n][map] 4 x [vni 3][vlan 2], then [ctl][src 4][len 2][payload]
def vx_hdr(n, mapped, pairs):
    h = bytes([n - 1, mapped])
    for vni, vlan in pairs:
        h += struct.pack(">I", vni)[1:] + struct.pack(">H", vlan)
    return h


def vx_rec(ctl, src, vni, inner, flags=0x08):
    d = bytes([flags, 0, 0, 0]) + struct.pack(">I", vni << 8) + bytes(inner)
    return bytes([ctl]) + bytes(map(int, src.split("."))) + struct.pack(">H", len(d)) + d


pairs = [(100, 10), (200, 20), (300, 0), (0xffffff, 4094)]
put("fuzz_vxlan", "plain", vx_hdr(2, 0, pairs) +
    vx_rec(0, "192.0.2.10", 100, l2(MAC_A, BCAST)) +
    vx_rec(0, "192.0.2.11", 200, l2(MAC_B, MAC_A, Dot1Q(vlan=7, prio=2))) +
    vx_rec(0, "192.0.2.11", 100, l2("01:00:5e:00:00:01", MAC_A)) +
    vx_rec(0, "192.0.2.12", 100, l2(MAC_C, MAC_A), flags=0) +
    vx_rec(0, "192.0.2.12", 555, l2(MAC_C, MAC_A)) +
    vx_rec(0, "192.0.2.12", 100, bytes(6)) +
    vx_rec(1 | 8, "192.0.2.10", 100, l2(MAC_A, MAC_B)))
put("fuzz_vxlan", "map", vx_hdr(4, 1, pairs) +
    vx_rec(4, "192.0.2.20", 300, l2(MAC_A, BCAST)) +
    vx_rec(0, "192.0.2.21", 100, l2(MAC_B, MAC_A, Dot1Q(vlan=10))) +
    vx_rec(0, "192.0.2.21", 200, l2(MAC_B, MAC_A, Dot1Q(vlan=0, prio=6))) +
    vx_rec(2, "192.0.2.21", 0xffffff, Ether(src=MAC_C, dst=MAC_A, type=0x8100) / b"\x00\x05") +
    vx_rec(3, "192.0.2.20", 100, l2(MAC_A, BCAST)))

# ---- fuzz_dhcp: [ctl][len][BOOTP message]; ctl & 3: clock step 0, 1, 61, 700 s
def dhcp(ctl, mac, typ, *opts, ciaddr="0.0.0.0", flags=0, xid=1):
    m = BOOTP(chaddr=bytes.fromhex(mac.replace(":", "")), xid=xid, ciaddr=ciaddr,
              flags=flags) / DHCP(options=[("message-type", typ)] + list(opts) + ["end"])
    b = bytes(m)
    return bytes([ctl]) + struct.pack(">H", len(b)) + b


RES = "02:00:00:00:00:05"
put("fuzz_dhcp", "dora", dhcp(0, MAC_A, "discover", ("hostname", "guest-a")) +
    dhcp(0, MAC_A, "request", ("server_id", "10.0.0.1"), ("requested_addr", "10.0.0.10")) +
    dhcp(1, MAC_A, "request", ciaddr="10.0.0.10") +
    dhcp(0, MAC_A, "inform", ciaddr="10.0.0.10") +
    dhcp(0, MAC_A, "release", ciaddr="10.0.0.10") +
    dhcp(0, MAC_B, "request", ("requested_addr", "10.0.0.10"), flags=0x8000) +
    dhcp(0, MAC_B, "request", ("requested_addr", "10.9.0.10")))
put("fuzz_dhcp", "exhaust", dhcp(0, MAC_A, "discover") + dhcp(0, MAC_B, "discover") +
    dhcp(0, MAC_C, "discover") + dhcp(0, RES, "discover") +
    dhcp(0, RES, "request", ("requested_addr", "10.0.0.11")) +
    dhcp(0, MAC_C, "request", ("requested_addr", "10.0.0.11")) +
    dhcp(2, MAC_C, "discover") + dhcp(0, MAC_B, "decline", ("requested_addr", "10.0.0.12")) +
    dhcp(3, MAC_C, "request", ("server_id", "10.0.0.99")) + dhcp(3, MAC_A, "discover"))
