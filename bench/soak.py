#!/usr/bin/python3
"""Soak: traffic through every pipeline stage of the ASan/UBSan vswitchd for N
minutes, with control-plane churn, then a clean stop so LeakSanitizer runs.

Two vswitchd (build-asan by default) in one namespace, A and B, joined by a
VXLAN tunnel (vni 100, 127.0.0.1 <-> 127.0.0.2). ONE testpmd (CPU 0,
--forward-mode=5tswap --port-topology=loop: every port reflects what it
receives, MACs/IPs/UDP ports swapped) owns six virtio-user ports:

  port  switch  vswitchd port        stream (--eth-peer)
  0     A       a0  access 10        -> t0, untagged in, pushed to tag 10 on t0
  1     A       t0  trunk 10,20 n=20 -> a1 on native VLAN 20; reflects tag-10 frames
  2     A       a1  access 20        -> t0 (untagged, native)
  3     A       a2  access 40        -> b0 through the tunnel (encap on A, decap on B)
  4     A       g0  access 30        -> the gateway of network n1 (10.254.64.0/18,
                                        VLAN 30): routed, SNAT out of up0
  5     B       b0  (untagged)       -> a2 through the tunnel

up0 is a tap (192.0.2.1/24, gw 192.0.2.2) moved into an "outside" namespace whose
kernel holds 192.0.2.2 and 198.51.100.9 and runs a UDP echo server: NATed frames
come back and are un-NATed to g0, which reflects them into the next request.
A tap guest (g1, VLAN 30) takes a DHCP lease from n1 in every churn cycle.

So every stage runs: parse, ingress VLAN (access/trunk/native), learning,
flooding (the first frames, and after every fdb-flush), forwarding, egress VLAN
push/pop, L3 gateway (ARP, routing), DHCP, conntrack + NAT, VXLAN encap/decap,
tap with vnet headers, vhost-user rings.

Churn, one cycle every --churn seconds: add-br + add-port + a python vhost-user
frontend (tests/e2e/vhostuser.py) connecting, sending a frame and going away +
del-port + del-br; the frontend on br0's port c0 reconnecting; fdb-flush br0;
ct-flush n1 (every third cycle); a DHCP lease for g1. testpmd gets more frames
(tx_first) every progress period and after every ct-flush (which turns the NAT
replies in flight into nat_no_mapping drops), so loops emptied by drops refill.

A progress line every --period seconds (30): packets/s through both switches,
drops, RSS and fds of each vswitchd. At the end testpmd and the frontends go
away, both vswitchd get SIGTERM and LeakSanitizer runs at their exit; the report
lists leaks and every ASan/UBSan report (0 expected), drops by reason, RSS and fd
growth. --json prints the same as JSON.

Usage: bench/soak.py [--minutes 10] [--build build-asan] [--json] [--churn 10]
"""

import argparse
import glob
import json
import os
import re
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--build", default=os.path.join(ROOT, "build-asan"),
                    help="build dir of the vswitchd under test (default build-asan)")
    ap.add_argument("--period", type=float, default=30, help="seconds between progress lines")
    ap.add_argument("--churn", type=float, default=10, help="seconds between churn cycles")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    return ap.parse_args()


ARGS = parse_args()
os.environ["VSWITCH_BUILD"] = os.path.abspath(ARGS.build)
REPORTS = None  # set in main(): where ASan/UBSan write (log_path)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness as h  # noqa: E402
import vhostuser as vu  # noqa: E402
sys.path.insert(0, HERE)
from nat import derive_mac  # noqa: E402  (the gateway's MAC, as vswitch/l3.c makes it)

GEN_CPU, SW_CPU = 0, 1
MACS = [f"52:54:00:50:00:{i:02x}" for i in range(6)]
PORTS_A = ["a0", "t0", "a1", "a2", "g0"]
UP_ADDR, UP_GW, FAR = "192.0.2.1", "192.0.2.2", "198.51.100.9"
NET = dict(subnet="10.254.64.0/18", gateway="10.254.64.1", dhcp="10.254.100.1-10.254.100.200")

