#!/usr/bin/python3
"""vmm under the host's /dev/kvm with the small guest programs of tests/guests/
(the kvm-unit-tests approach: few kernel-mode instructions, so this machine's
emulated KVM runs them in milliseconds).

Checks: serial output and a clean power-off (exit 0) through both entries
(64-bit bzImage and PVH ELF); reboot (exit 3) and triple fault (exit 4); two
vCPUs both running (the AP prints); interrupts through the in-kernel LAPIC
and IOAPIC (self-IPI, the UART's IRQ 4); the API socket (status, pause,
resume, stop); bad arguments and bad images refused. Reports the cost of an
exit to the VMM."""

import json
import os
import socket
import subprocess
import time

import harness as h

VMM = os.path.join(h.BUILD, "vmm", "vmm")
GUESTS = os.path.join(h.BUILD, "tests", "guests")


def guest(name):
    return os.path.join(GUESTS, name)


def run_vmm(args, timeout=30, expect_rc=None):
    t0 = time.monotonic()
    try:
        r = subprocess.run([VMM] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        h.fail(f"vmm {' '.join(args)} did not exit within {timeout}s; output:\n{e.stdout}")
    dt = time.monotonic() - t0
    if expect_rc is not None and r.returncode != expect_rc:
        h.fail(f"vmm {' '.join(args)}: exit {r.returncode}, expected {expect_rc}\n"
               f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
    return r, dt


class Api:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(10)
        self.s.connect(path)
        self.f = self.s.makefile("rw")
        self.n = 0

    def call(self, method, **params):
        self.n += 1
        req = {"jsonrpc": "2.0", "method": method, "id": self.n}
        if params:
            req["params"] = params
        self.f.write(json.dumps(req) + "\n")
        self.f.flush()
        line = self.f.readline()
        if not line:
            h.fail(f"API: connection closed on {method}")
        resp = json.loads(line)
        h.check(resp.get("id") == self.n, f"API: answer id {resp.get('id')} for {self.n}")
        return resp


def test():
    h.require_binaries(VMM)
    if not os.path.exists(guest("hello.bzImage")):
        h.skip(f"{guest('hello.bzImage')} not built (ninja -C {h.BUILD})")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        h.skip("/dev/kvm is missing or not accessible")
    tmp = h.tempdir("vs-vmm-guests-")

    h.step("hello, 64-bit bzImage entry: serial output, command line, power-off exit 0")
    r, dt = run_vmm(["--kernel", guest("hello.bzImage"), "--cmdline", "console=ttyS0 x=1"],
                    expect_rc=0)
    h.check("hello from the guest (64-bit bzImage entry, 3 e820 entries)" in r.stdout,
            f"no greeting:\n{r.stdout}")
    h.check("cmdline: console=ttyS0 x=1" in r.stdout, f"command line not seen:\n{r.stdout}")
    h.check("the guest powered off" in r.stderr, f"no power-off message: {r.stderr}")
    h.step(f"  booted, ran and powered off in {dt * 1000:.0f} ms")

    h.step("hello, PVH entry (ELF), 4 GiB RAM: RAM above the PCI hole in the memory map")
    r, dt = run_vmm(["--kernel", guest("hello.elf"), "--memory", "4096", "--cmdline", "pvh"],
                    expect_rc=0)
    h.check("hello from the guest (PVH entry, 4 e820 entries)" in r.stdout,
            f"PVH greeting missing:\n{r.stdout}")
    h.check("cmdline: pvh" in r.stdout, f"PVH command line not seen:\n{r.stdout}")

    h.step("console to a file")
    con = os.path.join(tmp, "console.txt")
    r, _ = run_vmm(["--kernel", guest("hello.bzImage"), "--console", con], expect_rc=0)
    with open(con) as f:
        text = f.read()
    h.check("hello from the guest" in text and "hello" not in r.stdout,
            f"console file: {text!r}, stdout: {r.stdout!r}")

    h.step("reboot request (i8042 0xFE) exits 3, triple fault exits 4")
    r, _ = run_vmm(["--kernel", guest("hello.bzImage"), "--cmdline", "exit=reboot"],
                   expect_rc=3)
    h.check("asked to reboot" in r.stderr, f"reboot message: {r.stderr}")
    r, _ = run_vmm(["--kernel", guest("hello.bzImage"), "--cmdline", "exit=triple"],
                   expect_rc=4)
    h.check("triple fault" in r.stderr, f"triple-fault message: {r.stderr}")

    h.step("--cpus 2: the AP comes up through INIT-SIPI-SIPI and prints")
    r, dt = run_vmm(["--kernel", guest("smp.bzImage"), "--cpus", "2"], expect_rc=0)
    h.check("the MP table lists 2 CPUs" in r.stdout, f"MP table:\n{r.stdout}")
    h.check("AP 1 alive (APIC id 1)" in r.stdout, f"the AP did not print:\n{r.stdout}")
    h.check("2 of 2 CPUs up" in r.stdout, f"not all CPUs up:\n{r.stdout}")
    r, _ = run_vmm(["--kernel", guest("smp.bzImage"), "--cpus", "4"], expect_rc=0)
    h.check("4 of 4 CPUs up" in r.stdout, f"--cpus 4:\n{r.stdout}")

    h.step("interrupts: self-IPI, then the UART's IRQ 4 through the IOAPIC")
    r, _ = run_vmm(["--kernel", guest("irq.bzImage")], expect_rc=0)
    h.check("irq test passed" in r.stdout, f"irq test:\n{r.stdout}")

    h.step("cost of an exit to the VMM (port writes to 0x80)")
    n = 20000
    _, base = run_vmm(["--kernel", guest("hello.bzImage")], expect_rc=0)
    r, dt = run_vmm(["--kernel", guest("hello.bzImage"), "--cmdline", f"outs={n}"],
                    expect_rc=0, timeout=120)
    h.check(f"did {n} port writes" in r.stdout, r.stdout)
    per = (dt - base) / n
    h.step(f"  {n} PIO exits in {(dt - base) * 1000:.0f} ms: {per * 1e6:.1f} us each, "
           f"{1 / per:,.0f} exits/s")

    h.step("API: status, pause, resume, stop (exit 0)")
    sock = os.path.join(tmp, "api.sock")
    p = h.Proc([VMM, "--kernel", guest("hello.bzImage"), "--cmdline", "exit=halt",
                "--cpus", "2", "--memory", "256", "--api-socket", sock,
                "--console", os.path.join(tmp, "halt.txt")], "vmm-api", max_seconds=60)
    h.on_failure(lambda: print(p.tail()))
    h.wait_for(lambda: os.path.exists(sock), 10, "the API socket")
    api = Api(sock)
    st = api.call("status")["result"]
    h.check(st["state"] == "running" and st["vcpus"] == 2 and st["memory_mib"] == 256
            and st["nics"] == [], f"status: {st}")
    # the running VMM is under its seccomp filter (vmm --seccomp, default on)
    vmm_pid = int(h.sh(["pgrep", "-P", str(p.pid)]).stdout.split()[0])
    seccomp = open(f"/proc/{vmm_pid}/status").read().split("Seccomp:")[1].split()[0]
    h.check(seccomp == "2", f"vmm Seccomp: {seccomp}, want 2 (filter)")
    h.check(api.call("pause").get("result") == {}, "pause failed")
    h.check(api.call("status")["result"]["state"] == "paused", "not paused")
    e = api.call("pause")["error"]
    h.check(e["code"] == -32008 and e["data"]["name"] == "invalid-state", f"pause twice: {e}")
    h.check(api.call("resume").get("result") == {}, "resume failed")
    h.check(api.call("status")["result"]["state"] == "running", "not running after resume")
    e = api.call("nosuch")["error"]
    h.check(e["code"] == -32601, f"unknown method: {e}")
    h.check(api.call("stop").get("result") == {}, "stop failed")
    rc = p.p.wait(10)
    h.check(rc == 0, f"vmm exit {rc} after stop")
    h.check("stop requested on the API socket" in p.output(), p.tail())
    h.check(not os.path.exists(sock), "the API socket was left behind")

    h.step("SIGTERM stops the VM: exit 0")
    p = h.Proc([VMM, "--kernel", guest("hello.bzImage"), "--cmdline", "exit=halt"],
               "vmm-term", max_seconds=60)
    h.wait_for(lambda: "halting" in p.output(), 10, "the guest to halt")
    rc = p.stop()
    h.check(rc == 0 and "SIGTERM" in p.output(), f"exit {rc}: {p.tail()}")

    h.step("bad arguments: one line, exit 2")
    for args in (["--cpus", "0", "--kernel", "x"], ["--memory", "lots", "--kernel", "x"],
                 ["--bogus"], [], ["--kernel", "x", "--net", "tap,ifname=t0"],
                 ["--kernel", "x", "--net", "vhost-user,socket=/tmp/s"],
                 ["--kernel", "x", "--net", "vhost-user,socket=/tmp/s,mac=01:00:00:00:00:01"],
                 ["--kernel", "x", "--seccomp", "maybe"],
                 ["--kernel", "x", "--group", "vs-no-such-group"]):
        r, _ = run_vmm(args, expect_rc=2)
        lines = r.stderr.strip().splitlines()
        h.check(len(lines) == 1 and lines[0].startswith("vmm: "), f"{args}: {r.stderr!r}")

    h.step("bad images: clear error, exit 1")
    junk = os.path.join(tmp, "junk")
    with open(junk, "wb") as f:
        f.write(b"not a kernel" * 100)
    r, _ = run_vmm(["--kernel", junk], expect_rc=1)
    h.check("HdrS" in r.stderr, r.stderr)
    r, _ = run_vmm(["--kernel", os.path.join(tmp, "missing")], expect_rc=1)
    h.check("No such file" in r.stderr, r.stderr)
    with open(guest("hello.bzImage"), "rb") as f:
        img = f.read()
    trunc = os.path.join(tmp, "trunc")
    with open(trunc, "wb") as f:
        f.write(img[:2048])
    r, _ = run_vmm(["--kernel", trunc], expect_rc=1)
    h.check("truncated" in r.stderr, r.stderr)


h.main(test)
