#!/usr/bin/python3
"""Networks with the kernel's stack as the hosts (fast; the QEMU-guest version is
test_nat_guests.py): vswitchd in namespace S; "guests" are namespaces behind tap
ports (g1 in network n1, VLAN 10; g2 in network n2, VLAN 20); the uplink is a tap
whose other end is in namespace OUT (192.168.77.1/24, the "outside"), the switch's
side is ip=192.168.77.2/24.

- DHCP (busybox udhcpc) gives g1 and g2 addresses, router and DNS; list-leases
  shows them; a reservation by MAC is honoured.
- g1 reaches OUT by ping, TCP and UDP; OUT sees 192.168.77.2 (SNAT); ct-show lists
  the connections; the gateway answers ping.
- a port forward (tcp 8080 -> g1:80) lets OUT reach g1's server; g2 reaches it
  through the uplink address too (hairpin).
- g1 and g2 (different networks, VLANs) reach each other through the gateway.
- leases survive a daemon restart (the leases file beside the db).
- scapy-made bad packets from g1 and from OUT are dropped and counted by reason,
  and forwarding goes on."""
import json
import os
import re
import time

import harness as h

SERVER = h.ADDR_ECHO_SERVER

CLIENT = r"""
import socket, sys
proto, ip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
for attempt in range(5):
    try:
        if proto == "tcp":
            s = socket.create_connection((ip, port), timeout=2)
            print(s.recv(100).decode()); break
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
        s.sendto(b"hi", (ip, port)); print(s.recvfrom(100)[0].decode()); break
    except OSError as e:
        err = e
else:
    print("FAIL", err); sys.exit(1)
"""

UDHCPC_SCRIPT = """#!/bin/sh
case "$1" in
bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    ip route replace default via "$router"
    echo "$ip $router $dns" > /tmp/%s.lease ;;
esac
"""


