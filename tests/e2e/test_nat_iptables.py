#!/usr/bin/python3
"""The NAT scenario twice, side by side: once through vswitchd (a network with a
tap uplink) and once through a Linux namespace router with iptables MASQUERADE and
a DNAT port forward. The same observations must come out of both:

- the host inside gets ping, TCP and UDP through to the outside server;
- the server sees the router's outside address, and the client's source port
  (bound to 40000 and 40001) preserved;
- a second connection from the same inside port to another server port keeps the
  same outside port (endpoint-independent mapping; Linux does the same when the
  port is free);
- a client outside reaches the inside server through the forward and the inside
  server sees the outside client's real address;
- an unsolicited TCP SYN to an unforwarded port of the outside address gets no
  answer through to the inside (nothing listening inside sees it).
Skipped when iptables is not installed (the kernel here has NF_NAT,
IP_NF_TARGET_MASQUERADE and NFT_MASQ)."""
import os
import shutil
import time

import harness as h

SERVER = h.ADDR_ECHO_SERVER

CLIENT = r"""
import socket, sys, time
proto, ip, port, sport = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
for attempt in range(10):
    try:
        t = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        s = socket.socket(socket.AF_INET, t)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", sport)); s.settimeout(1)
        if proto == "tcp":
            s.connect((ip, port)); print(s.recv(100).decode()); break
        s.sendto(b"hi", (ip, port)); print(s.recvfrom(100)[0].decode()); break
    except OSError as e:
        err = e; s.close(); time.sleep(0.3)
else:
    print("FAIL", err)
"""


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def observe(inside, outside, outside_ip, router_out_ip, py):
    """The observations of the scenario, as a dict (router-independent)."""
    srv, cli = py
    o = {}
    o["ping"] = h.wait_for(lambda: inside.run(["ping", "-c1", "-W1", outside_ip],
                                              check=False).returncode == 0, 15, "ping")
    s_out = outside.popen(["python3", srv, "5000", "5002", "-5001"], name="outside-srv")
    s_in = inside.popen(["python3", srv, "80"], name="inside-srv")
    time.sleep(0.5)

    def run(ns, *a):
        return ns.run(["python3", cli, *map(str, a)], timeout=60).stdout.strip()
    tcp = run(inside, "tcp", outside_ip, 5000, 40000)
    tcp2 = run(inside, "tcp", outside_ip, 5002, 40000)
    udp = run(inside, "udp", outside_ip, 5001, 40001)
    o["tcp_seen"] = tcp.replace(router_out_ip, "ROUTER")
    o["tcp_same_port_other_server"] = tcp2.replace(router_out_ip, "ROUTER")
    o["udp_seen"] = udp.replace(router_out_ip, "ROUTER")
    fw = run(outside, "tcp", router_out_ip, 8080, 41000)
    o["forward_seen_by_inside"] = fw.replace(outside_ip, "CLIENT")
    cap = h.Capture(inside, "any", "tcp port 7777")
    run(outside, "tcp", router_out_ip, 7777, 41001)
    cap.stop()
    o["unsolicited_reached_inside"] = len(h.read_pcap(cap.path)) > 0
    s_out.stop()
    s_in.stop()
    return o


def test():
    h.require_root()
    if not shutil.which("iptables"):
        h.skip("iptables is not installed (apt-get install iptables); the kernel has "
               "NF_NAT and MASQUERADE")
    tmp = h.tempdir("vs-natcmp-")
    py = (os.path.join(tmp, "srv.py"), os.path.join(tmp, "cli.py"))
    write(py[0], SERVER)
    write(py[1], CLIENT)

    # Linux: inside -- R (MASQUERADE, DNAT 8080) -- outside
    ins, r, outs = h.NetNS(), h.NetNS(), h.NetNS()
    h.veth(ins, "eth0", r, "rin", ip_a="10.30.0.100/24", ip_b="10.30.0.1/24")
    h.veth(r, "rout", outs, "eth0", ip_a="192.168.78.2/24", ip_b="192.168.78.1/24")
    ins.run(["ip", "route", "add", "default", "via", "10.30.0.1"])
    r.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    r.run(["iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "rout", "-j", "MASQUERADE"])
    r.run(["iptables", "-t", "nat", "-A", "PREROUTING", "-i", "rout", "-p", "tcp",
           "--dport", "8080", "-j", "DNAT", "--to-destination", "10.30.0.100:80"])
    linux = observe(ins, outs, "192.168.78.1", "192.168.78.2", py)
    h.step(f"Linux MASQUERADE: {linux}")

    # vswitchd: inside -- tap -- [n1, nat=up0] -- tap uplink -- outside
    s, ins2, outs2 = h.NetNS(), h.NetNS(), h.NetNS()
    sw = h.Vswitchd(ns=s, pmd_threads=1)
    up, t1 = h.uniq("vsup"), h.uniq("vsg")
    sw.ctl("add-br", "br0")
    sw.ctl("add-port", "br0", "up0", "type=tap", f"ifname={up}", "ip=192.168.79.2/24")
    sw.ctl("add-port", "br0", "g1", "type=tap", f"ifname={t1}")
    sw.ctl("add-net", "n1", "bridge=br0", "subnet=10.31.0.0/24", "gateway=10.31.0.1",
           "nat=up0")
    sw.ctl("add-forward", "n1", "proto=tcp", "port=8080", "to=10.31.0.100:80")
    for ifn, ns, ip in ((up, outs2, "192.168.79.1/24"), (t1, ins2, "10.31.0.100/24")):
        h.sh(["ip", "-n", str(s), "link", "set", ifn, "netns", str(ns)])
        ns.run(["ip", "link", "set", ifn, "up"])
        ns.run(["ip", "addr", "add", ip, "dev", ifn])
    ins2.run(["ip", "route", "add", "default", "via", "10.31.0.1"])
    ours = observe(ins2, outs2, "192.168.79.1", "192.168.79.2", py)
    h.step(f"vswitchd NAT:     {ours}")
    h.check(linux == ours, f"different observations:\n linux {linux}\n ours  {ours}")
    h.check(ours["tcp_seen"] == "ROUTER:40000" and ours["udp_seen"] == "ROUTER:40001"
            and ours["ping"] and not ours["unsolicited_reached_inside"],
            f"unexpected: {ours}")


if __name__ == "__main__":
    h.main(test)
