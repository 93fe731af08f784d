#!/usr/bin/python3
"""VXLAN peers found through etcd (vswitchd --etcd URL), no static remotes:

  ns U: Linux bridge ubr (192.168.50.254) joins the underlay veths; etcd-server runs
        there (client URL on the bridge address and loopback), started by the test
  ns S1..S3: vswitchd --etcd http://192.168.50.254:2379/vs-e2e?ttl=3, underlay u0 =
        192.168.50.N, a tap port tN (10.20.0.N, the namespace's own stack) and a
        vxlan port (vni 7000, local= only) on br0

The switches publish their VTEP and learned MACs under a lease and read each
other's: flood lists fill, the namespaces ping each other across the overlay, each
switch's key holds its tap's MAC. Then S3 is killed (SIGKILL: no goodbye): once its
lease expires (TTL 3 s) its key is gone and S1, S2 drop it from their flood lists."""
import base64
import json
import os
import shutil
import time

import harness as h

VNI = 7000
UNDER = "192.168.50.{}"
ETCD_IP = UNDER.format(254)
PREFIX = "/vs-e2e"
TTL = 3


def etcd_range(u, prefix):
    """The keys under prefix, read through the gateway from inside ns U."""
    body = json.dumps({"key": base64.b64encode((prefix + "/").encode()).decode(),
                       "range_end": base64.b64encode((prefix + "0").encode()).decode()})
    out = u.run(["curl", "-s", "-m", "3", "-X", "POST", "-d", body,
                 "http://127.0.0.1:2379/v3/kv/range"]).stdout
    kvs = json.loads(out).get("kvs", [])
    return {base64.b64decode(kv["key"]).decode(): json.loads(base64.b64decode(kv["value"]))
            for kv in kvs}


def flood_list(sw, port="vx"):
    for br in sw.ctl("show")["bridges"]:
        for p in br["ports"]:
            if p["name"] == port:
                return sorted(p["status"]["vnis"][0]["flood"])
    h.fail(f"no port {port}")


def test():
    h.require_root()
    etcd = shutil.which("etcd")
    if not etcd:
        h.skip("etcd-server is not installed (scripts/deps.sh installs it)")
    h.require_binaries("/usr/bin/curl")

    u = h.NetNS()
    # A fixed MAC: a Linux bridge otherwise takes the lowest MAC of its ports, so it
    # changed as each switch's veth joined, and a switch that had already resolved
    # 192.168.50.254 kept sending to the old MAC: its etcd connection stalled until
    # its ARP entry aged out (seen 1 run in 3 as "etcd not reachable").
    u.run(["ip", "link", "add", "ubr", "address", "02:00:c0:a8:32:fe", "type", "bridge"])
    u.run(["ip", "addr", "add", ETCD_IP + "/24", "dev", "ubr"])
    u.run(["ip", "link", "set", "ubr", "up"])
    data = h.tempdir("vs-etcd-")
    ep = u.popen([etcd, "--name", "e2e", "--data-dir", os.path.join(data, "data"),
                  "--listen-client-urls", f"http://127.0.0.1:2379,http://{ETCD_IP}:2379",
                  "--advertise-client-urls", f"http://{ETCD_IP}:2379",
                  "--listen-peer-urls", "http://127.0.0.1:2380",
                  "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
                  "--initial-cluster", "e2e=http://127.0.0.1:2380"],
                 name="etcd", max_seconds=300)
    h.wait_for(lambda: u.run(["curl", "-s", "-m", "1", "http://127.0.0.1:2379/health"],
                             check=False).stdout.find('"true"') >= 0 or not ep.alive(),
               20, "etcd healthy")
    h.check(ep.alive(), f"etcd exited:\n{ep.tail(20)}")
    h.on_failure(lambda: print(f"---- etcd (last 20 lines) ----\n{ep.tail(20)}"))
    h.step(f"etcd-server up in {u} on {ETCD_IP}:2379")

    switches, nss = [], []
    for i in (1, 2, 3):
        ns = h.NetNS()
        _, peer = h.veth(ns, "u0", u, ip_a=UNDER.format(i) + "/24")
        u.run(["ip", "link", "set", peer, "master", "ubr"])
        sw = h.Vswitchd(ns=ns, pmd_threads=1,
                        extra=["--etcd", f"http://{ETCD_IP}:2379{PREFIX}?ttl={TTL}"])
        sw.ctl("add-br", "br0")
        sw.ctl("add-port", "br0", f"t{i}", "type=tap", f"ifname=t{i}")
        sw.ctl("add-port", "br0", "vx", "type=vxlan", f"vni={VNI}", f"local={UNDER.format(i)}")
        ns.run(["ip", "addr", "add", f"10.20.0.{i}/24", "dev", f"t{i}"])
        ns.run(["ip", "link", "set", f"t{i}", "mtu", "1450", "up"])
        switches.append(sw)
        nss.append(ns)
    h.step("3 vswitchd --etcd, each: tap tN (10.20.0.N) + vxlan vni 7000 with no remote=")

    ips = [UNDER.format(i) for i in (1, 2, 3)]
    for i, sw in enumerate(switches):
        want = sorted(ip for ip in ips if ip != ips[i])
        h.wait_for(lambda: flood_list(sw) == want, 15, f"S{i + 1} flood list {want}")
    h.step("flood lists filled from etcd: each switch floods to the other two")

    def ping(ns, ip):
        return ns.run(["ping", "-c", "1", "-W", "2", ip], check=False).returncode == 0

    for a in range(3):
        for b in range(3):
            if a != b:
                h.check(h.wait_for(lambda: ping(nss[a], f"10.20.0.{b + 1}"), 15,
                                   f"S{a + 1} -> 10.20.0.{b + 1}"), "")
    h.step("the three namespaces ping each other across the discovered overlay")

    def tap_mac(i):
        return nss[i].run(["cat", f"/sys/class/net/t{i + 1}/address"]).stdout.strip()

    def published():
        return etcd_range(u, PREFIX)

    for i in range(3):
        key = f"{PREFIX}/vni/{VNI}/{ips[i]}"
        h.wait_for(lambda: tap_mac(i) in published().get(key, {}).get("macs", []), 10,
                   f"{key} lists t{i + 1}'s MAC")
    kv = published()
    h.step(f"etcd holds {len(kv)} VTEP keys, each with its switch's learned MACs")

    t0 = time.monotonic()
    switches[2].kill()
    for i in (0, 1):
        want = sorted(ip for ip in ips[:2] if ip != ips[i])
        h.wait_for(lambda: flood_list(switches[i]) == want, TTL + 10,
                   f"S{i + 1} drops S3 after its lease expires")
    gone = time.monotonic() - t0
    h.check(f"{PREFIX}/vni/{VNI}/{ips[2]}" not in published(), "S3's key is still in etcd")
    h.check(gone >= TTL - 1.5, f"S3 dropped after {gone:.1f}s, before its {TTL}s lease could expire")
    h.check(ping(nss[0], "10.20.0.2"), "S1 -> S2 after S3 left")
    h.step(f"S3 killed: its lease expired and S1, S2 dropped it after {gone:.1f}s (TTL {TTL}s)")


h.main(test)
