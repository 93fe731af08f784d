#!/usr/bin/python3
"""VXLAN encap + decap in the vhost-user loopback (bench/loopback.py's method).

ONE testpmd on CPU 0 owns two virtio-user ports and forwards io between them; the
middle on CPU 1 carries frames between its two vhost-user sockets. Middles:

  vswitchd      one vswitchd, a bridge with both vhost-user ports (plain L2)
  vxlan         two vswitchd in a namespace, each with one vhost-user port and a
                vxlan port (vni 100) to the other over loopback (127.0.0.1 <-> .2):
                every frame is encapsulated by one switch and decapsulated by the
                other, through the kernel's UDP stack (both PMDs on CPU 1)
  vxlan-spread  the same with the first vswitchd on the generator's CPU 0 (--spread)
  vxlan-base    the same with another build's vswitchd (--baseline BUILD): before/after
  ovs           Open vSwitch with DPDK, plain L2 (loopback.py's Ovs, its bridge's
                tap port out of flooding), with --ovs
  ovs-vxlan     Open vSwitch's native (userspace) VXLAN, tnl_push/tnl_pop, one
                ovs-vswitchd with two tunnel "hosts" joined by patch-port underlay
                bridges (OvsVxlan), with --ovs

The figure is the generator's total Rx rate (both directions) in Mpps, middles
alternating each round. See bench/README.md (VXLAN) for what limits each.
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


class _Vswitchd(h.Vswitchd):
    """h.Vswitchd running another build's binary (--baseline)."""

    def __init__(self, binary, **kw):
        self.binary = binary
        super().__init__(**kw)

    def argv(self):
        return [self.binary if x == h.VSWITCHD else x for x in super().argv()]


class VxlanMiddle:
    frontend_server = False

    def __init__(self, name="vxlan", cpus=(lb.MID_CPU, lb.MID_CPU), binary=None):
        self.name, self.cpus, self.binary = name, cpus, binary

    def start(self, a, b, args):
        self.ns = h.NetNS()
        self.ns.run(["ip", "addr", "add", "127.0.0.2/8", "dev", "lo"], check=False)
        self.sws = []
        for i, (sock, local, remote) in enumerate(((a, "127.0.0.1", "127.0.0.2"),
                                                   (b, "127.0.0.2", "127.0.0.1"))):
            kw = dict(ns=self.ns, db=None, pmd_threads=1, cpu=self.cpus[i], log_level="info")
            sw = _Vswitchd(self.binary, **kw) if self.binary else h.Vswitchd(**kw)
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


class OvsL2(lb.Ovs):
    """loopback.py's Open vSwitch middle (its bridge port is out of flooding)."""


class OvsVxlan(lb.Ovs):
    """Open vSwitch's native (userspace) VXLAN in one ovs-vswitchd with DPDK.

    Two "hosts" in one datapath: br-a (vhost-user vu0 + vxlan vx0) and br-b (vu1 +
    vx1), each with its own underlay bridge (br-pa 198.18.0.1, br-pb 198.18.0.2)
    joined by a patch-port pair, so every frame is encapsulated (tnl_push) on one
    side, crosses the underlay bridges and is decapsulated (tnl_pop) on the other,
    all in OVS's PMD. The route and ARP entries are set by hand (ovs/route/add,
    tnl/arp/set); the underlay bridges' tap devices carry the addresses in a
    namespace of their own, so nothing on the host changes.
    """
    name = "ovs-vxlan"
    frontend_server = True

    def appctl(self, *a):
        return h.sh(["ovs-appctl", "-t", f"{self.dir}/ovs-vswitchd.ctl"] + list(a),
                    ns=self.ns.name)

    def appctl_try(self, *a):
        r = h.sh(["ovs-appctl", "-t", f"{self.dir}/ovs-vswitchd.ctl"] + list(a),
                 ns=self.ns.name, check=False)
        lb.log(f"ovs-appctl {' '.join(a)}: rc={r.returncode} {r.stdout.strip()}")
        return r

    def start(self, a, b, args):
        self.ns = h.NetNS()
        self.launch("vsbovsvx")
        ips = ("198.18.0.1", "198.18.0.2")
        macs = ("02:00:c6:12:00:01", "02:00:c6:12:00:02")
        try:
            for i, (br, phy) in enumerate((("br-a", "br-pa"), ("br-b", "br-pb"))):
                self.vsctl("--timeout=60", "add-br", phy, "--", "set", "bridge", phy,
                           "datapath_type=netdev", f"other_config:hwaddr={macs[i]}",
                           timeout=70)
                self.vsctl("add-br", br, "--", "set", "bridge", br, "datapath_type=netdev")
                self.ns.run(["ip", "addr", "add", f"{ips[i]}/24", "dev", phy])
                self.ns.run(["ip", "link", "set", phy, "up"])
                # Both endpoints are addresses of this one namespace: without their
                # "local" routes OVS's route lookup takes the /32 routes added below
                # instead of resolving each address to its own bridge (and so the
                # vxlan ports have no local_ip=, which OVS checks against a local
                # route; the source address comes from the route instead).
                self.ns.run(["ip", "route", "del", "table", "local", ips[i], "dev", phy])
            self.vsctl("add-port", "br-pa", "pa", "--", "set", "Interface", "pa", "type=patch",
                       "options:peer=pb", "--", "add-port", "br-pb", "pb", "--", "set",
                       "Interface", "pb", "type=patch", "options:peer=pa")
            for i, (br, phy) in enumerate((("br-a", "br-pa"), ("br-b", "br-pb"))):
                other = 1 - i
                self.vsctl("add-port", br, f"vx{i}", "--", "set", "Interface", f"vx{i}",
                           "type=vxlan", f"options:remote_ip={ips[other]}",
                           "options:key=100")
                time.sleep(0.5)
                self.appctl_try("ovs/route/add", f"{ips[other]}/32", phy)
                self.appctl("tnl/arp/set", phy, ips[other], macs[other])
            # NORMAL floods to the bridges' own tap ports too (a kernel write per
            # frame: the loop's destination MACs are never learned); vswitchd's
            # bridge floods to the tunnel only, so take them out of flooding
            for br in ("br-a", "br-b"):
                self.no_flood(br, ns=self.ns.name)
            # the sockets: vu0 on a first (the generator creates b after a connects)
            for i, s in enumerate((a, b)):
                self.vsctl("add-port", ("br-a", "br-b")[i], f"vu{i}", "--", "set",
                           "Interface", f"vu{i}", "type=dpdkvhostuserclient",
                           f"options:vhost-server-path={s}")
        except h.Fail as e:
            try:
                with open(f"{self.dir}/ovs-vswitchd.log", errors="replace") as f:
                    tail = "".join(f.readlines()[-15:])
            except OSError:
                tail = self.vswitchd.tail(15)
            raise h.Fail(f"{str(e).splitlines()[0]}\novs-vswitchd log:\n{tail}")

    def stop(self):
        try:  # its PMD spins while vhost ports exist
            for br in ("br-a", "br-b", "br-pa", "br-pb"):
                self.vsctl("--if-exists", "del-br", br, timeout=15)
        except Exception:
            pass
        self.vswitchd.stop()
        self.db.stop()
        self.ns.delete()


