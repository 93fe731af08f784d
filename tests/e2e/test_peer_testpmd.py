#!/usr/bin/python3
"""Harness self-check against a known-good peer: a testpmd virtio-user frontend and a
testpmd net_vhost backend exchange frames over one vhost-user socket (the frontend is
the socket server here, as for a vswitchd port in client mode). The frontend injects a
burst (io forwarding, tx_first) and the backend sends every frame back (macswap), so
both directions must count packets. No vswitchd involved."""
import os
import time

import harness as h


def test():
    h.require_root()
    h.require_binaries(h.TESTPMD)
    d = h.tempdir()
    sock = os.path.join(d, "vu.sock")
    h.step("frontend: testpmd virtio-user (server=1) on CPU 0")
    fe = h.Testpmd([h.virtio_user_vdev(0, sock, server=True, queue_size=1024)],
                   forward_mode="io", lcores="0@0,1@0", name="frontend", wait=False)
    h.step("backend: testpmd net_vhost (client=1), macswap, on CPU 1")
    be = h.Testpmd([h.vhost_vdev(0, sock, client=True)], forward_mode="macswap",
                   lcores="0@1,1@1", name="backend")
    fe.wait_ready()
    be.start()
    h.wait_for(lambda: "virtio is now ready" in be.output(), 20, "vhost-user negotiation")
    fe.start(tx_first=4)
    time.sleep(2)
    fe.stats()
    time.sleep(1)
    f, b = fe.stats()[0], be.stats()[0]
    h.step(f"frontend rx {f['rx_packets']} tx {f['tx_packets']} ({f['rx_pps'] / 1e6:.2f} Mpps); "
           f"backend rx {b['rx_packets']} tx {b['tx_packets']}")
    h.check(b["rx_packets"] > 1000 and b["tx_packets"] > 1000, f"backend saw no frames: {b}")
    h.check(f["rx_packets"] > 1000, f"frontend got nothing back: {f}")
    fe.stop()
    be.stop()
    print(f"FIGURES testpmd_pingpong_mpps={f['rx_pps'] / 1e6:.2f}")


h.main(test)
