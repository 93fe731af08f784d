#!/usr/bin/python3
"""Boot time and resident memory of VMMs under real KVM (the nested host of
tests/e2e/nested.py): vmm, QEMU -M microvm and QEMU -M pc booting the same kernel
(the lab guest's bzImage) and initramfs, one after another, in the same outer guest,
several rounds (the order rotates each round); medians. See bench/README.md.

boot: from starting the VMM to the guest's /init printing "@@VS-INIT@@" on its console
(a file), both instants taken inside the outer guest (/proc/uptime, 10 ms).
memory: sampled once the guest's /init is done ("ready" on the console): VmRSS,
RssAnon, RssFile, RssShmem of the VMM process, the resident part of its memfd mappings
(guest RAM touched) and own = VmRSS - memfd.
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import harness as h  # noqa: E402
import nested as n  # noqa: E402

VMM = os.path.join(h.BUILD, "vmm", "vmm")
VMMS = ["vmm", "microvm", "pc"]
MEMKEYS = ["VmRSS", "RssAnon", "RssFile", "RssShmem", "memfd", "own"]


def log(msg):
    print(f"[boot {time.monotonic() - h._T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def command(which, console, mem, cpus, cmdline):
    if which == "vmm":
        return (f"vmm --kernel /guest/vmlinuz --initrd /guest/initrd.gz --cmdline '{cmdline}' "
                f"--memory {mem} --cpus {cpus} --console {console}")
    machine = "microvm,memory-backend=mem" if which == "microvm" else "pc,memory-backend=mem"
    return (f"qemu-system-x86_64 -accel kvm -cpu host -M {machine} -m {mem} -smp {cpus} "
            f"-nodefaults -no-user-config -display none -vga none -no-reboot "
            f"-object memory-backend-memfd,id=mem,size={mem}M,share=on "
            f"-kernel /guest/vmlinuz -initrd /guest/initrd.gz -append '{cmdline}' "
            f"-serial file:{console}")


def one(host, which, rnd, a):
    """One boot: (seconds to /init, memory dict) or raises RuntimeError(reason)."""
    name = f"{which}-{rnd}"
    console = f"/tmp/{name}.console"
    cmdline = n.inner_cmdline(hostname=which, extra="vs.nonet=1")
    vm = host.start_vm(command(which, console, a.memory, a.cpus, cmdline), console, name)
    try:
        b = host.boot_seconds_of(vm, a.timeout)
        if b is None:
            raise RuntimeError(f"no /init within {a.timeout}s: {vm.why()}")
        if host.wait_file(console, r"\] ready", 30) is None:
            raise RuntimeError(f"/init did not finish within 30s: {vm.why()}")
        time.sleep(0.5)
        mem = vm.memory()
        if "own" not in mem:
            raise RuntimeError(f"no memory figures: {mem} {vm.why()}")
        return b, mem
    finally:
        vm.stop(5)
        host.run(f"rm -f {console}", timeout=10)


def main(a):
    only = a.only.split(",") if a.only else VMMS
    bad = [w for w in only if w not in VMMS]
    if bad:
        sys.exit(f"boot.py: unknown VMM {bad} (choose from {VMMS})")
    h.require_binaries(h.QEMU)
    h.require_guest()
    files = n.guest_files()
    failed = {}
    if "vmm" in only:
        if os.access(VMM, os.X_OK):
            files.update(n.vmm_files())
        else:
            failed["vmm"] = f"{VMM} not built"
    log("booting the nested host")
    host = n.NestedHost(a.outer_memory, files=files, qemu=True)
    log(f"nested host up in {host.boot_seconds:.1f}s (smp {host.smp})")
    if not host.kvm_ok:
        h.skip(host.kvm_reason)
    res = {w: {"boot_s": [], "mem_kib": []} for w in only}
    for r in range(a.rounds):
        order = only[r % len(only):] + only[:r % len(only)]
        for w in order:
            if w in failed:
                continue
            try:
                b, mem = one(host, w, r + 1, a)
            except RuntimeError as e:
                failed[w] = str(e)
                log(f"round {r + 1} {w}: failed: {e}")
                continue
            res[w]["boot_s"].append(b)
            res[w]["mem_kib"].append(mem)
            log(f"round {r + 1} {w}: /init after {b:.2f}s, VmRSS {mem['VmRSS'] >> 10} MiB "
                f"(own {mem['own'] >> 10} MiB)")
    out = {"outer": {"boot_s": host.boot_seconds, "smp": host.smp, "memory_mib": a.outer_memory},
           "guest": {"memory_mib": a.memory, "cpus": a.cpus, "kernel": "bzImage (lab guest)"},
           "rounds": a.rounds, "vmms": {}}
    for w in only:
        d = {"boot_s": res[w]["boot_s"]}
        if res[w]["boot_s"]:
            d["median_boot_s"] = statistics.median(res[w]["boot_s"])
            d["median_mem_kib"] = {k: statistics.median(m[k] for m in res[w]["mem_kib"])
                                   for k in MEMKEYS}
        if w in failed:
            d["failed"] = failed[w]
        out["vmms"][w] = d
    host.kill()
    if a.json:
        print(json.dumps(out, indent=2))
        return
    print(f"boot to /init under nested KVM: guest {a.memory} MiB, {a.cpus} vCPU, same bzImage "
          f"+ initramfs; outer QEMU TCG smp {host.smp}, booted in {host.boot_seconds:.1f}s")
    hdr = "".join(f"{'round' + str(i + 1):>9}" for i in range(a.rounds))
    print(f"{'VMM':<9}{hdr}{'median s':>10}   {'VmRSS':>7}{'Anon':>7}{'File':>7}{'Shmem':>7}"
          f"{'memfd':>7}{'own':>7}  (MiB, medians)")
    print("-" * (9 + 9 * a.rounds + 10 + 3 + 42))
    for w in only:
        d = out["vmms"][w]
        if "median_boot_s" not in d:
            print(f"{w:<9}failed: {d.get('failed', '?')}")
            continue
        cells = "".join(f"{x:>9.2f}" for x in d["boot_s"]) + " " * 9 * (a.rounds - len(d["boot_s"]))
        m = d["median_mem_kib"]
        mem = "".join(f"{m[k] / 1024:>7.1f}" for k in MEMKEYS)
        print(f"{w:<9}{cells}{d['median_boot_s']:>10.2f}   {mem}")
        if "failed" in d:
            print(f"{'':<9}(then failed: {d['failed']})")


ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--only", help=f"comma-separated subset of {','.join(VMMS)}")
ap.add_argument("--memory", type=int, default=256, help="guest RAM, MiB (256)")
ap.add_argument("--cpus", type=int, default=1, help="guest vCPUs (1)")
ap.add_argument("--timeout", type=int, default=60, help="seconds to /init before a VMM fails")
ap.add_argument("--outer-memory", type=int, default=1024, help="outer guest RAM, MiB")
ap.add_argument("--json", action="store_true")
args = ap.parse_args()
rc = 0
try:
    main(args)
except h.Skip as e:
    print(f"not run: {e}")
    rc = 77
except h.Fail as e:
    print(f"boot.py: {e}", file=sys.stderr)
    for d in h._on_failure:
        d()
    rc = 1
finally:
    h.cleanup()
sys.exit(rc)
