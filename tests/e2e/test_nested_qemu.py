#!/usr/bin/python3
"""The nested-KVM infrastructure, with QEMU as the inner VMM: an outer QEMU TCG guest
(tests/e2e/nested.py) gets a real /dev/kvm (AMD SVM, nested paging); inside it vswitchd
serves bridge br0 with two vhost-user ports, and two unmodified Linux lab guests booted
by QEMU with -accel kvm (memfd shared memory, vhost-user virtio-net-pci) ping each other
and run iperf3 through it. Records outer boot, inner boot (VMM start to /init), ping
rtt and iperf3 throughput. Without /dev/kvm in the outer guest: exit 77, "not run"."""
import re

import harness as h
import nested as n

INNER_MEM = 160
IPERF_SECONDS = 4


def inner_qemu(idx, sock, mac, cmdline, mem=INNER_MEM, machine="pc"):
    return (f"qemu-system-x86_64 -accel kvm -cpu host -M {machine} -m {mem} -smp 1 "
            f"-nodefaults -no-user-config -display none -vga none -no-reboot "
            f"-object memory-backend-memfd,id=mem,size={mem}M,share=on -numa node,memdev=mem "
            f"-kernel /guest/vmlinuz -initrd /guest/initrd.gz -append '{cmdline}' "
            f"-serial file:/tmp/vm{idx}.console "
            f"-chardev socket,id=c0,path={sock},reconnect=1 -netdev vhost-user,id=n0,chardev=c0 "
            f"-device virtio-net-pci,netdev=n0,mac={mac},romfile=")


SERVER = """
iperf3 -s -D
echo "@@SERVER-UP@@"
i=0; until ping -c 1 -W 1 10.0.20.1 >/dev/null 2>&1; do i=$((i+1)); [ $i -ge 60 ] && break; done
echo "@@PING-BACK $i@@"
"""

CLIENT = f"""
i=0; until ping -c 1 -W 1 10.0.20.2 >/dev/null 2>&1; do i=$((i+1)); [ $i -ge 60 ] && break; done
echo "@@PING-FIRST $i $(cut -d' ' -f1 /proc/uptime)@@"
ping -c 10 -i 0.2 -W 2 10.0.20.2
sleep 0.3
iperf3 -c 10.0.20.2 -t {IPERF_SECONDS} -f m
echo "@@CLIENT-DONE@@"
"""


def scenario():
    n.require_plain_build()
    h.require_binaries(h.QEMU, h.VSWITCHD, h.VSWITCHCTL)
    h.step("building/checking the lab guest")
    h.require_guest()
    h.step("booting the nested host (QEMU TCG, -cpu max) with vswitchd, QEMU and the lab guest")
    host = n.NestedHost(1024, files={**n.vswitch_files(), **n.guest_files()}, qemu=True)
    h.step(f"nested host up in {host.boot_seconds:.1f}s (smp {host.smp}, initramfs "
           f"+{host.overlay_bytes >> 20} MiB built in {host.initramfs_seconds:.1f}s)")
    host.require_kvm()
    h.step("/dev/kvm present inside (kvm-amd, nested paging)")

    sw = host.start("exec vswitchd --socket /run/vs.sock --db none --default-config "
                    "--run-dir /run/vs --log-level info", name="vswitchd")
    h.on_failure(lambda: print(f"---- vswitchd (inner) log ----\n{sw.output(tail=60)}"))
    rc, out = host.run("i=0; while [ ! -S /run/vs/vm1.sock -o ! -S /run/vs/vm2.sock ] && "
                       "[ $i -lt 100 ]; do usleep 100000; i=$((i+1)); done; "
                       "vswitchctl --socket /run/vs.sock list-ports br0", timeout=30)
    h.check(rc == 0 and "vm1" in out and "vm2" in out, f"vswitchd not up inside:\n{out}")
    h.step("vswitchd up inside: br0 with vhost-user ports vm1, vm2")

    vms = []
    for i, script in ((1, CLIENT), (2, SERVER)):
        cl = n.inner_cmdline(ip=f"10.0.20.{i}/24", mac=h.mac(i), hostname=f"vm{i}", run=script)
        vms.append(host.start_vm(inner_qemu(i, f"/run/vs/vm{i}.sock", h.mac(i), cl),
                                 f"/tmp/vm{i}.console", f"vm{i}"))
    h.on_failure(lambda: [print(f"---- vm{i} console ----\n{host.read(f'/tmp/vm{i}.console', 30)}"
                                f"\n---- vm{i} qemu ----\n{vms[i - 1].output(tail=10)}")
                          for i in (1, 2)])
    boots = []
    for vm in vms:
        b = host.boot_seconds_of(vm, 120)
        h.check(b is not None, vm.boot_failure(120))
        boots.append(b)
    h.step(f"inner guests reached /init {boots[0]:.2f}s and {boots[1]:.2f}s after their "
           f"QEMU started (-accel kvm)")

    out = host.wait_file("/tmp/vm1.console", "@@CLIENT-DONE@@", 90 + IPERF_SECONDS)
    con1 = host.read("/tmp/vm1.console")
    con2 = host.read("/tmp/vm2.console")
    h.check(out is not None, f"vm1's script did not finish:\n{con1[-3000:]}")
    m = re.search(r"@@PING-FIRST (\d+) ", con1)
    h.check(m and int(m.group(1)) < 60, f"vm1 never reached vm2:\n{con1[-2000:]}")
    rtt = re.search(r"min/avg/max = [\d.]+/([\d.]+)/([\d.]+)", con1)
    h.check(rtt is not None and " 0% packet loss" in con1, f"ping vm1 -> vm2:\n{con1[-2000:]}")
    m2 = re.search(r"@@PING-BACK (\d+)@@", con2)
    h.check(m2 and int(m2.group(1)) < 60, f"vm2 -> vm1 ping failed:\n{con2[-2000:]}")
    h.step(f"ping both ways ok, vm1 -> vm2 rtt avg {float(rtt.group(1)):.3f} ms "
           f"(max {rtt.group(2)} ms)")
    ip = re.search(r"([\d.]+) Mbits/sec\s+receiver", con1)
    h.check(ip is not None, f"iperf3 did not report:\n{con1[-2000:]}")
    gbps = float(ip.group(1)) / 1000
    h.step(f"iperf3 vm1 -> vm2 ({IPERF_SECONDS}s): {gbps:.2f} Gbit/s")
    print(host.check("vswitchctl --socket /run/vs.sock port-stats", timeout=20).rstrip())
    print(f"FIGURES outer_boot_s={host.boot_seconds:.1f} inner_boot_s="
          f"{max(boots):.2f} ping_ms={float(rtt.group(1)):.3f} iperf3_gbps={gbps:.2f}")
    for vm in vms:
        vm.stop(5)
    sw.stop(5)
    host.kill()



def test():
    return n.retry_if_outer_dies(scenario, also=n.INNER_RESET)


h.main(test)
