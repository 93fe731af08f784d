#!/usr/bin/python3
"""VXLAN encap + decap in the vhost-user loopback (bench/loopback.py's method).

ONE testpmd on CPU 0 owns two virtio-user ports and forwards io between them; the
middle on CPU 1 carries frames between its two vhost-user sockets. Middles:

  vswitchd     one vswitchd, a bridge with both vhost-user ports (plain L2)
  vxlan        two vswitchd in a namespace, each with one vhost-user port and a
               vxlan port (vni 100) to the other over loopback (127.0.0.1 <-> .2):
               every frame is encapsulated by one switch and decapsulated by the
               other (both PMDs share CPU 1)
  ovs          Open vSwitch with DPDK, plain L2 (loopback.py's Ovs), with --ovs

The figure is the generator's total Rx rate (both directions) in Mpps, middles
alternating each round. Open vSwitch's own userspace VXLAN (tnl_push/tnl_pop) needs
a DPDK underlay port with an address and ARP: not measured yet (see README).
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import harness as h  # noqa: E402
import loopback as lb  # noqa: E402


class VxlanMiddle:
    name = "vxlan"
    frontend_server = False

    def start(self, a, b, args):
        self.ns = h.NetNS()
        self.ns.run(["ip", "addr", "add", "127.0.0.2/8", "dev", "lo"], check=False)
        self.sws = []
        for i, (sock, local, remote) in enumerate(((a, "127.0.0.1", "127.0.0.2"),
                                                   (b, "127.0.0.2", "127.0.0.1"))):
            sw = h.Vswitchd(ns=self.ns, db=None, pmd_threads=1, cpu=lb.MID_CPU,
                            log_level="info")
            sw.ctl("add-br", "br0")
            sw.ctl("add-port", "br0", "p", "type=vhost-user", f"socket={sock}", "mode=server")
            sw.ctl("add-port", "br0", "vx", "type=vxlan", "vni=100", f"local={local}",
                   f"remote={remote}")
            self.sws.append(sw)
        h.wait_for(lambda: os.path.exists(a) and os.path.exists(b), 10,
                   "vswitchd's vhost-user sockets")

    def connected(self):
        return all(sw.alive() for sw in self.sws)

    def stats(self):
        return [sw.ctl("port-stats", "vx")["vx"] for sw in self.sws]

    def stop(self):
        for sw in self.sws:
            try:
                sw.stop()
            finally:
                sw.kill()
        self.ns.delete()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--ovs", action="store_true", help="also Open vSwitch with DPDK (L2)")
    ap.add_argument("--huge", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    h.require_root()
    middles = [lb.VswitchdMiddle(), VxlanMiddle()]
    if args.ovs and lb.Ovs.available():
        middles.append(lb.Ovs())
    res = {m.name: [] for m in middles}

    def run():
        for r in range(args.rounds):
            for m in middles:
                try:
                    mpps, _, _ = lb.measure(m, args)
                except h.Fail as e:
                    lb.log(f"round {r + 1} {m.name}: failed: {str(e).splitlines()[0]}")
                    continue
                res[m.name].append(mpps)
                lb.log(f"round {r + 1} {m.name}: {mpps:.3f} Mpps")

    run()
    summary = {k: statistics.median(v) if v else None for k, v in res.items()}
    if args.json:
        print(json.dumps({"median_mpps": summary, "runs": res}))
    else:
        base = summary.get("vswitchd")
        for k, v in summary.items():
            if v is None:
                print(f"{k:10s}  failed")
                continue
            ratio = f"  {v / base:.2f}x plain L2" if base else ""
            print(f"{k:10s} {v:8.3f} Mpps{ratio}")
    h.cleanup()


if __name__ == "__main__":
    main()
