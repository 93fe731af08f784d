"""A small library for vswitch end-to-end tests (python3 stdlib only).

A test is an executable script tests/e2e/test_*.py that exits 0 (pass), 1 (fail) or
77 (skipped, with the reason printed). The usual shape:

    #!/usr/bin/python3
    import harness as h

    def test():
        h.require_root()
        ns = h.NetNS()                       # deleted on exit, whatever happens
        sw = h.Vswitchd()                    # temp run dir, log shown on failure
        sw.ctl("add-br", "br0")
        ...
        h.step("guests ping each other")     # one progress line per step

    h.main(test)

Everything started here (processes, namespaces, temp dirs) is registered for cleanup,
which runs when main() returns, on an exception, on SIGTERM/SIGINT and at exit.
Every external process runs under a timeout.
"""

import atexit
import base64
import itertools
import json as _json
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("VSWITCH_BUILD", os.path.join(ROOT, "build"))
VSWITCHD = os.path.join(BUILD, "vswitch", "vswitchd")
VSWITCHCTL = os.path.join(BUILD, "ctl", "vswitchctl")
GUEST_DIR = os.environ.get("VSWITCH_GUEST", os.path.join(BUILD, "guest"))
MKGUEST = os.path.join(ROOT, "vmm", "guest", "mkguest.sh")
PYTHON = "/usr/bin/python3"  # the system python, which has scapy
TESTPMD = shutil.which("dpdk-testpmd") or "/usr/bin/dpdk-testpmd"
QEMU = shutil.which("qemu-system-x86_64") or "/usr/bin/qemu-system-x86_64"

SKIP = 77
_T0 = time.monotonic()
_NAME = os.path.splitext(os.path.basename(sys.argv[0]))[0]
_uniq = itertools.count(1)


# ---------------------------------------------------------------- results, steps


class Skip(Exception):
    """Raise (or call skip()) to end the test as skipped (exit 77)."""


class Fail(Exception):
    """A check that did not hold."""


def step(msg):
    """One progress line: '[test_x   3.2s] msg'."""
    print(f"[{_NAME} {time.monotonic() - _T0:6.1f}s] {msg}", flush=True)


def skip(reason):
    raise Skip(reason)


def fail(reason):
    raise Fail(reason)


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def require_root():
    if os.geteuid() != 0:
        skip("needs root (network namespaces, vhost-user sockets)")


def require_binaries(*paths):
    for p in paths:
        if not (os.path.isfile(p) and os.access(p, os.X_OK)) and not shutil.which(p):
            skip(f"{p} not found")


def require_guest():
    """Build the lab guest if it is missing or stale (fast when up to date)."""
    r = subprocess.run([MKGUEST, GUEST_DIR], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=600)
    if r.returncode != 0:
        fail(f"mkguest failed:\n{r.stdout}")
    return GUEST_DIR


def uniq(prefix, maxlen=15):
    """A name unique to this process, short enough for an interface (15 chars)."""
    s = f"{prefix}{os.getpid() % 100000}x{next(_uniq)}"
    return s[-maxlen:] if len(s) > maxlen else s


# ---------------------------------------------------------------- cleanup

_cleanups = []          # LIFO list of (name, fn)
_on_failure = []        # fns that print diagnostics when the test fails
_cleanup_lock = threading.Lock()


def at_cleanup(fn, name=""):
    _cleanups.append((name, fn))
    return fn


def on_failure(fn):
    """Register fn() to print diagnostics (logs) if the test fails."""
    _on_failure.append(fn)


def cleanup():
    with _cleanup_lock:
        while _cleanups:
            name, fn = _cleanups.pop()
            try:
                fn()
            except Exception as e:  # keep cleaning
                print(f"[{_NAME}] cleanup {name}: {e}", file=sys.stderr)


def _on_signal(signum, frame):
    raise SystemExit(128 + signum)


atexit.register(cleanup)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGHUP, _on_signal)


