"""Slow clients: slowloris senders on the publisher and on the WebSocket
handshake, and subscribers that never read.  The server cuts them at its
documented limits (header/body timeouts; websocket_max_backlog) and every
other client keeps its messages and its latency."""

import socket
import struct
import threading
import time

import pytest

from cases import connect
import http.client

from util import (SANITIZED, fd_count, publish, request, rss_kb, rst_close,
                  status, stored, wait_subscribers, wait_until)
from wsclient import BINARY, TEXT, frame

# Short request timeouts so that the cut is seen within the test.
SLOW = {"nginx_server_extra": "client_header_timeout 2s; "
        "client_body_timeout 2s;",
        "civetweb_options": (("request_timeout_ms", "2000"),)}


class Slowloris:
    """n connections, each sending `data` one byte every `gap` seconds
    from one background thread, until stopped; records when each one was
    closed by the server."""

    def __init__(self, srv, data, n, gap=0.25, prefix=b""):
        self.socks = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if prefix:
                s.sendall(prefix)
            s.setblocking(False)
            self.socks.append(s)
        self.data, self.gap = data, gap
        self.closed_at = {}
        self.answers = {}
        self.start = time.monotonic()
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        i = 0
        while not self.stop_ev.is_set():
            for k, s in enumerate(self.socks):
                if k in self.closed_at:
                    continue
                try:
                    d = s.recv(4096)
                    if d == b"":
                        self.closed_at[k] = time.monotonic() - self.start
                        continue
                    self.answers[k] = self.answers.get(k, b"") + d
                except BlockingIOError:
                    pass
                except OSError:
                    self.closed_at[k] = time.monotonic() - self.start
                    continue
                if i >= len(self.data):
                    continue          # all sent: only watch for the close
                try:
                    s.send(self.data[i:i + 1])
                except BlockingIOError:
                    pass
                except OSError:
                    self.closed_at[k] = time.monotonic() - self.start
            i += 1
            self.stop_ev.wait(self.gap)

    def stop(self):
        self.stop_ev.set()
        self.t.join(5)
        for s in self.socks:
            s.close()


def fast_clients_unaffected(srv, ch, n=30):
    """A WebSocket subscriber gets n HTTP publishes, each within 1 s."""
    with connect(srv, ch) as ws:
        assert wait_subscribers(srv, ch, 1)
        worst = 0.0
        for i in range(n):
            t0 = time.monotonic()
            st, h, body = publish(srv, ch, b"fast %d" % i)
            assert st == 200, body
            f = ws.recv_frame(5)
            assert f.payload == b"fast %d" % i, f
            worst = max(worst, time.monotonic() - t0)
        assert worst < 1.0, "a fast client waited %.2f s" % worst


def test_stalled_body_not_published(servers, ch):
    """A publish that sends 8 of its 200 body bytes and stalls: refused or
    cut after the body timeout, never published."""
    srv = servers(**SLOW)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(request("POST", "%s?channel=%s" % (srv.pub, ch),
                      [("Content-Length", "200")], b"y" * 8, close=False))
    data = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    assert not data.startswith(b"HTTP/1.1 200"), data[:300]
    assert stored(srv, ch) == [], "a truncated body was published"


@pytest.mark.parametrize("where", [
    "publish-head",
    "publish-body",
    "ws-handshake"])
