"""A small vhost-user frontend (the driver side, as a VMM or DPDK virtio-user is),
python3 stdlib only, for tests: a well-behaved guest NIC, and a hostile one.

    fe = Frontend("/run/x/port.sock")           # connect (or listen=True: wait for
    fe.setup()                                   #  a backend in client mode)
    fe.post_rx_buffers(64)
    fe.send_frame(eth_frame)                     # TX queue = vring 1, kicks
    frames = fe.recv_frames(timeout=1)           # RX queue = vring 0, headers stripped
    fe.close()

Guest memory is one memfd, shared with SET_MEM_TABLE (SCM_RIGHTS). Guest physical
addresses (what descriptors hold) start at `gpa_base`; the "frontend virtual
addresses" (what SET_VRING_ADDR holds, and the region's userspace_addr) start at
`uva_base`, deliberately different, so a backend that mixes the two translations
up fails. Rings are split virtqueues (virtio 1.2 §2.7), little-endian, VERSION_1,
12-byte virtio-net header; notifications without EVENT_IDX.

Raw access for attacks: send_msg()/send_raw() with any header, payload and fds;
Vring.write_desc()/put_avail()/set_avail_idx(); Memory.write()/gpa()/uva().

Message order of setup() follows DPDK virtio-user: SET_OWNER, GET_FEATURES,
GET/SET_PROTOCOL_FEATURES, SET_VRING_CALL (each ring), SET_FEATURES, SET_STATUS,
SET_MEM_TABLE, per ring NUM/BASE/ADDR/KICK/CALL, SET_VRING_ENABLE, SET_STATUS
(DRIVER_OK). With REPLY_ACK every request without a reply asks for an ack, so each
call returns only once the backend has handled the message.
"""

import mmap
import os
import select
import socket
import struct
import sys
import time

# ---------------------------------------------------------------- protocol constants

GET_FEATURES = 1
SET_FEATURES = 2
SET_OWNER = 3
RESET_OWNER = 4
SET_MEM_TABLE = 5
SET_LOG_BASE = 6
SET_LOG_FD = 7
SET_VRING_NUM = 8
SET_VRING_ADDR = 9
SET_VRING_BASE = 10
GET_VRING_BASE = 11
SET_VRING_KICK = 12
SET_VRING_CALL = 13
SET_VRING_ERR = 14
GET_PROTOCOL_FEATURES = 15
SET_PROTOCOL_FEATURES = 16
GET_QUEUE_NUM = 17
SET_VRING_ENABLE = 18
SEND_RARP = 19
NET_SET_MTU = 20
GET_CONFIG = 24
SET_CONFIG = 25
RESET_DEVICE = 34
GET_MAX_MEM_SLOTS = 36
SET_STATUS = 39
GET_STATUS = 40

# requests that always have a reply
REPLY_REQUESTS = {GET_FEATURES, GET_PROTOCOL_FEATURES, GET_VRING_BASE, GET_QUEUE_NUM,
                  GET_CONFIG, GET_MAX_MEM_SLOTS, GET_STATUS}

F_VERSION = 0x1
F_REPLY = 0x4
F_NEED_REPLY = 0x8
HDR = struct.Struct("<III")          # request, flags, size
VRING_NOFD = 1 << 8

# protocol features
PF_MQ = 0
PF_REPLY_ACK = 3
PF_STATUS = 16

# virtio features
F_CSUM = 0
F_GUEST_CSUM = 1
F_MTU = 3
F_GUEST_TSO4 = 7
F_HOST_TSO4 = 11
F_MRG_RXBUF = 15
F_STATUS = 16
F_INDIRECT_DESC = 28
F_EVENT_IDX = 29
F_PROTOCOL_FEATURES = 30
F_VERSION_1 = 32

# descriptor flags
D_NEXT = 1
D_WRITE = 2
D_INDIRECT = 4

# device status
S_ACK, S_DRIVER, S_DRIVER_OK, S_FEATURES_OK = 1, 2, 4, 8

