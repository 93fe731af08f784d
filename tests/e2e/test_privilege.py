#!/usr/bin/python3
"""Least privilege: vswitchd --user/--group and the ambient-capabilities start.

The test makes a group and two users, one in the group and one not (removed at
the end). vswitchd starts as root with --user MEMBER --group GROUP in namespace
A and must then run as MEMBER with exactly CAP_NET_ADMIN, CAP_NET_RAW and
CAP_IPC_LOCK (bounding set the same, no ambient, no_new_privs); its control
socket and vhost-user sockets are 0660 with GROUP, its run dir 2770. MEMBER
runs vswitchctl, the other user is refused with a clear sentence. After the
drop the daemon still makes tap and internal ports (with an address), saves the
db, forwards between two DPDK virtio-user frontends, and restarts from its db.
Bad --user/--group values are refused with one line. Then vswitchd is started
directly as MEMBER with ambient capabilities (as systemd's AmbientCapabilities=
does) and works the same way."""
import grp
import json
import os
import pwd
import socket
import stat
import subprocess

import harness as h

KEPT = (1 << 12) | (1 << 13) | (1 << 14)  # CAP_NET_ADMIN, CAP_NET_RAW, CAP_IPC_LOCK


def make_accounts():
    group, member, other = h.uniq("vspg"), h.uniq("vspm"), h.uniq("vspo")
    h.sh(["groupadd", group])
    h.at_cleanup(lambda: h.sh(["groupdel", group], check=False), f"groupdel {group}")
    for name, extra in ((member, ["-G", group]), (other, [])):
        h.sh(["useradd", "-r", "-M", "-N", "-g", "nogroup", "-s", "/usr/sbin/nologin"] +
             extra + [name])
        h.at_cleanup(lambda n=name: h.sh(["userdel", n], check=False), f"userdel {name}")
    return group, member, other


def as_user(user, argv, ambient=False):
    pre = ["setpriv", "--reuid", user, "--regid", "nogroup", "--init-groups"]
    if ambient:
        caps = "+net_admin,+net_raw,+ipc_lock"
        pre += ["--inh-caps", caps, "--ambient-caps", caps]
    return pre + list(argv)


def daemon_pid(sw):
    """The vswitchd under harness's `timeout` wrapper."""
    def child():
        r = subprocess.run(["pgrep", "-P", str(sw.proc.pid)], stdout=subprocess.PIPE,
                           text=True)
        pids = r.stdout.split()
        return int(pids[0]) if pids else None
    return h.wait_for(child, 10, "the vswitchd process")


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def check_creds(pid, uid, gid, group_gid, ambient_start):
    st = status(pid)
    h.check(st["Uid"].split() == [str(uid)] * 4, f"Uid: {st['Uid']}, want {uid}")
    h.check(st["Gid"].split() == [str(gid)] * 4, f"Gid: {st['Gid']}, want {gid}")
    h.check(str(group_gid) in st["Groups"].split(), f"Groups {st['Groups']} lack {group_gid}")
    for k in ("CapEff", "CapPrm"):
        h.check(int(st[k], 16) == KEPT, f"{k} {st[k]}, want {KEPT:016x}")
    h.check(int(st["CapAmb"], 16) == 0, f"CapAmb {st['CapAmb']}: ambient set not cleared")
    if not ambient_start:
        h.check(int(st["CapBnd"], 16) == KEPT, f"CapBnd {st['CapBnd']}, want {KEPT:016x}")
        h.check(st["NoNewPrivs"] == "1", f"NoNewPrivs {st['NoNewPrivs']}")
    return st


def check_socket(path, uid, gid):
    s = os.lstat(path)
    h.check(stat.S_ISSOCK(s.st_mode), f"{path} is not a socket")
    h.check(stat.S_IMODE(s.st_mode) == 0o660, f"{path} mode {stat.S_IMODE(s.st_mode):04o}")
    h.check(s.st_gid == gid, f"{path} group {s.st_gid}, want {gid}")
    h.check(uid is None or s.st_uid == uid, f"{path} owner {s.st_uid}, want {uid}")


def check_ctl_access(sock, member, other):
    r = h.sh(as_user(member, [h.VSWITCHCTL, "--socket", sock, "show"]), check=False)
    h.check(r.returncode == 0 and "br0" in r.stdout, f"member's vswitchctl show:\n{r.stdout}")
    r = h.sh(as_user(other, [h.VSWITCHCTL, "--socket", sock, "show"]), check=False)
    lines = r.stdout.strip().splitlines()
    h.check(r.returncode != 0 and len(lines) == 1 and "permission denied" in lines[0],
            f"non-member's vswitchctl: rc={r.returncode}:\n{r.stdout}")
    return lines[0]


