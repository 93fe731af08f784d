#!/usr/bin/python3
"""kill -9 of vswitchd while guests run, then a restart with the same --db: the
configuration comes back from the file, both socket roles reconnect (QEMU redials
server-mode ports; vswitchd redials a QEMU that listens), and the guests' pings
resume without restarting the guests. (A damaged db: test_faults_db.)"""
import os
import time

import harness as h


def show_conf(sw):
    """The configured part of `show` (no runtime status)."""
    out = []
    for br in sw.ctl("show")["bridges"]:
        ports = [{k: v for k, v in p.items() if k != "status"} for p in br["ports"]]
        out.append((br["name"], br.get("ageing"), sorted(ports, key=lambda p: p["name"])))
    return out


def test():
    h.require_root()
    h.require_binaries(h.QEMU)
    h.require_guest()
    sw = h.Vswitchd(pmd_threads=1)
    d = h.tempdir()
    vm2_sock = os.path.join(d, "vm2.sock")
    sw.ctl("add-br", "br0")
    sw.ctl("set-br", "br0", "ageing=120")
    sw.ctl("add-port", "br0", "vm1", "type=vhost-user", "tag=10")
    g1 = h.QemuGuest(nics=[dict(socket=sw.port_socket("vm1"), mac=h.mac(1))],
                     ip="10.0.10.1/24", name="vm1")
    g2 = h.QemuGuest(nics=[dict(socket=vm2_sock, mac=h.mac(2), server=True)],
                     ip="10.0.10.2/24", name="vm2")
    h.wait_for(lambda: os.path.exists(vm2_sock), 20, "QEMU's vm2 socket")
    sw.ctl("add-port", "br0", "vm2", "type=vhost-user", "mode=client",
           f"socket={vm2_sock}", "tag=10")
    before = show_conf(sw)
    g1.wait_booted()
    g2.wait_booted()
    h.check(h.wait_for(lambda: g1.ping("10.0.10.2", timeout=2), 30, "vm1 -> vm2"), "")
    h.step("guests ping each other through vswitchd (vm1 server mode, vm2 client mode)")

    for round_ in (1, 2):
        pid = sw.proc.pid
        sw.kill()
        h.check(not g1.ping("10.0.10.2", count=1, timeout=2), "ping worked with the switch dead")
        h.step(f"round {round_}: kill -9 {pid}; traffic stops")
        t0 = time.monotonic()
        sw.start()
        h.check(show_conf(sw) == before, f"configuration differs after restart:\n"
                f"{before}\n{show_conf(sw)}")
        ok = h.wait_for(lambda: g1.ping("10.0.10.2", timeout=1), 30, "ping after restart")
        h.check(ok, "")
        h.check(g2.ping("10.0.10.1"), "vm2 -> vm1 after restart")
        h.step(f"round {round_}: restarted from the db; config identical; pings resume "
               f"after {time.monotonic() - t0:.1f}s, guests not restarted")

    st = sw.ctl("show")["bridges"][0]["ports"]
    h.check(all(p["status"]["link"] == "up" for p in st), f"links: {st}")

    # Idle with guests attached, the PMD sleeps on the kick eventfds.
    def cpu_seconds(pid):
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    time.sleep(1)
    c0, t0 = cpu_seconds(sw.proc.pid), time.monotonic()
    time.sleep(5)
    idle = (cpu_seconds(sw.proc.pid) - c0) / (time.monotonic() - t0) * 100
    h.check(idle < 2.0, f"idle vswitchd with two guests used {idle:.1f}% of a core")
    h.step(f"idle with two guests attached: {idle:.2f}% of a core")


h.main(test)
