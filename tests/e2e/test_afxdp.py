#!/usr/bin/python3
"""The afxdp port type on a veth: vswitchd runs in namespace A with an internal
port (host0, 10.0.7.1/24), an afxdp port on veth xa whose peer xb sits in
namespace B (10.0.7.2/24), and a vhost-user port whose frontend is DPDK testpmd
(virtio-user, icmpecho: it answers ARP and ping for any address, here 10.0.7.9).

B pings host0 and the testpmd "guest" across the AF_XDP socket; iperf3 B -> A
gives the afxdp throughput, then the same with a tap port in place of the afxdp
one (its device moved to B) for comparison; port-stats count the frames;
set-port dev= moves the port to another veth (the XDP program follows);
del-port leaves no XDP program behind."""
import json
import re
import time

import harness as h


def iperf(client_ns, server_ns, ip, secs=4):
    srv = server_ns.popen(["iperf3", "-s", "-1", "-B", ip], name="iperf3-s")
    time.sleep(0.5)
    out = client_ns.run(["iperf3", "-c", ip, "-t", str(secs), "-J"],
                        timeout=secs + 30).stdout
    srv.stop()
    r = json.loads(out)
    return r["end"]["sum_received"]["bits_per_second"] / 1e9


def xdp_attached(ns, dev):
    return "xdp" in ns.run(["ip", "-d", "link", "show", dev]).stdout.split("\n")[0] or \
        "prog/xdp" in ns.run(["ip", "-d", "link", "show", dev]).stdout