def bad_values(member):
    cases = [(["--user", "vsp-no-such-user"], "no such user"),
             (["--group", "vsp-no-such-group"], "no such group"),
             (["--user", "root"], "root"),
             (["--user", f"{member}:vsp-no-such-group"], "no such group"),
             (["--user", ""], "USER or USER:GROUP"),
             (["--keep-afxdp-caps"], "goes with --user")]
    for args, words in cases:
        r = subprocess.run([h.VSWITCHD, "--db", "none", "--socket", "/nonexistent/s"] + args,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=15)
        lines = r.stderr.strip().splitlines()
        h.check(r.returncode == 2 and len(lines) == 1 and words in lines[0] and not r.stdout,
                f"vswitchd {' '.join(args)}: rc={r.returncode}, stderr:\n{r.stderr}")
    h.step(f"{len(cases)} bad --user/--group values refused, one line each "
           f"(e.g. \"{lines[0]}\")")


def refused_setups(member, group):
    """A db directory the user cannot write and a run dir shared with everyone
    stop vswitchd at start with a sentence saying why (exit 1)."""
    top = h.tempdir("vs-priv-refused-")
    os.chmod(top, 0o755)
    rootdir = os.path.join(top, "rootdir")
    os.mkdir(rootdir, 0o755)
    shared = os.path.join(top, "shared")
    os.mkdir(shared)
    os.chmod(shared, 0o1777)
    run1 = os.path.join(top, "run1")
    cases = [(["--user", member, "--db", os.path.join(rootdir, "conf.json"), "--run-dir",
               run1], os.path.join(run1, "ctl.sock"), "cannot save the db in"),
             (["--group", group, "--db", "none", "--run-dir", shared],
              os.path.join(top, "ctl.sock"), "shared with every user")]
    for args, sock, words in cases:
        r = subprocess.run([h.VSWITCHD, "--socket", sock] + args, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=15)
        h.check(r.returncode == 1 and words in r.stdout and not os.path.exists(sock),
                f"vswitchd {' '.join(args)}: rc={r.returncode}:\n{r.stdout}")
    h.check(stat.S_IMODE(os.stat(shared).st_mode) == 0o1777, "shared dir's mode changed")
    h.step(f"refused at start, exit 1: a db dir {member} cannot write, a world-writable "
           "run dir (left as it was)")


def forward_check(sw):
    """Two virtio-user frontends in one testpmd (io forwarding, frames sent first
    from both): what one sends crosses the switch to the other and back."""
    tp = h.Testpmd([h.virtio_user_vdev(0, sw.port_socket("vm1")),
                    h.virtio_user_vdev(1, sw.port_socket("vm2"))],
                   forward_mode="io", lcores="0@0,1@0", name="testpmd")
    h.wait_for(lambda: all(p["status"]["link"] == "up"
                           for p in sw.ctl("show")["bridges"][0]["ports"]
                           if p["name"] in ("vm1", "vm2")), 20, "vm1 and vm2 links up")
    tp.start(tx_first=4)
    h.wait_for(lambda: all(s["rx_packets"] > 1000 for s in tp.stats().values()), 20,
               "frames forwarded both ways")
    tp.stop()
    st = tp.stats()
    tp.close()
    ps = sw.ctl("port-stats")
    h.check(ps["vm1"]["rx_packets"] > 1000 and ps["vm2"]["tx_packets"] > 1000,
            f"switch counters: {ps['vm1']} {ps['vm2']}")
    return st


def vmm_api(path, method):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method}).encode() + b"\n")
        f = s.makefile("r")
        return json.loads(f.readline())["result"]