def write(path, text, mode=0o755):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def test():
    h.require_root()
    tmp = h.tempdir("vs-nat-")
    srv_py, cli_py = os.path.join(tmp, "srv.py"), os.path.join(tmp, "cli.py")
    write(srv_py, SERVER)
    write(cli_py, CLIENT)

    s, out, g1, g2 = h.NetNS(), h.NetNS(), h.NetNS(), h.NetNS()
    sw = h.Vswitchd(ns=s, pmd_threads=2)
    up, t1, t2 = h.uniq("vsup"), h.uniq("vsg1"), h.uniq("vsg2")
    sw.ctl("add-br", "br0")
    sw.ctl("add-port", "br0", "up0", "type=tap", f"ifname={up}", "ip=192.168.77.2/24",
           "gw=192.168.77.1")
    sw.ctl("add-port", "br0", "g1", "type=tap", f"ifname={t1}", "tag=10")
    sw.ctl("add-port", "br0", "g2", "type=tap", f"ifname={t2}", "tag=20")
    mac1, mac2 = "52:54:00:aa:00:01", "52:54:00:aa:00:02"
    sw.ctl("add-net", "n1", "bridge=br0", "vlan=10", "subnet=10.10.0.0/24",
           "gateway=10.10.0.1", "dhcp=10.10.0.100-10.10.0.150", "nat=up0", "dns=192.168.77.53")
    sw.ctl("add-net", "n2", "bridge=br0", "vlan=20", "subnet=10.20.0.0/24",
           "gateway=10.20.0.1", "dhcp=10.20.0.100-10.20.0.150", "nat=up0",
           f"reserve={mac2}=10.20.0.42")
    for ifn, ns, ip in ((up, out, "192.168.77.1/24"), (t1, g1, None), (t2, g2, None)):
        h.sh(["ip", "-n", str(s), "link", "set", ifn, "netns", str(ns)])
        ns.run(["ip", "link", "set", ifn, "up"])
        if ip:
            ns.run(["ip", "addr", "add", ip, "dev", ifn])
    g1.run(["ip", "link", "set", t1, "address", mac1])
    g2.run(["ip", "link", "set", t2, "address", mac2])
    nets = sw.ctl("list-nets")
    h.check([n["name"] for n in nets] == ["n1", "n2"], f"list-nets: {nets}")

    # DHCP
    leases = {}
    for ns, ifn, name in ((g1, t1, "g1"), (g2, t2, "g2")):
        script = os.path.join(tmp, f"udhcpc-{name}.sh")
        write(script, UDHCPC_SCRIPT % name)
        ns.run(["busybox", "udhcpc", "-i", ifn, "-s", script, "-t", "10", "-T", "1", "-n",
                "-q", "-x", f"hostname:{name}"], timeout=40)
        with open(f"/tmp/{name}.lease") as f:
            leases[name] = f.read().split()
        os.unlink(f"/tmp/{name}.lease")
    h.check(leases["g1"][0].startswith("10.10.0.1") and leases["g1"][1] == "10.10.0.1"
            and leases["g1"][2] == "192.168.77.53", f"g1 lease {leases['g1']}")
    h.check(leases["g2"][0] == "10.20.0.42", f"g2 did not get its reservation: {leases['g2']}")
    ip1, ip2 = leases["g1"][0], leases["g2"][0]
    ll = sw.ctl("list-leases", "n1")
    h.check(len(ll) == 1 and ll[0]["ip"] == ip1 and ll[0]["mac"] == mac1 and
            ll[0]["state"] == "bound" and ll[0].get("hostname") == "g1", f"leases: {ll}")
    h.step(f"DHCP: g1 {ip1} (router, DNS as configured), g2 {ip2} by reservation")

    # gateway, and the outside through SNAT
    h.check(g1.run(["ping", "-c1", "-W2", "10.10.0.1"], check=False).returncode == 0,
            "the gateway does not answer ping")
    srv = out.popen(["python3", srv_py, "5000", "-5001"], name="outside-server")
    time.sleep(0.5)
    h.check(h.wait_for(lambda: g1.run(["ping", "-c1", "-W1", "192.168.77.1"], check=False)
                       .returncode == 0, 15, "g1 pings OUT"), "")
    # TTL 1 ends at the gateway: it answers with time exceeded, as any router does
    # (what traceroute reads), and counts the drop
    r = g1.run(["ping", "-c1", "-t1", "-W2", "192.168.77.1"], check=False).stdout
    h.check(re.search(r"From 10\.10\.0\.1\b.*Time to live exceeded", r, re.I),
            f"no time exceeded from the gateway for TTL 1:\n{r}")
    h.check(sw.ctl("port-stats", "g1")["g1"]["drops"].get("ttl_exceeded", 0) >= 1,
            "the TTL-1 packet was not counted as ttl_exceeded")
    h.step("TTL 1 to OUT: 'Time to live exceeded' from the gateway 10.10.0.1, counted")
    r = g1.run(["python3", cli_py, "tcp", "192.168.77.1", "5000"], timeout=30).stdout.strip()
    h.check(r.startswith("192.168.77.2:"), f"OUT saw {r!r} for TCP, not the uplink address")
    sport = int(r.split(":")[1])
    r2 = g1.run(["python3", cli_py, "udp", "192.168.77.1", "5001"], timeout=30).stdout.strip()
    h.check(r2.startswith("192.168.77.2:"), f"OUT saw {r2!r} for UDP")
    ct = sw.ctl("ct-show", "n1")
    protos = {c["proto"] for c in ct}
    h.check({"tcp", "udp", "icmp"} <= protos, f"ct-show: {ct}")
    h.check(any(c["proto"] == "tcp" and c["reply"]["dport"] == sport for c in ct),
            f"no TCP connection with external port {sport}: {ct}")
    h.step(f"g1 -> OUT: ping, TCP ({r}) and UDP ({r2}) seen from the uplink address; "
           f"{len(ct)} connections in ct-show")

    # port forward and hairpin
    srv1 = g1.popen(["python3", srv_py, "80"], name="g1-server")
    time.sleep(0.5)
    sw.ctl("add-forward", "n1", "proto=tcp", "port=8080", f"to={ip1}:80")
    r = out.run(["python3", cli_py, "tcp", "192.168.77.2", "8080"], timeout=30).stdout.strip()
    h.check(r.startswith("192.168.77.1:"), f"g1's server saw {r!r} through the forward")
    r = g2.run(["python3", cli_py, "tcp", "192.168.77.2", "8080"], timeout=30).stdout.strip()
    h.check(r.startswith("192.168.77.2:"), f"hairpin: g1's server saw {r!r}")
    h.step("forward tcp 8080 -> g1:80 from OUT; hairpin from g2 through 192.168.77.2")

    # between networks
    h.check(h.wait_for(lambda: g2.run(["ping", "-c1", "-W1", ip1], check=False)
                       .returncode == 0, 10, "g2 pings g1"), "")
    r = g2.run(["python3", cli_py, "tcp", ip1, "80"], timeout=30).stdout.strip()
    h.check(r.startswith(ip2 + ":"), f"g1 saw {r!r} from g2 (routed, not NATed)")
    h.step(f"g2 ({ip2}, VLAN 20) -> g1 ({ip1}, VLAN 10) through the gateway, no NAT")

    # bad packets from a guest and from outside: dropped, counted, forwarding goes on
    before = sw.ctl("port-stats")
    gw1 = g1.run(["ip", "neigh", "show", "10.10.0.1"]).stdout.split()
    gwmac = gw1[gw1.index("lladdr") + 1]
    base = f"Ether(dst='{gwmac}', src='{mac1}')/IP(src='{ip1}', dst='192.168.77.1')"
    bad = [
        f"{base}/TCP(sport=1234, dport=5000, flags='SF')",                  # SYN+FIN
        f"{base}/TCP(sport=1234, dport=5000, flags='')",                    # null scan
        f"{base}/TCP(sport=1234, dport=5000, flags='FPU')",                 # FIN w/o ACK
        f"{base}/UDP(sport=1, dport=2)/Raw(b'x'*40)".replace("IP(", "IP(flags='MF', "),
        f"{base}/Raw(b'x'*40)".replace("IP(", "IP(frag=10, "),              # fragment
        f"Ether(raw({base}/TCP())[:14+20+8])",                  # IP length past the frame
        f"{base}/Raw(b'\\x04\\xd2\\x13\\x88' + b'\\x00' * 4)".replace("IP(", "IP(proto=6, "),
        f"Ether(dst='{gwmac}', src='{mac1}', type=0x800)/Raw(b'\\x45\\x00\\x00\\x50' + b'\\x00'*8)",
        f"Ether(raw({base}/UDP())[:14+24])",
        f"{base}/ICMP(type=3, code=3)/IP(src='192.168.77.1', dst='{ip1}')/UDP(sport=9, dport=9)",
        f"{base}/TCP(sport=1234, dport=5000, flags='A')",                   # no connection
    ]
    h.scapy_sendp(g1, t1, "[" + ", ".join(bad) + "]")
    h.scapy_sendp(out, up, "[Ether(dst='ff:ff:ff:ff:ff:ff')/IP(src='192.168.77.1', "
                  "dst='192.168.77.2')/ICMP(type=11)/IP(src='192.168.77.2', "
                  "dst='1.2.3.4')/UDP(sport=4444, dport=53), "
                  "Ether(dst='ff:ff:ff:ff:ff:ff')/IP(src='192.168.77.1', "
                  "dst='192.168.77.2')/TCP(sport=1, dport=7777, flags='S')]")
    time.sleep(0.5)
    after = sw.ctl("port-stats")
    d1 = {k: v - before["g1"]["drops"].get(k, 0) for k, v in after["g1"]["drops"].items()
          if v - before["g1"]["drops"].get(k, 0)}
    du = {k: v - before["up0"]["drops"].get(k, 0) for k, v in after["up0"]["drops"].items()
          if v - before["up0"]["drops"].get(k, 0)}
    for reason in ("tcp_bad_flags", "ip_fragment", "l4_truncated", "ip_invalid",
                   "icmp_invalid", "nat_invalid"):
        h.check(d1.get(reason, 0) > 0, f"no {reason} drop on g1: {d1}")
    h.check(du.get("icmp_invalid", 0) > 0 and du.get("nat_no_mapping", 0) > 0,
            f"uplink drops: {du}")
    r = g1.run(["python3", cli_py, "tcp", "192.168.77.1", "5000"], timeout=30).stdout.strip()
    h.check(r.startswith("192.168.77.2:"), "forwarding stopped after bad packets")
    h.step(f"bad packets dropped and counted: g1 {d1}, up0 {du}; TCP still works")
    sw.ctl("ct-flush", "n1")
    h.check(sw.ctl("ct-show", "n1") == [], "ct-flush n1 left connections")

    # leases survive a restart; learned connections do not
    sw.restart()
    ll2 = sw.ctl("list-leases", "n1")
    h.check(ll2 and ll2[0]["ip"] == ip1 and ll2[0]["mac"] == mac1, f"after restart: {ll2}")
    with open(os.path.join(sw.dir, "leases.json")) as f:
        h.check("n1" in json.load(f)["leases"], "leases.json")
    h.check(sw.ctl("ct-show") == [], "conntrack survived a restart")
    h.step("leases kept across a restart (leases.json beside the db), connections not")
    srv.stop()
    srv1.stop()


if __name__ == "__main__":
    h.main(test)
