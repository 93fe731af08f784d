#!/usr/bin/python3
"""tap and internal ports against the kernel's own stack: vswitchd runs in
namespace A with an internal port (its host-side interface, ip=10.0.5.1/24);
a tap port's device is moved to namespace B (10.0.5.2/24). Ping and iperf3
cross the switch between the two kernels, TSO/checksum offload requests travel
in the virtio-net header through both taps; set-port changes the VLAN of a
running port, and del-port removes its device."""
import re
import time

import harness as h


def test():
    h.require_root()
    a, b = h.NetNS(), h.NetNS()
    sw = h.Vswitchd(ns=a, pmd_threads=1)
    tapif = h.uniq("vstap")
    sw.ctl("add-br", "br0")
    sw.ctl("add-port", "br0", "host0", "type=internal", "ip=10.0.5.1/24")
    sw.ctl("add-port", "br0", "t1", "type=tap", f"ifname={tapif}")
    out = a.run(["ip", "-br", "addr", "show", "host0"]).stdout
    flags = a.run(["ip", "link", "show", "host0"]).stdout
    h.check("10.0.5.1/24" in out and ",UP" in flags, f"internal port: {out} {flags}")
    h.step(f"internal port host0 in {a}: {out.strip()}")

    h.sh(["ip", "-n", str(a), "link", "set", tapif, "netns", str(b)])
    b.run(["ip", "addr", "add", "10.0.5.2/24", "dev", tapif])
    b.run(["ip", "link", "set", tapif, "up"])
    h.check(h.wait_for(lambda: a.run(["ping", "-c1", "-W1", "10.0.5.2"], check=False)
                       .returncode == 0, 15, "ping A -> B"), "")
    h.step("ping from the internal port to the tap's namespace")

    srv = b.popen(["iperf3", "-s", "-1", "-B", "10.0.5.2"], name="iperf3-s")
    time.sleep(0.5)
    out = a.run(["iperf3", "-c", "10.0.5.2", "-t", "3", "-f", "m"], timeout=30).stdout
    m = re.search(r"([\d.]+) Mbits/sec\s+receiver", out)
    h.check(m is not None, f"iperf3:\n{out}")
    st = sw.ctl("port-stats")
    h.check(st["host0"]["rx_packets"] > 0 and st["t1"]["tx_packets"] > 0, f"{st}")
    # with TSO through the taps, super-frames (> MTU) cross as one packet
    big = st["t1"]["tx_bytes"] / max(1, st["t1"]["tx_packets"])
    h.step(f"iperf3 A -> B: {float(m.group(1)) / 1000:.2f} Gbit/s, "
           f"{big:.0f} bytes per packet on t1")
    h.check(big > 1600, f"no super-frames crossed (avg {big:.0f} B): offloads lost")
    # link_down: frames the host sent before the tap came up in B
    bad = {k: v for k, v in st["t1"]["drops"].items() if v and k != "link_down"}
    h.check(not bad, f"drops on t1: {bad}")
    srv.stop()

    # set-port: put t1 in VLAN 30, host0 stays in VLAN 0: no more reachability
    sw.ctl("set-port", "t1", "tag=30")
    h.check(a.run(["ping", "-c1", "-W1", "10.0.5.2"], check=False).returncode != 0,
            "reachable across VLANs after set-port")
    sw.ctl("set-port", "host0", "tag=30")
    h.check(h.wait_for(lambda: a.run(["ping", "-c1", "-W1", "10.0.5.2"], check=False)
                       .returncode == 0, 10, "ping after both in VLAN 30"), "")
    h.step("set-port tag=30 on a running port isolates it; both in VLAN 30 reconnects")

    sw.ctl("del-port", "t1")
    r = b.run(["ip", "link", "show", tapif], check=False)
    h.check(r.returncode != 0, f"tap {tapif} still exists after del-port")
    sw.ctl("del-port", "br0", "host0")
    h.check(a.run(["ip", "link", "show", "host0"], check=False).returncode != 0,
            "host0 still exists after del-port")
    h.step("del-port removes the tap and internal devices")


h.main(test)
