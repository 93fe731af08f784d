#!/usr/bin/python3
"""vswitchctl and vswitchd refuse bad input with one clear line and a non-zero
exit, and nothing changes: not the running configuration, not the db file."""
import hashlib
import os
import subprocess

import harness as h


def run_ctl(sw, *args):
    r = subprocess.run([h.VSWITCHCTL, "--socket", sw.socket] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=15)
    return r.returncode, r.stdout, r.stderr


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test():
    h.require_root()
    sw = h.Vswitchd()
    sw.ctl("add-br", "br0")
    sw.ctl("add-port", "br0", "p1", "type=vhost-user", "tag=10")
    sw.ctl("add-port", "br0", "p2", "type=vhost-user", "trunks=10,20", "native=10")
    base_show = sw.ctl("show")
    base_db = digest(sw.db)
    h.step("br0 with p1 (access 10) and p2 (trunk 10,20 native 10); db written")

    bad = [
        (["add-port", "br0", "p3", "tag=0"], "VLAN"),
        (["add-port", "br0", "p3", "tag=4095"], "VLAN"),
        (["add-port", "br0", "p3", "trunks=10,5000"], "5000"),
        (["add-port", "br0", "p3", "trunks=20-10"], ""),
        (["add-port", "br0", "p3", "vlan_mode=access", "trunks=10"], ""),
        (["add-port", "br0", "p3", "tag=abc"], "abc"),
        (["add-port", "br9", "p3"], "br9"),
        (["add-port", "br0", "p1"], "p1"),
        (["add-port", "br0", "p3", "type=bogus"], "bogus"),
        (["add-port", "br0", "p3", "colour=blue"], "colour"),
        (["add-port", "br0", "p3", "mtu=10"], "mtu"),
        (["add-port", "br0", "p3", "mac=01:00:5e:00:00:01"], "MAC"),
        (["add-port", "br0", "p3", "queues=99"], "queues"),
        (["add-port", "br0", "p3", "type=vhost-user", "socket=/nonexistent/dir/x.sock"],
         "/nonexistent/dir/x.sock"),
        (["add-port", "br0", "p3", "type=vhost-user", "mode=client"], "socket"),
        (["add-port", "br0", "bad/name"], "name"),
        (["add-port", "br0", "p3", "type=tap", "ifname=" + "x" * 20], "ifname"),
        (["add-br", "br0"], "br0"),
        (["add-br", ""], ""),
        (["del-br", "nope"], "nope"),
        (["del-port", "nope"], "nope"),
        (["del-port", "br9", "p1"], "br9"),
        (["set-port", "nope", "tag=5"], "nope"),
        (["set-port", "p1", "tag=5000"], "5000"),
        (["set-port", "p1", "trunks=10"], "vlan_mode"),
        (["set-br", "br0", "ageing=-1"], "ageing"),
        (["fdb-show", "nope"], "nope"),
        (["fdb-show", "br0", "vlan=9999"], "9999"),
        (["fdb-flush", "nope"], "nope"),
        (["port-stats", "nope"], "nope"),
        (["list-ports", "nope"], "nope"),
    ]
    for args, word in bad:
        rc, out, err = run_ctl(sw, *args)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        h.check(rc == 1, f"{args}: exit {rc}, want 1 (stderr {err!r})")
        h.check(len(lines) == 1 and lines[0].startswith("vswitchctl: "),
                f"{args}: want one 'vswitchctl: ...' line, got {err!r}")
        h.check(word.lower() in lines[0].lower(), f"{args}: error does not mention "
                f"{word!r}: {lines[0]}")
        h.check(sw.ctl("show") == base_show, f"{args} changed the configuration")
        h.check(digest(sw.db) == base_db, f"{args} changed the db file")
    h.check(not os.path.exists("/nonexistent/dir"), "a directory was created")
    h.step(f"{len(bad)} bad commands: exit 1, one line each, nothing changed")

    for args in (["frobnicate"], ["add-br"], ["add-port", "br0"], [], ["--bogus", "show"],
                 ["add-port", "br0", "p3", "noequals"]):
        rc, out, err = run_ctl(sw, *args)
        h.check(rc == 2, f"usage error {args}: exit {rc}, want 2 ({err!r})")
    h.step("usage errors exit 2")

    rc = subprocess.run([h.VSWITCHCTL, "--socket", "/nonexistent.sock", "show"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                        timeout=15).returncode
    h.check(rc == 1, f"no daemon: exit {rc}")
    r = subprocess.run([h.VSWITCHCTL, "--socket", "/nonexistent.sock", "show"],
                       stderr=subprocess.PIPE, text=True, timeout=15)
    h.check("/nonexistent.sock" in r.stderr, f"no daemon: {r.stderr!r}")
    h.step(f"no daemon: {r.stderr.strip()}")

    for args in (["--pmd-threads", "0"], ["--log-level", "loud"], ["--frob"], ["extra"]):
        r = subprocess.run([h.VSWITCHD] + args, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=15)
        h.check(r.returncode == 2 and r.stderr.startswith("vswitchd: "),
                f"vswitchd {args}: rc {r.returncode} {r.stderr!r}")
    h.step("vswitchd refuses bad options with exit 2")

    # the good path still works and is persisted
    sw.ctl("set-port", "p1", "tag=11")
    h.check(digest(sw.db) != base_db, "a good change did not reach the db")
    h.check(sw.ctl("list-ports", "br0") == ["p1", "p2"], "list-ports")
    h.check(sw.ctl("list-br") == ["br0"], "list-br")
    sw.ctl("del-br", "br0")
    h.check(sw.ctl("list-br") == [], "del-br")
    h.check(not os.path.exists(sw.port_socket("p1")), "p1's socket left behind")
    h.step("good changes are applied, persisted, and del-br cleans up sockets")


h.main(test)
