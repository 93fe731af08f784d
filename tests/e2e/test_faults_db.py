#!/usr/bin/python3
"""Issue 6, item 3: the db file under faults.

A db damaged on disk (truncated, bytes flipped in the middle, binary garbage,
empty, valid JSON of the wrong shape, a port with an invalid VLAN) is refused:
vswitchd exits non-zero with one line naming the file and the problem, and the
file is byte-identical afterwards, with nothing written beside it.

A full disk while saving (the db on a small tmpfs this test mounts and fills):
add-br / add-port / del-port fail with "cannot save ...: No space left on
device", the running configuration does not change (a connected frontend is
not dropped by a refused del-port), the file is the previous config, no
temporary file is left; once space is freed the next change saves and a
restart restores it."""
import hashlib
import json
import os
import select
import socket
import subprocess

import harness as h


def conf_of(sw):
    """The configured part of `show` (runtime status left out)."""
    out = []
    for br in sw.ctl("show")["bridges"]:
        ports = [{k: v for k, v in p.items() if k != "status"} for p in br["ports"]]
        out.append((br["name"], br.get("ageing"), sorted(ports, key=lambda p: p["name"])))
    return out


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def others(d, keep):
    """Files in d other than keep (a temporary file left behind would show)."""
    return sorted(n for n in os.listdir(d) if n not in keep)


def damaged_variants(good):
    mid = len(good) // 2
    flipped = bytearray(good)
    for i in range(mid - 4, mid + 4):
        flipped[i] ^= 0xFF
    conf = json.loads(good)
    bad_vlan = json.loads(good)
    bad_vlan["ports"][0]["tag"] = 5000
    return [
        ("truncated", good[:mid], "not valid JSON"),
        ("bytes flipped in the middle", bytes(flipped), "not valid JSON"),
        ("binary garbage", bytes(range(256)) * 4, "not valid JSON"),
        ("empty", b"", "is empty"),
        ("valid JSON of the wrong shape", json.dumps([conf]).encode(),
         "not a valid vswitch configuration"),
        ("a port with an invalid VLAN", json.dumps(bad_vlan).encode(), "is not a VLAN"),
    ]


