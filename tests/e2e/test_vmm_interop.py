#!/usr/bin/python3
"""vmm's vhost-user frontend against backends nobody here wrote, with the
guest program tests/guests/virtio_net_driver doing the traffic under the
host's KVM:

  (a) DPDK testpmd net_vhost (it listens, vmm dials), macswap;
  (b) DPDK testpmd net_vhost client=1 (vmm listens: --net ...,server), io;
  (c) Open vSwitch 3.1 with DPDK: a NORMAL bridge with two dpdkvhostuserclient
      ports, one to vmm (server) and one to a testpmd virtio-user macswap
      peer. Skipped with the reason when openvswitch-switch-dpdk is missing.

Every frame the guest sends must come back (both directions through the
backend), RX interrupts arrive as MSI-X."""
import os
import sys

import harness as h
from test_vmm_net import DRIVER, VMM, Vmm, parse_round, skip_if_unwired

sys.path.insert(0, os.path.join(h.ROOT, "bench"))

FRAMES = 1000
MAC = "52:54:00:00:00:0a"


def run_guest(label, net, want_swapped, cmdline_extra=""):
    v = Vmm(DRIVER, [net], cmdline=f"count={FRAMES} batch=32 timeout=30 {cmdline_extra}",
            name=f"vmm-{label}")
    try:
        v.wait_line(lambda ln: "virtio_net_driver" in ln, 120, f"{label}: the verdict")
    finally:
        skip_if_unwired(v)
    r = parse_round(v.output(), "round 1")
    h.step(f"{label}: {r}")
    h.check(r["sent"] == FRAMES and r["received"] == FRAMES, f"{label}: frames lost {r}")
    if want_swapped:
        h.check(r["swapped"] == FRAMES, f"{label}: frames not MAC-swapped")
    h.check(r["rx_irqs"] > 0, f"{label}: no MSI-X RX interrupt")
    h.check("virtio_net_driver passed" in v.output(), f"{label}: the guest driver failed")
    h.check(v.wait_exit(30) == 0, f"{label}: vmm exit status")
    return r


def test():
    h.require_root()
    h.require_binaries(VMM, DRIVER, h.TESTPMD)
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        h.skip("no /dev/kvm")
    d = h.tempdir()

    h.step("(a) testpmd net_vhost (server), macswap; vmm dials")
    sock = os.path.join(d, "a.sock")
    be = h.Testpmd([h.vhost_vdev(0, sock)], forward_mode="macswap", lcores="0@1,1@1",
                   name="net_vhost")
    be.start()
    h.wait_for(lambda: os.path.exists(sock), 10, "testpmd's socket")
    run_guest("net_vhost", f"vhost-user,socket={sock},mac={MAC}", want_swapped=True)
    st = be.stats()[0]
    h.step(f"testpmd port 0: rx {st['rx_packets']} tx {st['tx_packets']}")
    h.check(st["rx_packets"] >= FRAMES and st["tx_packets"] >= FRAMES, f"testpmd: {st}")
    be.stop()
    be.close()

    h.step("(b) testpmd net_vhost client=1, io; vmm listens (server)")
    sock = os.path.join(d, "b.sock")
    be = h.Testpmd([h.vhost_vdev(0, sock, client=True)], forward_mode="io",
                   lcores="0@1,1@1", name="net_vhost_client")
    be.start()
    # io forwarding sends each frame back unchanged: counted, not swapped
    run_guest("net_vhost client", f"vhost-user,socket={sock},mac={MAC},server",
              want_swapped=False)
    be.stop()
    be.close()

    h.step("(c) Open vSwitch (DPDK datapath): dpdkvhostuserclient ports")
    try:
        from loopback import Ovs
    except ImportError as e:
        h.skip(f"(a) and (b) passed; (c) not run: bench/loopback.py unavailable ({e})")
    if not Ovs.available():
        h.skip("(a) and (b) passed; (c) not run: openvswitch-switch-dpdk is not installed")
    vm_sock, peer_sock = os.path.join(d, "c-vm.sock"), os.path.join(d, "c-peer.sock")
    peer = h.Testpmd([h.virtio_user_vdev(0, peer_sock, server=True)],
                     forward_mode="macswap", lcores="0@0,1@0", name="peer", wait=False)
    h.wait_for(lambda: os.path.exists(peer_sock), 15, "the peer's socket")
    v = Vmm(DRIVER, [f"vhost-user,socket={vm_sock},mac={MAC},server"],
            cmdline=f"count={FRAMES} batch=32 timeout=60 delay=5", name="vmm-ovs")
    h.wait_for(lambda: os.path.exists(vm_sock), 15, "the vmm's socket")
    ovs = Ovs()
    h.at_cleanup(ovs.stop, "stop ovs")
    ovs.start(vm_sock, peer_sock, None)
    peer.wait_ready(60)
    peer.start()
    try:
        v.wait_line(lambda ln: "virtio_net_driver" in ln, 180, "ovs: the verdict")
    finally:
        skip_if_unwired(v)
    r = parse_round(v.output(), "round 1")
    h.step(f"ovs: {r}")
    h.check(r["sent"] == FRAMES and r["received"] == FRAMES, f"ovs: frames lost {r}")
    h.check(r["swapped"] == FRAMES, "ovs: frames not MAC-swapped by the peer")
    h.check("virtio_net_driver passed" in v.output(), "ovs: the guest driver failed")
    h.check(v.wait_exit(30) == 0, "ovs: vmm exit status")
    peer.stop()
    peer.close()


h.main(test)
