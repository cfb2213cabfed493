"""A raw-socket RFC 6455 client for the conformance suite.

It builds every frame byte by byte so that a test can send exactly what a
broken or hostile client would: unmasked frames, reserved bits and opcodes,
oversized control frames, bad close payloads, frames split over many TCP
writes (down to one byte per write).  Server frames are parsed strictly:
they must be unmasked and minimally length-encoded.
"""

import base64
import hashlib
import os
import socket
import struct
import time
from urllib.parse import urlencode

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def mask_bytes(payload, key):
    """XOR payload with the 4-byte key (fast for megabytes)."""
    n = len(payload)
    if n == 0:
        return b""
    k = (key * (n // 4 + 1))[:n]
    x = int.from_bytes(payload, "little") ^ int.from_bytes(k, "little")
    return x.to_bytes(n, "little")


def frame(opcode, payload=b"", fin=True, rsv=0, mask=True, key=None,
          length=None):
    """One client frame.  `length` overrides the advertised length (the
    payload sent is still `payload`, for fail-fast cases)."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    n = len(payload) if length is None else length
    m = 0x80 if mask else 0
    if n < 126:
        head = bytes([b0, m | n])
    elif n < 65536:
        head = bytes([b0, m | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, m | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = key if key is not None else os.urandom(4)
    return head + key + mask_bytes(payload, key)


def close_body(code=None, reason=b""):
    if code is None:
        return b""
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    return struct.pack("!H", code) + reason


class Frame:
    __slots__ = ("fin", "rsv", "opcode", "payload")

    def __init__(self, fin, rsv, opcode, payload):
        self.fin, self.rsv, self.opcode, self.payload = fin, rsv, opcode, payload

    @property
    def code(self):
        """The close code (None for an empty close payload)."""
        if len(self.payload) < 2:
            return None
        return struct.unpack("!H", self.payload[:2])[0]

    def __repr__(self):
        p = self.payload
        if len(p) > 40:
            p = p[:40] + b"...(%d bytes)" % len(p)
        return "Frame(fin=%d rsv=%d op=%#x %r)" % (self.fin, self.rsv,
                                                  self.opcode, p)


class Closed(Exception):
    """The server closed the TCP connection."""


class HTTPAnswer:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body


def read_http_answer(sock, buf=b"", timeout=5.0):
    """Reads one HTTP answer head (+ body by Content-Length, else to EOF
    for non-101).  Returns (HTTPAnswer, leftover bytes)."""
    sock.settimeout(timeout)
    while b"\r\n\r\n" not in buf:
        d = sock.recv(65536)
        if not d:
            raise Closed("no HTTP answer: %r" % buf[:200])
        buf += d
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        k = k.strip().lower()
        headers[k] = (headers[k] + ", " if k in headers else "") + v.strip()
    body = b""
    if status != 101:
        if "content-length" in headers:
            n = int(headers["content-length"])
            while len(buf) < n:
                d = sock.recv(65536)
                if not d:
                    break
                buf += d
            body, buf = buf[:n], buf[n:]
        else:
            try:
                while True:
                    d = sock.recv(65536)
                    if not d:
                        break
                    buf += d
            except (socket.timeout, ConnectionResetError):
                pass
            body, buf = buf, b""
    return HTTPAnswer(status, headers, body), buf


def handshake_request(port, target, key, version="13", method="GET",
                      omit=(), extra=None):
    h = [("Host", "127.0.0.1:%d" % port), ("Upgrade", "websocket"),
         ("Connection", "Upgrade"), ("Sec-WebSocket-Key", key),
         ("Sec-WebSocket-Version", version)]
    extra = dict(extra or {})
    low = {k.lower() for k in extra}
    h = [kv for kv in h if kv[0] not in omit and kv[0].lower() not in low]
    h += list(extra.items())
    return ("%s %s HTTP/1.1\r\n" % (method, target)
            + "".join("%s: %s\r\n" % kv for kv in h) + "\r\n").encode()


def accept_for(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


class WS:
    """A connected WebSocket (the 101 checked)."""

    def __init__(self, srv, channel, timeout=5.0, extra_query=None,
                 extra_headers=None):
        self.send_failed = False
        self.sock = socket.create_connection(("127.0.0.1", srv.port),
                                             timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        q = {"channel": channel}
        q.update(extra_query or {})
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(handshake_request(
            srv.port, srv.sub + "?" + urlencode(q), key, extra=extra_headers))
        ans, self.buf = read_http_answer(self.sock, timeout=timeout)
        self.answer = ans
        if ans.status != 101:
            self.sock.close()
            raise AssertionError("handshake answered %d %r"
                                 % (ans.status, ans.body[:200]))
        assert ans.headers.get("sec-websocket-accept") == accept_for(key), \
            ans.headers
        assert ans.headers.get("upgrade", "").lower() == "websocket", \
            ans.headers
        assert "upgrade" in ans.headers.get("connection", "").lower(), \
            ans.headers

    # -- sending --
    def send(self, data):
        """Sends; once the server has closed (EPIPE/ECONNRESET) the rest is
        dropped and `send_failed` set: what the server said before closing
        is still read by the recv methods."""
        if self.send_failed:
            return
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            self.send_failed = True

    def send_chopped(self, data, piece=1, pause=0.0005):
        """Sends data `piece` bytes per TCP write (TCP_NODELAY is on, and a
        short pause keeps the writes apart)."""
        for i in range(0, len(data), piece):
            self.send(data[i:i + piece])
            if self.send_failed:
                return
            if pause:
                time.sleep(pause)

    def send_frame(self, opcode, payload=b"", **kw):
        self.send(frame(opcode, payload, **kw))

    # -- receiving --
    def _fill(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("timed out (%d of %d bytes)"
                                     % (len(self.buf), n))
            self.sock.settimeout(left)
            try:
                d = self.sock.recv(1 << 20)
            except ConnectionResetError:
                d = b""
            if not d:
                raise Closed("TCP closed by the server (%d of %d bytes)"
                             % (len(self.buf), n))
            self.buf += d

    def _take(self, n, deadline):
        self._fill(n, deadline)
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def recv_frame(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        b0, b1 = self._take(2, deadline)
        assert not b1 & 0x80, "server frame is masked"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._take(2, deadline))[0]
            assert n >= 126, "16-bit length %d not minimal" % n
        elif n == 127:
            n = struct.unpack("!Q", self._take(8, deadline))[0]
            assert n >= 65536, "64-bit length %d not minimal" % n
        payload = self._take(n, deadline)
        f = Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, payload)
        assert f.rsv == 0, "server frame with RSV bits: %r" % f
        if f.opcode >= 8:
            assert f.fin and len(payload) <= 125, \
                "bad server control frame %r" % f
        return f

    def recv_message(self, timeout=5.0):
        """The next data message as (opcode, bytes), reassembled; a
        close frame or anything but pongs in between fails."""
        deadline = time.monotonic() + timeout
        op, parts = None, []
        while True:
            f = self.recv_frame(max(0.001, deadline - time.monotonic()))
            if f.opcode == PONG:
                raise AssertionError("unexpected pong %r" % f)
            if f.opcode == PING:
                self.send_frame(PONG, f.payload)
                continue
            if f.opcode == CLOSE:
                raise AssertionError("unexpected close %r" % f)
            if op is None:
                assert f.opcode in (TEXT, BINARY), f
                op = f.opcode
            else:
                assert f.opcode == CONT, f
            parts.append(f.payload)
            if f.fin:
                return op, b"".join(parts)

    def expect_close(self, timeout=5.0, allow=()):
        """Reads up to the server's close frame; frames before it must have
        opcodes in `allow`.  Returns (close frame, frames before)."""
        deadline = time.monotonic() + timeout
        before = []
        while True:
            f = self.recv_frame(max(0.001, deadline - time.monotonic()))
            if f.opcode == CLOSE:
                return f, before
            assert f.opcode in allow, \
                "got %r while waiting for a close frame" % f
            before.append(f)

    def expect_eof(self, timeout=3.0):
        """True when the server closes TCP within timeout (bytes before
        that must be none)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.001, deadline - time.monotonic()))
            try:
                d = self.sock.recv(65536)
            except ConnectionResetError:
                return True
            except socket.timeout:
                return False
            if not d:
                return True
            self.buf += d
        return False

    def nothing_within(self, seconds):
        """No frame arrives for `seconds` (and the socket stays open)."""
        try:
            f = self.recv_frame(seconds)
        except socket.timeout:
            return True
        raise AssertionError("unexpected frame %r" % f)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()
