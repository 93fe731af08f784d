#!/usr/bin/python3
"""NAT benchmark: thousands of UDP flows through SNAT in a closed loop, Mpps beside L2 and OVS ct(nat).

The traffic source is bench/natloop (a DPDK application, built in build-dpdk) on
CPU 0; it owns two virtio-user ports, the middle (CPU 1) joins them:

    natloop port 0 ("guests", 10.254.64.0/18) -- a.sock --> guest side  \\  middle
    natloop port 1 ("server" 198.51.100.9)    -- b.sock --> uplink side  /  (SNAT to 192.0.2.1)

Port 0 sends each flow's frame to --peer0 (the gateway's MAC, or port 1's MAC
through a plain bridge); port 1 swaps every frame it receives into its reply;
port 0 rewrites every reply it receives into the outbound frame of the NEXT of F
flows (round robin), TTL restored. So every frame crosses the middle outbound and
inbound, every pass touches another conntrack entry, and the loop never drains.
The figure is natloop's receive rate over both ports (translations per second),
Mpps. Middles alternate each round:

  vswitchd-l2   vswitchd (build-dpdk), bridge: p0 vhost-user + p1 dpdk net_vhost, L2
  vswitchd-nat  the same two ports; network n1 with nat=p1 (ip=192.0.2.1/24
                gw=192.0.2.2): every frame is routed (TTL-1) and SNATed/un-NATed
  ovs-l2        (--ovs) Open vSwitch + DPDK, NORMAL
  ovs-nat       (--ovs) Open vSwitch + DPDK, ct(commit,nat(src=192.0.2.1)) / ct(nat);
                no dec_ttl unless --ovs-dec-ttl
See bench/README.md (section nat.py).
"""

import argparse
import json
import os
import re
import signal
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
sys.path.insert(0, HERE)
import harness as h  # noqa: E402
import loopback  # noqa: E402
import vxlan  # noqa: E402  (middle_cpu)

GEN_CPU, MID_CPU = 0, 1
# VSWITCH_BUILD_DPDK: another DPDK build (e.g. one with -Dsanitize=true)
BUILD_DPDK = os.environ.get("VSWITCH_BUILD_DPDK", os.path.join(h.ROOT, "build-dpdk"))
VSWITCHD_DPDK = os.path.join(BUILD_DPDK, "vswitch", "vswitchd")
NATLOOP = os.path.join(BUILD_DPDK, "bench", "natloop")
MAC0, MAC1 = "52:54:00:ab:00:01", "52:54:00:ab:00:02"   # natloop's ports 0/1
UP_ADDR, UP_GW = "192.0.2.1", "192.0.2.2"
GUEST_NET, GUEST_GW = "10.254.64.0/18", "10.254.64.1"
SERVER = "198.51.100.9:5001"


