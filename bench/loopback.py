#!/usr/bin/python3
"""vhost-user loopback benchmark (the method of DPDK's vhost test plans).

ONE testpmd (the generator) on CPU 0 owns two virtio-user ports and forwards io
between them; the middle on CPU 1 forwards between its two vhost-user ports:

    virtio-user0 --> middle --> virtio-user1 --> (testpmd io) --> virtio-user0 ...

Middles: ceiling (testpmd io between two net_vhost ports), vswitchd (a bridge with
two vhost-user ports), ovs (Open vSwitch with DPDK, optional). Middles alternate each
round; the figure is the generator's total Rx rate (both ports) in Mpps.
See bench/README.md.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import harness as h  # noqa: E402

GEN_CPU, MID_CPU = 0, 1


def log(msg):
    print(f"[loopback {time.monotonic() - h._T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def ensure_hugepages(n2m):
    """At least n2m 2 MiB hugepages and a hugetlbfs mount; restored at cleanup."""
    with open("/proc/mounts") as f:
        if not any(ln.split()[2] == "hugetlbfs" for ln in f if len(ln.split()) > 2):
            os.makedirs("/dev/hugepages", exist_ok=True)
            h.sh(["mount", "-t", "hugetlbfs", "none", "/dev/hugepages"])
            h.at_cleanup(lambda: subprocess.run(["umount", "/dev/hugepages"], timeout=10),
                         "umount hugetlbfs")
    path = "/proc/sys/vm/nr_hugepages"
    with open(path) as f:
        before = int(f.read())
    if before < n2m:
        with open(path, "w") as f:
            f.write(str(n2m))

        def restore():
            with open(path, "w") as f:
                f.write(str(before))
        h.at_cleanup(restore, "restore nr_hugepages")


# ---------------------------------------------------------------- middles


class Ceiling:
    name = "ceiling"
    frontend_server = False  # net_vhost creates the sockets

    def start(self, a, b, args):
        self.tp = h.Testpmd([h.vhost_vdev(0, a), h.vhost_vdev(1, b)], forward_mode="io",
                            lcores=f"0@{MID_CPU},1@{MID_CPU}", huge=args.huge, name="middle")
        h.wait_for(lambda: os.path.exists(a) and os.path.exists(b), 10, "net_vhost sockets")
        self.tp.start()

    def connected(self):
        return self.tp.output().count("virtio is now ready") >= 2

    def stop(self):
        self.tp.close()


class VswitchdMiddle:
    name = "vswitchd"
    frontend_server = False  # vswitchd ports in server mode create the sockets

    def start(self, a, b, args):
        self.sw = h.Vswitchd(db=None, pmd_threads=1, cpu=MID_CPU, log_level="info")
        self.sw.ctl("add-br", "br0")
        self.sw.ctl("add-port", "br0", "p0", "type=vhost-user", f"socket={a}", "mode=server")
        self.sw.ctl("add-port", "br0", "p1", "type=vhost-user", f"socket={b}", "mode=server")
        h.wait_for(lambda: os.path.exists(a) and os.path.exists(b), 10,
                   "vswitchd's vhost-user sockets")

    def connected(self):
        return self.sw.alive()

    def stop(self):
        try:
            self.sw.stop()
        finally:
            self.sw.kill()


class Ovs:
    """Open vSwitch 3.1 + DPDK (openvswitch-switch-dpdk), per shared/ENVIRONMENT.md."""
    name = "ovs"
    frontend_server = True  # dpdkvhostuserclient: OVS connects, virtio-user is server

    DPDK_BIN = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk"

    @classmethod
    def available(cls):
        return os.access(cls.DPDK_BIN, os.X_OK) and shutil.which("ovsdb-server")

    def no_flood(self, br, ns=None):
        """Takes bridge br's own port out of flooding. The bridge's OpenFlow
        management socket and its local port can appear a moment after ovs-vsctl
        returns (seen: mod-port failing 2 runs in 8), so it is tried for a while."""
        last = []

        def attempt():
            r = h.sh(["ovs-ofctl", "mod-port", f"unix:{self.dir}/{br}.mgmt", br, "no-flood"],
                     ns=ns, check=False)
            last[:] = [r.stdout.strip()]
            return r.returncode == 0
        try:
            h.wait_for(attempt, 20, f"ovs-ofctl mod-port {br} no-flood", interval=0.25)
        except h.Fail as e:
            raise h.Fail(f"{e}: {last[0] if last else ''}")

    ns = None  # a harness NetNS to run in (bench/vxlan.py's OvsVxlan), or the host

    def _ns(self):
        return self.ns.name if self.ns else None

    def launch(self, prefix):
        """ovsdb-server and ovs-vswitchd (DPDK, its PMD alone on MID_CPU) with a
        run, log and db directory of their own; prefix names it and DPDK's files."""
        self.dir = h.tempdir(f"vs-{prefix}-")
        self.env = dict(os.environ, OVS_RUNDIR=self.dir, OVS_LOGDIR=self.dir,
                        OVS_DBDIR=self.dir, OVS_SYSCONFDIR=self.dir)
        db = os.path.join(self.dir, "conf.db")
        self.sock = os.path.join(self.dir, "db.sock")
        h.sh(["ovsdb-tool", "create", db, "/usr/share/openvswitch/vswitch.ovsschema"])
        self.db = h.Proc(["ovsdb-server", db, f"--remote=punix:{self.sock}",
                          f"--pidfile={self.dir}/ovsdb-server.pid", "--unixctl",
                          f"{self.dir}/ovsdb-server.ctl"], "ovsdb-server", env=self.env,
                         ns=self._ns())
        h.wait_for(lambda: os.path.exists(self.sock), 10, "ovsdb-server socket")
        self.vsctl("--no-wait", "init")
        # OVS adds --in-memory, which DPDK refuses with --no-huge: OVS needs hugepages.
        ensure_hugepages(1024)
        extra = f"--no-pci --file-prefix={prefix} --iova-mode=va --single-file-segments"
        self.vsctl("--no-wait", "set", "Open_vSwitch", ".", "other_config:dpdk-init=true",
                   f'other_config:dpdk-extra="{extra}"', "other_config:dpdk-socket-mem=1024",
                   f"other_config:pmd-cpu-mask={1 << MID_CPU:#x}")
        self.vswitchd = h.Proc(["taskset", "-c", str(MID_CPU), self.DPDK_BIN,
                                f"unix:{self.sock}", f"--pidfile={self.dir}/ovs-vswitchd.pid",
                                "--unixctl", f"{self.dir}/ovs-vswitchd.ctl",
                                f"--log-file={self.dir}/ovs-vswitchd.log"],
                               "ovs-vswitchd", env=self.env, ns=self._ns())

    def start(self, a, b, args):
        self.launch("vsbovs")
        try:
            self.vsctl("--timeout=60", "add-br", "br0", "--", "set", "bridge", "br0",
                       "datapath_type=netdev", timeout=70)
            for i, s in enumerate((a, b)):
                self.vsctl("add-port", "br0", f"vu{i}", "--", "set", "Interface", f"vu{i}",
                           "type=dpdkvhostuserclient", f"options:vhost-server-path={s}")
            # The bridge's own port (a kernel tap) out of flooding: the loop's
            # destination MACs are never learned, so NORMAL would also write
            # every frame to the kernel, which vswitchd's bridge (no such port)
            # never does. Measured: 1.27 -> 4.16 Mpps.
            self.no_flood("br0")
        except h.Fail as e:
            try:
                with open(f"{self.dir}/ovs-vswitchd.log", errors="replace") as f:
                    tail = "".join(f.readlines()[-15:])
            except OSError:
                tail = self.vswitchd.tail(15)
            raise h.Fail(f"{str(e).splitlines()[0]}\novs-vswitchd log:\n{tail}")

    def vsctl(self, *a, timeout=30):
        return h.sh(["ovs-vsctl", f"--db=unix:{self.sock}"] + list(a), timeout=timeout,
                    ns=self._ns())

    def connected(self):
        return self.vswitchd.alive()

    def stop(self):
        try:  # its PMD spins while vhost ports exist
            self.vsctl("--if-exists", "del-br", "br0", timeout=15)
        except Exception:
            pass
        self.vswitchd.stop()
        self.db.stop()