def test_slowloris(servers, ch, where):
    srv = servers(**SLOW)
    target = "%s?channel=%s" % (srv.pub, ch)
    if where == "publish-head":
        data = request("POST", target, body=b"x" * 10)
    elif where == "publish-body":
        data = request("POST", target, [("Content-Length", "200")],
                       b"y" * 200, close=False)
        head = data[:data.index(b"\r\n\r\n") + 4]
    else:
        data = ("GET %s?channel=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket"
                "\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
                "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                "X-Pad: %s\r\n\r\n" % (srv.sub, ch, "p" * 200)).encode()
    n = 40
    if where == "publish-body":
        # the head arrives at once, then 8 body bytes, one every 0.25 s,
        # then nothing: client_body_timeout (nginx) counts between reads
        lor = Slowloris(srv, b"y" * 8, n, gap=0.25, prefix=head)
    else:
        lor = Slowloris(srv, data, n, gap=0.25)
    try:
        fast_clients_unaffected(srv, "fast-" + ch)
        # the documented answer: cut after the 2 s timeout (nginx
        # client_header_timeout / client_body_timeout, CivetWeb
        # request_timeout_ms), long before the request could complete
        assert wait_until(lambda: len(lor.closed_at) == n, 15), \
            "%d of %d slow connections still open after %.1f s" % (
                n - len(lor.closed_at), n, time.monotonic() - lor.start)
        assert max(lor.closed_at.values()) < 15
        # ... and not before the timeout: they were not refused for
        # something else (answers, when any, are 408 or 400)
        assert min(lor.closed_at.values()) > 1.5, (lor.closed_at,
                                                   lor.answers)
        for a in lor.answers.values():
            assert a.split(b" ", 2)[1] in (b"408", b"400"), a[:200]
    finally:
        lor.stop()
    assert stored(srv, ch) == [], "a slow request got published"
    assert wait_subscribers(srv, ch, 0, timeout=3)


# buffer 50: the channel's store use stops growing after the first round,
# so that a second round shows whether anything else grew.
BACKLOG = {"websocket_max_backlog": "64k", "max_message_size": "64k",
           "buffer": "50",
           # CivetWeb: few threads, so that the memory check is not fooled
           # by hundreds of thread stacks being touched for the first time
           "civetweb_options": (("num_threads", "64"),)}


def slow_reader_round(srv, ch, n_slow=5, count=300, size=16 * 1024):
    """n_slow subscribers that never read (4 KiB receive buffers) and one
    that reads; `count` messages of `size` bytes published over HTTP.
    Returns the dropped_slow increase."""
    dropped0 = status(srv)["dropped_slow"]
    fds0 = fd_count(srv)
    slow = []
    for _ in range(n_slow):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"GET %s?channel=%s HTTP/1.1\r\nHost: x\r\n"
                  b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  b"Sec-WebSocket-Version: 13\r\n\r\n"
                  % (srv.sub.encode(), ch.encode()))
        slow.append(s)
    fast = connect(srv, ch)
    try:
        assert wait_subscribers(srv, ch, n_slow + 1)
        got, errs, sent = [], [], {}

        def reader():
            try:
                while len(got) < count:
                    f = fast.recv_frame(10)
                    got.append((f.payload[:8], time.monotonic()))
            except Exception as e:
                errs.append(repr(e))
        t = threading.Thread(target=reader)
        t.start()
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        t0 = time.monotonic()
        for i in range(count):
            body = b"%08d" % i + b"." * (size - 8)
            conn.request("POST", "%s?channel=%s" % (srv.pub, ch), body,
                         {"Content-Type": "application/octet-stream"})
            r = conn.getresponse()
            r.read()
            assert r.status == 200
            sent[b"%08d" % i] = time.monotonic()
            # the reader is a reader: keep it within 2 messages (32 KiB)
            wait_until(lambda: len(got) >= i - 1 or errs, 5, 0.001)
        took = time.monotonic() - t0
        conn.close()
        t.join(20)
        assert not errs, errs
        assert [g[0] for g in got] == [b"%08d" % i for i in range(count)]
        lag = max(at - sent[k] for k, at in got)
        assert lag < 1.0, "the reading subscriber lagged %.2f s" % lag
        assert took < 10, "publishing took %.1f s" % took
        T("published")
        assert wait_subscribers(srv, ch, 1, timeout=5), \
            "the subscribers that never read are still subscribed"
        T("unsubscribed")
        # what a slow one has received so far: the 101, then whole frames
        # in order (the first of its messages), maybe a 1008 close
        for s in slow:
            s.settimeout(0.5)
            data = b""
            try:
                while len(data) < 20000:
                    d = s.recv(65536)
                    if not d:
                        break
                    data += d
            except (ConnectionResetError, socket.timeout):
                pass
            assert data.startswith(b"HTTP/1.1 101"), data[:100]
            frames = parse_frames(data.split(b"\r\n\r\n", 1)[1])
            datas = [p[:8] for op, p in frames if op in (TEXT, BINARY)]
            assert datas == [b"%08d" % i for i in range(len(datas))]
            closes = [p for op, p in frames if op == 8]
            if closes:
                assert struct.unpack("!H", closes[0][:2])[0] == 1008
        # nothing left behind: once the clients are gone too, the server's
        # fds are back to the baseline plus the reading subscriber
        for s in slow:
            rst_close(s)
        assert wait_until(lambda: fd_count(srv) <= fds0 + 1, 5), \
            "server holds %d fds, %d before (+1 reader expected)" % (
                fd_count(srv), fds0)
        T("fds")
        return status(srv)["dropped_slow"] - dropped0
    finally:
        fast.close()
        for s in slow:
            rst_close(s)


def T(what):
    import os
    if os.environ.get("PUSHQ_TRACE"):
        print("%.2f %s" % (time.monotonic(), what), flush=True)


def parse_frames(data):
    out, i = [], 0
    while i + 2 <= len(data):
        n, j = data[i + 1] & 0x7F, i + 2
        if n == 126:
            if j + 2 > len(data):
                break
            n, j = struct.unpack("!H", data[j:j + 2])[0], j + 2
        elif n == 127:
            if j + 8 > len(data):
                break
            n, j = struct.unpack("!Q", data[j:j + 8])[0], j + 8
        if j + n > len(data):
            break
        out.append((data[i] & 0xF, data[j:j + n]))
        i = j + n
    return out


def test_slow_readers_cut_at_backlog_others_keep_latency(servers, ch):
    """5 subscribers that never read and one that reads, 300 x 16 KiB
    messages: the 5 are disconnected once their backlog passes 64 KiB
    (1008 close frame or a plain close; dropped_slow grows by 5), the
    reader gets every message in order within 1 s of its publish, the
    publisher is not slowed.  A second round leaves memory where the first
    left it."""
    srv = servers(**BACKLOG)
    assert slow_reader_round(srv, ch) == 5
    assert wait_subscribers(srv, ch, 0)
    rss1 = rss_kb(srv)
    assert slow_reader_round(srv, ch) == 5
    assert wait_subscribers(srv, ch, 0)
    assert SANITIZED or wait_until(lambda: rss_kb(srv) < rss1 + 2048, 5), \
        "RSS %d kB after round 2, %d kB after round 1" % (rss_kb(srv), rss1)
