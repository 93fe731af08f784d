#!/usr/bin/python3
"""DPDK testpmd virtio-user frontends on vswitchd: frames cross the switch inside
VLAN 10 and the reply comes back; a frontend on VLAN 20 receives none of them.

  gen (testpmd, txonly)  -- p1 access 10 --+
  refl (testpmd, macswap)-- p2 access 10 --+-- br0
                         -- p3 access 20 --+
gen sends 64-byte frames to an unknown MAC: flooded within VLAN 10 only. refl
bounces what it gets on p2 back (MACs swapped), which the switch has learned
is behind p1: unicast back to p1."""
import time

import harness as h

GEN_MAC = "02:00:00:00:0a:01"
DST_MAC = "02:00:00:00:0a:99"


def test():
    h.require_root()
    h.require_binaries(h.TESTPMD)
    sw = h.Vswitchd(pmd_threads=1, cpu=1)
    sw.ctl("add-br", "br0")
    sw.ctl("add-port", "br0", "p1", "type=vhost-user", "tag=10")
    sw.ctl("add-port", "br0", "p2", "type=vhost-user", "tag=10")
    sw.ctl("add-port", "br0", "p3", "type=vhost-user", "tag=20")
    h.step("vswitchd: br0 with p1, p2 (VLAN 10) and p3 (VLAN 20)")

    refl = h.Testpmd([h.virtio_user_vdev(0, sw.port_socket("p2")),
                      h.virtio_user_vdev(1, sw.port_socket("p3"))],
                     forward_mode="macswap", lcores="0@0,1@0", name="refl",
                     extra_app=["--port-topology=loop"])
    gen = h.Testpmd([h.virtio_user_vdev(0, sw.port_socket("p1"), extra=f"mac={GEN_MAC}")],
                    forward_mode="txonly", lcores="0@0,1@0", name="gen",
                    extra_app=[f"--eth-peer=0,{DST_MAC}"])
    h.wait_for(lambda: all(sw.ctl("port-stats") is not None and
                           st["status"]["link"] == "up"
                           for st in sw.ctl("show")["bridges"][0]["ports"]),
               20, "all three ports up")
    h.step("three virtio-user frontends connected, links up")
    refl.start()
    gen.start()
    time.sleep(3)
    gen.stop()
    time.sleep(0.5)
    rs = refl.stats()
    gs = gen.stats()
    refl.stop()
    stats = sw.ctl("port-stats")
    h.step(f"gen sent {gs[0]['tx_packets']}; refl got p2={rs[0]['rx_packets']} "
           f"p3={rs[1]['rx_packets']}; switch p1 tx={stats['p1']['tx_packets']}")

    h.check(gs[0]["tx_packets"] > 1000, f"generator sent too little: {gs}")
    h.check(rs[0]["rx_packets"] > 1000, f"VLAN 10 peer received nothing: {rs}")
    h.check(rs[1]["rx_packets"] == 0, f"VLAN 20 frontend received VLAN 10 frames: {rs}")
    h.check(stats["p3"]["tx_packets"] == 0, f"switch sent to p3: {stats['p3']}")
    h.check(stats["p1"]["rx_packets"] >= gs[0]["tx_packets"] * 0.9,
            f"p1 rx {stats['p1']['rx_packets']} vs gen tx {gs[0]['tx_packets']}")
    # The replies crossed back, unicast to the learned port. gen (txonly) never
    # drains its receive ring: the first ring-full is delivered, the rest must be
    # counted as no_buffer drops on p1, not lost silently.
    p1 = stats["p1"]
    h.check(p1["tx_packets"] > 0, f"no replies reached p1: {p1}")
    h.check(p1["tx_packets"] + p1["drops"]["no_buffer"] >= rs[0]["rx_packets"] * 0.9,
            f"replies unaccounted for: refl got {rs[0]['rx_packets']}, p1 {p1}")
    h.check(stats["p3"]["tx_packets"] == 0, "a reply leaked to VLAN 20")

    fdb = sw.ctl("fdb-show", "br0")
    where = {(e["mac"], e["vlan"]): e["port"] for e in fdb}
    h.check(where.get((GEN_MAC, 10)) == "p1", f"gen MAC not learned on p1: {fdb}")
    h.check(where.get((DST_MAC, 10)) == "p2", f"reflected MAC not learned on p2: {fdb}")
    h.check(not any(v == 20 for (_, v) in where), f"entries in VLAN 20: {fdb}")
    h.step("FDB: gen MAC on p1, reflector MAC on p2, nothing in VLAN 20")

    fdb10 = sw.ctl("fdb-show", "br0", "vlan=10")
    h.check(len(fdb10) == 2, f"fdb-show vlan=10: {fdb10}")
    sw.ctl("fdb-flush", "br0")
    h.check(sw.ctl("fdb-show", "br0") == [], "fdb-flush left entries")
    h.step("fdb-show vlan=10 and fdb-flush behave")

    sw.ctl("set-br", "br0", "ageing=1")
    gen.start()
    time.sleep(0.5)
    gen.stop()
    h.check(any(e["mac"] == GEN_MAC for e in sw.ctl("fdb-show", "br0")), "relearned")
    h.check(h.wait_for(lambda: sw.ctl("fdb-show", "br0") == [], 5, "entries to age out"), "")
    h.step("with ageing=1 the learned entries age out once traffic stops")
    gen.close()
    refl.close()
    h.check(sw.alive(), "vswitchd died")


h.main(test)
