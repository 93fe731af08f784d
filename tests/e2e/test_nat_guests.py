#!/usr/bin/python3
"""Networks and NAT with real Linux guests (QEMU under TCG) on vhost-user ports (the
namespace version of the same scenario is test_nat_netns.py).

vswitchd runs in namespace S; bridge br0 has three vhost-user ports (QEMU guests)
and a tap uplink up0 (ip=192.168.88.2/24) whose other end is in namespace OUT
(192.168.88.1/24, the "outside"):

    g1, g2 -- VLAN 10, network n1 10.40.0.0/24 (DHCP, nat=up0) --+
    g3     -- VLAN 20, network n2 10.50.0.0/24 (DHCP, nat=up0) --+-- up0 -- OUT

- the guests' /init runs busybox udhcpc (vs.dhcp=1): each gets an address from its
  network's range, with the gateway as router; list-leases shows them by MAC;
- g1 and g2 reach OUT by ping, TCP (a small exchange whose server answers the peer
  address it saw; iperf3) and UDP (iperf3 -u); OUT's servers see 192.168.88.2 (the
  uplink's address), never a guest's; ct-show lists the connections (tcp, udp,
  icmp) with the uplink address on their reply side;
- a port forward (tcp 8080 -> g1:80) lets a client in OUT reach g1's iperf3 server,
  which sees the client's real address;
- g3 (VLAN 20, n2) reaches g1 (VLAN 10, n1) through the gateway, routed without NAT
  (g1's server sees g3's own address).
"""
import os
import re
import time

import harness as h

UP_OUT, UP_SW = "192.168.88.1", "192.168.88.2"

# OUT's small TCP server: answers every connection with the peer address it saw.
PEER_SERVER = r"""
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 5000)); s.listen(16)
while True:
    c, a = s.accept(); c.sendall(("peer=%s:%d\n" % a).encode()); c.close()
"""

CLIENT = r"""
import socket, sys
ip, port = sys.argv[1], int(sys.argv[2])
for attempt in range(10):
    try:
        s = socket.create_connection((ip, port), timeout=3)
        print(s.recv(200).decode().strip()); break
    except OSError as e:
        err = e
else:
    print("FAIL", err); sys.exit(1)
"""


def guest_ip(g):
    """The IPv4 address udhcpc gave eth0 (waits for it)."""
    def get():
        rc, out = g.run("ip -4 -o addr show dev eth0")
        m = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", out)
        return m.group(1) if m else None
    return h.wait_for(get, 30, f"{g.name}'s DHCP address", interval=0.5)