NET_HDR_LEN = 12
NET_HDR = struct.Struct("<BBHHHHH")  # flags gso_type hdr_len gso_size csum_start csum_off nbuf
HDR_F_NEEDS_CSUM = 1
GSO_NONE, GSO_TCPV4, GSO_TCPV6 = 0, 1, 4


def bit(b):
    return 1 << b


DEFAULT_FEATURES = (bit(F_VERSION_1) | bit(F_MRG_RXBUF) | bit(F_INDIRECT_DESC)
                    | bit(F_PROTOCOL_FEATURES))
DEFAULT_PROTOCOL = bit(PF_MQ) | bit(PF_REPLY_ACK) | bit(PF_STATUS)


if sys.byteorder != "little":
    raise ImportError("vhostuser.py writes the rings in native byte order: little-endian only")


class ProtocolError(Exception):
    """The backend answered wrongly, refused something, or went away."""


def net_hdr(flags=0, gso_type=GSO_NONE, hdr_len=0, gso_size=0, csum_start=0,
            csum_offset=0, num_buffers=0):
    return NET_HDR.pack(flags, gso_type, hdr_len, gso_size, csum_start, csum_offset,
                        num_buffers)


def mem_region(gpa, size, uva, offset):
    return struct.pack("<QQQQ", gpa, size, uva, offset)


def mem_table(regions, nregions=None):
    """SET_MEM_TABLE payload: nregions (defaults to len(regions)), padding, regions."""
    n = len(regions) if nregions is None else nregions
    return struct.pack("<II", n, 0) + b"".join(regions)


def vring_state(index, num):
    return struct.pack("<II", index, num)


def vring_addr(index, desc, used, avail, flags=0, log=0):
    return struct.pack("<IIQQQQ", index, flags, desc, used, avail, log)


def u64(v):
    return struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)


# ---------------------------------------------------------------- guest memory


