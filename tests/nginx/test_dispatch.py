"""Dispatch passes in slices (nginx_module/ngx_http_pushq_shm.c).

A worker notifies at most 128 subscribers before it goes back to its event
loop, and goes on where it was after that.  These tests hold far more
subscribers than one slice, publish in bursts (so that new messages arrive
while a pass is half-way), and have subscribers leave and join while the
passes run: every subscriber still gets every message once and in order.
They also run under ASan/UBSan (make test-nginx-san), where a group freed
under a suspended pass would show.
"""

import base64
import os
import random
import selectors
import socket
import time

import pytest

from clients import new_channel, wait_subscribers


def _ws_open(srv, ch):
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall(("GET /sub?channel=%s HTTP/1.1\r\nHost: x\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n"
               % (ch, base64.b64encode(os.urandom(16)).decode())).encode())
    s.setblocking(False)
    return s


class Reader:
    """Reads WebSocket text frames (short, unmasked) from many sockets."""

    def __init__(self):
        self.sel = selectors.DefaultSelector()
        self.buf = {}
        self.got = {}
        self.upgraded = {}

    def add(self, s):
        self.sel.register(s, selectors.EVENT_READ)
        self.buf[s] = b""
        self.got[s] = []
        self.upgraded[s] = False

    def remove(self, s):
        self.sel.unregister(s)
        s.close()

    def _parse(self, s):
        b = self.buf[s]
        if not self.upgraded[s]:
            end = b.find(b"\r\n\r\n")
            if end < 0:
                return
            assert b.startswith(b"HTTP/1.1 101"), b[:80]
            self.upgraded[s] = True
            b = b[end + 4:]
        while len(b) >= 2:
            assert b[0] == 0x81, b[:8]         # FIN + text, one frame each
            n = b[1]
            assert n < 126, n                  # unmasked, short
            if len(b) < 2 + n:
                break
            self.got[s].append(b[2:2 + n].decode())
            b = b[2 + n:]
        self.buf[s] = b

    def poll(self, timeout):
        for key, _ in self.sel.select(timeout):
            s = key.fileobj
            try:
                chunk = s.recv(65536)
            except BlockingIOError:
                continue
            assert chunk, "server closed a subscriber"
            self.buf[s] += chunk
            self._parse(s)

    def until(self, pred, timeout):
        end = time.monotonic() + timeout
        while not pred() and time.monotonic() < end:
            self.poll(0.2)
        return pred()


class Publisher:
    """Publishes over one keep-alive connection, several requests in
    flight (pipelined): the worker reads them while its passes run."""

    def __init__(self, srv):
        self.srv = srv
        self.s = None
        self.answers = 0

    def send(self, pairs):
        if self.s is None or self.answers + len(pairs) > 900:
            # nginx closes a keep-alive connection after 1000 requests
            self.close()
            self.s = socket.create_connection(("127.0.0.1", self.srv.port))
            self.answers = 0
            self.data = b""
        req = b"".join(
            ("POST /pub?channel=%s HTTP/1.1\r\nHost: x\r\n"
             "Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
             % (ch, len(m), m)).encode() for ch, m in pairs)
        self.s.sendall(req)
        want = self.answers + len(pairs)
        self.s.settimeout(30)
        while self.data.count(b"HTTP/1.1 ") < want:
            chunk = self.s.recv(65536)
            assert chunk, "publisher connection closed"
            self.data += chunk
        assert self.data.count(b"HTTP/1.1 200") == want, self.data[-300:]
        self.answers = want

    def close(self):
        if self.s is not None:
            self.s.close()
            self.s = None


def _subscribe(srv, counts):
    """Opens counts[ch] WebSockets on each channel ch and waits until all
    are upgraded and counted; returns the reader and socket -> channel."""
    rd = Reader()
    owner = {}
    for ch, n in counts.items():
        for _ in range(n):
            s = _ws_open(srv, ch)
            rd.add(s)
            owner[s] = ch
    for ch, n in counts.items():
        assert wait_subscribers(srv, ch, n, timeout=20)
    assert rd.until(lambda: all(rd.upgraded.values()), 20)
    return rd, owner