def test():
    h.require_root()
    h.require_binaries(h.QEMU, "iperf3")
    h.require_guest()
    tmp = h.tempdir("vs-natg-")
    srv_py, cli_py = os.path.join(tmp, "peer_srv.py"), os.path.join(tmp, "cli.py")
    for path, text in ((srv_py, PEER_SERVER), (cli_py, CLIENT)):
        with open(path, "w") as f:
            f.write(text)

    s, out = h.NetNS(), h.NetNS()
    sw = h.Vswitchd(ns=s, pmd_threads=1)
    up = h.uniq("vsup")
    sw.ctl("add-br", "br0")
    sw.ctl("add-port", "br0", "up0", "type=tap", f"ifname={up}", f"ip={UP_SW}/24",
           f"gw={UP_OUT}")
    h.sh(["ip", "-n", str(s), "link", "set", up, "netns", str(out)])
    out.run(["ip", "link", "set", up, "up"])
    out.run(["ip", "addr", "add", f"{UP_OUT}/24", "dev", up])
    macs = {"g1": "52:54:00:4e:00:01", "g2": "52:54:00:4e:00:02", "g3": "52:54:00:4e:00:03"}
    tags = {"g1": 10, "g2": 10, "g3": 20}
    for name in macs:
        sw.ctl("add-port", "br0", name, "type=vhost-user", "mode=server",
               "vlan_mode=access", f"tag={tags[name]}")
    sw.ctl("add-net", "n1", "bridge=br0", "vlan=10", "subnet=10.40.0.0/24",
           "gateway=10.40.0.1", "dhcp=10.40.0.100-10.40.0.150", "nat=up0")
    sw.ctl("add-net", "n2", "bridge=br0", "vlan=20", "subnet=10.50.0.0/24",
           "gateway=10.50.0.1", "dhcp=10.50.0.100-10.50.0.150", "nat=up0")

    guests = {}
    for name, mac in macs.items():
        guests[name] = h.QemuGuest(nics=[dict(socket=sw.port_socket(name), mac=mac)],
                                   dhcp=True, mem=192, name=f"natg-{name}")
    for g in guests.values():
        g.wait_booted(90)
    g1, g2, g3 = guests["g1"], guests["g2"], guests["g3"]
    ip = {n: guest_ip(g) for n, g in guests.items()}
    for n, net in (("g1", "10.40.0."), ("g2", "10.40.0."), ("g3", "10.50.0.")):
        last = int(ip[n].rsplit(".", 1)[1])
        h.check(ip[n].startswith(net) and 100 <= last <= 150, f"{n} got {ip[n]}")
        rc, r = guests[n].run("ip route show default")
        gw = net + "1"
        h.check(f"via {gw}" in r, f"{n}: default route is not the gateway {gw}: {r!r}")
    l1, l2 = sw.ctl("list-leases", "n1"), sw.ctl("list-leases", "n2")
    seen = {(x["mac"], x["ip"]) for x in l1 + l2}
    for n in macs:
        h.check((macs[n], ip[n]) in seen, f"list-leases lacks {n} {macs[n]} {ip[n]}: {seen}")
    h.check(len(l1) == 2 and len(l2) == 1, f"list-leases n1 {l1}, n2 {l2}")
    h.step(f"DHCP: g1 {ip['g1']}, g2 {ip['g2']} (n1, VLAN 10), g3 {ip['g3']} (n2, VLAN 20);"
           f" list-leases shows all three")

    # --- out through SNAT: ping, TCP (peer-address exchange, iperf3), UDP (iperf3 -u)
    peer = out.popen(["python3", srv_py], name="out-peer-server")
    ilog = os.path.join(tmp, "iperf3-out.log")
    iperf_out = out.popen(["iperf3", "-s", "-p", "5201", "--logfile", ilog],
                          name="out-iperf3")
    h.wait_for(lambda: ":5201 " in out.run(["ss", "-ltnH"]).stdout and
               ":5000 " in out.run(["ss", "-ltnH"]).stdout, 10, "the servers in OUT")
    for g in (g1, g2):
        h.wait_for(lambda: g.ping(UP_OUT, timeout=1), 20, f"{g.name} pings OUT")
        h.check(g.ping("10.40.0.1"), f"{g.name}: the gateway does not answer ping")
        r = g.check(f"nc -w 5 {UP_OUT} 5000 </dev/null", timeout=15).strip()
        h.check(r.startswith(f"peer={UP_SW}:"), f"{g.name}: OUT saw {r!r}, not {UP_SW}")
    rc, r = g1.run(f"iperf3 -c {UP_OUT} -p 5201 -t 2 -i 0", timeout=30)
    h.check(rc == 0 and "receiver" in r, f"iperf3 TCP g1 -> OUT failed:\n{r}")
    tcp_rate = re.findall(r"([\d.]+ [KMG]bits/sec).*receiver", r)
    rc, r = g2.run(f"iperf3 -c {UP_OUT} -p 5201 -u -b 2M -t 2 -i 0", timeout=30)
    h.check(rc == 0 and "receiver" in r, f"iperf3 UDP g2 -> OUT failed:\n{r}")
    loss = re.findall(r"(\d+)/(\d+) \([\d.e+-]+%\)\s+receiver", r)
    h.check(loss and int(loss[-1][1]) > 0 and int(loss[-1][0]) < int(loss[-1][1]),
            f"UDP datagrams did not arrive: {loss}\n{r}")
    time.sleep(0.3)
    slog = open(ilog).read()
    peers = set(re.findall(r"connected to (\d+\.\d+\.\d+\.\d+) port", slog)) | \
        set(re.findall(r"Accepted connection from (\d+\.\d+\.\d+\.\d+)", slog))
    h.check(peers == {UP_SW}, f"OUT's iperf3 saw {peers}, not only {UP_SW}:\n{slog}")
    ct = sw.ctl("ct-show", "n1")
    protos = {c["proto"] for c in ct}
    h.check({"tcp", "udp", "icmp"} <= protos, f"ct-show n1 lacks a protocol: {ct}")
    mine = [c for c in ct if c["proto"] in ("tcp", "udp")]
    h.check(mine and all(c["reply"]["dst"] == UP_SW for c in mine) and
            {c["orig"]["src"] for c in mine} >= {ip["g1"], ip["g2"]},
            f"ct-show n1 does not show the guests' connections SNATed to {UP_SW}: {mine}")
    h.step(f"g1, g2 -> OUT: ping, TCP (nc, iperf3 {tcp_rate[-1] if tcp_rate else '?'}), "
           f"UDP (iperf3, {loss[-1][1]} datagrams, {loss[-1][0]} lost); OUT saw only "
           f"{UP_SW}; ct-show n1: {len(ct)} connections ({', '.join(sorted(protos))})")

    # --- port forward: OUT reaches g1's server through the uplink address
    g1.check("iperf3 -s -p 80 -D --logfile /tmp/iperf80.log; sleep 0.5")
    sw.ctl("add-forward", "n1", "proto=tcp", "port=8080", f"to={ip['g1']}:80")
    r = out.run(["iperf3", "-c", UP_SW, "-p", "8080", "-t", "1", "-i", "0"], timeout=40,
                check=False)
    h.check(r.returncode == 0 and "receiver" in r.stdout,
            f"OUT -> {UP_SW}:8080 (forward to g1:80) failed:\n{r.stdout}")
    g1log = g1.check("cat /tmp/iperf80.log")
    h.check(f"Accepted connection from {UP_OUT}" in g1log,
            f"g1's server did not see OUT's address {UP_OUT}:\n{g1log}")
    fw = [c for c in sw.ctl("ct-show", "n1") if c["proto"] == "tcp" and
          c["orig"].get("dport") == 8080]
    h.check(fw, "ct-show has no connection to the forwarded port 8080")
    h.step(f"forward tcp 8080 -> g1:80: OUT's iperf3 reached g1, which saw {UP_OUT}")

    # --- between networks: g3 (VLAN 20) -> g1 (VLAN 10), routed, no NAT
    h.wait_for(lambda: g3.ping(ip["g1"], timeout=1), 20, "g3 pings g1")
    h.check(g1.ping(ip["g3"]), "g1 does not reach g3")
    rc, r = g3.run(f"iperf3 -c {ip['g1']} -p 80 -t 1 -i 0", timeout=30)
    h.check(rc == 0 and "receiver" in r, f"iperf3 g3 -> g1 failed:\n{r}")
    g1log = g1.check("cat /tmp/iperf80.log")
    h.check(f"Accepted connection from {ip['g3']}" in g1log,
            f"g1 did not see g3's own address {ip['g3']} (routed, not NATed):\n{g1log}")
    h.check(g3.ping(UP_OUT), "g3 does not reach OUT")
    ct2 = sw.ctl("ct-show", "n2")
    h.check(ct2 and all(c["orig"]["dst"] != ip["g1"] for c in ct2),
            f"ct-show n2: routed traffic was tracked as NAT, or g3's ping was not: {ct2}")
    h.step(f"g3 ({ip['g3']}, VLAN 20) <-> g1 ({ip['g1']}, VLAN 10) through the gateway, "
           f"no NAT; g3 -> OUT NATed ({len(ct2)} in ct-show n2)")
    peer.stop()
    iperf_out.stop()
    for g in guests.values():
        g.kill()


if __name__ == "__main__":
    h.main(test)