def test():
    h.require_root()
    h.require_binaries(h.TESTPMD)
    if "xdp" not in open("/proc/net/protocols").read().lower():
        h.skip("the kernel has no AF_XDP sockets (CONFIG_XDP_SOCKETS)")
    a, b, c = h.NetNS(), h.NetNS(), h.NetNS()
    h.veth(a, "xa", b, "xb", ip_b="10.0.7.2/24")
    h.veth(a, "xa2", c, "xc", ip_b="10.0.7.3/24")
    # veth leaves TCP/UDP checksums to "hardware" (CHECKSUM_PARTIAL); an AF_XDP
    # socket gets the raw frame, so the sending side must fill them in itself
    b.run(["ethtool", "-K", "xb", "tx", "off"])
    c.run(["ethtool", "-K", "xc", "tx", "off"])
    sw = h.Vswitchd(ns=a, pmd_threads=1)
    sw.ctl("add-br", "br0")
    sw.ctl("add-port", "br0", "host0", "type=internal", "ip=10.0.7.1/24")
    try:
        sw.ctl("add-port", "br0", "up0", "type=afxdp", "dev=xa", "queue=0")
    except h.CtlError as e:
        if "not supported by this build" in str(e):
            h.skip("vswitchd was built without afxdp (libxdp missing)")
        raise
    h.check(xdp_attached(a, "xa"), "no XDP program on xa after add-port")
    # the other way the internal port sends TSO super-frames: the afxdp port
    # must cut them into MTU-sized frames (software segmentation)
    rev_gbps = iperf(a, b, "10.0.7.2")
    up = sw.ctl("port-stats", "up0")["up0"]
    h.check(rev_gbps > 0.01 and up["drops"]["gso_unsupported"] == 0,
            f"A -> B over afxdp: {rev_gbps} Gbit/s, drops {up['drops']}")
    h.step(f"iperf3 A -> B over afxdp (super-frames segmented): {rev_gbps:.2f} Gbit/s")
    st = sw.ctl("show")
    port = [p for br in st["bridges"] for p in br["ports"] if p["name"] == "up0"][0]
    mode = port["status"]["xdp_mode"]
    h.step(f"afxdp port up0 on xa queue 0: XDP program attached, {mode} mode")

    # bad options: refused with a sentence, nothing changes
    for opts, says in ((["dev=nosuchdev0"], "does not exist"),
                       (["dev=xa", "queue=5"], "queue 5")):
        try:
            sw.ctl("add-port", "br0", "bad0", "type=afxdp", *opts)
            h.fail(f"add-port afxdp {opts} accepted")
        except h.CtlError as e:
            h.check(says in str(e), f"add-port {opts}: {e}")
    try:
        sw.ctl("add-port", "br0", "dup0", "type=afxdp", "dev=xa")
        h.fail("a second afxdp port on xa queue 0 was accepted")
    except h.CtlError as e:
        h.check("already used by port up0" in str(e), f"{e}")
    h.step("bad dev=, a queue the veth lacks, and a queue already taken are refused")

    h.check(h.wait_for(lambda: b.run(["ping", "-c1", "-W1", "10.0.7.1"], check=False)
                       .returncode == 0, 15, "ping B -> host0"), "")
    h.step("B pings host0 through the AF_XDP socket")

    sock = sw.port_socket("vm1")
    sw.ctl("add-port", "br0", "vm1", "type=vhost-user")
    tp = h.Testpmd([h.virtio_user_vdev(0, sock)], forward_mode="icmpecho",
                   lcores="0@0,1@0")
    tp.start()
    h.check(h.wait_for(lambda: b.run(["ping", "-c1", "-W1", "10.0.7.9"], check=False)
                       .returncode == 0, 20, "ping B -> testpmd guest"), "")
    out = b.run(["ping", "-c", "20", "-i", "0.05", "-W1", "10.0.7.9"]).stdout
    h.check(" 0% packet loss" in out, out)
    rtt = re.search(r"= [\d.]+/([\d.]+)/", out)
    h.step(f"B <-> vhost-user guest (testpmd icmpecho) through afxdp: 20/20 pings, "
           f"avg rtt {rtt.group(1) if rtt else '?'} ms")
    tp.close()
    sw.ctl("del-port", "vm1")

    afxdp_gbps = iperf(b, a, "10.0.7.1")
    st = sw.ctl("port-stats")
    up = st["up0"]
    h.check(up["rx_packets"] > 1000 and up["tx_packets"] > 100, f"port-stats up0: {up}")
    bad = {k: v for k, v in up["drops"].items() if v}
    h.check(not bad, f"drops on up0: {bad}")
    h.step(f"iperf3 B -> A over afxdp: {afxdp_gbps:.2f} Gbit/s; up0 rx {up['rx_packets']} "
           f"tx {up['tx_packets']} packets, no drops")
    # the other way the internal port sends TSO super-frames: the afxdp port
    # must cut them into MTU-sized frames (software segmentation)
    rev_gbps = iperf(a, b, "10.0.7.2")
    up = sw.ctl("port-stats", "up0")["up0"]
    h.check(rev_gbps > 0.01 and up["drops"]["gso_unsupported"] == 0,
            f"A -> B over afxdp: {rev_gbps} Gbit/s, drops {up['drops']}")
    h.step(f"iperf3 A -> B over afxdp (super-frames segmented): {rev_gbps:.2f} Gbit/s")
    st = sw.ctl("show")
    port = [p for br in st["bridges"] for p in br["ports"] if p["name"] == "up0"][0]
    ks = {k: v for k, v in port["status"].items() if k.startswith("kernel_")}
    h.step(f"kernel AF_XDP counters: {ks}")

    # set-port dev= reopens the port on another veth: the program follows
    sw.ctl("set-port", "up0", "dev=xa2")
    h.check(not xdp_attached(a, "xa") and xdp_attached(a, "xa2"),
            "XDP program did not move from xa to xa2")
    h.check(h.wait_for(lambda: c.run(["ping", "-c1", "-W1", "10.0.7.1"], check=False)
                       .returncode == 0, 15, "ping C -> host0 after set-port"), "")
    h.check(b.run(["ping", "-c1", "-W1", "10.0.7.1"], check=False).returncode != 0,
            "B still reaches host0 after the port moved to xa2")
    h.step("set-port up0 dev=xa2: program moved, C reaches host0, B no longer does")

    sw.ctl("del-port", "up0")
    h.check(not xdp_attached(a, "xa2") and not xdp_attached(a, "xa"),
            "XDP program left behind after del-port")
    h.step("del-port detaches the XDP program (ip link shows no xdp)")

    # the same path with a tap port instead, for comparison
    tapif = h.uniq("vstap")
    sw.ctl("add-port", "br0", "t1", "type=tap", f"ifname={tapif}")
    b.run(["ip", "link", "del", "xb"])
    h.sh(["ip", "-n", str(a), "link", "set", tapif, "netns", str(b)])
    b.run(["ip", "addr", "add", "10.0.7.2/24", "dev", tapif])
    b.run(["ip", "link", "set", tapif, "up"])
    h.check(h.wait_for(lambda: b.run(["ping", "-c1", "-W1", "10.0.7.1"], check=False)
                       .returncode == 0, 15, "ping B -> host0 over tap"), "")
    tap_gbps = iperf(b, a, "10.0.7.1")
    h.step(f"iperf3 B -> A over a tap port: {tap_gbps:.2f} Gbit/s "
           f"(afxdp/tap = {afxdp_gbps / max(tap_gbps, 1e-9):.2f})")
    h.check(sw.alive(), "vswitchd died")
    print(f"FIGURES afxdp_gbps={afxdp_gbps:.2f} tap_gbps={tap_gbps:.2f}")


h.main(test)