ECHO = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
s.bind((sys.argv[1], 9))   # replies must come from the address NAT sent to
while True:
    d, a = s.recvfrom(4096)
    s.sendto(d, a)
"""


def log(msg):
    print(f"[soak {time.monotonic() - h._T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def rss_fds(pid):
    with open(f"/proc/{pid}/status") as f:
        rss = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def totals(sw):
    """(packets received on all ports, drops by reason summed over ports)."""
    st = sw.ctl("port-stats")
    rx = sum(p.get("rx_packets", 0) for p in st.values())
    drops = {}
    for p in st.values():
        for k, v in (p.get("drops") or {}).items():
            drops[k] = drops.get(k, 0) + v
    return rx, drops, st


class Churn:
    """One control-plane cycle; counts what it did."""

    def __init__(self, sw, tap_ns, tap_if, refill):
        self.sw, self.ns, self.tap_if, self.refill = sw, tap_ns, tap_if, refill
        self.n = 0
        self.counts = {"bridges_added": 0, "ports_added": 0, "frontend_sessions": 0,
                       "reconnects": 0, "fdb_flush": 0, "ct_flush": 0, "dhcp_leases": 0}
        self.errors = []
        self.c0 = vu.Frontend(sw.port_socket("c0"), name="c0", timeout=5)
        self.c0.setup()
        self.c0.post_rx_buffers(32)

    def frame(self, src):
        return bytes.fromhex("ffffffffffff") + bytes.fromhex(src.replace(":", "")) + \
            b"\x88\xb5" + b"soak" * 12

    def cycle(self):
        self.n += 1
        i, sw = self.n, self.sw
        try:
            br, p = f"cb{i}", f"cp{i}"
            sw.ctl("add-br", br)
            sw.ctl("add-port", br, p, "type=vhost-user", "tag=7")
            sw.ctl("add-port", br, f"{p}x", "type=vhost-user", "vlan_mode=trunk", "trunks=7")
            self.counts["bridges_added"] += 1
            self.counts["ports_added"] += 2
            fe = vu.Frontend(sw.port_socket(p), name=p, timeout=5)
            fe.setup()
            fe.post_rx_buffers(8)
            fe.send_frame(self.frame(f"52:54:00:51:{(i >> 8) & 255:02x}:{i & 255:02x}"), wait=1)
            fe.close()
            self.counts["frontend_sessions"] += 1
            sw.ctl("del-port", p)
            sw.ctl("del-br", br)          # takes cp{i}x with it
            self.c0.reconnect()
            self.c0.setup()
            self.c0.post_rx_buffers(32)
            self.c0.send_frame(self.frame("52:54:00:52:00:01"), wait=1)
            self.counts["reconnects"] += 1
            sw.ctl("fdb-flush", "br0")
            self.counts["fdb_flush"] += 1
            if i % 3 == 0:
                # NAT replies in flight now have no mapping: that loop needs new frames
                sw.ctl("ct-flush", "n1")
                self.counts["ct_flush"] += 1
                self.refill()
            r = self.ns.run(["busybox", "udhcpc", "-i", self.tap_if, "-s", "/bin/true", "-t", "5",
                             "-T", "1", "-n", "-q"], timeout=30, check=False)
            if r.returncode == 0:
                self.counts["dhcp_leases"] += 1
            else:
                self.errors.append(f"cycle {i}: udhcpc rc={r.returncode}: {r.stdout[-200:]}")
        except (h.CtlError, h.Fail, vu.ProtocolError, OSError) as e:
            self.errors.append(f"cycle {i}: {e}")


def sanitizer_reports(pids):
    """{'leaks': n, 'leaked_bytes': n, 'asan': [...], 'ubsan': [...]} from log_path files."""
    out = {"leaks": 0, "leaked_bytes": 0, "asan": [], "ubsan": [], "files": []}
    for path in sorted(glob.glob(os.path.join(REPORTS, "*"))):
        text = open(path, errors="replace").read()
        owner = next((n for n, p in pids.items() if path.endswith(f".{p}")), "other")
        out["files"].append(f"{os.path.basename(path)} ({owner})")
        for m in re.finditer(r"SUMMARY: AddressSanitizer: (\d+) byte\(s\) leaked in (\d+) "
                             r"allocation", text):
            out["leaked_bytes"] += int(m.group(1))
            out["leaks"] += int(m.group(2))
        for m in re.finditer(r"ERROR: AddressSanitizer: (\S+)", text):
            out["asan"].append(f"{owner}: {m.group(1)}")
        for m in re.finditer(r"runtime error: ([^\n]+)", text):
            out["ubsan"].append(f"{owner}: {m.group(1)[:160]}")
    return out


def run():
    global REPORTS
    h.require_root()
    h.require_binaries(h.VSWITCHD, h.TESTPMD)
    REPORTS = h.tempdir("vs-soak-san-")
    os.environ["ASAN_OPTIONS"] = f"log_path={REPORTS}/asan:detect_leaks=1"
    os.environ["UBSAN_OPTIONS"] = f"log_path={REPORTS}/ubsan:print_stacktrace=1"
    os.environ["LSAN_OPTIONS"] = "report_objects=1"
    tmp = h.tempdir("vs-soak-")
    ns, out, gns = h.NetNS(), h.NetNS(), h.NetNS()
    ns.run(["ip", "addr", "add", "127.0.0.2/8", "dev", "lo"], check=False)

    a = h.Vswitchd(ns=ns, db=os.path.join(tmp, "a.json"), pmd_threads=1, cpu=SW_CPU,
                   log_level="info")
    b = h.Vswitchd(ns=ns, db=None, pmd_threads=1, cpu=SW_CPU, log_level="info")
    up, gtap = h.uniq("vsup"), h.uniq("vsg")
    a.ctl("add-br", "br0")
    a.ctl("add-port", "br0", "a0", "type=vhost-user", "tag=10")
    a.ctl("add-port", "br0", "t0", "type=vhost-user", "vlan_mode=trunk", "trunks=10,20",
          "native=20")
    a.ctl("add-port", "br0", "a1", "type=vhost-user", "tag=20")
    a.ctl("add-port", "br0", "a2", "type=vhost-user", "tag=40")
    a.ctl("add-port", "br0", "g0", "type=vhost-user", "tag=30")
    a.ctl("add-port", "br0", "c0", "type=vhost-user", "tag=50")
    a.ctl("add-port", "br0", "vx", "type=vxlan", "vni=100", "local=127.0.0.1",
          "remote=127.0.0.2", "tag=40")
    a.ctl("add-port", "br0", "up0", "type=tap", f"ifname={up}", f"ip={UP_ADDR}/24",
          f"gw={UP_GW}")
    a.ctl("add-port", "br0", "g1", "type=tap", f"ifname={gtap}", "tag=30")
    a.ctl("add-net", "n1", "bridge=br0", "vlan=30", *[f"{k}={v}" for k, v in NET.items()],
          "nat=up0")
    b.ctl("add-br", "br0")
    b.ctl("add-port", "br0", "b0", "type=vhost-user")
    b.ctl("add-port", "br0", "vx", "type=vxlan", "vni=100", "local=127.0.0.2",
          "remote=127.0.0.1")
    for ifn, dst in ((up, out), (gtap, gns)):
        dst.run(["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                 "net.ipv6.conf.default.disable_ipv6=1"])
        h.sh(["ip", "-n", str(ns), "link", "set", ifn, "netns", str(dst)])
        dst.run(["ip", "link", "set", ifn, "up"])
    out.run(["ip", "addr", "add", f"{UP_GW}/24", "dev", up])
    out.run(["ip", "addr", "add", f"{FAR}/32", "dev", "lo"])
    echo_py = os.path.join(tmp, "echo.py")
    with open(echo_py, "w") as f:
        f.write(ECHO)
    out.popen([h.PYTHON, echo_py, FAR], name="udp-echo", max_seconds=ARGS.minutes * 60 + 600)
    out.run(["ping", "-c", "2", "-W", "2", UP_ADDR], check=False)  # ARP both ways

    socks = [a.port_socket(p) for p in PORTS_A] + [b.port_socket("b0")]
    gw_mac = derive_mac("n1", 0)
    peers = [MACS[1], MACS[2], MACS[1], MACS[5], gw_mac, MACS[3]]
    vdevs = [h.virtio_user_vdev(i, s, queue_size=256, extra=f"mac={MACS[i]}")
             for i, s in enumerate(socks)]
    app = ["--port-topology=loop", f"--tx-ip=10.254.64.2,{FAR}"]
    app += [f"--eth-peer={i},{m}" for i, m in enumerate(peers)]
    gen = h.Testpmd(vdevs, forward_mode="5tswap", lcores=f"0@{GEN_CPU},1@{GEN_CPU}",
                    name="testpmd", extra_app=app, max_seconds=ARGS.minutes * 60 + 600)
    def refill():
        gen.stop()
        gen.start(tx_first=2)
    churn = Churn(a, gns, gtap, refill)
    pids = {"vswitchd-a": a.daemon_pid(), "vswitchd-b": b.daemon_pid()}
    base = {n: rss_fds(p) for n, p in pids.items()}
    log(f"started: A pid {pids['vswitchd-a']}, B pid {pids['vswitchd-b']}; "
        f"baseline RSS/fds {base}")

    gen.start(tx_first=8)
    t_start = time.monotonic()
    t_end = t_start + ARGS.minutes * 60
    next_line, next_churn = t_start + ARGS.period, t_start + ARGS.churn
    last = (t_start, sum(totals(sw)[0] for sw in (a, b)))
    samples = []
    while True:
        now = time.monotonic()
        if now >= t_end:
            break
        if now >= next_churn:
            churn.cycle()
            next_churn += ARGS.churn
        if now >= next_line:
            rx = sum(totals(sw)[0] for sw in (a, b))
            drops = sum(sum(totals(sw)[1].values()) for sw in (a, b))
            rf = {n: rss_fds(p) for n, p in pids.items()}
            pps = (rx - last[1]) / (now - last[0])
            last = (now, rx)
            samples.append({"t": round(now - t_start), "pps": round(pps), "drops": drops,
                            "rss_kib": {n: v[0] for n, v in rf.items()},
                            "fds": {n: v[1] for n, v in rf.items()},
                            "ct": len(a.ctl("ct-show", "n1"))})
            log(f"{now - t_start:5.0f}s  {pps:9.0f} pps  drops {drops:>9}  "
                + "  ".join(f"{n[-1]}: RSS {v[0] // 1024} MiB fds {v[1]}" for n, v in rf.items())
                + f"  ct {samples[-1]['ct']}  churn cycles {churn.n}")
            refill()   # the loops that drops emptied
            next_line += ARGS.period
        time.sleep(min(0.5, max(0.05, min(next_churn, next_line, t_end) - time.monotonic())))
    elapsed = time.monotonic() - t_start

    rx_total = {n: totals(sw)[0] for n, sw in (("vswitchd-a", a), ("vswitchd-b", b))}
    drops = {}
    per_port = {}
    for n, sw in (("vswitchd-a", a), ("vswitchd-b", b)):
        _, d, st = totals(sw)
        for k, v in d.items():
            drops[k] = drops.get(k, 0) + v
        per_port[n] = {p: {"rx": s.get("rx_packets", 0), "tx": s.get("tx_packets", 0),
                           "drops": {k: v for k, v in (s.get("drops") or {}).items() if v}}
                       for p, s in st.items()}
    end_rf = {n: rss_fds(p) for n, p in pids.items()}
    gen.stop()
    gen_out = gen.close()
    churn.c0.close()
    time.sleep(1)
    rcs = {}
    for n, sw in (("vswitchd-a", a), ("vswitchd-b", b)):
        rcs[n] = sw.proc.stop(signal.SIGTERM, wait=120)   # LeakSanitizer runs at exit
    san = sanitizer_reports(pids)
    gen_tx = sum(int(x) for x in re.findall(r"TX-packets:\s*(\d+)", gen_out)[-7:-1]) \
        if gen_out else None
    return {
        "minutes": round(elapsed / 60, 2),
        "build": os.path.relpath(ARGS.build, ROOT),
        "packets_received": rx_total,
        "mean_pps": round(sum(rx_total.values()) / elapsed),
        "drops_by_reason": {k: v for k, v in sorted(drops.items()) if v},
        "ports": per_port,
        "rss_kib": {n: {"start": base[n][0], "end": end_rf[n][0],
                        "growth": end_rf[n][0] - base[n][0]} for n in pids},
        "fds": {n: {"start": base[n][1], "end": end_rf[n][1],
                    "growth": end_rf[n][1] - base[n][1]} for n in pids},
        "churn": dict(churn.counts, cycles=churn.n, errors=churn.errors),
        "exit_status": rcs,
        "leaks": san["leaks"], "leaked_bytes": san["leaked_bytes"],
        "asan_reports": san["asan"], "ubsan_reports": san["ubsan"],
        "report_files": san["files"],
        "samples": samples,
        "testpmd_tx_packets": gen_tx,
    }


def table(r):
    rows = [("duration", f"{r['minutes']} min ({r['build']})"),
            ("packets received (A, B)", f"{r['packets_received']['vswitchd-a']:,}, "
                                        f"{r['packets_received']['vswitchd-b']:,}"),
            ("mean rate, both switches", f"{r['mean_pps']:,} pps"),
            ("leaks (LeakSanitizer)", f"{r['leaks']} allocations, {r['leaked_bytes']} bytes"),
            ("ASan reports", str(len(r["asan_reports"])) + (f": {r['asan_reports']}"
                                                            if r["asan_reports"] else "")),
            ("UBSan reports", str(len(r["ubsan_reports"])) + (f": {r['ubsan_reports']}"
                                                              if r["ubsan_reports"] else "")),
            ("exit status", ", ".join(f"{k} {v}" for k, v in r["exit_status"].items()))]
    for n in r["rss_kib"]:
        rs, fd = r["rss_kib"][n], r["fds"][n]
        rows.append((f"{n} RSS start/end/growth", f"{rs['start'] // 1024} / {rs['end'] // 1024} / "
                                                   f"{rs['growth'] // 1024:+} MiB"))
        rows.append((f"{n} fds start/end/growth", f"{fd['start']} / {fd['end']} / "
                                                   f"{fd['growth']:+}"))
    c = r["churn"]
    rows.append(("churn", f"{c['cycles']} cycles: {c['bridges_added']} bridges, "
                          f"{c['ports_added']} ports added+deleted, {c['frontend_sessions']} "
                          f"frontend sessions, {c['reconnects']} reconnects, {c['fdb_flush']} "
                          f"fdb-flush, {c['ct_flush']} ct-flush, {c['dhcp_leases']} DHCP leases, "
                          f"{len(c['errors'])} errors"))
    for k, v in r["drops_by_reason"].items():
        rows.append((f"drops: {k}", f"{v:,}"))
    w = max(len(k) for k, _ in rows)
    lines = [f"{k:<{w}}  {v}" for k, v in rows]
    for e in c["errors"][:10]:
        lines.append(f"  churn error: {e}")
    return "\n".join(lines)


def main():
    result = {}
    try:
        result.update(run())
    except h.Skip as e:
        print(f"SKIP: {e}")
        h.cleanup()
        sys.exit(77)
    except BaseException:
        h.cleanup()
        raise
    h.cleanup()
    if ARGS.json:
        print(json.dumps(result, indent=2))
    else:
        print(table(result))
    bad = result["leaks"] or result["asan_reports"] or result["ubsan_reports"]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
