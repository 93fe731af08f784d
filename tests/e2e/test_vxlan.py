#!/usr/bin/python3
"""VXLAN overlay across three vswitchd instances and Linux's own VXLAN:

  ns U: Linux bridge ubr joins the underlay veths (192.168.50.0/24)
  ns S1..S3: vswitchd each, underlay u0 = 192.168.50.N, guest gN (QEMU TCG,
             10.10.0.N) on vhost-user port vmN, vxlan port vx (vni 100, dstport
             4789, remote = the other switches and the kernel VTEP); S1 also has vx8472
             (vni 100, dstport 8472) to the kernel's second VTEP
  ns K: kernel vxlan devices kv4789 (id 100 dstport 4789, 192.168.50.10) and
        kv8472 (id 100 dstport 8472, 192.168.50.11), each in a kernel bridge with a
        veth to a host: ns H1 (10.10.0.101) and ns H2 (10.10.0.102)

The guests ping each other across the overlay; H1 (kernel VXLAN on 4789) and H2
(kernel VXLAN on Linux's default 8472, reaching the mesh through S1) ping the
guests; tshark decodes the captured underlay as VXLAN with VNI 100 and the I flag,
nothing malformed, per-flow outer source ports from the dynamic range."""
import time
import re
import subprocess

import harness as h

VNI = 100
UNDER = "192.168.50.{}"


