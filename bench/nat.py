#!/usr/bin/python3
"""NAT benchmark: UDP flows through SNAT, sustained Mpps beside L2 and OVS ct(nat).

Default --method open (sustained): the same single testpmd on CPU 0 owns both
virtio-user ports; after the ARP/learning burst below, only port 0 forwards, in `txonly
--txonly-multi-flow` (10.254.x.10 -> 198.51.100.9, to the gateway's MAC); port 1 is not
polled. The figure is what the middle (CPU 1) delivers per second on its uplink side:
egress tx packets + egress ring-full drops (vswitchd port-stats p1 tx_packets +
drops.no_buffer; OVS `ovs-ofctl dump-ports` vu1 tx pkts + drop). A frame counted there
has been received, translated and forwarded; the cost of copying it into a polled ring
is not included (the same for every middle). The generator's accepted and attempted
rates are reported too (attempted >> accepted: the middle is the bottleneck).

--method loop: the issue-4 closed loop, below (drains through vswitchd's router).

ONE testpmd (CPU 0) owns two virtio-user ports, `--forward-mode=5tswap
--port-topology=loop`: each port reflects what it receives (MACs, IPv4 addresses and
UDP ports swapped) back out of itself. The middle (CPU 1) joins the ports:

    virtio-user0 ("guest", 10.254.64.0/18) -- a.sock --> guest side  \\  middle
    virtio-user1 ("server", 10.254.0.9)   -- b.sock --> uplink side  /  (SNAT to 192.0.2.1)

A frame from port 0 is SNATed out of the uplink, port 1 swaps it into the reply
(to 192.0.2.1), the middle un-NATs it back to port 0, which swaps it into the next
outbound frame of the same flow. The figure is the generator's total Rx rate (both
ports: outbound + inbound translations), Mpps. Middles alternate each round:

  vswitchd-l2   vswitchd (build-dpdk), bridge: p0 vhost-user + p1 dpdk net_vhost, L2
  vswitchd-nat  the same two ports; network n1 on p0's VLAN with nat=p1 (ip=192.0.2.1/24
                gw=192.0.2.2): every frame is routed (TTL-1) and SNATed/un-NATed
  ovs-l2        (--ovs) Open vSwitch + DPDK, NORMAL
  ovs-nat       (--ovs) Open vSwitch + DPDK, ct(commit,nat(src=192.0.2.1)) / ct(nat)

Flows: `start tx_first 16` in 5tswap with --txonly-multi-flow: DPDK 22.11 varies the
third byte of the source address (10.254.64-127.x -> 10.254.0.9, 64 flows per burst
position, 128 conntrack entries seen); the guest network is 10.254.64.0/18. --fill S
runs `flowgen` first (its frames do not carry --eth-peer as destination MAC: vswitchd
drops them as no_destination; off by default).
Before that, one `icmpecho` burst answers the middle's ARP for the uplink's next hop.
See bench/README.md (section nat.py), including why vswitchd-nat drains.
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

GEN_CPU, MID_CPU = 0, 1
VSWITCHD_DPDK = os.path.join(h.ROOT, "build-dpdk", "vswitch", "vswitchd")
MAC0, MAC1 = "52:54:00:ab:00:01", "52:54:00:ab:00:02"   # virtio-user0/1
UP_ADDR, UP_GW = "192.0.2.1", "192.0.2.2"
TX_IP = "10.254.64.2,10.254.0.9"
# open loop: DPDK 22.11 txonly --txonly-multi-flow sends from (dst | n << 8) + lcore,
# n = 0..255: 256 sources 10.254.0-255.10 -> 198.51.100.9 (outside every network)
TX_IP_OPEN = "10.254.64.2,198.51.100.9"


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
        self.peers = (GW_MAC, UP_MAC) if nat else (MAC1, MAC0)

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
            self.sw.ctl("add-net", "n1", "bridge=br0", "subnet=10.254.64.0/18",
                        "gateway=10.254.64.1", "nat=p1", "ct_max=1000000")
        h.wait_for(lambda: os.path.exists(a) and os.path.exists(b), 10, "vswitchd's sockets")

    def connected(self):
        return self.sw.alive()

    def after(self):
        st = self.sw.ctl("port-stats")
        drops = {p: {k: v for k, v in st[p]["drops"].items() if v} for p in st}
        flows = len(self.sw.ctl("ct-show")) if self.nat else None
        return {"flows": flows, "drops": drops}

    def stop(self):
        try:
            self.sw.stop()
        finally:
            self.sw.kill()


class OvsMiddle(loopback.Ovs):
    def __init__(self, nat, dec_ttl):
        self.nat, self.dec_ttl = nat, dec_ttl
        self.name = "ovs-nat" if nat else "ovs-l2"
        self.peers = (GW_MAC, UP_MAC) if nat else (MAC1, MAC0)

    def start(self, a, b, args):
        super().start(a, b, args)
        if not self.nat:
            return
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

    def after(self):
        if not self.nat:
            return {}
        r = h.sh(["ovs-appctl", "-t", f"{self.dir}/ovs-vswitchd.ctl", "dpctl/dump-conntrack"],
                 check=False, timeout=30)
        return {"flows": len([ln for ln in r.stdout.splitlines() if ln.startswith("udp")])}


def egress(middle):
    """The middle's counters on its uplink side: (tx_packets, ring-full drops), and its
    guest-side ingress (rx_packets)."""
    if isinstance(middle, VsMiddle):
        st = middle.sw.ctl("port-stats")
        return (st["p1"]["tx_packets"], st["p1"]["drops"].get("no_buffer", 0),
                st["p0"]["rx_packets"])
    # live datapath counters (Interface:statistics in the db lag by stats-update-interval)
    r = h.sh(["ovs-ofctl", "--names", "dump-ports", f"unix:{middle.dir}/br0.mgmt"]).stdout
    ports = {}
    for name, body in re.findall(r'port\s+"?(\w+)"?:(.*?)(?=port\s|\Z)', r, re.S):
        rx = re.search(r"rx pkts=(\d+)", body)
        tx = re.search(r"tx pkts=(\d+), bytes=\d+, drop=(\d+)", body)
        ports[name] = (int(rx.group(1)), int(tx.group(1)), int(tx.group(2)))
    if "vu1" not in ports or "vu0" not in ports:
        raise h.Fail(f"ovs-ofctl dump-ports: no vu0/vu1 in {r!r}")
    return ports["vu1"][1], ports["vu1"][2], ports["vu0"][0]


def tx_total(gen):
    """testpmd's forwarding TX-total (accepted + refused by a full ring) so far."""
    m = re.findall(r"TX-total:\s*(\d+)", gen.cmd("show fwd stats all"))
    return int(m[-1]) if m else 0