def log(msg):
    print(f"[nat {time.monotonic() - h._T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def derive_mac(name, salt):
    """vswitch/l3.c l3_derive_mac(): the gateway's (salt 0) and uplink's (1) MAC."""
    x = 2166136261
    for c in name.encode():
        x = ((x ^ c) * 16777619) & 0xffffffff
    x = ((x ^ salt) * 16777619) & 0xffffffff
    return ":".join(f"{b:02x}" for b in (0x02, 0x76, x >> 24, (x >> 16) & 255,
                                         (x >> 8) & 255, x & 255))


GW_MAC, UP_MAC = derive_mac("n1", 0), derive_mac("p1", 1)


class VsMiddle:
    frontend_server = False

    def __init__(self, nat):
        self.nat = nat
        self.name = "vswitchd-nat" if nat else "vswitchd-l2"
        self.peer0 = GW_MAC if nat else MAC1

    def start(self, a, b, args):
        h.VSWITCHD = VSWITCHD_DPDK
        self.sw = h.Vswitchd(db=None, pmd_threads=1, cpu=MID_CPU, log_level="info")
        self.sw.ctl("add-br", "br0")
        self.sw.ctl("add-port", "br0", "p0", "type=vhost-user", f"socket={a}", "mode=server")
        up = ["add-port", "br0", "p1", "type=dpdk", f"devargs=net_vhost0,iface={b}"]
        if self.nat:
            up += [f"ip={UP_ADDR}/24", f"gw={UP_GW}"]
        self.sw.ctl(*up, timeout=60)
        if self.nat:
            self.sw.ctl("add-net", "n1", "bridge=br0", f"subnet={GUEST_NET}",
                        f"gateway={GUEST_GW}", "nat=p1",
                        f"ct_max={min(max(65536, 2 * args.flows), 4000000)}")
        h.wait_for(lambda: os.path.exists(a) and os.path.exists(b), 10, "vswitchd's sockets")

    def connected(self):
        return self.sw.alive()

    def after(self):
        st = self.sw.ctl("port-stats")
        drops = {p: {k: v for k, v in st[p]["drops"].items() if v} for p in st}
        out = {"drops": {p: d for p, d in drops.items() if d}}
        if self.nat:
            out["ct_entries"] = len(self.sw.ctl("ct-show", timeout=120))
        return out

    def stop(self):
        try:
            self.sw.stop()
        finally:
            self.sw.kill()


class OvsMiddle(loopback.Ovs):
    def __init__(self, nat, dec_ttl):
        self.nat, self.dec_ttl = nat, dec_ttl
        self.name = "ovs-nat" if nat else "ovs-l2"
        self.peer0 = GW_MAC if nat else MAC1

    def start(self, a, b, args):
        super().start(a, b, args)
        if not self.nat:
            return
        # room for every flow (the userspace datapath's default is 3,000,000)
        self.appctl("dpctl/ct-set-maxconns", str(max(3000000, 2 * args.flows)))
        ttl = "dec_ttl," if self.dec_ttl else ""
        flows = f"""\
table=0,priority=10,in_port=vu0,ip,actions=ct(commit,zone=1,nat(src={UP_ADDR}),table=1)
table=0,priority=10,in_port=vu1,ip,actions=ct(zone=1,nat,table=2)
table=0,priority=0,actions=drop
table=1,priority=10,ip,actions={ttl}mod_dl_src:{UP_MAC},mod_dl_dst:{MAC1},output:vu1
table=2,priority=10,ct_state=+trk+est,ip,actions={ttl}mod_dl_src:{GW_MAC},mod_dl_dst:{MAC0},output:vu0
table=2,priority=0,actions=drop
"""
        path = os.path.join(self.dir, "flows.txt")
        with open(path, "w") as f:
            f.write(flows)
        mgmt = f"unix:{self.dir}/br0.mgmt"
        h.sh(["ovs-ofctl", "del-flows", mgmt])
        h.sh(["ovs-ofctl", "add-flows", mgmt, path])

    def appctl(self, *a, timeout=30):
        return h.sh(["ovs-appctl", "-t", f"{self.dir}/ovs-vswitchd.ctl"] + list(a),
                    timeout=timeout)

    def after(self):
        if not self.nat:
            return {}
        m = re.search(r"^\s*UDP:\s*(\d+)", self.appctl("dpctl/ct-stats-show").stdout, re.M)
        return {"ct_entries": int(m.group(1)) if m else None}


def natloop_argv(args, a, b, server, peer0, prefix, go):
    eal = ["--no-pci", f"--file-prefix={prefix}", "--iova-mode=va", "-m", "1024",
           "--lcores", f"0@{GEN_CPU}", "--log-level=user1,info"]
    eal += ["--in-memory", "--single-file-segments"] if args.huge else ["--no-huge"]
    for i, (s, m) in enumerate(((a, MAC0), (b, MAC1))):
        eal += ["--vdev", h.virtio_user_vdev(i, s, server=server, queue_size=1024,
                                             extra=f"mac={m}")]
    app = ["--peer0", peer0, "--flows", str(args.flows), "--inflight", str(args.inflight),
           "--guests", str(args.guests), "--guest-net", GUEST_NET, "--server", SERVER,
           "--warmup", str(args.warmup), "--seconds", str(args.seconds),
           "--timeout", "30", "--go-file", go]
    return [NATLOOP] + eal + ["--"] + app


def natloop_result(gen):
    for ln in reversed(gen.output().splitlines()):
        if ln.startswith('{"natloop"'):
            return json.loads(ln)["natloop"]
    return None


def measure(middle, args):
    """One run: (Mpps over both of natloop's ports, details)."""
    d = h.tempdir("vs-nat-")
    a, b = os.path.join(d, "a.sock"), os.path.join(d, "b.sock")
    gen = None
    try:
        if not middle.frontend_server:
            middle.start(a, b, args)
        # natloop sends once the middle is set up: OVS would otherwise bridge the
        # first frames (NORMAL) and drop all in flight while its NAT flows go in
        go = os.path.join(d, "go")
        if not middle.frontend_server:
            open(go, "w").close()
        argv = natloop_argv(args, a, b, middle.frontend_server, middle.peer0,
                            f"vsnat{os.getpid()}", go)
        gen = h.Proc(argv, "natloop", max_seconds=args.warmup + args.seconds + 900,
                     kill_signal="INT")
        if middle.frontend_server:
            # virtio-user server=1: the middle must connect to a before b appears
            h.wait_for(lambda: os.path.exists(a) or not gen.alive(), 20,
                       "natloop's first socket")
            middle.start(a, b, args)
            open(go, "w").close()
        # the middle's CPU time over natloop's window (the machine is shared)
        # it measures once every flow has been sent (slow near port exhaustion); it
        # gives up by itself when nothing comes round for 30 s
        h.wait_for(lambda: "natloop: measuring" in gen.output() or not gen.alive(),
                   args.warmup + 800, "natloop's measuring window")
        c0, t0 = vxlan.middle_cpu(middle), time.monotonic()
        h.wait_for(lambda: "natloop: measured" in gen.output() or not gen.alive(),
                   args.seconds + 30, "natloop's measuring window to end")
        c1, t1 = vxlan.middle_cpu(middle), time.monotonic()
        h.wait_for(lambda: not gen.alive(), 60, "natloop to finish")
        res = natloop_result(gen)
        extra = middle.after()
        if gen.p.returncode != 0 or not res or not res["complete"]:
            said = [ln for ln in gen.output().splitlines()
                    if ln.startswith("natloop: ") and "tx refused" not in ln]
            raise h.Fail(f"{said[-1] if said else 'natloop rc=%d' % gen.p.returncode} "
                         f"{extra}\n{gen.tail(12)}")
        p0, p1 = res["ports"]
        extra.update({"middle_cpu": round((c1 - c0) / (t1 - t0), 3),
                      "rx_mpps_per_port": [p0["rx_mpps"], p1["rx_mpps"]],
                      "distinct_flows": res["distinct_flows"], "injected": res["injected"],
                      "natted": p1["natted"], "unexpected": p0["unexpected"],
                      "tx_refused": [p0["tx_refused"], p1["tx_refused"]],
                      "stray": [p0["stray"], p1["stray"]]})
        return res["rx_mpps"], extra
    finally:
        if gen:
            gen.stop(signal.SIGINT)
        try:
            middle.stop()
        except Exception:
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--flows", type=int, default=8192, help="flows in the loop (8192)")
    ap.add_argument("--inflight", type=int, default=512, help="frames in the loop (512)")
    ap.add_argument("--guests", type=int, default=256,
                    help="guest addresses the flows are spread over (256)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--ovs", action="store_true", help="also Open vSwitch with DPDK")
    ap.add_argument("--ovs-dec-ttl", action="store_true",
                    help="ovs-nat also decrements TTL (as the vswitchd router does)")
    ap.add_argument("--only", help="comma list of middles")
    ap.add_argument("--huge", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("nat.py: run as root")
    for path in (VSWITCHD_DPDK, NATLOOP):
        if not os.access(path, os.X_OK):
            print(f"not run: {path} not built (meson setup build-dpdk -Ddpdk=enabled; "
                  "ninja -C build-dpdk)")
            sys.exit(77)
    middles = [VsMiddle(False), VsMiddle(True)]
    if args.ovs or (args.only and "ovs" in args.only):
        if loopback.Ovs.available():
            middles += [OvsMiddle(False, args.ovs_dec_ttl), OvsMiddle(True, args.ovs_dec_ttl)]
        else:
            log("ovs: openvswitch-switch-dpdk not installed; skipped")
    if args.only:
        middles = [m for m in middles if m.name in args.only.split(",")]

    def one(m):
        mpps, extra = measure(m, args)
        return mpps, extra, str(extra)

    results, info, errors = loopback.run_rounds(middles, args.rounds, one, args.verbose)
    med = loopback.medians(results)  # failed rounds (None) are left out
    # Mpps per CPU-second the middle got: steadier than Mpps when others share CPU 1
    per_cpu = {n: [x / d["middle_cpu"] for x, d in zip(v, info[n])
                   if x is not None and d.get("middle_cpu")]
               for n, v in results.items()}
    med_cpu = {n: statistics.median(v) if v else 0.0 for n, v in per_cpu.items()}
    pairs = (("vswitchd-nat", "vswitchd-l2"), ("ovs-nat", "ovs-l2"),
             ("vswitchd-nat", "ovs-nat"), ("vswitchd-l2", "ovs-l2"))
    ratios = {f"{a}/{b}": med[a] / med[b] for a, b in pairs if med.get(a) and med.get(b)}
    ratios_cpu = {f"{a}/{b}": med_cpu[a] / med_cpu[b] for a, b in pairs
                  if med_cpu.get(a) and med_cpu.get(b)}
    ct = {n: [x.get("ct_entries") for x in info[n]] for n in results
          if any("ct_entries" in x for x in info[n])}
    out = {"unit": "Mpps", "seconds": args.seconds, "rounds": args.rounds,
           "flows": args.flows, "inflight": args.inflight,
           "ovs_dec_ttl": args.ovs_dec_ttl, "results": results, "median": med,
           "ratios": ratios, "mpps_per_cpu": per_cpu, "median_mpps_per_cpu": med_cpu,
           "ratios_per_cpu": ratios_cpu, "ct_entries": ct, "details": info,
           "failed": {n: e for n, e in errors.items() if e}}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    hdr = "middle        " + "".join(f"  round{i + 1:<3d}" for i in range(args.rounds)) + \
        "    median  Mpps/CPU  ct entries"
    print(hdr)
    print("-" * len(hdr))
    for n, v in results.items():
        cts = "/".join(str(x) for x in ct.get(n, [])) or "-"
        print(f"{n:13s} " + "".join("    failed" if x is None else f"{x:10.2f}" for x in v)
              + f"{med[n]:10.2f}"
              f"{med_cpu[n]:10.2f}  {cts}" + ("  (some rounds failed)" if errors[n] else ""))
    for n, e in errors.items():
        if e:
            print(f"{n}: {e[0]}")
    for k, v in ratios.items():
        print(f"{k} = {v:.2f} (per CPU {ratios_cpu[k]:.2f})" if k in ratios_cpu else
              f"{k} = {v:.2f}")
    print(f"flows {args.flows}, {args.inflight} frames in flight; Mpps = natloop's receive "
          "rate over both ports (outbound + inbound translations)")
    if "ovs-nat" in results and not args.ovs_dec_ttl:
        print("ovs-nat forwards without dec_ttl (vswitchd-nat routes: TTL-1 both ways); "
              "--ovs-dec-ttl adds it")


if __name__ == "__main__":
    signal.signal(signal.SIGINT, lambda *a: (_ for _ in ()).throw(SystemExit(130)))
    main()