def tshark(path, *args):
    r = subprocess.run(["tshark", "-n", "-r", path, "-d", "udp.port==8472,vxlan", *args],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    if r.returncode != 0:
        h.fail(f"tshark {' '.join(args)}: {r.stderr}")
    return r.stdout


def test():
    h.require_root()
    h.require_binaries(h.QEMU, "/usr/bin/tshark")
    h.require_guest()

    u = h.NetNS()
    u.run(["ip", "link", "add", "ubr", "type", "bridge"])
    u.run(["ip", "link", "set", "ubr", "up"])

    def underlay(ns, ips):
        _, peer = h.veth(ns, "u0", u)
        u.run(["ip", "link", "set", peer, "master", "ubr"])
        for ip in ips:
            ns.run(["ip", "addr", "add", ip + "/24", "dev", "u0"])
        # checksums as they are on the wire, for tshark
        ns.run(["ethtool", "-K", "u0", "tx", "off"], check=False)

    switches, guests = [], []
    nss = [h.NetNS() for _ in range(3)]
    k = h.NetNS()
    underlay(k, [UNDER.format(10), UNDER.format(11)])
    for i, ns in enumerate(nss, 1):
        underlay(ns, [UNDER.format(i)])
    h.step("underlay: 3 switch namespaces + kernel VTEP namespace on Linux bridge ubr")

    for i, ns in enumerate(nss, 1):
        sw = h.Vswitchd(ns=ns, pmd_threads=1)
        sw.ctl("add-br", "br0")
        sw.ctl("add-port", "br0", f"vm{i}", "type=vhost-user")
        remotes = ",".join(UNDER.format(j) for j in (1, 2, 3, 10) if j != i)
        sw.ctl("add-port", "br0", "vx", "type=vxlan", f"vni={VNI}", f"local={UNDER.format(i)}",
               f"remote={remotes}")
        if i == 1:
            sw.ctl("add-port", "br0", "vx8472", "type=vxlan", f"vni={VNI}", "dstport=8472",
                   f"local={UNDER.format(1)}", f"remote={UNDER.format(11)}")
        switches.append(sw)
    h.step("vswitchd x3: vmN + vx (vni 100, dstport 4789); S1 also vx8472 (dstport 8472)")

    cap = h.Capture(u, "ubr", "udp")

    for i, sw in enumerate(switches, 1):
        guests.append(h.QemuGuest(nics=[dict(socket=sw.port_socket(f"vm{i}"), mac=h.mac(i))],
                                  ip=f"10.10.0.{i}/24", mtu=1450, name=f"g{i}"))

    # Linux's VTEPs, bridged to namespace hosts, while the guests boot
    hosts = []
    for name, local, port, flood, hip in (
            ("kv4789", 10, 4789, (1, 2, 3), 101), ("kv8472", 11, 8472, (1,), 102)):
        k.run(["ip", "link", "add", name, "type", "vxlan", "id", str(VNI), "dstport", str(port),
               "local", UNDER.format(local), "dev", "u0"])
        for j in flood:
            k.run(["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", name, "dst",
                   UNDER.format(j)])
        br = "b" + name
        k.run(["ip", "link", "add", br, "type", "bridge"])
        k.run(["ip", "link", "set", name, "master", br])
        hn = h.NetNS()
        _, peer = h.veth(hn, "eth0", k, ip_a=f"10.10.0.{hip}/24", mtu=1450)
        k.run(["ip", "link", "set", peer, "master", br])
        for dev in (name, br):
            k.run(["ip", "link", "set", dev, "up"])
        hosts.append(hn)
    h1, h2 = hosts
    h.step("kernel VTEPs: kv4789 (dstport 4789) -> H1, kv8472 (dstport 8472) -> H2")

    boots = [g.wait_booted() for g in guests]
    h.step("guests booted in " + ", ".join(f"{b:.1f}s" for b in boots))

    g1, g2, g3 = guests
    h.check(h.wait_for(lambda: g1.ping("10.10.0.2", timeout=2), 30, "g1 -> g2"), "")
    for a, b in ((g1, 3), (g2, 1), (g2, 3), (g3, 1), (g3, 2)):
        h.check(a.ping(f"10.10.0.{b}", timeout=3), f"{a.name} -> 10.10.0.{b}")
    rtt = g1.ping_rtt("10.10.0.3", count=5)
    h.step(f"the three guests ping each other across the overlay (g1->g3 rtt {rtt:.2f} ms)")

    def host_ping(ns, ip):
        return ns.run(["ping", "-c", "1", "-W", "2", ip], check=False).returncode == 0

    for i in (1, 2, 3):
        h.check(h.wait_for(lambda: host_ping(h1, f"10.10.0.{i}"), 15, f"H1 -> g{i}"), "")
    h.check(g3.ping("10.10.0.101"), "g3 -> H1")
    h.step("H1 behind Linux VXLAN (dstport 4789) <-> g1, g2, g3")
    for i in (1, 2, 3):
        h.check(h.wait_for(lambda: host_ping(h2, f"10.10.0.{i}"), 15, f"H2 -> g{i}"), "")
    h.check(g2.ping("10.10.0.102"), "g2 -> H2")
    h.step("H2 behind Linux VXLAN (dstport 8472, via S1) <-> g1, g2, g3")

    stats = switches[0].ctl("port-stats")
    fdb = switches[0].ctl("fdb-show", "br0")
    vx_macs = {e["mac"] for e in fdb if e["port"] == "vx"}
    h.check(h.mac(2) in vx_macs and h.mac(3) in vx_macs, f"S1 FDB: {fdb}")
    status = switches[0].ctl("show")
    h.step(f"S1 learned {len(vx_macs)} MACs on vx; vx rx {stats['vx']['rx_packets']} "
           f"tx {stats['vx']['tx_packets']}, drops {stats['vx']['drops_total']}")

    cap.stop()
    out = tshark(cap.path, "-Y", "vxlan", "-T", "fields", "-e", "udp.srcport", "-e",
                 "udp.dstport", "-e", "vxlan.flags", "-e", "vxlan.vni", "-e", "ip.src",
                 "-e", "_ws.col.Protocol")
    rows = [ln.split("\t") for ln in out.splitlines() if ln.strip()]
    h.check(len(rows) > 20, f"tshark decoded {len(rows)} VXLAN packets")
    h.check(all(r[3] == str(VNI) for r in rows), f"VNIs: {set(r[3] for r in rows)}")
    h.check(all(int(r[2], 0) & 0x0800 for r in rows), f"flags: {set(r[2] for r in rows)}")
    dports = {r[1] for r in rows}
    h.check({"4789", "8472"} <= dports, f"dstports {dports}")
    ours = [r for r in rows if r[4] in {UNDER.format(i) for i in (1, 2, 3)}]
    sports = {int(r[0]) for r in ours}
    h.check(ours and all(p >= 49152 for p in sports), f"our source ports {sorted(sports)[:10]}")
    h.check(len(sports) > 1, "one source port for every flow")
    icmp = [r for r in rows if "ICMP" in r[5]]
    h.check(icmp, "no ICMP inside the VXLAN packets")
    bad = tshark(cap.path, "-Y", "_ws.malformed || _ws.expert.severity >= error")
    h.check(not bad.strip(), f"tshark finds malformed packets:\n{bad[:2000]}")
    h.step(f"tshark: {len(rows)} valid VXLAN packets (VNI {VNI}, I flag, dstports "
           f"{sorted(dports)}), {len(sports)} outer source ports from S1-S3, inner ICMP")

    # the port's drops are counted by name
    for sw in switches:
        s = sw.ctl("port-stats", "vx")["vx"]["drops"]
        h.check(s.get("vxlan_bad_flags", 0) == 0 and s.get("vxlan_unknown_vni", 0) == 0,
                f"unexpected drops {s}")
    h.check("vxlan" in str(status), "show has no vxlan port")

    # (after the capture: tshark's heuristics see random iperf3 payload as
    # other protocols) TCP across the tunnel: the guests send TSO super-frames, which the vxlan
    # port segments in software before encapsulating
    g2.check("iperf3 -s -D -1")
    time.sleep(0.5)
    out = g1.check("iperf3 -c 10.10.0.2 -t 3 -f m", timeout=40)
    m = re.search(r"([\d.]+) Mbits/sec\s+receiver", out)
    h.check(m is not None and float(m.group(1)) > 1, f"iperf3 across the overlay:\n{out}")
    gso = switches[0].ctl("port-stats", "vx")["vx"]["drops"]["gso_unsupported"]
    h.check(gso == 0, f"{gso} super-frames refused by the vxlan port")
    h.step(f"iperf3 g1 -> g2 across the overlay: {float(m.group(1)):.0f} Mbit/s "
           "(TSO super-frames segmented before encapsulation)")


h.main(test)
