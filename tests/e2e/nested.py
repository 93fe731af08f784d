"""A nested-KVM host for end-to-end tests (python3 stdlib; harness conventions).

/dev/kvm on this machine is kvm_pvm, under which Linux does not boot (see
ENVIRONMENT.md). Real KVM is one level down: QEMU under TCG emulates AMD SVM with
nested paging, so an outer guest that loads irqbypass.ko, kvm.ko and kvm-amd.ko has a
real /dev/kvm, and a VMM inside it boots an unmodified Linux guest in seconds.

    import harness as h, nested as n

    host = n.NestedHost(1024, files={**n.vswitch_files(), **n.guest_files()}, qemu=True)
    host.require_kvm()                         # Skip("not run: ...") without /dev/kvm
    rc, out = host.run("vswitchd --help", timeout=10)
    sw = host.start("vswitchd --socket /run/vs.sock --db none", name="vswitchd")
    sw.alive(); sw.output(); sw.stop()
    host.kill()                                # also at cleanup

The outer guest is the lab guest (build/guest: Debian's cloud kernel, busybox, iperf3,
vmm/guest/init.sh) with a second, uncompressed cpio appended to its initramfs that
holds the KVM modules (loaded by /init in order, from /etc/modules.order), the given
files and the shared libraries of every ELF among them (found with ldd). No NIC: all
networking of a test lives inside it (vswitchd and the inner guests over vhost-user).
Its command channel is the lab guest's (ttyS1 on a unix socket; see vmm/guest/init.sh
and harness.QemuGuest): run(), check(), and start() for background processes.

Inner guests: the lab guest's kernel and initramfs (guest_files(): /guest/vmlinuz,
/guest/initrd.gz). They have no command channel of their own (a VMM may have a single
UART); give them a script on the kernel command line instead (inner_cmdline(): vs.run=
base64) whose output lands on their console file, which the test reads with
host.read(path). Their /init prints "@@VS-INIT@@" first thing.
"""

import base64
import itertools
import os
import re
import shlex
import socket
import stat
import subprocess
import time

import harness as h

NESTED_DIR = os.path.join(h.BUILD, "nested")
KVM_MODULES = ["irqbypass", "kvm", "kvm-amd"]
INIT_MARKER = "@@VS-INIT@@"

# What QEMU needs inside the outer guest to be an inner VMM (-M pc and -M microvm,
# -kernel boot, no option ROMs: give virtio-net-pci romfile=).
QEMU_FIRMWARE = ["/usr/share/seabios/bios-256k.bin", "/usr/share/qemu/linuxboot_dma.bin",
                 "/usr/share/qemu/linuxboot.bin", "/usr/share/qemu/kvmvapic.bin",
                 "/usr/share/qemu/qboot.rom", "/usr/share/qemu/bios-microvm.bin",
                 "/usr/share/qemu/pvh.bin", "/usr/share/qemu/multiboot_dma.bin"]


def require_plain_build():
    """The nested tests run the binaries inside the outer guest, where sanitizer reports
    would not reach tests/run: against the ASan/UBSan build they say so and skip."""
    if os.environ.get("ASAN_OPTIONS") or os.environ.get("UBSAN_OPTIONS"):
        h.skip("not run against the sanitizer build (reports written inside the nested "
               "host would not reach tests/run); the plain e2e pass runs it")


def vswitch_files():
    """vswitchd and vswitchctl as /usr/bin/{vswitchd,vswitchctl} (libraries follow)."""
    return {"/usr/bin/vswitchd": h.VSWITCHD, "/usr/bin/vswitchctl": h.VSWITCHCTL}


def vmm_files():
    return {"/usr/bin/vmm": os.path.join(h.BUILD, "vmm", "vmm")}


def guest_files(guest_dir=None):
    """The inner guests' kernel (bzImage) and initramfs: /guest/vmlinuz, /guest/initrd.gz."""
    gd = guest_dir or h.GUEST_DIR
    if not os.path.exists(os.path.join(gd, "initrd.gz")):
        h.require_guest()
    return {"/guest/vmlinuz": os.path.join(gd, "vmlinuz"),
            "/guest/initrd.gz": os.path.join(gd, "initrd.gz")}