def vmm_check(sw, group, group_gid):
    """vmm --group: its API socket and its server-mode vhost-user socket are
    0660 with the group, so the switch running as a member of it (not root)
    connects to the VMM's socket as a client-mode port."""
    kernel = os.path.join(h.BUILD, "tests", "guests", "hello.bzImage")
    if not os.path.exists(kernel) or not os.path.exists("/dev/kvm"):
        h.step("vmm part not run: no tests/guests build or no /dev/kvm")
        return
    tmp = h.tempdir("vs-priv-vmm-")
    os.chmod(tmp, 0o755)
    api, nic = os.path.join(tmp, "api.sock"), os.path.join(tmp, "nic.sock")
    argv = [os.path.join(h.BUILD, "vmm", "vmm"), "--kernel", kernel, "--cmdline",
            "exit=halt", "--group", group, "--api-socket", api, "--console",
            os.path.join(tmp, "console.txt"), "--net",
            f"vhost-user,socket={nic},mac=52:54:00:00:00:31,server"]
    for run in (1, 2):
        vmm = h.Proc(argv, f"vmm{run}", max_seconds=120)
        h.wait_for(lambda: os.path.exists(api), 15, "the vmm API socket")
        check_socket(api, 0, group_gid)
        check_socket(nic, 0, group_gid)
        if run == 1:
            sw.ctl("add-port", "br0", "vmnic", "type=vhost-user", "mode=client",
                   f"socket={nic}")
        # run 2: the client-mode port redials the new VMM by itself
        h.wait_for(lambda: vmm_api(api, "status")["nics"][0]["connected"], 30,
                   f"vswitchd (as the member) connected to vmm #{run}'s server socket")
        vmm_api(api, "stop")
        h.check(vmm.p.wait(15) == 0, f"vmm: {vmm.tail()}")
    sw.ctl("del-port", "vmnic")
    h.step("vmm --group: API and vhost-user server sockets 0660 with the group; the "
           "unprivileged switch connects to the VMM as a client-mode port, and again to "
           "a restarted VMM")


def afxdp_check(sw, a, uid, gid, group_gid):
    """--keep-afxdp-caps: the three capabilities libxdp needs are kept too, an
    afxdp port works as the user, and del-port detaches its XDP program."""
    if "xdp" not in open("/proc/net/protocols").read().lower():
        h.step("afxdp part not run: the kernel has no AF_XDP sockets")
        return
    lock = os.stat("/run/xdp") if os.path.exists("/run/xdp") else None
    h.at_cleanup(lambda: os.chown("/run/xdp", lock.st_uid, lock.st_gid) if lock else
                 os.rmdir("/run/xdp"), "give /run/xdp back")
    b = h.NetNS()
    h.veth(a, "xa", b, "xb", ip_b="10.0.66.2/24")
    sw.extra.append("--keep-afxdp-caps")
    sw.start()
    want = KEPT | (1 << 38) | (1 << 39) | (1 << 21)  # + CAP_PERFMON, CAP_BPF, CAP_SYS_ADMIN
    st = status(daemon_pid(sw))
    h.check(int(st["CapEff"], 16) == want and int(st["CapBnd"], 16) == want and
            st["Uid"].split()[0] == str(uid), f"--keep-afxdp-caps: {st['CapEff']} {st['Uid']}")
    sw.ctl("add-port", "br0", "up0", "type=afxdp", "dev=xa", "queue=0")
    h.check(h.wait_for(lambda: a.run(["ping", "-c1", "-W1", "10.0.66.2"], check=False)
                       .returncode == 0, 15, "ping across the afxdp port"), "")
    sw.ctl("del-port", "up0")
    link = a.run(["ip", "-d", "link", "show", "xa"]).stdout
    h.check("prog/xdp" not in link, f"XDP program left on xa after del-port:\n{link}")
    h.step(f"--keep-afxdp-caps: CapEff {st['CapEff']}; afxdp port forwards as the user, "
           "del-port detaches its XDP program")
    sw.stop()


