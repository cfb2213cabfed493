"""Held connections at scale, a crashed worker, long-lived WebSockets."""

import base64
import os
import selectors
import signal
import socket
import time

import pytest

from clients import (RawWS, channel_stats, encode_frame, new_channel,
                     publish_ok, wait_for, wait_subscribers)


def _connect(srv, request):
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall(request)
    s.setblocking(False)
    return s


def _read_all(socks, done, timeout):
    """Reads every socket until done(data) is true for it."""
    sel = selectors.DefaultSelector()
    data = {}
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
        data[s] = b""
    pending = set(socks)
    end = time.monotonic() + timeout
    while pending and time.monotonic() < end:
        for key, _ in sel.select(0.5):
            s = key.fileobj
            try:
                chunk = s.recv(65536)
            except BlockingIOError:
                continue
            data[s] += chunk
            if done(data[s]) or not chunk:
                sel.unregister(s)
                pending.discard(s)
    sel.close()
    return data


def test_thousands_held_in_one_worker(servers):
    srv = servers.start(workers=1, longpoll_timeout="60s")
    ch = new_channel("s")
    n_lp, n_ws = 3000, 500
    lp = [_connect(srv, ("GET /sub?channel=%s HTTP/1.1\r\nHost: x\r\n"
                         "Connection: close\r\n\r\n" % ch).encode())
          for _ in range(n_lp)]
    ws = [_connect(srv, ("GET /sub?channel=%s HTTP/1.1\r\nHost: x\r\n"
                         "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Version: 13\r\n"
                         "Sec-WebSocket-Key: %s\r\n\r\n"
                         % (ch, base64.b64encode(os.urandom(16)).decode())
                         ).encode())
          for _ in range(n_ws)]
    assert wait_subscribers(srv, ch, n_lp + n_ws, timeout=30)
    t0 = time.monotonic()
    publish_ok(srv, ch, "to all")
    answers = _read_all(lp, lambda d: d.endswith(b"}"), 30)
    frame = b"\x81\x06to all"
    frames = _read_all(ws, lambda d: d.endswith(frame), 30)
    took = time.monotonic() - t0
    assert all(b'"msg": "to all"' in d for d in answers.values())
    assert all(d.startswith(b"HTTP/1.1 101") and d.endswith(frame)
               for d in frames.values())
    assert took < 20, took
    for s in lp + ws:
        s.close()
    assert wait_subscribers(srv, ch, 0, timeout=10)


@pytest.mark.allow_log("exited on signal 9")
def test_crashed_worker_subscribers_are_reaped(servers):
    srv = servers.start(workers=2, server_extra="add_header X-Worker $pid "
                        "always;")
    ch = new_channel("s")
    sockets = {}
    while len(sockets) < 2 or min(len(v) for v in sockets.values()) < 2:
        w = RawWS(srv, query={"channel": ch})
        sockets.setdefault(int(w.headers["x-worker"]), []).append(w)
        assert sum(len(v) for v in sockets.values()) < 40
    total = sum(len(v) for v in sockets.values())
    assert wait_subscribers(srv, ch, total)
    victim = sorted(sockets)[0]
    os.kill(victim, signal.SIGKILL)
    # the master starts a new worker, which releases the dead one's
    assert wait_for(lambda: len(srv.pids()) == 2 and victim not in
                    srv.pids(), timeout=10)
    survivors = total - len(sockets[victim])
    assert wait_subscribers(srv, ch, survivors, timeout=5)
    assert "released the subscribers of 1 exited worker" in srv.log_text()
    # the survivors still receive, and publishing works on every worker
    for i in range(6):
        publish_ok(srv, ch, "after%d" % i)
    for pid, socks in sockets.items():
        for w in socks:
            if pid != victim:
                assert [w.recv_text() for _ in range(6)] == \
                    ["after%d" % i for i in range(6)]
            w.close_socket()


def _rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@pytest.mark.skipif(os.environ.get("PUSHQ_SANITIZED") == "1",
                    reason="ASan's quarantine grows the worker's memory")
def test_long_lived_websocket_does_not_grow_the_worker(servers):
    """Every frame in and out uses the module's own buffers, not the
    request pool: 15000 messages through one WebSocket do not grow the
    worker's memory."""
    srv = servers.start(workers=1)
    ch = new_channel("s")
    w = RawWS(srv, query={"channel": ch})
    payload = b"m" * 200

    def burst(n):
        batch = b"".join(encode_frame(0x1, payload) for _ in range(100))
        for _ in range(n // 100):
            w.send_raw(batch)
            for _ in range(100):
                assert w.recv_message()[1] == payload

    burst(3000)
    pid = srv.pids()[0]
    before = _rss_kb(pid)
    burst(15000)
    after = _rss_kb(pid)
    assert after - before < 1024, (before, after)
    st = channel_stats(srv, ch)
    assert st["last_id"] == 18000, st
    w.close_socket()


def test_reader_that_stops_reading_is_dropped_despite_kernel_buffers(
        servers):
    """The backlog counts what the kernel holds unsent too: with socket
    send buffers autotuned to megabytes, a reader that stopped reading is
    still dropped once pushq_websocket_max_backlog is unsent, with 1008
    at the end of what it was sent; a reader that reads gets everything."""
    srv = servers.start(workers=1, websocket_max_backlog="64k")
    ch = new_channel("s")
    slow = RawWS(srv, query={"channel": ch}, rcvbuf=4096)
    fast = RawWS(srv, query={"channel": ch})
    assert wait_subscribers(srv, ch, 2)
    payload = b"p" * 3000
    got = []
    for i in range(200):
        publish_ok(srv, ch, payload)
        got.append(fast.recv_message()[1])
    assert got == [payload] * 200
    assert wait_subscribers(srv, ch, 1)
    st = channel_stats(srv, ch)
    assert st["subscribers"] == 1, st
    # the slow reader now reads: messages, then close 1008
    n = 0
    while True:
        f = slow.recv_frame(timeout=10)
        if f.opcode == 0x8:
            assert f.close_code == 1008, f
            break
        n += 1
    assert 0 < n < 200, n
    assert "too slow" in srv.log_text()
    fast.close_socket()
    slow.close_socket()