def _tree(pid):
    """pid and its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def middle_cpu(m):
    """CPU seconds (user + system, all threads) used so far by a middle's processes."""
    procs = []
    for o in (getattr(m, "sws", None) or []) + [getattr(m, "sw", None),
                                                 getattr(m, "vswitchd", None)]:
        proc = getattr(o, "proc", o)
        if proc is not None and getattr(proc, "p", None) is not None:
            procs += _tree(proc.p.pid)
    ticks = 0
    for p in set(procs):
        try:
            with open(f"/proc/{p}/stat") as f:
                st = f.read()
            fields = st[st.rindex(")") + 2:].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def measure(middle, args):
    """lb.measure plus the middle's CPU use: (Mpps, CPUs the middle used)."""
    mpps, cpus, _ = lb.measure(middle, args, probe=lambda: middle_cpu(middle))
    return mpps, cpus


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--ovs", action="store_true",
                    help="also Open vSwitch with DPDK: plain L2 and its native VXLAN")
    ap.add_argument("--spread", action="store_true",
                    help="also the tunnel with one vswitchd on the generator's CPU")
    ap.add_argument("--baseline", metavar="BUILD",
                    help="also the tunnel with BUILD/vswitch/vswitchd (before/after)")
    ap.add_argument("--huge", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    h.require_root()
    middles = [lb.VswitchdMiddle(), VxlanMiddle()]
    if args.baseline:
        middles.append(VxlanMiddle("vxlan-base", binary=os.path.join(
            os.path.abspath(args.baseline), "vswitch", "vswitchd")))
    if args.spread:
        middles.append(VxlanMiddle("vxlan-spread", cpus=(lb.GEN_CPU, lb.MID_CPU)))
    if args.ovs:
        if lb.Ovs.available():
            middles += [OvsL2(), OvsVxlan()]
        else:
            lb.log("ovs: openvswitch-switch-dpdk not installed (scripts/deps.sh installs it); "
                   "skipped")
    res = {m.name: [] for m in middles}
    cpus = {m.name: [] for m in middles}

    def run():
        for r in range(args.rounds):
            for m in middles:
                try:
                    mpps, cpu = measure(m, args)
                except h.Fail as e:
                    lb.log(f"round {r + 1} {m.name}: failed: {str(e).splitlines()[0]}")
                    continue
                res[m.name].append(mpps)
                cpus[m.name].append(cpu)
                lb.log(f"round {r + 1} {m.name}: {mpps:.3f} Mpps, middle used {cpu:.2f} CPU "
                       f"({mpps / cpu if cpu else 0:.3f} Mpps per CPU)")
                h.cleanup()

    run()
    summary = {k: statistics.median(v) if v else None for k, v in res.items()}
    per_cpu = {k: statistics.median([x / c for x, c in zip(res[k], cpus[k]) if c])
               if any(cpus[k]) else None for k in res}
    if args.json:
        print(json.dumps({"median_mpps": summary, "runs": res, "middle_cpus": cpus,
                          "median_mpps_per_cpu": per_cpu}))
    else:
        base = summary.get("vswitchd")
        for k, v in summary.items():
            if v is None:
                print(f"{k:12s}  failed")
                continue
            ratio = f"  {v / base:5.2f}x plain L2" if base else ""
            eff = f"  {per_cpu[k]:7.3f} Mpps/CPU" if per_cpu[k] else ""
            runs = " ".join(f"{x:.3f}" for x in res[k])
            print(f"{k:12s} {v:8.3f} Mpps{ratio}{eff}   runs: {runs}")
    h.cleanup()


if __name__ == "__main__":
    main()