def main(fn):
    """Run a test function: exit 0 pass, 1 fail, 77 skip. Cleanup always runs."""
    rc = 1
    try:
        fn()
        rc = 0
        step("PASS")
    except Skip as e:
        print(f"SKIP: {e}", flush=True)
        rc = SKIP
    except BaseException as e:  # noqa: B902 - includes KeyboardInterrupt/SystemExit
        import traceback
        if isinstance(e, SystemExit):
            print(f"[{_NAME}] interrupted ({e.code})", flush=True)
        elif isinstance(e, Fail):
            print(f"[{_NAME}] FAIL: {e}", flush=True)
        else:
            traceback.print_exc()
            print(f"[{_NAME}] FAIL: {type(e).__name__}: {e}", flush=True)
        for d in _on_failure:
            try:
                d()
            except Exception as e2:
                print(f"[{_NAME}] diagnostics: {e2}", file=sys.stderr)
        rc = 1
    finally:
        cleanup()
    sys.stdout.flush()
    os._exit(rc)


def tempdir(prefix="vs-e2e-"):
    d = tempfile.mkdtemp(prefix=prefix)
    at_cleanup(lambda: shutil.rmtree(d, ignore_errors=True), f"rm {d}")
    return d


# ---------------------------------------------------------------- processes


def sh(cmd, timeout=30, check=True, ns=None, input=None):
    """Run a command (list or shell string), optionally in a netns; return
    CompletedProcess with .stdout (stderr merged). Raises Fail if check and rc != 0."""
    argv = cmd if isinstance(cmd, list) else ["sh", "-c", cmd]
    if ns:
        argv = ["ip", "netns", "exec", ns] + argv
    try:
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=timeout, input=input,
                           stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise Fail(f"timed out after {timeout}s: {shlex.join(argv)}\n{e.output or ''}")
    if check and r.returncode != 0:
        raise Fail(f"rc={r.returncode}: {shlex.join(argv)}\n{r.stdout}")
    return r


