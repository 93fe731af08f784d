#!/usr/bin/python3
"""Real Linux guests (QEMU TCG) on vswitchd over vhost-user, with VLANs and 802.1Q
interop with Linux:

  vm1 (10.0.10.1) -- vm1 access 10, server socket (QEMU connects)   --+
  vm2 (10.0.10.2) -- vm2 access 10, client mode (QEMU listens)      --+
  vm3 (10.0.10.3) -- vm3 access 20                                  --+-- br0
  vmt eth0.10 (10.0.10.4) -- vmt trunk 10,20 (guest kernel's 8021q) --+
  netns: the tap of trunk0 (trunks 10,20), tagged frames by scapy   --+

vm1 and vm2 ping each other and run iperf3; vm3 (same subnet, other VLAN) reaches
nobody on VLAN 10; vmt reaches vm1 and vm2 through a Linux VLAN sub-interface over
a trunk port; from the namespace, 802.1Q-tagged frames on the trunk tap reach the
VLAN 10 guests and come back tagged 10, while VLAN 20 frames reach only vm3.

The host kernel here is built without CONFIG_VLAN_8021Q (and without bridge VLAN
filtering), so the Linux VLAN sub-interface runs in a guest kernel, and the
namespace end of the tap speaks 802.1Q through scapy."""
import os
import re
import time

import harness as h