def test():
    h.require_root()
    h.require_binaries(h.TESTPMD, "/usr/bin/setpriv")
    group, member, other = make_accounts()
    uid, gid = pwd.getpwnam(member).pw_uid, pwd.getpwnam(member).pw_gid
    group_gid = grp.getgrnam(group).gr_gid
    h.step(f"group {group}, member {member} (uid {uid}), non-member {other}")

    bad_values(member)
    refused_setups(member, group)

    a = h.NetNS()
    sw = h.Vswitchd(ns=a, pmd_threads=1, start=False, db=None,
                    extra=["--user", member, "--group", group])
    os.chmod(sw.dir, 0o755)  # the users reach the run dir through it
    sw.db = os.path.join(sw.dir, "state", "conf.json")  # made by vswitchd for member
    sw.socket = os.path.join(sw.run_dir, "ctl.sock")
    sw.start()
    pid = daemon_pid(sw)
    st = check_creds(pid, uid, gid, group_gid, ambient_start=False)
    h.step(f"vswitchd --user --group: Uid {st['Uid'].split()[0]}, Gid {st['Gid'].split()[0]}, "
           f"CapEff=CapPrm=CapBnd {st['CapEff']}, CapAmb 0, NoNewPrivs 1")

    rs = os.stat(sw.run_dir)
    h.check(stat.S_IMODE(rs.st_mode) == 0o2770 and rs.st_gid == group_gid and
            rs.st_uid == uid, f"run dir {oct(rs.st_mode)} {rs.st_uid}:{rs.st_gid}")
    check_socket(sw.socket, uid, group_gid)
    sw.ctl("add-br", "br0")
    sw.ctl("add-port", "br0", "vm1", "type=vhost-user")
    sw.ctl("add-port", "br0", "vm2", "type=vhost-user")
    check_socket(sw.port_socket("vm1"), uid, group_gid)
    h.step("control socket and vhost-user sockets 0660 with the group, run dir 2770")

    refusal = check_ctl_access(sw.socket, member, other)
    h.step(f"member runs vswitchctl show; non-member: \"{refusal}\"")

    tapif = h.uniq("vsptap")
    sw.ctl("add-port", "br0", "t1", "type=tap", f"ifname={tapif}")
    sw.ctl("add-port", "br0", "host0", "type=internal", "ip=10.0.66.1/24")
    h.check(a.run(["ip", "link", "show", tapif], check=False).returncode == 0,
            f"tap {tapif} not created")
    out = a.run(["ip", "-br", "addr", "show", "host0"]).stdout
    h.check("10.0.66.1/24" in out, f"internal port host0: {out}")
    h.step(f"after the drop: tap {tapif} and internal host0 (10.0.66.1/24) created in {a}")

    with open(sw.db) as f:
        saved = {p["name"] for p in json.load(f)["ports"]}
    dbst = os.stat(sw.db)
    h.check(saved == {"vm1", "vm2", "t1", "host0"} and dbst.st_uid == uid,
            f"db {sw.db}: ports {saved}, owner {dbst.st_uid}")
    h.step(f"db saved by {member}: ports {sorted(saved)}")

    st = forward_check(sw)
    h.step(f"testpmd virtio-user on vm1/vm2 forwards through the switch: "
           f"rx {st[0]['rx_packets']}/{st[1]['rx_packets']}")

    vmm_check(sw, group, group_gid)

    sw.ctl("del-port", "t1")
    h.check(a.run(["ip", "link", "show", tapif], check=False).returncode != 0,
            f"tap {tapif} left after del-port")
    sw.stop()
    sw.start()
    pid = daemon_pid(sw)
    check_creds(pid, uid, gid, group_gid, ambient_start=False)
    names = {p["name"] for p in sw.ctl("show")["bridges"][0]["ports"]}
    out = a.run(["ip", "-br", "addr", "show", "host0"]).stdout
    h.check(names == {"vm1", "vm2", "host0"} and "10.0.66.1/24" in out,
            f"after restart: ports {names}, host0: {out}")
    check_socket(sw.port_socket("vm1"), uid, group_gid)
    h.step("restart from the db: ports, address and socket modes back, privileges dropped again")
    sw.stop()
    afxdp_check(sw, a, uid, gid, group_gid)

    # Started by the member itself with ambient capabilities: no root at all.
    b = h.NetNS()
    home = h.tempdir("vs-priv-home-")
    os.chmod(home, 0o755)
    os.chown(home, uid, gid)
    amb = h.Vswitchd(ns=b, pmd_threads=1, start=False, db=os.path.join(home, "conf.json"),
                     extra=["--group", group])
    amb.run_dir = os.path.join(home, "run")
    amb.socket = os.path.join(amb.run_dir, "ctl.sock")
    orig_argv = amb.argv
    amb.argv = lambda: as_user(member, orig_argv(), ambient=True)
    amb.start()
    pid = daemon_pid(amb)
    st = check_creds(pid, uid, gid, group_gid, ambient_start=True)
    check_socket(amb.socket, uid, group_gid)
    amb.ctl("add-br", "br0")
    amb.ctl("add-port", "br0", "host1", "type=internal", "ip=10.0.67.1/24")
    tapif = h.uniq("vsptap")
    amb.ctl("add-port", "br0", "t2", "type=tap", f"ifname={tapif}")
    out = b.run(["ip", "-br", "addr", "show", "host1"]).stdout
    h.check("10.0.67.1/24" in out and
            b.run(["ip", "link", "show", tapif], check=False).returncode == 0,
            f"ambient start: host1 {out}, tap {tapif}")
    check_ctl_access(amb.socket, member, other)
    h.check(os.stat(os.path.join(home, "conf.json")).st_uid == uid, "db not saved")
    h.step(f"started as {member} with ambient capabilities: CapEff {st['CapEff']}, "
           f"CapAmb cleared; internal, tap ports and the db work; socket 0660 {group}")
    amb.stop()


h.main(test)