def inner_cmdline(ip=None, mac=None, run=None, hostname=None, poweroff=False, extra=""):
    """A kernel command line for an inner lab guest; `run` is a sh script for vs.run."""
    a = ["console=ttyS0", "panic=-1", "loglevel=4"]
    for k, v in (("ip", ip), ("mac", mac), ("hostname", hostname)):
        if v:
            a.append(f"vs.{k}={v}")
    if run:
        a.append("vs.run=" + base64.b64encode(run.encode()).decode())
    if poweroff:
        a.append("vs.poweroff=1")
    if extra:
        a.append(extra)
    return " ".join(a)


# ---------------------------------------------------------------- the outer initramfs


def kernel_modules(names=KVM_MODULES, guest_dir=None):
    """{name: path} of modules of the lab guest's kernel, unpacked (once, cached in
    build/nested/) from the same .deb vmm/guest/mkguest.sh downloaded."""
    gd = guest_dir or h.GUEST_DIR
    if not os.path.exists(os.path.join(gd, "kernel-version")):
        h.require_guest()
    kver = open(os.path.join(gd, "kernel-version")).read().strip()
    debs = sorted(f for f in os.listdir(os.path.join(gd, "deb"))
                  if f.startswith(f"linux-image-{kver}_") and f.endswith(".deb"))
    if not debs:
        h.fail(f"no linux-image-{kver} .deb in {gd}/deb (run vmm/guest/mkguest.sh)")
    cache = os.path.join(NESTED_DIR, f"modules-{kver}")
    out = {n: os.path.join(cache, f"{n}.ko") for n in names}
    if all(os.path.exists(p) for p in out.values()):
        return out
    tmp = h.tempdir("vs-kpkg-")
    h.sh(["dpkg-deb", "-x", os.path.join(gd, "deb", debs[-1]), tmp], timeout=120)
    os.makedirs(cache, exist_ok=True)
    moddir = os.path.join(tmp, "lib", "modules", kver)
    found = {}
    for dirpath, _, files in os.walk(moddir):
        for f in files:
            if f.endswith(".ko"):
                found.setdefault(f[:-3], os.path.join(dirpath, f))
    for n in names:
        if n not in found:
            h.fail(f"module {n} is not in {debs[-1]}")
        with open(found[n], "rb") as src, open(out[n] + ".tmp", "wb") as dst:
            dst.write(src.read())
        os.rename(out[n] + ".tmp", out[n])
    return out