def measure_open(middle, args):
    """Open loop: testpmd txonly on port 0 only (port 1 is left unpolled); the figure is
    what the middle delivers per second on the uplink side (tx + ring-full drops)."""
    d = h.tempdir("vs-nat-")
    a, b = os.path.join(d, "a.sock"), os.path.join(d, "b.sock")
    gen = None
    try:
        if not middle.frontend_server:
            middle.start(a, b, args)
        vdevs = [h.virtio_user_vdev(i, s, server=middle.frontend_server, queue_size=1024,
                                    extra=f"mac={m}")
                 for i, (s, m) in enumerate(((a, MAC0), (b, MAC1)))]
        app = ["--port-topology=loop", f"--eth-peer=0,{middle.peers[0]}",
               f"--eth-peer=1,{middle.peers[1]}", f"--tx-ip={TX_IP_OPEN}",
               "--txonly-multi-flow"]
        gen = h.Testpmd(vdevs, forward_mode="icmpecho", lcores=f"0@{GEN_CPU},1@{GEN_CPU}",
                        huge=args.huge, name="generator", extra_app=app,
                        wait=not middle.frontend_server)
        if middle.frontend_server:
            h.wait_for(lambda: os.path.exists(a), 20, "generator's first socket")
            middle.start(a, b, args)
            gen.wait_ready(60)
        h.wait_for(middle.connected, 20, f"{middle.name} connected")
        time.sleep(1)
        # both ports: one burst each (the L2 middles learn MAC1 on p1), icmpecho answers
        # vswitchd's ARP for the next hop 192.0.2.2 on the uplink
        gen.start(tx_first=1)
        time.sleep(0.5)
        gen.stop()
        gen.cmd("set portlist 0")          # only port 0 forwards (transmits) from now on
        gen.cmd("set fwd txonly")
        gen.start()
        time.sleep(args.warmup)
        e0, s0, a0, t0 = egress(middle), gen.stats(), tx_total(gen), time.monotonic()
        time.sleep(args.seconds)
        e1, s1, a1, t1 = egress(middle), gen.stats(), tx_total(gen), time.monotonic()
        gen.stop()
        dt = t1 - t0
        tx, full, rx = (e1[i] - e0[i] for i in range(3))
        offered = (s1[0]["tx_packets"] - s0[0]["tx_packets"]) / dt / 1e6
        extra = middle.after()
        extra.update({"offered_mpps": round(offered, 3),
                      "attempted_mpps": round((a1 - a0) / dt / 1e6, 3),
                      "middle_rx_mpps": round(rx / dt / 1e6, 3),
                      "uplink_tx_mpps": round(tx / dt / 1e6, 3),
                      "uplink_full_mpps": round(full / dt / 1e6, 3)})
        return (tx + full) / dt / 1e6, extra
    finally:
        if gen:
            gen.close()
        try:
            middle.stop()
        except Exception:
            pass


