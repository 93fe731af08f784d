#!/usr/bin/python3
"""The dpdk port type, against DPDK virtual devices that need no hardware.

The default build leaves DPDK out (-Ddpdk=disabled: linking it is opt-in, as in
Open vSwitch); this test uses a second tree, build-dpdk (-Ddpdk=enabled), and
builds in it only what it needs (vswitchd, vswitchctl, test_port_dpdk) when it
is missing or stale — about 10 s after the first time. VSWITCH_BUILD_DPDK
names another tree. Skipped with the reason when libdpdk-dev is not installed.

Steps: test_port_dpdk (net_ring loopback through the port type, mbuf
conversions); vswitchd in namespace A with an internal port (host0,
10.0.8.1/24) and a dpdk port devargs=net_af_packet0,iface=pa on a veth whose
peer is in namespace B (10.0.8.2/24): ping and iperf3 B -> A, port-stats;
set-port devargs= reopens it on another veth (namespace C); the port survives
a daemon restart (db); del-port releases the device so it can be added again;
a bad devargs= is refused with DPDK's reason."""
import json
import os
import shutil
import subprocess
import time

import harness as h

BUILD_DPDK = os.environ.get("VSWITCH_BUILD_DPDK", os.path.join(h.ROOT, "build-dpdk"))
TARGETS = ["vswitch/vswitchd", "ctl/vswitchctl", "tests/unit/vswitch/test_port_dpdk"]


def build_dpdk_tree():
    if subprocess.run(["pkg-config", "--exists", "libdpdk"]).returncode != 0:
        h.skip("libdpdk is not installed (libdpdk-dev): no dpdk build to test")
    t0 = time.monotonic()
    if not os.path.exists(os.path.join(BUILD_DPDK, "build.ninja")):
        # a half-made tree (an interrupted setup) is set up again from scratch
        shutil.rmtree(BUILD_DPDK, ignore_errors=True)
        h.sh(["meson", "setup", BUILD_DPDK, h.ROOT, "-Ddpdk=enabled"], timeout=300)
    h.sh(["ninja", "-C", BUILD_DPDK] + TARGETS, timeout=600)
    h.step(f"{os.path.relpath(BUILD_DPDK, h.ROOT)} (-Ddpdk=enabled) ready in "
           f"{time.monotonic() - t0:.1f}s")
    h.VSWITCHD = os.path.join(BUILD_DPDK, "vswitch", "vswitchd")
    h.VSWITCHCTL = os.path.join(BUILD_DPDK, "ctl", "vswitchctl")


def iperf(client_ns, server_ns, ip, secs=3):
    srv = server_ns.popen(["iperf3", "-s", "-1", "-B", ip], name="iperf3-s")
    time.sleep(0.5)
    out = client_ns.run(["iperf3", "-c", ip, "-t", str(secs), "-J"], timeout=secs + 30).stdout
    srv.stop()
    return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e9


def status(sw, name):
    st = sw.ctl("show")
    return [p for br in st["bridges"] for p in br["ports"] if p["name"] == name][0]["status"]


def test():
    h.require_root()
    build_dpdk_tree()
    r = subprocess.run([os.path.join(BUILD_DPDK, "tests/unit/vswitch/test_port_dpdk")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    h.check(r.returncode == 0, f"test_port_dpdk failed:\n{r.stdout}")
    h.step("test_port_dpdk: net_ring loopback and mbuf conversions pass")

    a, b, c = h.NetNS(), h.NetNS(), h.NetNS()
    h.veth(a, "pa", b, "pb", ip_b="10.0.8.2/24")
    h.veth(a, "pa2", c, "pc", ip_b="10.0.8.3/24")
    # the peers fill in TCP/UDP checksums (af_packet hands DPDK the raw frame)
    b.run(["ethtool", "-K", "pb", "tx", "off"])
    c.run(["ethtool", "-K", "pc", "tx", "off"])
    sw = h.Vswitchd(ns=a, pmd_threads=1)
    sw.ctl("add-br", "br0")
    sw.ctl("add-port", "br0", "host0", "type=internal", "ip=10.0.8.1/24")
    t0 = time.monotonic()
    sw.ctl("add-port", "br0", "d0", "type=dpdk", "devargs=net_af_packet0,iface=pa")
    st = status(sw, "d0")
    h.check(st.get("driver") == "net_af_packet" and st.get("link") == "up", f"{st}")
    h.step(f"dpdk port d0 (net_af_packet on pa) up in {time.monotonic() - t0:.2f}s "
           f"(EAL start included): {st['device']}, port {st['dpdk_port']}")

    h.check(h.wait_for(lambda: b.run(["ping", "-c1", "-W1", "10.0.8.1"], check=False)
                       .returncode == 0, 15, "ping B -> host0 over dpdk"), "")
    gbps = iperf(b, a, "10.0.8.1")
    ps = sw.ctl("port-stats")["d0"]
    h.check(ps["rx_packets"] > 1000 and ps["tx_packets"] > 100, f"{ps}")
    # net_af_packet also captures what pa's own stack sends (IPv6 ND/MLD with pa's
    # MAC): replies to those come back in on d0 and are same_port drops
    bad = {k: v for k, v in ps["drops"].items() if v and k != "same_port"}
    h.check(not bad, f"drops on d0: {bad}")
    h.step(f"ping and iperf3 B -> A through the dpdk port: {gbps:.2f} Gbit/s; "
           f"d0 rx {ps['rx_packets']} tx {ps['tx_packets']}, no drops")

    sw.ctl("set-port", "d0", "devargs=net_af_packet1,iface=pa2")
    h.check(status(sw, "d0").get("device") == "net_af_packet1", f"{status(sw, 'd0')}")
    h.check(h.wait_for(lambda: c.run(["ping", "-c1", "-W1", "10.0.8.1"], check=False)
                       .returncode == 0, 15, "ping C -> host0 after set-port"), "")
    h.step("set-port devargs= reopens the port on another device (C reaches host0)")

    sw.stop()
    # the old daemon's tap (host0) goes away a moment after it exits
    h.check(h.wait_for(lambda: a.run(["ip", "link", "show", "host0"], check=False)
                       .returncode != 0, 10, "host0 to go away"), "")
    sw.start()
    c.run(["ip", "neigh", "flush", "all"])  # host0 is a new tap with a new MAC
    h.check(status(sw, "d0").get("device") == "net_af_packet1", "d0 not restored")
    h.check(h.wait_for(lambda: c.run(["ping", "-c1", "-W1", "10.0.8.1"], check=False)
                       .returncode == 0, 15, "ping C -> host0 after restart"), "")
    h.step("the dpdk port is restored from the db after a restart")

    sw.ctl("del-port", "d0")
    sw.ctl("add-port", "br0", "d0", "type=dpdk", "devargs=net_af_packet1,iface=pa2")
    h.check(h.wait_for(lambda: c.run(["ping", "-c1", "-W1", "10.0.8.1"], check=False)
                       .returncode == 0, 15, "ping after del-port + add-port"), "")
    h.step("del-port releases the device: the same devargs can be added again")

    try:
        sw.ctl("add-port", "br0", "bad0", "type=dpdk", "devargs=net_af_packet9,iface=nosuch0")
        h.fail("a dpdk port on a missing interface was accepted")
    except h.CtlError as e:
        h.check("cannot probe" in str(e), f"{e}")
    h.check("bad0" not in sw.ctl("port-stats"), "refused port left behind")
    h.step("devargs= for a missing interface is refused with one sentence")
    h.check(sw.alive(), "vswitchd died")
    print(f"FIGURES dpdk_af_packet_gbps={gbps:.2f}")


h.main(test)