class Memory:
    """Guest RAM: one memfd, mapped here, handed to the backend as one region.
    A bump allocator hands out offsets."""

    def __init__(self, size=8 << 20, gpa_base=0x100000, uva_base=0x7f3a00000000,
                 name="vu-guest"):
        self.size = size
        self.gpa_base = gpa_base
        self.uva_base = uva_base
        self.fd = os.memfd_create(name, os.MFD_CLOEXEC)
        os.ftruncate(self.fd, size)
        self.mm = mmap.mmap(self.fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self._u16 = memoryview(self.mm).cast("H")
        self._next = 0

    def alloc(self, size, align=64):
        off = (self._next + align - 1) & ~(align - 1)
        if off + size > self.size:
            raise MemoryError(f"guest memory full ({self.size} bytes)")
        self._next = off + size
        return off

    def gpa(self, off):
        return self.gpa_base + off

    def uva(self, off):
        return self.uva_base + off

    def region(self):
        """(payload bytes, fd) of the whole memory as region 0."""
        return mem_region(self.gpa_base, self.size, self.uva_base, 0), self.fd

    def write(self, off, data):
        self.mm[off:off + len(data)] = data

    def read(self, off, n):
        return bytes(self.mm[off:off + n])

    # Ring indexes are shared with the backend while it runs: each must be one
    # 16-bit load/store. struct.pack_into() zero-fills its target before it
    # packs (a backend then reads idx = 0 in between: an "avail index jump"),
    # and "<H" moves a byte at a time; an item of a memoryview cast to "H" is
    # one 2-byte store. Native order is little-endian here (checked at import).
    def u16(self, off):
        return self._u16[off >> 1]

    def set_u16(self, off, v):
        self._u16[off >> 1] = v & 0xFFFF

    def close(self):
        try:
            self._u16.release()
            self.mm.close()
        except (BufferError, ValueError):
            pass
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


# ---------------------------------------------------------------- split virtqueue


class Vring:
    """A split virtqueue in guest memory, driver side, with a buffer per descriptor
    (buf_size bytes each). Without EVENT_IDX: the device's NO_NOTIFY flag and our
    NO_INTERRUPT flag (left clear) govern notifications."""

    def __init__(self, mem, index, num=256, buf_size=4096):
        if num & (num - 1) or not 0 < num <= 32768:
            raise ValueError("ring size must be a power of 2")
        self.mem, self.index, self.num, self.buf_size = mem, index, num, buf_size
        self.desc = mem.alloc(16 * num, 4096)
        self.avail = mem.alloc(6 + 2 * num, 4096)
        self.used = mem.alloc(6 + 8 * num, 4096)
        self.bufs = mem.alloc(num * buf_size, 4096)
        self.kick_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.call_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.avail_idx = 0          # our shadow of avail->idx
        self.last_used = 0          # next used entry we will read
        self.free = list(range(num))
        self.outstanding = {}       # head -> descriptor count
        mem.write(self.desc, bytes(16 * num))
        mem.write(self.avail, bytes(6 + 2 * num))
        mem.write(self.used, bytes(6 + 8 * num))

    # addresses
    def buf_off(self, i):
        return self.bufs + i * self.buf_size

    def buf_gpa(self, i):
        return self.mem.gpa(self.buf_off(i))

    def addr_payload(self):
        m = self.mem
        return vring_addr(self.index, m.uva(self.desc), m.uva(self.used), m.uva(self.avail))

    # raw writes
    def write_desc(self, i, addr, length, flags=0, nxt=0, table_off=None):
        """Descriptor i of the ring's table (or of an indirect table at
        table_off)."""
        base = self.desc if table_off is None else table_off
        self.mem.write(base + 16 * i, struct.pack("<QIHH", addr & (2**64 - 1),
                                                  length & 0xFFFFFFFF, flags & 0xFFFF,
                                                  nxt & 0xFFFF))

    def put_avail(self, head, publish=True):
        """Append head to the avail ring (and publish the index)."""
        self.mem.set_u16(self.avail + 4 + 2 * (self.avail_idx % self.num), head)
        self.avail_idx = (self.avail_idx + 1) & 0xFFFF
        if publish:
            self.set_avail_idx(self.avail_idx)

    def set_avail_idx(self, v):
        self.mem.set_u16(self.avail + 2, v)

    def kick(self):
        os.eventfd_write(self.kick_fd, 1)

    def used_idx(self):
        return self.mem.u16(self.used + 2)

    def pop_used(self):
        """[(id, len)] of the used entries not yet seen."""
        out = []
        idx = self.used_idx()
        while self.last_used != idx:
            e = self.used + 4 + 8 * (self.last_used % self.num)
            out.append(struct.unpack_from("II", self.mem.mm, e))
            self.last_used = (self.last_used + 1) & 0xFFFF
        return out

    def drain_call(self):
        try:
            os.eventfd_read(self.call_fd)
        except BlockingIOError:
            pass

    def close(self):
        for fd in (self.kick_fd, self.call_fd):
            try:
                os.close(fd)
            except OSError:
                pass


# ---------------------------------------------------------------- the frontend


class Frontend:
    """One vhost-user connection, driver side, with one queue pair (vring 0 = the
    guest's RX, vring 1 its TX)."""

    def __init__(self, path, listen=False, mem_size=8 << 20, queue_size=256,
                 features=DEFAULT_FEATURES, protocol_features=DEFAULT_PROTOCOL,
                 timeout=5.0, gpa_base=0x100000, uva_base=0x7f3a00000000, name="vu"):
        self.path, self.timeout, self.name = path, timeout, name
        self.want_features = features
        self.want_protocol = protocol_features
        self.features = 0
        self.protocol_features = 0
        self.sock = None
        self._listener = None
        self.mem = Memory(mem_size, gpa_base, uva_base, name)
        self.rx = Vring(self.mem, 0, queue_size, 4096)
        self.tx = Vring(self.mem, 1, queue_size, 4096)
        self.rx_posted = set()
        self.ready = False
        if listen:
            self._listen_and_accept()
        else:
            self.connect()

    # -- connection
    def connect(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            try:
                s.connect(self.path)
                break
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        s.settimeout(self.timeout)
        self.sock = s

    def _listen_and_accept(self):
        if os.path.exists(self.path):
            os.unlink(self.path)
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        ls.bind(self.path)
        ls.listen(1)
        ls.settimeout(max(self.timeout, 10))
        self._listener = ls
        self.sock, _ = ls.accept()
        self.sock.settimeout(self.timeout)

    def reconnect(self):
        """A fresh connection (after the backend dropped us or we closed): the
        rings start over."""
        self.disconnect()
        if self._listener:
            self.sock, _ = self._listener.accept()
            self.sock.settimeout(self.timeout)
        else:
            self.connect()
        for vq in (self.rx, self.tx):
            vq.avail_idx = vq.last_used = 0
            vq.free = list(range(vq.num))
            vq.outstanding.clear()
            self.mem.write(vq.avail, bytes(6 + 2 * vq.num))
            self.mem.write(vq.used, bytes(6 + 8 * vq.num))
        self.rx_posted.clear()
        self.ready = False

    def disconnect(self):
        if self.sock:
            self.sock.close()
            self.sock = None

    def close(self):
        self.disconnect()
        if self._listener:
            self._listener.close()
            self._listener = None
            try:
                os.unlink(self.path)
            except OSError:
                pass
        self.rx.close()
        self.tx.close()
        self.mem.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- raw messages
    def send_raw(self, data, fds=()):
        """Bytes as they are, fds (SCM_RIGHTS) on the first byte."""
        if fds:
            n = socket.send_fds(self.sock, [data], list(fds))
        else:
            n = self.sock.send(data)
        if n < len(data):
            self.sock.sendall(data[n:])

    def send_msg(self, req, payload=b"", fds=(), flags=F_VERSION, size=None):
        """A message with any header: size defaults to len(payload)."""
        self.send_raw(HDR.pack(req, flags, len(payload) if size is None else size) + payload,
                      fds)

    def recv_exact(self, n, timeout=None):
        self.sock.settimeout(timeout or self.timeout)
        buf = b""
        while len(buf) < n:
            try:
                b = self.sock.recv(n - len(buf))
            except socket.timeout:
                raise ProtocolError(f"{self.name}: no reply within {timeout or self.timeout}s")
            except ConnectionResetError:
                b = b""
            if not b:
                raise ProtocolError(f"{self.name}: backend closed the connection")
            buf += b
        return buf

    def recv_reply(self, req=None, timeout=None):
        """(request, flags, payload) of the next reply."""
        r, flags, size = HDR.unpack(self.recv_exact(HDR.size, timeout))
        payload = self.recv_exact(size, timeout) if size else b""
        if req is not None and r != req:
            raise ProtocolError(f"{self.name}: reply to {r}, expected {req}")
        if not flags & F_REPLY:
            raise ProtocolError(f"{self.name}: reply without the reply flag ({flags:#x})")
        return r, flags, payload

    def closed_by_peer(self, timeout=1.0):
        """True if the backend closed the connection (EOF) within timeout. Any
        bytes it sends meanwhile are discarded."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                return False
            try:
                b = self.sock.recv(4096)
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not b:
                return True

    def acks(self):
        return bool(self.protocol_features & bit(PF_REPLY_ACK))

    def request(self, req, payload=b"", fds=(), ack=None):
        """Send a request; return the reply payload for a request that has one,
        else (with REPLY_ACK negotiated, unless ack=False) wait for the ack and
        raise ProtocolError when it reports failure."""
        if req in REPLY_REQUESTS:
            self.send_msg(req, payload, fds)
            return self.recv_reply(req)[2]
        if ack is None:
            ack = self.acks()
        self.send_msg(req, payload, fds, flags=F_VERSION | (F_NEED_REPLY if ack else 0))
        if ack:
            p = self.recv_reply(req)[2]
            if len(p) != 8:
                raise ProtocolError(f"{self.name}: ack of {len(p)} bytes to request {req}")
            v = struct.unpack("<Q", p)[0]
            if v != 0:
                raise ProtocolError(f"{self.name}: request {req} refused (ack {v})")
        return b""

    def try_request(self, req, payload=b"", fds=()):
        """request() that returns False instead of raising on a refusal."""
        try:
            self.request(req, payload, fds)
            return True
        except ProtocolError:
            return False

    def get_u64(self, req):
        p = self.request(req)
        if len(p) != 8:
            raise ProtocolError(f"{self.name}: reply of {len(p)} bytes to request {req}")
        return struct.unpack("<Q", p)[0]

    # -- setup
    def negotiate(self):
        """The first part of setup(): SET_OWNER, features, protocol features
        (so that REPLY_ACK is on for what follows)."""
        self.request(SET_OWNER, ack=False)
        offered = self.get_u64(GET_FEATURES)
        self.features = self.want_features & offered
        self.protocol_features = 0
        if self.features & bit(F_PROTOCOL_FEATURES):
            offered_p = self.get_u64(GET_PROTOCOL_FEATURES)
            pf = self.want_protocol & offered_p
            self.request(SET_PROTOCOL_FEATURES, u64(pf), ack=False)
            self.protocol_features = pf
        return self

    def setup(self, enable=True):
        """The whole handshake, in DPDK virtio-user's order. Leaves the queue pair
        running."""
        self.negotiate()
        for vq in (self.rx, self.tx):
            self.request(SET_VRING_CALL, u64(vq.index), [vq.call_fd])
        self.request(SET_FEATURES, u64(self.features))
        status = self.protocol_features & bit(PF_STATUS)
        if status:
            self.request(SET_STATUS, u64(S_ACK | S_DRIVER | S_FEATURES_OK))
        self.set_mem_table()
        for vq in (self.rx, self.tx):
            self.setup_vring(vq)
        if self.features & bit(F_PROTOCOL_FEATURES) and enable:
            for vq in (self.rx, self.tx):
                self.request(SET_VRING_ENABLE, vring_state(vq.index, 1))
        if status:
            self.request(SET_STATUS, u64(S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK))
        self.ready = True
        return self

    def set_mem_table(self):
        reg, fd = self.mem.region()
        self.request(SET_MEM_TABLE, mem_table([reg]), [fd])

    def setup_vring(self, vq, base=0):
        self.request(SET_VRING_NUM, vring_state(vq.index, vq.num))
        self.request(SET_VRING_BASE, vring_state(vq.index, base))
        self.request(SET_VRING_ADDR, vq.addr_payload())
        self.request(SET_VRING_KICK, u64(vq.index), [vq.kick_fd])
        self.request(SET_VRING_CALL, u64(vq.index), [vq.call_fd])

    def hdr_len(self):
        return NET_HDR_LEN  # VERSION_1 (or MRG_RXBUF): always 12 here

    # -- datapath: TX (vring 1)
    def reclaim_tx(self):
        """Takes back the TX descriptors the backend has used; returns how many."""
        n = 0
        for head, _ in self.tx.pop_used():
            cnt = self.tx.outstanding.pop(head, None)
            if cnt is None:
                raise ProtocolError(f"{self.name}: backend returned TX head {head} "
                                    f"it did not own")
            self.tx.free.append(head)
            n += 1
        return n

    def send_frame(self, frame, hdr=None, kick=True, wait=1.0):
        """Posts one frame (with a zero virtio-net header unless hdr is given) on
        the TX queue. Waits up to `wait` s for a free descriptor; False if none."""
        hdr = net_hdr() if hdr is None else hdr
        data = hdr + frame
        if len(data) > self.tx.buf_size:
            raise ValueError("frame larger than a TX buffer")
        deadline = time.monotonic() + wait
        while not self.tx.free:
            self.reclaim_tx()
            if self.tx.free:
                break
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)
        i = self.tx.free.pop()
        self.mem.write(self.tx.buf_off(i), data)
        self.tx.write_desc(i, self.tx.buf_gpa(i), len(data), 0, 0)
        self.tx.outstanding[i] = 1
        self.tx.put_avail(i)
        if kick:
            self.tx.kick()
        return True

    # -- datapath: RX (vring 0)
    def post_rx_buffers(self, n=None, size=None, kick=True):
        """Makes up to n device-writable buffers (of `size` bytes, at most the
        slot size) available on the RX queue. Returns how many were posted."""
        size = self.rx.buf_size if size is None else min(size, self.rx.buf_size)
        self._rx_size = size
        posted = 0
        while self.rx.free and (n is None or posted < n):
            i = self.rx.free.pop()
            self.rx.write_desc(i, self.rx.buf_gpa(i), size, D_WRITE, 0)
            self.rx.put_avail(i, publish=False)
            self.rx_posted.add(i)
            posted += 1
        if posted:
            self.rx.set_avail_idx(self.rx.avail_idx)
            if kick:
                self.rx.kick()
        return posted

    def recv_frames(self, timeout=1.0, max_frames=None, repost=True, with_hdr=False):
        """Frames the backend wrote into the RX queue, waiting up to timeout for
        the first. Headers are stripped (with_hdr: (hdr bytes, frame) pairs);
        with MRG_RXBUF a frame spans num_buffers used entries. Used buffers are
        posted again (repost)."""
        deadline = time.monotonic() + timeout
        out = []
        pending = []
        mrg = bool(self.features & bit(F_MRG_RXBUF))
        while True:
            pending += self.rx.pop_used()
            while pending:
                head, length = pending[0]
                if head not in self.rx_posted:
                    raise ProtocolError(f"{self.name}: backend used RX head {head} "
                                        f"that was not posted")
                data = self.mem.read(self.rx.buf_off(head), min(length, self.rx.buf_size))
                if length < NET_HDR_LEN:
                    raise ProtocolError(f"{self.name}: RX entry of {length} bytes")
                nb = NET_HDR.unpack_from(data)[6] if mrg else 1
                if nb < 1:
                    raise ProtocolError(f"{self.name}: num_buffers {nb}")
                if len(pending) < nb:
                    break  # the rest of this frame is not published yet
                parts = [data]
                for h2, l2 in pending[1:nb]:
                    if h2 not in self.rx_posted:
                        raise ProtocolError(f"{self.name}: RX head {h2} not posted")
                    parts.append(self.mem.read(self.rx.buf_off(h2), min(l2, self.rx.buf_size)))
                for h2, _ in pending[:nb]:
                    self.rx_posted.discard(h2)
                    self.rx.free.append(h2)
                del pending[:nb]
                whole = b"".join(parts)
                out.append((whole[:NET_HDR_LEN], whole[NET_HDR_LEN:]) if with_hdr
                           else whole[NET_HDR_LEN:])
            if pending:
                # put back what belongs to a frame not complete yet
                self.rx.last_used = (self.rx.last_used - len(pending)) & 0xFFFF
                pending = []
            if repost and self.rx.free:
                self.post_rx_buffers(size=getattr(self, "_rx_size", None))
            if out and (max_frames is None or len(out) >= max_frames):
                return out
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            select.select([self.rx.call_fd], [], [], min(left, 0.005))
            self.rx.drain_call()


def frame(dst, src, payload=b"", ethertype=0x88B5):
    """An Ethernet frame; dst/src as bytes or 'aa:bb:..' strings. 0x88B5 is the
    IEEE local experimental ethertype."""
    def m(x):
        return bytes.fromhex(x.replace(":", "")) if isinstance(x, str) else x
    f = m(dst) + m(src) + struct.pack(">H", ethertype) + payload
    return f + bytes(max(0, 60 - len(f)))