def measure(middle, args):
    if args.method == "open":
        return measure_open(middle, args)
    d = h.tempdir("vs-nat-")
    a, b = os.path.join(d, "a.sock"), os.path.join(d, "b.sock")
    gen = None
    try:
        if not middle.frontend_server:
            middle.start(a, b, args)
        vdevs = [h.virtio_user_vdev(i, s, server=middle.frontend_server, queue_size=1024,
                                    extra=f"mac={m}")
                 for i, (s, m) in enumerate(((a, MAC0), (b, MAC1)))]
        app = ["--port-topology=loop", f"--eth-peer=0,{middle.peers[0]}",
               f"--eth-peer=1,{middle.peers[1]}", f"--tx-ip={TX_IP}", "--txonly-multi-flow"]
        gen = h.Testpmd(vdevs, forward_mode="5tswap", lcores=f"0@{GEN_CPU},1@{GEN_CPU}",
                        huge=args.huge, name="generator", extra_app=app,
                        wait=not middle.frontend_server)
        if middle.frontend_server:
            h.wait_for(lambda: os.path.exists(a), 20, "generator's first socket")
            middle.start(a, b, args)
            gen.wait_ready(60)
        h.wait_for(middle.connected, 20, f"{middle.name} connected")
        time.sleep(1)
        # the next hop's ARP (vswitchd asks for 192.0.2.2 on the uplink): icmpecho answers
        gen.cmd("set fwd icmpecho")
        gen.start(tx_first=1)
        time.sleep(0.5)
        gen.stop()
        if args.fill > 0:
            gen.cmd("set fwd flowgen")
            gen.cmd("start")
            time.sleep(args.fill)
            gen.stop()
        gen.cmd("set fwd 5tswap")
        gen.start(tx_first=16)
        time.sleep(args.warmup)
        s0, t0 = gen.stats(), time.monotonic()
        time.sleep(args.seconds)
        s1, t1 = gen.stats(), time.monotonic()
        rx = {p: s1[p]["rx_packets"] - s0[p]["rx_packets"] for p in s1}
        mpps = sum(rx.values()) / (t1 - t0) / 1e6
        gen.stop()
        extra = middle.after()
        extra["rx_mpps_per_port"] = {p: round(v / (t1 - t0) / 1e6, 3) for p, v in rx.items()}
        return mpps, extra
    finally:
        if gen:
            gen.close()
        try:
            middle.stop()
        except Exception:
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--method", choices=("open", "loop"), default="open",
                    help="open: txonly on the guest port, the middle's uplink output is "
                         "the figure (default); loop: the issue-4 5tswap loop (drains "
                         "through vswitchd's router)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--fill", type=float, default=0, help="seconds of flowgen before 5tswap")
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
    if not os.access(VSWITCHD_DPDK, os.X_OK):
        print(f"not run: {VSWITCHD_DPDK} not built (meson setup build-dpdk -Ddpdk=enabled)")
        sys.exit(77)
    middles = [VsMiddle(False), VsMiddle(True)]
    if args.ovs or (args.only and "ovs" in args.only):
        if loopback.Ovs.available():
            middles += [OvsMiddle(False, args.ovs_dec_ttl), OvsMiddle(True, args.ovs_dec_ttl)]
        else:
            log("ovs: openvswitch-switch-dpdk not installed; skipped")
    if args.only:
        middles = [m for m in middles if m.name in args.only.split(",")]

    results = {m.name: [] for m in middles}
    info = {m.name: [] for m in middles}
    errors = {m.name: [] for m in middles}
    for r in range(args.rounds):
        for m in middles:
            try:
                mpps, extra = measure(m, args)
                log(f"round {r + 1}: {m.name:13s} {mpps:7.2f} Mpps {extra}")
            except (Exception, h.Fail) as e:
                mpps, extra = 0.0, {}
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                errors[m.name].append(first)
                log(f"round {r + 1}: {m.name:13s} FAILED: {first}")
                if args.verbose:
                    log(str(e))
            results[m.name].append(mpps)
            info[m.name].append(extra)
            h.cleanup()

    med = {n: statistics.median(v) if v else 0.0 for n, v in results.items()}
    base = med.get("vswitchd-l2") or 0.0
    ratios = {n: (med[n] / base if base else None) for n in med}
    out = {"unit": "Mpps", "seconds": args.seconds, "rounds": args.rounds,
           "method": args.method, "results": results, "median": med,
           "ratio_to_vswitchd_l2": ratios,
           "details": info, "failed": {n: e for n, e in errors.items() if e}}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    hdr = "middle        " + "".join(f"  round{i + 1:<3d}" for i in range(args.rounds)) + \
        "    median  vs vswitchd-l2"
    print(hdr)
    print("-" * len(hdr))
    for n, v in results.items():
        ratio = f"{ratios[n]:9.2f}x" if ratios[n] is not None else "        -"
        print(f"{n:13s} " + "".join(f"{x:10.2f}" for x in v) + f"{med[n]:10.2f}   {ratio}"
              + ("  (some rounds failed)" if errors[n] else ""))
    for n, e in errors.items():
        if e:
            print(f"{n}: {e[0]}")
    for num, den in (("vswitchd-nat", "vswitchd-l2"), ("ovs-nat", "ovs-l2"),
                     ("vswitchd-nat", "ovs-nat"), ("vswitchd-l2", "ovs-l2")):
        if med.get(num) and med.get(den):
            print(f"{num}/{den} = {med[num] / med[den]:.2f}")
    if args.method == "open":
        for n in results:
            d = [x for x in info[n] if x.get("offered_mpps") is not None]
            if d:
                print(f"{n}: generator offered (accepted) "
                      f"{statistics.median(x['offered_mpps'] for x in d):.2f} Mpps of "
                      f"{statistics.median(x['attempted_mpps'] for x in d):.2f} attempted; "
                      f"flows {d[-1].get('flows')}")


if __name__ == "__main__":
    signal.signal(signal.SIGINT, lambda *a: (_ for _ in ()).throw(SystemExit(130)))
    main()
