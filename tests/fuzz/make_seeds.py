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