def test():
    h.require_root()
    h.require_binaries(h.QEMU)
    h.require_guest()
    sw = h.Vswitchd(pmd_threads=1)
    d = h.tempdir()
    vm2_sock = os.path.join(d, "vm2.sock")
    tapif = h.uniq("vstap")
    sw.ctl("add-br", "br0")
    sw.ctl("add-port", "br0", "vm1", "type=vhost-user", "vlan_mode=access", "tag=10")
    sw.ctl("add-port", "br0", "vm3", "type=vhost-user", "tag=20")
    sw.ctl("add-port", "br0", "trunk0", "type=tap", f"ifname={tapif}",
           "vlan_mode=trunk", "trunks=10,20")
    h.step("br0: vm1 (VLAN 10), vm3 (VLAN 20), trunk0 tap trunks 10,20, vmt trunk 10,20")

    g1 = h.QemuGuest(nics=[dict(socket=sw.port_socket("vm1"), mac=h.mac(1))],
                     ip="10.0.10.1/24", name="vm1")
    g2 = h.QemuGuest(nics=[dict(socket=vm2_sock, mac=h.mac(2), server=True)],
                     ip="10.0.10.2/24", name="vm2")
    g3 = h.QemuGuest(nics=[dict(socket=sw.port_socket("vm3"), mac=h.mac(3))],
                     ip="10.0.10.3/24", name="vm3")
    sw.ctl("add-port", "br0", "vmt", "type=vhost-user", "trunks=10,20")
    gt = h.QemuGuest(nics=[dict(socket=sw.port_socket("vmt"), mac=h.mac(4))],
                     ip="10.0.10.4/24", vlan=10, name="vmt")
    h.wait_for(lambda: os.path.exists(vm2_sock), 20, "QEMU's vm2 socket")
    sw.ctl("add-port", "br0", "vm2", "type=vhost-user", "mode=client",
           f"socket={vm2_sock}", "tag=10")
    h.step("vm2 attached in client mode (vswitchd dials QEMU's socket)")

    ns = h.NetNS()
    h.sh(["ip", "link", "set", tapif, "netns", str(ns)])
    ns.run(["ip", "link", "set", tapif, "up"])
    ns.run(["sysctl", "-qw", f"net.ipv6.conf.{tapif}.disable_ipv6=1"], check=False)
    h.step(f"tap {tapif} of trunk0 moved into {ns}")

    boots = [g.wait_booted() for g in (g1, g2, g3, gt)]
    h.step("guests booted in " + ", ".join(f"{b:.1f}s" for b in boots))

    h.check(h.wait_for(lambda: g1.ping("10.0.10.2", timeout=2), 30, "vm1 -> vm2"), "")
    h.check(g2.ping("10.0.10.1"), "vm2 -> vm1")
    rtt = g1.ping_rtt("10.0.10.2", count=5)
    h.step(f"vm1 <-> vm2 ping ok (VLAN 10), rtt avg {rtt:.2f} ms")

    g2.check("iperf3 -s -D -1")
    time.sleep(0.5)
    out = g1.check("iperf3 -c 10.0.10.2 -t 3 -f m", timeout=40)
    m = re.search(r"([\d.]+) Mbits/sec\s+receiver", out)
    h.check(m is not None and float(m.group(1)) > 10, f"iperf3:\n{out}")
    h.step(f"iperf3 vm1 -> vm2: {float(m.group(1)) / 1000:.2f} Gbit/s")

    out = gt.check("ip -d link show eth0.10")
    h.check("vlan" in out and "id 10" in out, f"vmt has no VLAN sub-interface:\n{out}")
    h.check(h.wait_for(lambda: gt.ping("10.0.10.1", timeout=2), 20, "vmt eth0.10 -> vm1"), "")
    h.check(gt.ping("10.0.10.2"), "vmt eth0.10 -> vm2")
    h.check(g1.ping("10.0.10.4"), "vm1 -> vmt eth0.10")
    h.step("Linux VLAN sub-interface (guest 8021q) on a trunk port reaches vm1 and vm2")

    for ip in ("10.0.10.1", "10.0.10.2", "10.0.10.4"):
        h.check(not g3.ping(ip, count=2, timeout=3), f"vm3 (VLAN 20) reached {ip}")
    h.step("vm3 on VLAN 20 reaches nobody on VLAN 10")

    # 802.1Q on the trunk tap: ARP for each guest in each VLAN, then a tagged ping.
    code = f"""
from scapy.all import *
conf.verb = 0
me = "02:00:00:00:77:01"
def arp(vid, ip):
    r = srp1(Ether(src=me, dst="ff:ff:ff:ff:ff:ff")/Dot1Q(vlan=vid)/
             ARP(op=1, hwsrc=me, psrc="10.0.10.100", pdst=ip),
             iface="{tapif}", timeout=3)
    if r is None or Dot1Q not in r or ARP not in r:
        return None
    return (r[Dot1Q].vlan, r[ARP].hwsrc)
res = {{}}
for vid, ip in ((10, "10.0.10.1"), (10, "10.0.10.2"), (20, "10.0.10.3"), (20, "10.0.10.1"),
                (10, "10.0.10.3")):
    res[f"{{vid}}/{{ip}}"] = arp(vid, ip)
mac1 = res["10/10.0.10.1"][1] if res["10/10.0.10.1"] else "ff:ff:ff:ff:ff:ff"
r = srp1(Ether(src=me, dst=mac1)/Dot1Q(vlan=10)/IP(src="10.0.10.100", dst="10.0.10.1")/
         ICMP(id=7, seq=1)/b"vswitch", iface="{tapif}", timeout=3)
res["ping"] = (r[Dot1Q].vlan, r[ICMP].type) if r is not None and Dot1Q in r and ICMP in r else None
print(repr(res))
"""
    res = eval(ns.run([h.PYTHON, "-c", code], timeout=60).stdout.strip().splitlines()[-1])
    h.step(f"tagged frames on the trunk tap: {res}")
    h.check(res["10/10.0.10.1"] == (10, h.mac(1)), f"vm1 over VLAN 10: {res}")
    h.check(res["10/10.0.10.2"] == (10, h.mac(2)), f"vm2 over VLAN 10: {res}")
    h.check(res["20/10.0.10.3"] == (20, h.mac(3)), f"vm3 over VLAN 20: {res}")
    h.check(res["20/10.0.10.1"] is None, f"vm1 answered on VLAN 20: {res}")
    h.check(res["10/10.0.10.3"] is None, f"vm3 answered on VLAN 10: {res}")
    h.check(res["ping"] == (10, 0), f"tagged echo reply: {res}")
    h.step("trunk tap: VLAN 10 answers tagged 10, VLAN 20 only from vm3")

    fdb = sw.ctl("fdb-show", "br0")
    vlans = {(e["port"], e["vlan"]) for e in fdb}
    h.check(("vm1", 10) in vlans and ("vm2", 10) in vlans and ("trunk0", 10) in vlans
            and ("vmt", 10) in vlans,
            f"fdb: {fdb}")
    h.check(("vm3", 20) in vlans, f"vm3's MAC not learned in VLAN 20: {fdb}")
    st = sw.ctl("port-stats")
    h.check(st["vm3"]["tx_packets"] == 0 or all(
        e["vlan"] == 20 for e in fdb if e["port"] == "vm3"), "")
    show = sw.ctl("show")
    ports = {p["name"]: p for p in show["bridges"][0]["ports"]}
    h.check(ports["vm2"]["status"]["link"] == "up" and ports["vm2"]["status"]["mode"] == "client",
            f"vm2 status {ports['vm2']}")
    h.step("FDB per VLAN as expected; vm2 up in client mode")
    print(sw.ctl("show", json=False))
    print(sw.ctl("port-stats", json=False))


h.main(test)