def _is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def shared_libs(path):
    """Absolute paths of the shared libraries (and loader) an ELF needs, per ldd."""
    r = subprocess.run(["ldd", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=30)
    libs = []
    for line in r.stdout.splitlines():
        m = re.search(r"=>\s*(/\S+)", line) or re.match(r"\s*(/\S+)", line)
        if m:
            libs.append(m.group(1))
    if "not found" in r.stdout:
        h.fail(f"ldd {path}: missing libraries:\n{r.stdout}")
    return libs


class _Cpio:
    """A newc cpio archive written as it goes (what the kernel unpacks)."""

    def __init__(self, path):
        self.f = open(path, "wb")
        self.ino = 1000
        self.dirs = set()

    def _entry(self, name, mode, data=b"", size=None, src=None):
        name = name.lstrip("/")
        size = len(data) if size is None else size
        self.ino += 1
        nb = name.encode() + b"\0"
        fields = [self.ino, mode, 0, 0, 2 if stat.S_ISDIR(mode) else 1, int(time.time()),
                  size, 0, 0, 0, 0, len(nb), 0]
        hdr = b"070701" + b"".join(b"%08X" % v for v in fields)
        self.f.write(hdr + nb + b"\0" * ((4 - (len(hdr) + len(nb)) % 4) % 4))
        if src:
            with open(src, "rb") as s:
                while True:
                    b = s.read(1 << 20)
                    if not b:
                        break
                    self.f.write(b)
        else:
            self.f.write(data)
        self.f.write(b"\0" * ((4 - size % 4) % 4))

    def mkdirs(self, path):
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d and d not in self.dirs:
                self.dirs.add(d)
                self._entry(d, stat.S_IFDIR | 0o755)

    def add_file(self, dest, src=None, data=None, mode=None):
        self.mkdirs(os.path.dirname(dest))
        if src is not None:
            st = os.stat(src)
            m = mode if mode is not None else (st.st_mode & 0o7777)
            self._entry(dest, stat.S_IFREG | m, size=st.st_size, src=src)
        else:
            data = data.encode() if isinstance(data, str) else data
            self._entry(dest, stat.S_IFREG | (mode if mode is not None else 0o644), data)

    def close(self):
        self._entry("TRAILER!!!", 0)
        self.f.write(b"\0" * ((512 - self.f.tell() % 512) % 512))
        self.f.close()


def build_initramfs(out, files, qemu=False, guest_dir=None):
    """The outer guest's initramfs at `out`: the lab guest's initrd.gz, then (at a
    4-byte boundary) an uncompressed cpio with the KVM modules, /etc/modules.order,
    `files` {dest: src} and the libraries of every ELF among them. Returns the
    total bytes of that second part (it is unpacked into the outer guest's RAM)."""
    gd = guest_dir or h.GUEST_DIR
    if not os.path.exists(os.path.join(gd, "initrd.gz")):
        h.require_guest()
    mods = kernel_modules(guest_dir=gd)
    files = dict(files)
    if qemu:
        files["/usr/bin/qemu-system-x86_64"] = h.QEMU
        for fw in QEMU_FIRMWARE:
            if os.path.exists(fw):
                files[fw] = fw
    for dest, src in files.items():
        if not os.path.isfile(src):
            h.fail(f"NestedHost: {src} (for {dest}) does not exist")
    libs = {}
    for src in files.values():
        if _is_elf(src):
            for lib in shared_libs(src):
                libs[lib] = lib
    overlay = out + ".overlay"
    c = _Cpio(overlay)
    c.add_file("/etc/modules.order", data="\n".join(KVM_MODULES) + "\n")
    for n in KVM_MODULES:
        c.add_file(f"/lib/modules/{n}.ko", src=mods[n])
    for lib in sorted(libs):
        if lib not in files:
            c.add_file(lib, src=os.path.realpath(lib))
    for dest, src in sorted(files.items()):
        c.add_file(dest, src=src)
    c.close()
    size = os.path.getsize(overlay)
    with open(out, "wb") as f:
        with open(os.path.join(gd, "initrd.gz"), "rb") as base:
            f.write(base.read())
        f.write(b"\0" * ((4 - f.tell() % 4) % 4))  # an appended cpio must be 4-aligned
        with open(overlay, "rb") as o:
            while True:
                b = o.read(1 << 20)
                if not b:
                    break
                f.write(b)
    os.unlink(overlay)
    return size


# ---------------------------------------------------------------- the outer guest


class InnerProc:
    """A background process inside the outer guest (see NestedHost.start)."""

    def __init__(self, host, name, pid, log):
        self.host, self.name, self.pid, self.log = host, name, pid, log

    def alive(self):
        rc, out = self.host.run(f"kill -0 {self.pid} 2>/dev/null && echo yes", timeout=10)
        return "yes" in out

    def output(self, tail=None):
        cmd = f"tail -n {int(tail)} {self.log}" if tail else f"cat {self.log}"
        return self.host.run(cmd + " 2>/dev/null", timeout=20)[1]

    def signal(self, sig="TERM"):
        """Signal its process group (start() makes it a session leader)."""
        self.host.run(f"kill -{sig} -{self.pid} 2>/dev/null; kill -{sig} {self.pid} 2>/dev/null",
                      timeout=10)

    def stop(self, wait=10):
        """SIGTERM, wait, then SIGKILL. True if it is gone."""
        self.signal("TERM")
        rc, out = self.host.run(
            f"i=0; while kill -0 {self.pid} 2>/dev/null && [ $i -lt {wait * 10} ]; do "
            f"usleep 100000; i=$((i+1)); done; kill -0 {self.pid} 2>/dev/null && "
            f"{{ kill -KILL -{self.pid}; kill -KILL {self.pid}; echo killed; }}; true",
            timeout=wait + 10)
        return True

    def kill(self):
        self.signal("KILL")

    def why(self):
        """One line on how it is doing, for a failure or skip reason: running or
        exited, the tail of its output and (for start_vm) of its console."""
        st = self.host.run(f"kill -0 {self.pid} 2>/dev/null && echo running || echo exited",
                           timeout=10)[1].strip()
        err = " | ".join(ln for ln in self.output(tail=6).splitlines() if ln.strip())[-400:]
        s = f"{st}; output: {err or '(none)'}"
        if getattr(self, "console", None):
            con = " | ".join(ln for ln in self.host.read(self.console, tail=4).splitlines()
                             if ln.strip())
            s += f"; console: {con[-300:] or '(empty)'}"
        return s

    def reset_before_output(self):
        """Whether its VMM is gone and its console is empty: the guest reset (a
        triple fault; QEMU with -no-reboot then exits quietly) before printing."""
        con = getattr(self, "console", None)
        return bool(con) and not self.alive() and not self.host.read(con).strip()

    def boot_failure(self, timeout):
        """The sentence for a guest that did not reach /init within timeout."""
        if self.reset_before_output():
            return (f"{self.name} reset before printing anything (its VMM exited, "
                    f"console empty): {self.why()}")
        return f"{self.name} did not reach /init within {timeout}s: {self.why()}"

    def memory(self):
        """{VmRSS, RssAnon, RssFile, RssShmem, memfd, own} in KiB: the /proc status
        lines, the resident part of its memfd mappings (guest RAM: /memfd:* in smaps)
        and own = VmRSS - memfd (what the VMM itself holds; note that binaries run
        from the initramfs are tmpfs pages, counted in RssShmem, not RssFile)."""
        rc, out = self.host.run(
            f"grep -E '^(VmRSS|RssAnon|RssFile|RssShmem):' /proc/{self.pid}/status; "
            f"awk '/^[0-9a-f]+-[0-9a-f]+ /{{m=($6 ~ /^\\/memfd:/)}} "
            f"/^Rss:/{{if (m) g+=$2}} END{{print \"memfd: \" g+0}}' /proc/{self.pid}/smaps",
            timeout=20)
        d = {k: int(v) for k, v in re.findall(r"^(\w+):\s+(\d+)", out, re.M)}
        if "VmRSS" in d and "memfd" in d:
            d["own"] = d["VmRSS"] - d["memfd"]
        return d


# An inner guest that resets before its first console line. Seen with our VMM
# (a triple fault at the reset vector) and with QEMU 7.2 as the inner VMM (it
# exits under -no-reboot with an empty console), on a few percent of boots,
# inside the same outer guest that boots the other inner guest fine: TCG's
# emulation of nested SVM, not the VMM. Worth one more run, named.
INNER_RESET = r"triple fault|reset before printing anything"

# What the outer guest's kernel prints when it dies under TCG's emulation of
# nested SVM (seen ~1 run in 4, with QEMU and with our VMM as the inner VMM).
OUTER_CRASH = re.compile(r"Kernel panic|stack guard page|corrupted stack end|"
                         r"general protection|BUG: |Oops")
HOSTS = []  # every NestedHost made, newest last


def outer_died(host):
    """Whether the outer guest itself is gone: exited, crashed, or deaf."""
    if not host.proc.alive() or OUTER_CRASH.search(host.console()):
        return True
    try:
        return host.run("true", timeout=15)[0] != 0
    except h.Fail:
        return True


def inner_reset(host):
    """The name of an inner guest whose VMM is gone after the guest reset itself
    (our VMM says "triple fault"; QEMU under -no-reboot exits quietly, seen as an
    empty console), or None."""
    for vm in getattr(host, "vms", []):
        try:
            if not vm.alive() and (re.search(r"triple fault", vm.output(tail=20))
                                   or vm.reset_before_output()):
                return vm.name
        except h.Fail:
            return None
    return None


def retry_if_outer_dies(scenario, also=None, attempts=3):
    """Runs scenario() again (up to `attempts` runs in all) when it failed because
    the OUTER guest died under it, which says nothing about what the scenario
    tests, saying so. `also`: a regex of known intermittent failures of the
    nested emulation worth another run, each named in the output; with it, an
    inner guest found reset (inner_reset) counts too, whatever step noticed it.
    When every run lost its outer guest, nesting is not reliably available here:
    "not run". Any other failure fails at once."""
    deaths = 0
    for attempt in range(1, attempts + 1):
        HOSTS.clear()
        try:
            return scenario()
        except h.Fail as e:
            host = HOSTS[-1] if HOSTS else None
            died = host is not None and outer_died(host)
            deaths += died
            reset = None
            if not died and also is not None:
                reset = inner_reset(host) if host else None
                if reset is None and re.search(also, str(e)):
                    reset = "an inner guest"
            if not died and reset is None:
                raise
            if attempt == attempts:
                if deaths == attempts:
                    h.skip("not run: the outer guest (TCG's nested SVM) died under the "
                           f"scenario {attempts} times; last: {str(e).splitlines()[0]}")
                raise
            what = "the outer guest died" if died else f"{reset} reset itself (nested SVM)"
            h.step(f"{what} ({str(e).splitlines()[0]}); the outer console:\n"
                   + "\n".join(host.console().splitlines()[-12:] if host else [])
                   + "\nrunning the scenario again")
            if host:
                host.kill()


class NestedHost(h.QemuGuest):
    """An outer QEMU TCG guest with real KVM inside (AMD SVM, nested paging).

        NestedHost(memory_mb, files={dest: src}, qemu=False, smp=2)

    memory_mb must hold ~100 MB + 2x the unpacked initramfs + the inner guests' RAM.
    files: {path inside: path here}; ELF files bring their shared libraries.
    qemu=True adds qemu-system-x86_64, its libraries and the firmware it needs.

    After construction the outer guest has booted (boot_seconds: from QEMU start to
    its agent) and has tried to load the KVM modules; kvm_ok / kvm_reason say whether
    /dev/kvm is there; require_kvm() raises harness.Skip("not run: ...") if not.
    run(cmd, timeout) -> (rc, output), check(cmd), start(cmd, name) -> InnerProc,
    read(path), write(path, data), kill(). Everything is cleaned up at exit.
    """

    def __init__(self, memory_mb=1024, files=None, qemu=False, smp=None, name=None,
                 boot_timeout=120, max_seconds=1800, cmdline="", guest_dir=None):
        h.require_binaries(h.QEMU)
        smp = smp or int(os.environ.get("NESTED_SMP", "2"))
        self.smp = smp
        self.name = name or h.uniq("nested", 30)
        HOSTS.append(self)
        gd = guest_dir or h.GUEST_DIR
        if not os.path.exists(os.path.join(gd, "initrd.gz")):
            h.require_guest()
        vmlinux = os.path.join(gd, "vmlinux")
        kernel = vmlinux if os.path.exists(vmlinux) else os.path.join(gd, "vmlinuz")
        self.dir = h.tempdir(f"vs-{self.name}-")
        self.console_path = os.path.join(self.dir, "console.log")
        self.cmd_sock = os.path.join(self.dir, "cmd.sock")
        self.qemu_log = os.path.join(self.dir, "qemu.log")
        self.initrd = os.path.join(self.dir, "initrd")
        t0 = time.monotonic()
        self.overlay_bytes = build_initramfs(self.initrd, files or {}, qemu=qemu, guest_dir=gd)
        self.initramfs_seconds = time.monotonic() - t0
        # loglevel=7: the kernel's messages land in the console file until /init's
        # `dmesg -n 1` (they cost nothing under TCG and show where a boot stopped).
        append = ["console=ttyS0", "panic=-1", "loglevel=7", f"vs.hostname={self.name}",
                  "vs.nonet=1", "mitigations=off"]
        if cmdline:
            append.append(cmdline)
        self.argv = [h.QEMU, "-accel", "tcg", "-cpu", "max", "-m", f"{int(memory_mb)}M",
                     "-smp", str(int(smp)), "-nodefaults", "-no-user-config", "-display", "none",
                     "-vga", "none", "-no-reboot",
                     "-kernel", kernel, "-initrd", self.initrd, "-append", " ".join(append),
                     "-chardev", f"file,id=con,path={self.console_path}",
                     "-serial", "chardev:con",
                     "-chardev", f"socket,id=cmd,path={self.cmd_sock},server=on,wait=on",
                     "-serial", "chardev:cmd"]
        self._ids = itertools.count(1)
        self._bg = itertools.count(1)
        self.boot_attempts = 0
        h.on_failure(self._dump)
        # A TCG boot of the outer guest has been seen to hang (rarely, console empty):
        # one more try, with the first attempt's console shown.
        for attempt in (1, 2):
            self.boot_attempts = attempt
            try:
                self._boot(max_seconds, boot_timeout if attempt == 2 else min(boot_timeout, 90))
                break
            except h.Fail as e:
                if attempt == 2:
                    raise
                h.step(f"{self.name}: outer boot attempt 1 failed ({e}); console tail:\n"
                       + "\n".join(self.console().splitlines()[-15:]) + "\nretrying")
                self.kill()
                for f in (self.console_path, self.cmd_sock):
                    if os.path.exists(f):
                        os.unlink(f)
        self._probe_kvm()

    def _boot(self, max_seconds, boot_timeout):
        self.proc = h.Proc(self.argv, f"qemu-{self.name}", log=self.qemu_log,
                           max_seconds=max_seconds)
        self.t_start = time.monotonic()
        self.boot_seconds = None
        self._sock = None
        self._buf = b""
        h.wait_for(lambda: os.path.exists(self.cmd_sock) or not self.proc.alive(), 30,
                   f"{self.name} command socket")
        if not self.proc.alive():
            h.fail(f"qemu for {self.name} exited:\n{self.proc.tail(20)}")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        h.wait_for(lambda: self._try_connect(), 10, f"{self.name} command socket connect")
        self.wait_booted(boot_timeout)

    def _probe_kvm(self):
        rc, out = self.run(
            "if [ -c /dev/kvm ]; then echo KVM-OK; else echo KVM-MISSING; fi; "
            "grep -c -w svm /proc/cpuinfo | sed 's/^/svm-cpus=/'; "
            "for m in /sys/module/kvm /sys/module/kvm_amd; do [ -d $m ] && echo loaded=$m; done; "
            "dmesg | grep -i -E 'kvm|svm' | tail -n 5", timeout=30)
        self.kvm_ok = "KVM-OK" in out
        self.kvm_report = out.strip()
        if self.kvm_ok:
            self.kvm_reason = ""
        else:
            m = re.search(r"svm-cpus=(\d+)", out)
            if m and m.group(1) == "0":
                why = "the outer CPU (qemu -cpu max, TCG) shows no SVM"
            elif "loaded=/sys/module/kvm_amd" not in out:
                why = "kvm-amd.ko did not load"
            else:
                why = "kvm-amd loaded but /dev/kvm is missing"
            self.kvm_reason = f"no /dev/kvm in the nested host: {why} ({out.strip()[-300:]})"

    def require_kvm(self):
        if not self.kvm_ok:
            h.skip(f"not run: {self.kvm_reason}")

    def start(self, cmd, name=None):
        """Start `cmd` (sh) in the background in its own session, output to
        /tmp/bg/NAME.log inside. Returns an InnerProc."""
        name = name or f"bg{next(self._bg)}"
        log = f"/tmp/bg/{name}.log"
        rc, out = self.run(
            f"mkdir -p /tmp/bg; setsid sh -c {shlex.quote(cmd)} >{log} 2>&1 </dev/null & "
            f"echo PID=$!", timeout=15)
        m = re.search(r"PID=(\d+)", out)
        if rc != 0 or not m:
            h.fail(f"{self.name}: could not start {cmd!r}: rc={rc} {out}")
        return InnerProc(self, name, int(m.group(1)), log)

    def start_vm(self, cmd, console, name, marker=INIT_MARKER):
        """Start a VMM command line in the background (like start()) and, beside it,
        a watcher that notes the outer guest's uptime when the VMM starts and when
        `marker` first appears in its console file `console` (removed first). The
        returned InnerProc's pid is the VMM's own (the command is exec'd).
        boot_seconds(vm) then gives the time from VMM start to the guest's /init."""
        times = f"/tmp/bg/{name}.times"
        watch = (f"while ! grep -q -F {shlex.quote(marker)} {console} 2>/dev/null; do "
                 f"kill -0 $P 2>/dev/null || {{ echo exited >> {times}; exit 0; }}; usleep 10000; done; "
                 f"echo \"init $(cut -d' ' -f1 /proc/uptime)\" >> {times}")
        rc, out = self.run(
            f"mkdir -p /tmp/bg; rm -f {console} {times}; "
            f"echo \"start $(cut -d' ' -f1 /proc/uptime)\" > {times}; "
            f"setsid sh -c {shlex.quote('exec ' + cmd)} >/tmp/bg/{name}.log 2>&1 </dev/null & P=$!; "
            f"P=$P setsid sh -c {shlex.quote(watch)} >/dev/null 2>&1 </dev/null & "
            f"echo PID=$P", timeout=15)
        m = re.search(r"PID=(\d+)", out)
        if rc != 0 or not m:
            h.fail(f"{self.name}: could not start {cmd!r}: rc={rc} {out}")
        p = InnerProc(self, name, int(m.group(1)), f"/tmp/bg/{name}.log")
        p.console, p.times = console, times
        self.vms = getattr(self, "vms", []) + [p]
        return p

    def boot_seconds_of(self, vm, timeout=60):
        """Seconds from the VMM's start to its guest's /init marker (None: not
        within timeout, or the VMM exited first)."""
        out = self.wait_file(vm.times, "^(init |exited)", timeout)
        if out is None:
            return None
        t = dict(re.findall(r"^(start|init) ([\d.]+)", self.read(vm.times), re.M))
        return float(t["init"]) - float(t["start"]) if "init" in t else None

    def read(self, path, tail=None):
        cmd = f"tail -n {int(tail)} {shlex.quote(path)}" if tail else f"cat {shlex.quote(path)}"
        return self.run(cmd + " 2>/dev/null", timeout=30)[1]

    def write(self, path, data, mode=0o644):
        """Write a small file inside (goes over the serial channel: keep it small)."""
        b = data.encode() if isinstance(data, str) else data
        b64 = base64.b64encode(b).decode()
        self.check(f"mkdir -p $(dirname {shlex.quote(path)}); echo {b64} | base64 -d > "
                   f"{shlex.quote(path)}; chmod {mode:o} {shlex.quote(path)}", timeout=30)

    def wait_file(self, path, pattern, timeout, interval=0.2):
        """Wait (inside) until the regex `pattern` (grep -E) appears in `path`; returns
        the matching lines, or None on timeout. One round trip, polled inside."""
        n = max(1, int(timeout / interval))
        rc, out = self.run(
            f"i=0; while [ $i -lt {n} ]; do grep -E {shlex.quote(pattern)} {shlex.quote(path)} "
            f"2>/dev/null && exit 0; usleep {int(interval * 1e6)}; i=$((i+1)); done; exit 1",
            timeout=timeout + 10)
        return out if rc == 0 else None

    def meminfo(self):
        rc, out = self.run("cat /proc/meminfo", timeout=10)
        return {k: int(v) for k, v in re.findall(r"^(\w+):\s+(\d+)", out, re.M)}

    def _dump(self):
        print(f"---- {self.name} (nested host) console (last 40 lines) ----")
        print("\n".join(self.console().splitlines()[-40:]))
        q = self.proc.tail(10)
        if q.strip():
            print(f"---- {self.name} qemu stderr ----\n{q}")
        print(f"---- end of {self.name} ----", flush=True)
