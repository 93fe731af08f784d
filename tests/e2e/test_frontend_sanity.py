#!/usr/bin/python3
"""Check of the Python vhost-user frontend (tests/e2e/vhostuser.py) against a
backend nobody here wrote: DPDK testpmd's net_vhost, forwarding in macswap mode.
Frames we send on the TX queue must come back on the RX queue with the MAC
addresses swapped and the payload intact, with the backend as socket server (we
connect) and as socket client (we listen). No vswitchd involved."""
import os
import time

import harness as h
import vhostuser as vu

A = "02:00:00:00:aa:01"
B = "02:00:00:00:bb:02"


def exchange(fe, n, label, size_range=(60, 1400)):
    """Send n frames of varying sizes, expect each back macswapped."""
    fe.post_rx_buffers()
    sent = {}
    got = []
    lo, hi = size_range
    for i in range(n):
        ln = lo + (i * 97) % (hi - lo)
        payload = i.to_bytes(4, "big") + bytes((i + k) & 0xFF for k in range(ln - 18))
        f = vu.frame(B, A, payload)
        h.check(fe.send_frame(f, wait=3), f"{label}: no free TX descriptor for frame {i}")
        sent[i] = f
        if i % 64 == 63:  # never more in flight than RX buffers posted
            deadline = time.monotonic() + 10
            while len(got) < i + 1 and time.monotonic() < deadline:
                got += fe.recv_frames(timeout=0.5)
            fe.reclaim_tx()
    deadline = time.monotonic() + 10
    while len(got) < n and time.monotonic() < deadline:
        got += fe.recv_frames(timeout=0.5)
        fe.reclaim_tx()
    h.check(len(got) == n, f"{label}: {len(got)} of {n} frames came back")
    for f in got:
        i = int.from_bytes(f[14:18], "big")
        want = sent.get(i)
        h.check(want is not None, f"{label}: unknown frame back: {f[:32].hex()}")
        swapped = want[6:12] + want[0:6] + want[12:]
        h.check(f == swapped, f"{label}: frame {i} came back as {f[:40].hex()}..., "
                              f"expected {swapped[:40].hex()}...")
    h.wait_for(lambda: fe.reclaim_tx() >= 0 and len(fe.tx.free) == fe.tx.num, 5,
               f"{label}: all TX descriptors back")
    return len(got)


def run_backend(d, sock, client, name):
    tp = h.Testpmd([h.vhost_vdev(0, sock, client=client)], forward_mode="macswap",
                   lcores="0@1,1@1", name=name, wait=not client)
    return tp


def test():
    h.require_root()
    h.require_binaries(h.TESTPMD)
    d = h.tempdir()

    h.step("backend testpmd net_vhost (socket server), macswap")
    sock = os.path.join(d, "vhost0.sock")
    be = run_backend(d, sock, False, "backend-server")
    be.start()
    h.wait_for(lambda: os.path.exists(sock), 10, "testpmd's vhost-user socket")
    fe = vu.Frontend(sock, name="fe-connect")
    h.at_cleanup(fe.close, "frontend")
    fe.setup()
    h.step(f"negotiated features {fe.features:#x} protocol {fe.protocol_features:#x}")
    h.check(fe.features & vu.bit(vu.F_VERSION_1), "VERSION_1 not negotiated")
    h.check(fe.acks(), "REPLY_ACK not negotiated with testpmd")
    h.wait_for(lambda: "virtio is now ready" in be.output(), 20, "testpmd: device ready")
    n = exchange(fe, 300, "server backend")
    h.step(f"{n} frames came back macswapped, every TX descriptor reclaimed")

    h.step("reconnect: a second session on the same socket")
    fe.reconnect()
    fe.setup()
    h.wait_for(lambda: be.output().count("virtio is now ready") >= 2, 20,
               "testpmd: device ready again")
    h.step("mergeable RX: 1500-byte frames into 512-byte buffers")
    # a fresh RX ring of small buffers: frames must span several
    fe.post_rx_buffers(size=512)
    got = 0
    for i in range(20):
        f = vu.frame(B, A, i.to_bytes(4, "big") + bytes(1500 - 18))
        fe.send_frame(f)
    deadline = time.monotonic() + 10
    frames = []
    while len(frames) < 20 and time.monotonic() < deadline:
        frames += fe.recv_frames(timeout=0.5, with_hdr=True)
    h.check(len(frames) == 20, f"{len(frames)} of 20 large frames came back")
    for hdr, f in frames:
        nb = vu.NET_HDR.unpack(hdr)[6]
        h.check(nb >= 3 and len(f) == 1500, f"large frame: num_buffers {nb} len {len(f)}")
        got += 1
    h.step(f"{got} large frames, each over {vu.NET_HDR.unpack(frames[0][0])[6]} buffers")

    exchange(fe, 100, "after reconnect")
    fe.close()
    be.close()

    h.step("backend testpmd net_vhost client=1; we listen")
    sock2 = os.path.join(d, "vhost1.sock")
    fe2 = None

    def accept():
        nonlocal fe2
        fe2 = vu.Frontend(sock2, listen=True, name="fe-listen", timeout=5)

    import threading
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    h.wait_for(lambda: os.path.exists(sock2), 5, "our listening socket")
    be2 = run_backend(d, sock2, True, "backend-client")
    t.join(30)
    h.check(fe2 is not None, "testpmd (client=1) did not connect")
    h.at_cleanup(fe2.close, "frontend 2")
    be2.wait_ready()
    fe2.setup()
    be2.start()
    h.wait_for(lambda: "virtio is now ready" in be2.output(), 20, "testpmd: device ready")
    n = exchange(fe2, 200, "client backend")
    h.step(f"{n} frames came back macswapped")
    fe2.close()
    be2.close()


h.main(test)