def refuse_damaged(sw):
    sw.stop()
    with open(sw.db, "rb") as f:
        good = f.read()
    d = os.path.dirname(sw.db)
    keep = set(os.listdir(d))
    for what, data, says in damaged_variants(good):
        with open(sw.db, "wb") as f:
            f.write(data)
        before = digest(sw.db)
        r = subprocess.run(sw.argv(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, errors="replace", timeout=20, stdin=subprocess.DEVNULL)
        h.check(r.returncode != 0, f"{what}: vswitchd started on it")
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        h.check(len(lines) == 1, f"{what}: not one line of error: {r.stderr!r}")
        msg = lines[0]
        h.check(sw.db in msg and says in msg,
                f"{what}: the error does not name the file and the problem ({says!r}): {msg!r}")
        h.check(digest(sw.db) == before, f"{what}: the file was modified")
        h.check(others(d, keep) == [], f"{what}: files appeared beside the db: "
                f"{others(d, keep)}")
        h.check(not os.path.exists(sw.socket), f"{what}: the control socket was created")
        h.step(f"{what} ({len(data)} bytes): refused, file unchanged: {msg}")
    with open(sw.db, "wb") as f:
        f.write(good)


def fill(path):
    """Writes to path until the filesystem is full; returns the bytes written."""
    n = 0
    with open(path, "wb", buffering=0) as f:
        block = b"\0" * 4096
        while True:
            try:
                n += f.write(block)
            except OSError as e:
                h.check(e.errno == 28, f"filling the disk: {e}")
                break
        try:
            while f.write(b"\0"):
                n += 1
        except OSError:
            pass
    return n


def connected(sock):
    """True while vswitchd keeps the connection: no EOF readable."""
    r, _, _ = select.select([sock], [], [], 0.2)
    if not r:
        return True
    return sock.recv(1, socket.MSG_PEEK) != b""


def full_disk():
    d = h.tempdir("vs-fulldisk-")
    mnt = os.path.join(d, "db")
    os.mkdir(mnt)
    h.sh(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "vsfaults", mnt])
    h.at_cleanup(lambda: subprocess.run(["umount", "-l", mnt], timeout=20), f"umount {mnt}")
    db = os.path.join(mnt, "conf.json")
    sw = h.Vswitchd(db=db, pmd_threads=1, log_level="info")
    sw.ctl("add-br", "br0")
    sw.ctl("add-port", "br0", "p1", "type=vhost-user", "tag=10")
    sw.ctl("add-port", "br0", "p2", "type=vhost-user", "vlan_mode=trunk", "trunks=10,20")
    # A frontend on p1: vswitchd holds the connection as long as the port lives.
    fe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    fe.connect(sw.port_socket("p1"))
    h.at_cleanup(fe.close, "close frontend")
    conf0 = conf_of(sw)
    sum0 = digest(db)
    filler = os.path.join(mnt, "filler")
    n = fill(filler)
    h.step(f"db on a 256 KiB tmpfs at {mnt}; filled with {n} bytes")

    attempts = [("add-br", "br1"),
                ("add-port", "br0", "p3", "type=vhost-user", "tag=20"),
                ("del-port", "p1"),
                ("set-port", "p2", "trunks=10,20,30")]
    for a in attempts:
        try:
            sw.ctl(*a)
            h.fail(f"vswitchctl {' '.join(a)} succeeded on a full disk")
        except h.CtlError as e:
            h.check("cannot save" in e.line and "No space left on device" in e.line
                    and db in e.line, f"{' '.join(a)}: unclear error: {e.line}")
            msg = e.line
        h.check(conf_of(sw) == conf0, f"{' '.join(a)}: the running config changed")
        h.check(digest(db) == sum0, f"{' '.join(a)}: the db file changed")
        h.check(others(mnt, {"conf.json", "filler"}) == [],
                f"{' '.join(a)}: left behind: {others(mnt, {'conf.json', 'filler'})}")
        h.step(f"full disk: {' '.join(a)} refused: {msg}")
    h.check(not os.path.exists(sw.port_socket("p3")), "p3's socket exists: the add-port ran")
    h.check(connected(fe), "the refused del-port dropped p1's frontend")
    h.check(sw.alive(), "vswitchd died")
    h.step("config, db and p1's frontend connection unchanged; no temporary file")

    os.unlink(filler)
    sw.ctl("add-br", "br1")
    sw.ctl("del-port", "p1")
    h.wait_for(lambda: not connected(fe), 5, "p1's frontend to be dropped by del-port")
    conf1 = conf_of(sw)
    h.check(conf1 != conf0 and others(mnt, {"conf.json"}) == [], "after freeing space")
    with open(db) as f:
        saved = json.load(f)
    h.check([b["name"] for b in saved["bridges"]] == ["br0", "br1"]
            and "p1" not in [p["name"] for p in saved["ports"]], f"saved: {saved}")
    sw.kill()
    sw.start()
    h.check(conf_of(sw) == conf1, f"after restart: {conf_of(sw)} != {conf1}")
    h.step("space freed: add-br br1 and del-port p1 saved; kill -9 + restart restores them")
    sw.stop()


def test():
    h.require_root()
    h.require_binaries(h.VSWITCHD, h.VSWITCHCTL)
    sw = h.Vswitchd(pmd_threads=1, log_level="info")
    sw.ctl("add-br", "br0")
    sw.ctl("set-br", "br0", "ageing=120")
    sw.ctl("add-port", "br0", "vm1", "type=vhost-user", "tag=10")
    sw.ctl("add-port", "br0", "vm2", "type=vhost-user", "vlan_mode=trunk", "trunks=10,20",
           "native=20")
    before = conf_of(sw)
    refuse_damaged(sw)
    sw.start()
    h.check(conf_of(sw) == before, "config after putting the good db back")
    h.step("the good db put back: vswitchd starts with the same config")
    sw.stop()
    full_disk()


if __name__ == "__main__":
    h.main(test)
