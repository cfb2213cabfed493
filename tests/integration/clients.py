"""Clients for the integration tests.

- HTTP: `requests`, one fresh connection per call (`Connection: close`), so
  that successive requests spread over nginx workers.
- WebSocket at the byte level: `RawWS`, a blocking socket client that builds
  and parses RFC 6455 frames itself (masking, fragmentation, bad frames,
  close codes), for the clauses no library lets us break on purpose.
- WebSocket as browsers do it: Python's `websockets` (Debian 10.4, asyncio),
  see `ws_connect`.
"""

import base64
import concurrent.futures
import hashlib
import json
import os
import socket
import struct
import time
import uuid
from urllib.parse import urlencode

import requests

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA

HTTP_TIMEOUT = 10.0


def new_channel(prefix="t"):
    """A fresh channel (or client) name: isolates tests on one server."""
    return "%s-%s" % (prefix, uuid.uuid4().hex[:16])


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------

def url(srv, path, **params):
    """srv.base + path + query; params with value None are left out, and
    a `raw_query` string is used verbatim (for bytes requests would
    re-encode)."""
    raw = params.pop("raw_query", None)
    q = urlencode([(k, v) for k, v in params.items() if v is not None])
    if raw is not None:
        q = raw if not q else q + "&" + raw
    return srv.base + path + ("?" + q if q else "")


def http(method, u, headers=None, data=None, timeout=HTTP_TIMEOUT):
    """One request on a fresh connection (closed afterwards)."""
    h = {"Connection": "close"}
    if headers:
        h.update(headers)
    with requests.Session() as s:
        return s.request(method, u, headers=h, data=data, timeout=timeout,
                         allow_redirects=False)


def publish(srv, channel, data, content_type="text/plain; charset=utf-8",
            method="POST", path=None, raw_query=None):
    """Publishes `data` (bytes or str) as the raw body.  Returns the
    response."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    headers = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return http(method, url(srv, path or srv.pub, channel=channel,
                            raw_query=raw_query),
                headers=headers, data=data)


def publish_ok(srv, channel, data, **kw):
    """Publishes and checks the 200 answer; returns its JSON."""
    r = publish(srv, channel, data, **kw)
    assert r.status_code == 200, (r.status_code, r.text)
    j = r.json()
    assert j["status"] is True, j
    return j


def publish_form(srv, channel, fields, path=None):
    """Publishes an application/x-www-form-urlencoded body (the seed's
    form).  `fields` is a dict or list of pairs, or a str sent verbatim."""
    body = fields if isinstance(fields, (str, bytes)) else urlencode(fields)
    if isinstance(body, str):
        body = body.encode("ascii")
    return publish(srv, channel, body,
                   content_type="application/x-www-form-urlencoded",
                   path=path)


def poll(srv, channel=None, path=None, timeout=None, **params):
    """One long-poll on a fresh connection.  `timeout` is the pushq
    argument (seconds); the HTTP read timeout is generous."""
    params["channel"] = channel
    params["timeout"] = timeout
    return http("GET", url(srv, path or srv.sub, **params))


def poll_json(srv, channel, **params):
    r = poll(srv, channel, **params)
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()


def drain(srv, channel, name, limit=100):
    """Fetches with timeout=0 until the name has nothing left; returns the
    answers that carried a message (in order)."""
    got = []
    for _ in range(limit):
        j = poll_json(srv, channel, name=name, timeout=0)
        if not j["status"]:
            return got
        got.append(j)
    raise AssertionError("drain: more than %d messages" % limit)


def msg_bytes(j):
    """The message of a long-poll answer (or a batch element) as bytes."""
    if j.get("encoding") == "base64":
        return base64.b64decode(j["msg"], validate=True)
    assert "encoding" not in j, j
    return j["msg"].encode("utf-8")


_pool = concurrent.futures.ThreadPoolExecutor(max_workers=128)


def background(fn, *args, **kw):
    """Runs fn in a thread; returns a Future."""
    return _pool.submit(fn, *args, **kw)


def status(srv, **params):
    r = http("GET", url(srv, srv.status, **params))
    return r


def channel_stats(srv, channel):
    """The channel's status JSON, or None when the server does not know
    it (yet)."""
    r = status(srv, channel=channel)
    if r.status_code != 200:
        return None
    try:
        return r.json()
    except ValueError:
        return None


def wait_for(pred, timeout=3.0, interval=0.02):
    """Polls pred() until true; returns its last value."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= end:
            return v
        time.sleep(interval)