class Proc:
    """A background process under `timeout`, in its own process group, output to a
    file, killed at cleanup."""

    def __init__(self, argv, name, ns=None, max_seconds=900, log=None, stdin=False,
                 env=None, kill_signal="TERM"):
        self.name = name
        self.log_path = log or os.path.join(tempdir(f"vs-{name}-"), f"{name}.log")
        full = ["timeout", "-s", kill_signal, "-k", "5", str(int(max_seconds))] + list(argv)
        if ns:
            full = ["ip", "netns", "exec", ns] + full
        self.argv = full
        self._log = open(self.log_path, "ab")
        self.p = subprocess.Popen(full, stdout=self._log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                  start_new_session=True, env=env)
        at_cleanup(self.kill, f"kill {name}")

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p.poll() is None

    def send_signal(self, sig):
        if self.alive():
            try:
                os.killpg(self.p.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, sig=signal.SIGTERM, wait=10):
        """Signal the process group, wait, then SIGKILL. Returns the exit code."""
        self.send_signal(sig)
        try:
            return self.p.wait(wait)
        except subprocess.TimeoutExpired:
            self.send_signal(signal.SIGKILL)
            return self.p.wait(5)

    def kill(self):
        if self.alive():
            self.send_signal(signal.SIGKILL)
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        try:
            self._log.close()
        except Exception:
            pass

    def output(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def tail(self, n=60):
        return "\n".join(self.output().splitlines()[-n:])


def wait_for(pred, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise Fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------- namespaces, veth


class NetNS:
    """A network namespace with a unique name; deleted (and its processes killed) at
    cleanup."""

    def __init__(self, name=None):
        self.name = name or uniq("vst")
        sh(["ip", "netns", "add", self.name])
        at_cleanup(self.delete, f"netns {self.name}")
        sh(["ip", "link", "set", "lo", "up"], ns=self.name)

    def __str__(self):
        return self.name

    def run(self, cmd, timeout=30, check=True, input=None):
        return sh(cmd, timeout=timeout, check=check, ns=self.name, input=input)

    def popen(self, argv, name=None, **kw):
        return Proc(argv, name or f"{self.name}-{os.path.basename(argv[0])}", ns=self.name, **kw)

    def delete(self):
        r = subprocess.run(["ip", "netns", "pids", self.name], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True, timeout=10)
        for pid in r.stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        subprocess.run(["ip", "netns", "del", self.name], stderr=subprocess.DEVNULL, timeout=10)


def veth(ns_a, name_a, ns_b=None, name_b=None, ip_a=None, ip_b=None, mtu=None):
    """Create a veth pair a<->b, move ends into namespaces (None = root ns), bring
    them up, optionally address them. Returns (name_a, name_b)."""
    name_b = name_b or uniq("vb")
    tmp_a, tmp_b = uniq("va"), uniq("vb")
    sh(["ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b])
    # If a namespace is deleted its veth end dies and takes the peer with it; deleting
    # an end in the root namespace is our job.
    at_cleanup(lambda: subprocess.run(["ip", "link", "del", tmp_a], stderr=subprocess.DEVNULL,
                                      timeout=10), f"veth {tmp_a}")
    for tmp, ns, name, ip in ((tmp_a, ns_a, name_a, ip_a), (tmp_b, ns_b, name_b, ip_b)):
        if ns:
            sh(["ip", "link", "set", tmp, "netns", str(ns)])
        nsn = str(ns) if ns else None
        if name != tmp:
            sh(["ip", "link", "set", tmp, "name", name], ns=nsn)
        if mtu:
            sh(["ip", "link", "set", name, "mtu", str(mtu)], ns=nsn)
        sh(["ip", "link", "set", name, "up"], ns=nsn)
        if ip:
            sh(["ip", "addr", "add", ip, "dev", name], ns=nsn)
    return name_a, name_b


# ---------------------------------------------------------------- vswitchd / vswitchctl


class CtlError(Exception):
    def __init__(self, rc, line, argv):
        super().__init__(f"vswitchctl {' '.join(argv)}: rc={rc}: {line}")
        self.rc, self.line = rc, line


def vswitchctl(*args, socket=None, json=True, timeout=15, ns=None):
    """Run vswitchctl; with json=True return the parsed JSON (None for empty
    output), else the text. Raises CtlError with the error line on failure."""
    argv = [VSWITCHCTL]
    if socket:
        argv += ["--socket", socket]
    if json:
        argv.append("--json")
    argv += [str(a) for a in args]
    full = (["ip", "netns", "exec", ns] if ns else []) + argv
    try:
        r = subprocess.run(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise CtlError(-1, f"timed out after {timeout}s", args)
    if r.returncode != 0:
        lines = [ln for ln in (r.stderr + r.stdout).splitlines() if ln.strip()]
        raise CtlError(r.returncode, lines[-1] if lines else "(no output)", args)
    if not json:
        return r.stdout
    return _json.loads(r.stdout) if r.stdout.strip() else None


class Vswitchd:
    """vswitchd in a temp run dir: RUN/vswitchd.sock, RUN/conf.json (or --db none).

        sw = Vswitchd(pmd_threads=1, cpu=1)
        sw.ctl("add-br", "br0"); sw.ctl("show", json=False)
        sw.kill(); sw.restart()
    """

    def __init__(self, ns=None, db=True, pmd_threads=None, cpu=None, extra=(),
                 log_level="debug", start=True, ready_timeout=15):
        self.ns = str(ns) if ns else None
        self.dir = tempdir("vs-vswitchd-")
        self.socket = os.path.join(self.dir, "vswitchd.sock")
        self.db = os.path.join(self.dir, "conf.json") if db is True else (db or "none")
        self.run_dir = os.path.join(self.dir, "run")
        os.makedirs(self.run_dir, exist_ok=True)
        self.log_path = os.path.join(self.dir, "vswitchd.log")
        self.pmd_threads, self.cpu, self.extra = pmd_threads, cpu, list(extra)
        self.log_level, self.ready_timeout = log_level, ready_timeout
        self.proc = None
        self.starts = 0
        on_failure(self._dump_log)
        if start:
            self.start()

    def argv(self):
        a = [VSWITCHD, "--socket", self.socket, "--db", self.db, "--run-dir", self.run_dir,
             "--log-level", self.log_level]
        if self.pmd_threads is not None:
            a += ["--pmd-threads", str(self.pmd_threads)]
        a += self.extra
        if self.cpu is not None:
            a = ["taskset", "-c", str(self.cpu)] + a
        return a

    def start(self):
        if not os.access(VSWITCHD, os.X_OK):
            fail(f"{VSWITCHD} not built")
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        with open(self.log_path, "ab") as f:
            f.write(f"==== start #{self.starts + 1}: {shlex.join(self.argv())}\n".encode())
        self.proc = Proc(self.argv(), "vswitchd", ns=self.ns, log=self.log_path, max_seconds=3600)
        self.starts += 1
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if not self.proc.alive():
                fail(f"vswitchd exited (rc={self.proc.p.returncode}) before its control "
                     f"socket appeared:\n{self.proc.tail(30)}")
            if self._socket_ready():
                return self
            time.sleep(0.05)
        fail(f"vswitchd control socket {self.socket} not ready after {self.ready_timeout}s")

    def _socket_ready(self):
        if not os.path.exists(self.socket):
            return False
        if self.ns:  # a unix socket path is reachable from any netns
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(self.socket)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def daemon_pid(self):
        """vswitchd's own pid (self.proc.pid is the `timeout` it runs under), for
        /proc/PID/fd, maps, status; None if it is not running."""
        pid = self.proc.pid if self.proc else None
        for _ in range(3):
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() == "vswitchd":
                        return pid
                with open(f"/proc/{pid}/task/{pid}/children") as f:
                    kids = f.read().split()
            except (FileNotFoundError, TypeError):
                return None
            if not kids:
                return None
            pid = int(kids[0])
        return None

    def kill(self):
        """kill -9, as a crash would."""
        if self.proc:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.p.wait(10)

    def stop(self):
        return self.proc.stop(signal.SIGTERM) if self.proc else None

    def restart(self, kill=True):
        self.kill() if kill else self.stop()
        return self.start()

    def ctl(self, *args, json=True, timeout=15):
        return vswitchctl(*args, socket=self.socket, json=json, timeout=timeout)

    def port_socket(self, port):
        """Where a server-mode vhost-user port without socket= listens."""
        return os.path.join(self.run_dir, f"{port}.sock")

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def _dump_log(self):
        lines = self.log().splitlines()
        print(f"---- vswitchd log ({self.log_path}, last 80 of {len(lines)} lines) ----")
        print("\n".join(lines[-80:]))
        print("---- end of vswitchd log ----", flush=True)


# ---------------------------------------------------------------- DPDK testpmd

_prefix_count = itertools.count(1)


def virtio_user_vdev(idx, path, server=False, queues=1, queue_size=None, extra=""):
    """A virtio-user (frontend, 'guest') port on the vhost-user socket PATH."""
    s = f"net_virtio_user{idx},path={path},queues={queues}"
    if server:
        s += ",server=1"
    if queue_size:
        s += f",queue_size={queue_size}"
    return s + (f",{extra}" if extra else "")


def vhost_vdev(idx, path, client=False, queues=1, extra=""):
    """A net_vhost (backend, 'switch') port on the vhost-user socket PATH."""
    s = f"net_vhost{idx},iface={path},queues={queues}"
    if client:
        s += ",client=1"
    return s + (f",{extra}" if extra else "")


_STATS_RE = re.compile(r"NIC statistics for port (\d+)\s*#+[ \t]*\n(.*?)#{20,}", re.S)


def parse_port_stats(text):
    """Parse `show port stats` output: {port: {rx_packets, tx_packets, rx_bytes,
    tx_bytes, rx_missed, rx_errors, tx_errors, rx_nombuf, rx_pps, tx_pps}}. When the
    text holds several reports for a port, the last wins."""
    keys = {"RX-packets": "rx_packets", "RX-missed": "rx_missed", "RX-bytes": "rx_bytes",
            "RX-errors": "rx_errors", "RX-nombuf": "rx_nombuf", "TX-packets": "tx_packets",
            "TX-errors": "tx_errors", "TX-bytes": "tx_bytes", "Rx-pps": "rx_pps",
            "Tx-pps": "tx_pps", "Rx-bps": "rx_bps", "Tx-bps": "tx_bps"}
    out = {}
    for m in _STATS_RE.finditer(text):
        d = {}
        for k, v in re.findall(r"([RT]X-[a-z]+|[RT]x-[a-z]+):\s*(\d+)", m.group(2)):
            if k in keys:
                d[keys[k]] = int(v)
        out[int(m.group(1))] = d
    return out


class Testpmd:
    """dpdk-testpmd with the given vdevs, always under timeout, killed at cleanup.

    interactive=True (default): commands on stdin, `cmd()` returns the output up to
    the next prompt. wait=False returns at once (see wait_ready()). Otherwise it runs --auto-start with --stats-period 1.

        tp = Testpmd([virtio_user_vdev(0, sock)], forward_mode="txonly", lcores="0@1,1@1")
        tp.start(); time.sleep(2); tp.stats()[0]["tx_packets"]; tp.close()
    """

    PROMPT = "testpmd> "

    def __init__(self, vdevs, forward_mode="io", lcores="0@1,1@1", nb_cores=1,
                 interactive=True, huge=False, mem=1024, txpkts=64, extra_eal=(),
                 extra_app=(), max_seconds=600, name="testpmd", ready_timeout=30,
                 wait=True):
        self.name = name
        self.prefix = f"vst{os.getpid()}_{next(_prefix_count)}"
        eal = ["--no-pci", f"--file-prefix={self.prefix}", "--iova-mode=va", "-m", str(mem),
               "--lcores", lcores, "--log-level=user1,info"]
        eal += ["--in-memory", "--single-file-segments"] if huge else ["--no-huge"]
        for v in vdevs:
            eal += ["--vdev", v]
        eal += list(extra_eal)
        app = [f"--nb-cores={nb_cores}", f"--forward-mode={forward_mode}",
               "--total-num-mbufs=16384", f"--txpkts={txpkts}"]
        if interactive:
            app.insert(0, "-i")
        else:
            app += ["--auto-start", "--stats-period", "1"]
        app += list(extra_app)
        self.argv = [TESTPMD] + eal + ["--"] + app
        self.interactive = interactive
        self._buf = ""
        self._cv = threading.Condition()
        self.log_path = os.path.join(tempdir(f"vs-{name}-"), f"{name}.log")
        self._log = open(self.log_path, "w")
        # stdout is a pipe: unbuffer it, or replies sit in stdio while the prompt (write(2)) arrives
        full = (["timeout", "-s", "INT", "-k", "5", str(int(max_seconds)), "stdbuf", "-o0",
                 "-e0"] + self.argv)
        self.p = subprocess.Popen(full, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        at_cleanup(self.kill, f"kill {name}")
        on_failure(self._dump_log)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.ready_timeout = ready_timeout
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout=None):
        """Wait for the first prompt (or, non-interactive, for forwarding to start).
        A virtio-user port with server=1 blocks testpmd's start until its peer
        connects: create such a Testpmd with wait=False, start the peer, then call
        this."""
        t = timeout or self.ready_timeout
        if self.interactive:
            self.wait_prompt(t)
        else:
            self.wait_output("Press enter to exit|Start automatic", t)
        return self

    def _read(self):
        fd = self.p.stdout.fileno()
        while True:
            try:
                b = os.read(fd, 65536)
            except OSError:
                b = b""
            if not b:
                break
            s = b.decode(errors="replace")
            self._log.write(s)
            self._log.flush()
            with self._cv:
                self._buf += s
                self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()

    def output(self):
        with self._cv:
            return self._buf

    def wait_output(self, pattern, timeout, start=0):
        """Wait until regex `pattern` appears in output after offset `start`."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                m = rx.search(self._buf, start)
                if m:
                    return m
                if self.p.poll() is not None and not self._reader.is_alive():
                    raise Fail(f"{self.name} exited (rc={self.p.returncode}) while waiting "
                               f"for {pattern!r}:\n{self._buf[-3000:]}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Fail(f"{self.name}: timed out after {timeout}s waiting for "
                               f"{pattern!r}:\n{self._buf[-3000:]}")
                self._cv.wait(min(left, 0.2))

    def wait_prompt(self, timeout=30, start=0):
        m = self.wait_output(re.escape(self.PROMPT), timeout, start)
        return m.end()

    def cmd(self, line, timeout=30):
        """Send one interactive command; return its output (up to the next prompt)."""
        with self._cv:
            start = len(self._buf)
        self.p.stdin.write((line + "\n").encode())
        self.p.stdin.flush()
        end = self.wait_prompt(timeout, start)
        with self._cv:
            return self._buf[start:end - len(self.PROMPT)]

    def start(self, tx_first=None):
        return self.cmd("start" if tx_first is None else f"start tx_first {tx_first}")

    def stop(self):
        return self.cmd("stop")

    def stats(self):
        """{port: {...}} from `show port stats all` (Rx-pps is since the last show)."""
        return parse_port_stats(self.cmd("show port stats all"))

    def close(self, timeout=15):
        """quit (interactive) or SIGINT; returns the full output."""
        if self.p.poll() is None:
            try:
                if self.interactive:
                    self.p.stdin.write(b"quit\n")
                    self.p.stdin.flush()
                else:
                    os.killpg(self.p.pid, signal.SIGINT)
                self.p.wait(timeout)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        self._reader.join(5)
        return self.output()

    def kill(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        # --no-huge/--in-memory leave nothing behind; a hugepage-backed run might.
        for d in (f"/var/run/dpdk/{self.prefix}",):
            shutil.rmtree(d, ignore_errors=True)

    def _dump_log(self):
        print(f"---- {self.name} output (last 40 lines) ----")
        print("\n".join(self.output().splitlines()[-40:]))
        print(f"---- end of {self.name} output ----", flush=True)


# ---------------------------------------------------------------- QEMU guests


class QemuGuest:
    """A lab guest under QEMU TCG with vhost-user NICs.

        g = QemuGuest(nics=[dict(socket=S, mac="52:54:00:00:00:01", server=False)],
                      ip="10.0.10.1/24")
        g.wait_booted()
        rc, out = g.run("ip -br addr")
        g.ping("10.0.10.2")

    nics: list of dicts: socket (path), mac, server (QEMU creates the socket and
    vswitchd connects as client; default False: QEMU connects, reconnect=1).
    Kernel command line gets vs.ip/vs.mac/vs.vlan/vs.gw/vs.dhcp for eth0.
    Command protocol: see vmm/guest/init.sh (ttyS1 via a unix socket).
    """

    def __init__(self, nics, ip=None, vlan=None, gw=None, dhcp=False, mtu=None, mem=256,
                 name=None, cmdline="", max_seconds=900, guest_dir=None, kernel=None):
        self.name = name or uniq("guest", 30)
        gd = guest_dir or GUEST_DIR
        if not os.path.exists(os.path.join(gd, "initrd.gz")):
            require_guest()
        if kernel is None:
            vmlinux = os.path.join(gd, "vmlinux")
            kernel = vmlinux if os.path.exists(vmlinux) else os.path.join(gd, "vmlinuz")
        self.dir = tempdir(f"vs-{self.name}-")
        self.console_path = os.path.join(self.dir, "console.log")
        self.cmd_sock = os.path.join(self.dir, "cmd.sock")
        self.qemu_log = os.path.join(self.dir, "qemu.log")
        mac0 = nics[0].get("mac") if nics else None
        append = ["console=ttyS0", "panic=-1", "loglevel=4", f"vs.hostname={self.name}"]
        for k, v in (("ip", ip), ("mac", mac0), ("vlan", vlan), ("gw", gw), ("mtu", mtu)):
            if v:
                append.append(f"vs.{k}={v}")
        if dhcp:
            append.append("vs.dhcp=1")
        if cmdline:
            append.append(cmdline)
        argv = [QEMU, "-accel", "tcg", "-cpu", "max", "-m", f"{mem}M", "-smp", "1",
                "-nodefaults", "-no-user-config", "-display", "none", "-vga", "none",
                "-no-reboot",
                "-object", f"memory-backend-memfd,id=mem,size={mem}M,share=on",
                "-numa", "node,memdev=mem",
                "-kernel", kernel, "-initrd", os.path.join(gd, "initrd.gz"),
                "-append", " ".join(append),
                "-chardev", f"file,id=con,path={self.console_path}", "-serial", "chardev:con",
                "-chardev", f"socket,id=cmd,path={self.cmd_sock},server=on,wait=on",
                "-serial", "chardev:cmd"]
        for i, n in enumerate(nics):
            if n.get("server"):
                ch = f"socket,id=vu{i},path={n['socket']},server=on,wait=off"
            else:
                ch = f"socket,id=vu{i},path={n['socket']},reconnect=1"
            dev = f"virtio-net-pci,netdev=n{i},vectors=0"
            if n.get("mac"):
                dev += f",mac={n['mac']}"
            argv += ["-chardev", ch, "-netdev", f"vhost-user,id=n{i},chardev=vu{i}",
                     "-device", dev]
        self.argv = argv
        self.proc = Proc(argv, f"qemu-{self.name}", log=self.qemu_log, max_seconds=max_seconds)
        self.t_start = time.monotonic()
        self.boot_seconds = None
        self._sock = None
        self._buf = b""
        self._ids = itertools.count(1)
        on_failure(self._dump)
        # QEMU waits (wait=on) for us on the command socket before it starts the guest.
        wait_for(lambda: os.path.exists(self.cmd_sock) or not self.proc.alive(), 30,
                 f"{self.name} command socket")
        if not self.proc.alive():
            fail(f"qemu for {self.name} exited:\n{self.proc.tail(20)}")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        wait_for(lambda: self._try_connect(), 10, f"{self.name} command socket connect")

    def _try_connect(self):
        try:
            self._sock.connect(self.cmd_sock)
            return True
        except OSError:
            return False

    def _recv_more(self, deadline):
        """Read one chunk into the buffer; False when the deadline passed."""
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if not self.proc.alive():
            raise Fail(f"{self.name}: qemu exited (rc={self.proc.p.returncode})")
        self._sock.settimeout(min(left, 0.5))
        try:
            b = self._sock.recv(65536)
        except socket.timeout:
            return True
        if not b:
            raise Fail(f"{self.name}: command channel closed")
        self._buf += b
        return True

    def _recv_until(self, marker, deadline):
        """Consume the buffer through `marker`; return what preceded it (None on
        timeout)."""
        while marker not in self._buf:
            if not self._recv_more(deadline):
                return None
        i = self._buf.index(marker)
        before, self._buf = self._buf[:i], self._buf[i + len(marker):]
        return before

    def wait_booted(self, timeout=90):
        """Wait for the guest's agent (after networking is set up). Returns seconds
        from QEMU start."""
        if self.boot_seconds is not None:
            return self.boot_seconds
        if self._recv_until(b"@@VS-READY@@\n", time.monotonic() + timeout) is None:
            raise Fail(f"{self.name} did not boot in {timeout}s")
        self.boot_seconds = time.monotonic() - self.t_start
        return self.boot_seconds

    def run(self, cmd, timeout=30):
        """Run a shell command in the guest; return (rc, stdout+stderr). rc 137 when
        it outlived timeout (the guest kills it)."""
        self.wait_booted()
        cid = f"{os.getpid()}-{next(self._ids)}"
        b64 = base64.b64encode(cmd.encode()).decode()
        self._sock.sendall(f"RUN {cid} {int(max(1, timeout))} {b64}\n".encode())
        deadline = time.monotonic() + timeout + 15
        if self._recv_until(f"@@VS-OUT {cid}@@\n".encode(), deadline) is None:
            raise Fail(f"{self.name}: no answer to {cmd!r}")
        end = re.compile(rb"\n@@VS-END " + re.escape(cid.encode()) + rb" (\d+)@@\n")
        while True:
            m = end.search(self._buf)
            if m:
                out = self._buf[:m.start()]
                self._buf = self._buf[m.end():]
                return int(m.group(1)), out.decode(errors="replace")
            if not self._recv_more(deadline):
                raise Fail(f"{self.name}: {cmd!r} did not finish")

    def check(self, cmd, timeout=30):
        """run() that raises Fail on non-zero rc; returns the output."""
        rc, out = self.run(cmd, timeout)
        if rc != 0:
            raise Fail(f"{self.name}: `{cmd}` rc={rc}:\n{out}")
        return out

    def ping(self, ip, count=1, timeout=5):
        rc, _ = self.run(f"ping -c {count} -W {timeout} {ip}", timeout=timeout * count + 5)
        return rc == 0

    def ping_rtt(self, ip, count=5, interval=0.2):
        """Average rtt in ms, or None if no reply."""
        rc, out = self.run(f"ping -c {count} -i {interval} -W 3 {ip}", timeout=count * 4 + 5)
        m = re.search(r"min/avg/max = [\d.]+/([\d.]+)/", out)
        return float(m.group(1)) if rc == 0 and m else None

    def console(self):
        try:
            with open(self.console_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def kill(self):
        self.proc.kill()
        if self._sock:
            self._sock.close()

    def _dump(self):
        print(f"---- {self.name} console (last 30 lines) ----")
        print("\n".join(self.console().splitlines()[-30:]))
        q = self.proc.tail(10)
        if q.strip():
            print(f"---- {self.name} qemu stderr ----\n{q}")
        print(f"---- end of {self.name} ----", flush=True)


# ---------------------------------------------------------------- peers

# A TCP/UDP server (python, run with PYTHON in a namespace) that answers every
# connection or datagram with the address and port it came from, as "IP:PORT":
# what NAT tests check. Arguments: ports, negative for UDP.
ADDR_ECHO_SERVER = r"""
import socket, sys, threading
def tcp(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(16)
    while True:
        c, a = s.accept(); c.sendall(("%s:%d" % a).encode()); c.close()
def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", port))
    while True:
        d, a = s.recvfrom(2048); s.sendto(("%s:%d" % a).encode(), a)
ports = [int(x) for x in sys.argv[1:]]
for p in ports[1:]:
    threading.Thread(target=tcp if p > 0 else udp, args=(abs(p),), daemon=True).start()
(tcp if ports[0] > 0 else udp)(abs(ports[0]))
"""


# ---------------------------------------------------------------- packets (scapy)


def scapy_sendp(ns, iface, expr, count=1, inter=0, timeout=30):
    """Send frames built from a scapy expression (e.g. "Ether(dst='ff:ff:ff:ff:ff:ff')/
    ARP(pdst='10.0.0.1')") out of iface in netns ns, via the system python's scapy."""
    code = ("import sys\nfrom scapy.all import *\nconf.verb=0\n"
            f"p = {expr}\n"
            f"sendp(p, iface={iface!r}, count={int(count)}, inter={float(inter)}, verbose=0)\n")
    sh([PYTHON, "-c", code], ns=str(ns) if ns else None, timeout=timeout)


def scapy_eval(expr, timeout=30):
    """bytes of a scapy expression, built in the system python (e.g. for comparison)."""
    code = ("import sys\nfrom scapy.all import *\n"
            f"sys.stdout.write(bytes({expr}).hex())\n")
    return bytes.fromhex(sh([PYTHON, "-c", code], timeout=timeout).stdout.strip())


def read_pcap(path):
    """[(timestamp, bytes)] of a classic pcap file (stdlib only)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return []
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xa1b2c3d4, 0xa1b23c4d) else ">"
    nano = magic in (0xa1b23c4d, 0x4d3cb2a1)
    pkts, off = [], 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        off += 16
        pkts.append((sec + frac / (1e9 if nano else 1e6), data[off:off + incl]))
        off += incl
    return pkts


class Capture:
    """tcpdump on iface (in netns ns) into a pcap; .stop() returns [bytes].

        with Capture(ns, "veth0", "udp port 9") as cap:
            scapy_sendp(...)
        frames = cap.frames
    """

    def __init__(self, ns, iface, bpf="", count=None, max_seconds=120):
        self.path = os.path.join(tempdir("vs-cap-"), "cap.pcap")
        argv = ["tcpdump", "-i", iface, "-U", "-n", "-w", self.path, "--immediate-mode"]
        if count:
            argv += ["-c", str(count)]
        argv += shlex.split(bpf) if bpf else []
        self.proc = Proc(argv, "tcpdump", ns=str(ns) if ns else None, max_seconds=max_seconds)
        self.frames = []
        wait_for(lambda: "listening on" in self.proc.output() or not self.proc.alive(), 10,
                 "tcpdump to start")
        if not self.proc.alive():
            fail(f"tcpdump failed:\n{self.proc.output()}")

    def stop(self, settle=0.3):
        time.sleep(settle)
        self.proc.stop(signal.SIGINT, wait=5)
        self.frames = [b for _, b in read_pcap(self.path)] if os.path.exists(self.path) else []
        return self.frames

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def mac(i, prefix="52:54:00:5e"):
    """A locally administered MAC for index i: 52:54:00:5e:XX:YY."""
    return f"{prefix}:{(i >> 8) & 0xff:02x}:{i & 0xff:02x}"
