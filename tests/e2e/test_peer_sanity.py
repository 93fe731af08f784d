#!/usr/bin/python3
"""Harness self-check against a known-good peer: two lab guests (QEMU TCG) attached
to DPDK testpmd acting as the vhost-user backend (net_vhost ×2, io forwarding) must
ping each other and run iperf3. One guest's socket is served by testpmd (QEMU
connects, reconnect=1), the other by QEMU (testpmd connects, client=1), so both
socket roles of QemuGuest are exercised. No vswitchd involved."""
import os
import re
import time

import harness as h


def test():
    h.require_root()
    h.require_binaries(h.TESTPMD, h.QEMU)
    h.step("building/checking the lab guest")
    h.require_guest()
    d = h.tempdir()
    s1, s2 = os.path.join(d, "vm1.sock"), os.path.join(d, "vm2.sock")

    h.step("starting testpmd: net_vhost0 (server) + net_vhost1 (client), io forwarding")
    tp = h.Testpmd([h.vhost_vdev(0, s1), h.vhost_vdev(1, s2, client=True)],
                   forward_mode="io", lcores="0@1,1@1")
    h.wait_for(lambda: os.path.exists(s1), 10, "testpmd's socket")
    g1 = h.QemuGuest(nics=[dict(socket=s1, mac=h.mac(1))], ip="10.0.10.1/24", name="vm1")
    g2 = h.QemuGuest(nics=[dict(socket=s2, mac=h.mac(2), server=True)], ip="10.0.10.2/24",
                     name="vm2")
    tp.start()
    b1, b2 = g1.wait_booted(), g2.wait_booted()
    h.step(f"guests booted: vm1 {b1:.1f}s, vm2 {b2:.1f}s")

    out = g1.check("ip -br link show eth0; ip -br addr show eth0")
    h.check("10.0.10.1/24" in out, f"vm1 eth0 not configured:\n{out}")
    rc, out = g1.run("echo hello; echo err >&2; exit 3")
    h.check(rc == 3 and out.split() == ["hello", "err"], f"command protocol: rc={rc} {out!r}")

    h.check(h.wait_for(lambda: g1.ping("10.0.10.2", timeout=2), 30, "vm1 -> vm2 ping"), "")
    h.check(g2.ping("10.0.10.1"), "vm2 -> vm1 ping failed")
    rtt = g1.ping_rtt("10.0.10.2", count=5)
    h.check(rtt is not None, "ping rtt")
    h.step(f"ping ok both ways, rtt avg {rtt:.2f} ms")

    g2.check("iperf3 -s -D -1")
    time.sleep(0.5)
    out = g1.check("iperf3 -c 10.0.10.2 -t 4 -f m", timeout=40)
    m = re.search(r"([\d.]+) Mbits/sec\s+receiver", out)
    h.check(m is not None, f"iperf3 output:\n{out}")
    gbps = float(m.group(1)) / 1000
    h.check(gbps > 0.01, f"iperf3 too slow: {gbps} Gbit/s")
    h.step(f"iperf3 vm1 -> vm2: {gbps:.2f} Gbit/s")

    st = tp.stats()
    h.check(st[0]["rx_packets"] > 1000 and st[1]["rx_packets"] > 100, f"testpmd stats {st}")
    h.step(f"testpmd forwarded rx {st[0]['rx_packets']}/{st[1]['rx_packets']} packets")
    print(f"FIGURES boot_s={max(b1, b2):.1f} ping_ms={rtt:.2f} iperf3_gbps={gbps:.2f}")


h.main(test)