def wait_subscribers(srv, channel, n, timeout=3.0):
    """Waits until the channel has n subscribers (waiting long-polls and
    open WebSockets, over all workers), read from the status endpoint.
    This is how a test knows a subscriber is in place before it
    publishes.  Returns True when seen; when the status endpoint gives no
    usable answer it falls back to a fixed pause and returns False, so a
    broken status endpoint fails the status tests rather than all."""
    def seen():
        st = channel_stats(srv, channel)
        if st is None or not isinstance(st.get("subscribers"), int):
            return None
        return st["subscribers"] == n
    ok = wait_for(seen, timeout)
    if ok is None:
        time.sleep(0.5)
        return False
    return bool(ok)


# --------------------------------------------------------------------------
# Raw WebSocket client
# --------------------------------------------------------------------------

class Frame:
    def __init__(self, fin, rsv, opcode, payload):
        self.fin, self.rsv, self.opcode, self.payload = fin, rsv, opcode, payload

    @property
    def close_code(self):
        assert self.opcode == OP_CLOSE
        if len(self.payload) < 2:
            return None
        return struct.unpack("!H", self.payload[:2])[0]

    def __repr__(self):
        p = self.payload if len(self.payload) < 60 else \
            self.payload[:60] + b"...(%d)" % len(self.payload)
        return "Frame(fin=%d rsv=%d op=%#x %r)" % (self.fin, self.rsv,
                                                  self.opcode, p)


class HandshakeError(Exception):
    def __init__(self, status, headers, body):
        super().__init__("handshake answered %d: %r" % (status, body[:200]))
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body.decode("utf-8"))