# ---------------------------------------------------------------- one measurement


def run_rounds(middles, rounds, one, verbose=False):
    """Every round measures each middle once, in turn, so that all of them see
    the same machine: one(middle) -> (Mpps, details, note for the log). A
    failed measurement is None in results and its first line in errors.
    Returns (results, details, errors), each {middle name: [per round]}."""
    results = {m.name: [] for m in middles}
    details = {m.name: [] for m in middles}
    errors = {m.name: [] for m in middles}
    for r in range(rounds):
        for m in middles:
            try:
                mpps, extra, note = one(m)
                log(f"round {r + 1}: {m.name:13s} {mpps:7.2f} Mpps {note}")
            except (Exception, h.Fail) as e:
                mpps, extra = None, {}
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                errors[m.name].append(first)
                log(f"round {r + 1}: {m.name:13s} FAILED: {first}")
                if verbose:
                    log(str(e))
            results[m.name].append(mpps)
            details[m.name].append(extra)
            h.cleanup()
    return results, details, errors


def medians(results):
    """Median Mpps per middle over its rounds that did not fail (0.0: none)."""
    return {n: statistics.median(ok) if (ok := [x for x in v if x is not None]) else 0.0
            for n, v in results.items()}


def measure(middle, args, probe=None):
    """Mpps (generator's total Rx rate over args.seconds) for one middle. With
    probe (a function returning a counter, e.g. the middle's CPU seconds), its
    rate over the same window comes second."""
    d = h.tempdir("vs-loop-")
    a, b = os.path.join(d, "a.sock"), os.path.join(d, "b.sock")
    gen = None
    try:
        if not middle.frontend_server:
            middle.start(a, b, args)
        vdevs = [h.virtio_user_vdev(i, s, server=middle.frontend_server, queue_size=1024)
                 for i, s in enumerate((a, b))]
        gen = h.Testpmd(vdevs, forward_mode="io", lcores=f"0@{GEN_CPU},1@{GEN_CPU}",
                        huge=args.huge, name="generator", wait=not middle.frontend_server)
        if middle.frontend_server:
            # virtio-user server=1 blocks until its client comes before it creates the
            # next port's socket: the middle must connect to a, then b appears.
            h.wait_for(lambda: os.path.exists(a), 20, "generator's first socket")
            middle.start(a, b, args)
            gen.wait_ready(60)
        h.wait_for(middle.connected, 20, f"{middle.name} connected")
        gen.start(tx_first=16)
        time.sleep(args.warmup)
        s0, c0, t0 = gen.stats(), probe() if probe else 0, time.monotonic()
        time.sleep(args.seconds)
        s1, c1, t1 = gen.stats(), probe() if probe else 0, time.monotonic()
        rx = sum(s1[p]["rx_packets"] - s0[p]["rx_packets"] for p in s1)
        mpps = rx / (t1 - t0) / 1e6
        pps_shown = sum(s1[p].get("rx_pps", 0) for p in s1) / 1e6
        gen.stop()
        return mpps, (c1 - c0) / (t1 - t0) if probe else None, pps_shown
    finally:
        if gen:
            gen.close()
        try:
            middle.stop()
        except Exception:
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5, help="measuring window per run")
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--ovs", action="store_true", help="also Open vSwitch with DPDK")
    ap.add_argument("--only", help="comma list of middles (ceiling,vswitchd,ovs)")
    ap.add_argument("--huge", action="store_true",
                    help="hugepages (--in-memory --single-file-segments) instead of --no-huge")
    ap.add_argument("--json", action="store_true", help="print JSON on stdout")
    ap.add_argument("-v", "--verbose", action="store_true", help="full errors of failed runs")
    args = ap.parse_args()

    if os.geteuid() != 0:
        sys.exit("loopback.py: run as root")
    if args.only and "ovs" in args.only.split(","):
        args.ovs = True
    middles = [Ceiling(), VswitchdMiddle()]
    if args.ovs:
        if Ovs.available():
            middles.append(Ovs())
        else:
            log("ovs: openvswitch-switch-dpdk not installed (scripts/deps.sh installs it); "
                "skipped")
    if args.only:
        want = args.only.split(",")
        middles = [m for m in middles if m.name in want]

    def one(m):
        mpps, _, shown = measure(m, args)
        return mpps, {}, f"(testpmd Rx-pps {shown:.2f})"

    results, _, errors = run_rounds(middles, args.rounds, one, args.verbose)
    med = medians(results)
    ceil = med.get("ceiling") or 0.0
    ratios = {n: (med[n] / ceil if ceil else None) for n in med if n != "ceiling"}
    out = {"unit": "Mpps", "seconds": args.seconds, "rounds": args.rounds,
           "memory": "hugepages" if args.huge else "no-huge (memfd)",
           "cpus": {"generator": GEN_CPU, "middle": MID_CPU},
           "results": results, "median": med, "ratio_to_ceiling": ratios,
           "failed": {n: e for n, e in errors.items() if e}}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    hdr = "middle     " + "".join(f"  round{i + 1:<3d}" for i in range(args.rounds)) + \
        "    median   vs ceiling"
    print(hdr)
    print("-" * len(hdr))
    for n, v in results.items():
        ratio = "" if n == "ceiling" else (f"{ratios[n]:9.2f}x" if ratios[n] is not None else
                                          "        -")
        fail_mark = "  (failed)" if errors[n] and med[n] == 0 else \
            ("  (some rounds failed)" if errors[n] else "")
        print(f"{n:10s} " + "".join("    failed" if x is None else f"{x:10.2f}" for x in v)
              + f"{med[n]:10.2f}   {ratio}"
              + fail_mark)
    for n, e in errors.items():
        if e:
            print(f"{n}: {e[0]}")
    if "vswitchd" in med and ceil:
        print(f"vswitchd/ceiling = {med['vswitchd'] / ceil:.2f}")


if __name__ == "__main__":
    signal.signal(signal.SIGINT, lambda *a: (_ for _ in ()).throw(SystemExit(130)))
    main()
