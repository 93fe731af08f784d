#!/usr/bin/python3
"""The lab (run by scripts/lab.sh): vswitchd on its embedded default configuration
(--db none --default-config: bridge br0 with vhost-user ports vm1 and vm2 listening
in its run dir), two QEMU guests on them (10.0.10.1 and 10.0.10.2), ping, iperf3,
`vswitchctl show` and `port-stats`. Everything is removed at the end."""
import argparse
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import harness as h  # noqa: E402


def lab(args):
    h.require_root()
    sw = h.Vswitchd(db="none", pmd_threads=1, extra=["--default-config"])
    h.step(f"vswitchd up on its default configuration: control socket {sw.socket}, "
           f"run dir {sw.run_dir}")
    h.check(sw.ctl("list-ports", "br0") == ["vm1", "vm2"], "default configuration")
    for p in ("vm1", "vm2"):
        h.wait_for(lambda: os.path.exists(sw.port_socket(p)), 10, f"{p}'s socket")
    g = [h.QemuGuest(nics=[dict(socket=sw.port_socket(f"vm{i}"), mac=h.mac(i))],
                     ip=f"10.0.10.{i}/24", name=f"vm{i}") for i in (1, 2)]
    b = [x.wait_booted() for x in g]
    h.step(f"guests booted in {b[0]:.1f}s and {b[1]:.1f}s")
    ok = h.wait_for(lambda: g[0].ping("10.0.10.2", timeout=2) or None, 20, "vm1 -> vm2 ping")
    rtt = g[0].ping_rtt("10.0.10.2", count=5)
    h.check(ok and g[1].ping("10.0.10.1"), "vm2 -> vm1 ping failed")
    h.step(f"ping vm1 <-> vm2 ok, rtt avg {rtt:.2f} ms")
    g[1].check("iperf3 -s -D -1")
    time.sleep(0.5)
    out = g[0].check(f"iperf3 -c 10.0.10.2 -t {args.iperf_seconds} -f m",
                     timeout=args.iperf_seconds + 30)
    m = re.search(r"([\d.]+) Mbits/sec\s+receiver", out)
    h.check(m is not None, f"iperf3:\n{out}")
    h.step(f"iperf3 vm1 -> vm2: {float(m.group(1)) / 1000:.2f} Gbit/s")
    print(sw.ctl("show", json=False).rstrip())
    print(sw.ctl("port-stats", json=False).rstrip())
    if args.keep:
        h.step(f"up; vswitchctl --socket {sw.socket} ...; Ctrl-C to stop")
        while True:
            time.sleep(3600)


ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--keep", action="store_true", help="stay up until Ctrl-C")
ap.add_argument("--iperf-seconds", type=int, default=3)
a = ap.parse_args()
h.main(lambda: lab(a))