def encode_frame(opcode, payload=b"", fin=True, rsv=0, mask=True,
                 mask_key=None, length_override=None):
    """A client frame, byte-exact."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    n = len(payload) if length_override is None else length_override
    mbit = 0x80 if mask else 0
    if n < 126:
        hdr = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, mbit | 127, n)
    if mask:
        key = mask_key if mask_key is not None else os.urandom(4)
        masked = bytes(b ^ key[i & 3] for i, b in enumerate(payload))
        return hdr + key + masked
    return hdr + payload


def close_payload(code, reason=b""):
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    return struct.pack("!H", code) + reason


class RawWS:
    """A blocking WebSocket client on a plain socket."""

    def __init__(self, srv, path=None, query=None, headers=None,
                 version="13", timeout=5.0, rcvbuf=None, key=None,
                 omit=(), expect_101=True, pipelined=b""):
        self.srv = srv
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", srv.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.closed = False
        target = (path or srv.sub)
        if query:
            target += "?" + (query if isinstance(query, str)
                             else urlencode(query))
        self.key = key or base64.b64encode(os.urandom(16)).decode()
        h = {
            "Host": "127.0.0.1:%d" % srv.port,
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": self.key,
            "Sec-WebSocket-Version": version,
        }
        for k in omit:
            h.pop(k, None)
        if headers:
            h.update(headers)
        req = "GET %s HTTP/1.1\r\n" % target
        req += "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
        # pipelined: frames sent in the same write as the handshake
        self.sock.sendall(req.encode("latin-1") + pipelined)
        self.status, self.headers, body = self._read_response()
        if self.status != 101:
            self.close_socket()
            err = HandshakeError(self.status, self.headers, body)
            if expect_101:
                raise err
            self.error = err
            return
        want = base64.b64encode(hashlib.sha1(self.key.encode() + WS_GUID)
                                .digest()).decode()
        assert self.headers.get("sec-websocket-accept") == want, self.headers
        assert "websocket" in self.headers.get("upgrade", "").lower()

    # -- low level --
    def _fill(self, n):
        while len(self.buf) < n:
            try:
                d = self.sock.recv(65536)
            except ConnectionResetError:
                d = b""
            if not d:
                raise EOFError("connection closed by server (%d of %d bytes)"
                               % (len(self.buf), n))
            self.buf += d

    def _take(self, n):
        self._fill(n)
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def _read_response(self):
        while b"\r\n\r\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError("no HTTP answer to the handshake: %r"
                               % self.buf)
            self.buf += d
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            k = k.strip().lower()
            headers[k] = (headers[k] + ", " if k in headers else "") + \
                v.strip()
        body = b""
        if status != 101:
            if "content-length" in headers:
                body = self._take(int(headers["content-length"]))
            else:
                try:
                    while True:
                        d = self.sock.recv(65536)
                        if not d:
                            break
                        self.buf += d
                except (socket.timeout, ConnectionResetError):
                    pass
                body, self.buf = self.buf, b""
        return status, headers, body

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, opcode, payload=b"", **kw):
        self.sock.sendall(encode_frame(opcode, payload, **kw))

    def send_text(self, text, **kw):
        self.send_frame(OP_TEXT, text.encode("utf-8")
                        if isinstance(text, str) else text, **kw)

    def send_binary(self, data, **kw):
        self.send_frame(OP_BINARY, data, **kw)

    def send_close(self, code=None, reason=b""):
        self.send_frame(OP_CLOSE, b"" if code is None
                        else close_payload(code, reason))

    def recv_frame(self, timeout=5.0):
        """The next frame from the server; server frames must be unmasked.
        Raises EOFError when the connection ends, socket.timeout."""
        self.sock.settimeout(timeout)
        b0, b1 = self._take(2)
        assert not (b1 & 0x80), "server frame is masked (RFC 6455 5.1)"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._take(2))[0]
            assert n >= 126, "length not minimally encoded (RFC 6455 5.2)"
        elif n == 127:
            n = struct.unpack("!Q", self._take(8))[0]
            assert n > 0xFFFF, "length not minimally encoded (RFC 6455 5.2)"
        payload = self._take(n)
        return Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, payload)

    def recv_message(self, timeout=5.0, answer_pings=True):
        """The next data message (opcode, payload), reassembled.  Server
        pings are answered (pongs ignored).  A close frame raises
        AssertionError naming its code."""
        end = time.monotonic() + timeout
        op, parts = None, []
        while True:
            f = self.recv_frame(max(0.01, end - time.monotonic()))
            if f.opcode == OP_PING:
                if answer_pings:
                    self.send_frame(OP_PONG, f.payload)
                continue
            if f.opcode == OP_PONG:
                continue
            if f.opcode == OP_CLOSE:
                raise AssertionError("unexpected close %r" % (f,))
            if op is None:
                assert f.opcode in (OP_TEXT, OP_BINARY), f
                op = f.opcode
            else:
                assert f.opcode == OP_CONT, f
            parts.append(f.payload)
            if f.fin:
                return op, b"".join(parts)

    def recv_text(self, timeout=5.0):
        op, data = self.recv_message(timeout)
        assert op == OP_TEXT, (op, data)
        return data.decode("utf-8")

    def expect_close(self, timeout=5.0):
        """Reads until the server's close frame (skipping data and pings)
        and returns it; then checks that the server closes the TCP
        connection (RFC 6455 7.1.1: the server closes first)."""
        end = time.monotonic() + timeout
        while True:
            f = self.recv_frame(max(0.01, end - time.monotonic()))
            if f.opcode == OP_CLOSE:
                break
        self.close_frame = f
        return f

    def expect_eof(self, timeout=5.0):
        """True when the server closes the TCP connection within timeout
        (any frames before that are discarded)."""
        self.sock.settimeout(timeout)
        end = time.monotonic() + timeout
        try:
            while time.monotonic() < end:
                d = self.sock.recv(65536)
                if not d:
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        return False

    def close_socket(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close_socket()


def ws_url(srv, path=None, **params):
    return url(srv, path or srv.sub, **params).replace("http://", "ws://", 1)


def ws_connect(srv, path=None, **params):
    """An `async with` context for Python's websockets client."""
    import websockets
    return websockets.connect(ws_url(srv, path, **params), open_timeout=5,
                              close_timeout=3, ping_interval=None,
                              max_size=None)
