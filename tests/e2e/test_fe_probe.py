#!/usr/bin/python3
"""The VMM's vhost-user frontend (vhost/vhost_frontend.c), driven by
tests/tools/vhost_fe_probe, against two backends:

  (a) DPDK testpmd net_vhost, macswap: a backend nobody here wrote;
  (b) vswitchd: the probe on port p1, a testpmd virtio-user macswap peer on p2,
      so frames cross the switch twice (flooded out, unicast back).

In both the probe runs handshake + start (64 MiB memfd, one queue pair),
pushes frames into its TX ring, and must get every one back on RX with the
MACs swapped and the payload intact; then stops the rings and checks the TX
base. The probe runs twice against each backend (a second connection replays
the setup, as the VMM does after a reconnect)."""
import os

import harness as h

PROBE = os.path.join(h.BUILD, "tests", "tools", "vhost_fe_probe")
FRAMES = 2000


def run_probe(sock, label, frames=FRAMES, size=64):
    r = h.sh([PROBE, "--socket", sock, "--frames", str(frames), "--size", str(size),
              "--wait", "10"], timeout=90, check=False)
    for line in r.stdout.splitlines():
        h.step(f"{label}: {line}")
    h.check(r.returncode == 0, f"{label}: probe failed (rc={r.returncode})")
    return r.stdout


def test():
    h.require_root()
    h.require_binaries(h.TESTPMD, PROBE)
    d = h.tempdir()

    h.step("(a) backend: testpmd net_vhost, macswap")
    sock = os.path.join(d, "vhost0.sock")
    be = h.Testpmd([h.vhost_vdev(0, sock)], forward_mode="macswap", lcores="0@1,1@1",
                   name="backend")
    be.start()
    h.wait_for(lambda: os.path.exists(sock), 10, "testpmd's vhost-user socket")
    run_probe(sock, "testpmd")
    h.check("virtio is now ready" in be.output(), "testpmd never saw the device ready")
    run_probe(sock, "testpmd again", frames=500, size=1400)
    st = be.stats()[0]
    h.step(f"testpmd port 0: rx {st['rx_packets']} tx {st['tx_packets']}")
    h.check(st["rx_packets"] >= FRAMES + 500 and st["tx_packets"] >= FRAMES + 500,
            f"testpmd counters: {st}")
    be.stop()
    be.close()

    h.step("(b) vswitchd: br0 with p1 (the probe) and p2 (testpmd virtio-user, macswap)")
    sw = h.Vswitchd(pmd_threads=1, cpu=1)
    sw.ctl("add-br", "br0")
    sw.ctl("add-port", "br0", "p1", "type=vhost-user")
    sw.ctl("add-port", "br0", "p2", "type=vhost-user")
    peer = h.Testpmd([h.virtio_user_vdev(0, sw.port_socket("p2"))], forward_mode="macswap",
                     lcores="0@0,1@0", name="peer")
    peer.start()
    h.wait_for(lambda: os.path.exists(sw.port_socket("p1")), 10, "p1's socket")
    run_probe(sw.port_socket("p1"), "vswitchd")
    stats = sw.ctl("port-stats")
    h.step(f"switch p1 rx {stats['p1']['rx_packets']} tx {stats['p1']['tx_packets']}; "
           f"p2 rx {stats['p2']['rx_packets']} tx {stats['p2']['tx_packets']}")
    h.check(stats["p1"]["rx_packets"] >= FRAMES and stats["p1"]["tx_packets"] >= FRAMES,
            f"p1 counters: {stats['p1']}")
    run_probe(sw.port_socket("p1"), "vswitchd again", frames=500, size=1400)
    peer.stop()
    peer.close()
    h.check(sw.alive(), "vswitchd died")


h.main(test)