def _all_got_all(rd, owner, msgs):
    """Every subscriber got "<channel>-1" .. "<channel>-<msgs>", once, in
    order; then closes them."""
    assert rd.until(lambda: all(len(g) >= msgs for g in rd.got.values()), 60)
    rd.poll(0.3)
    for s, got in rd.got.items():
        ch = owner[s]
        assert got == ["%s-%d" % (ch, i) for i in range(1, msgs + 1)]
    for s in list(owner):
        rd.remove(s)


def _burst(pub, channels, first, last, per_request=20):
    pairs = [(ch, "%s-%d" % (ch, i)) for i in range(first, last + 1)
             for ch in channels]
    for k in range(0, len(pairs), per_request):
        pub.send(pairs[k:k + per_request])


@pytest.mark.parametrize("workers", [1, 2])
def test_bursts_reach_every_subscriber_once_in_order(servers, workers):
    srv = servers.start(workers=workers)
    # groups of different sizes, so that slices end inside a group
    sizes = [1, 150, 7, 300, 60]
    channels = [new_channel("d%d" % i) for i in range(len(sizes))]
    rd, owner = _subscribe(srv, dict(zip(channels, sizes)))
    pub = Publisher(srv)
    msgs = 40
    _burst(pub, channels, 1, msgs)
    pub.close()
    _all_got_all(rd, owner, msgs)


def test_subscribers_leave_and_join_while_passes_run(servers):
    srv = servers.start(workers=1)
    channels = [new_channel("j%d" % i) for i in range(8)]
    per = 60
    rd, owner = _subscribe(srv, {ch: per for ch in channels})

    pub = Publisher(srv)
    msgs = 60
    left, joined = set(), []
    for i in range(1, msgs + 1, 5):
        _burst(pub, channels, i, i + 4, per_request=40)
        rd.poll(0)
        if i == 11:
            # every subscriber of two channels leaves (their groups empty
            # while a pass may be suspended), and a third of another's
            for s in [s for s in owner if owner[s] in channels[2:4]]:
                left.add(s)
            left.update([s for s in owner if owner[s] == channels[5]][::3])
            for s in left:
                rd.remove(s)
        if i in (21, 31):
            for ch in channels[:4]:
                for _ in range(20):
                    s = _ws_open(srv, ch)
                    rd.add(s)
                    joined.append(s)
                    owner[s] = ch
            assert rd.until(lambda: all(rd.upgraded[s] for s in joined), 20)

    stay = [s for s in owner if s not in left]
    assert rd.until(lambda: all(rd.got[s] and rd.got[s][-1].endswith(
        "-%d" % msgs) for s in stay), 60)
    rd.poll(0.3)
    for s in stay:
        ch = owner[s]
        nums = [int(m.rsplit("-", 1)[1]) for m in rd.got[s]]
        assert all(m.startswith(ch + "-") for m in rd.got[s])
        if s in joined:
            # from some message on, every one, in order
            assert nums == list(range(nums[0], msgs + 1)), nums
        else:
            assert nums == list(range(1, msgs + 1)), nums
    for ch in channels:
        n = sum(1 for s in stay if owner[s] == ch)
        assert wait_subscribers(srv, ch, n, timeout=10)
    pub.close()
    for s in stay:
        rd.remove(s)


@pytest.mark.parametrize("workers,per_request", [(1, 10), (4, 10), (4, 400)])
def test_a_channel_per_subscriber(servers, workers, per_request):
    """A channel per subscriber (a queue per visitor), spread over the
    workers: a pass visits only the channels listed as changed
    (ngx_http_pushq_changes.c).  Bursts of 400 publishes overflow a list
    (256 keys), so the pass that follows visits everyone instead."""
    srv = servers.start(workers=workers)
    n = 400
    channels = [new_channel("v%d" % i) for i in range(n)]
    rd, owner = _subscribe(srv, {ch: 1 for ch in channels})
    pub = Publisher(srv)
    msgs = 5
    order = [ch for ch in channels for _ in range(msgs)]
    random.Random(7).shuffle(order)
    seq = {ch: 0 for ch in channels}
    pairs = []
    for ch in order:
        seq[ch] += 1
        pairs.append((ch, "%s-%d" % (ch, seq[ch])))
    for k in range(0, len(pairs), per_request):
        pub.send(pairs[k:k + per_request])
        rd.poll(0)
    pub.close()
    _all_got_all(rd, owner, msgs)
