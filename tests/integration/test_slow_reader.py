"""SPEC.md: "A subscriber too slow to read is disconnected (1008 when a
close frame still fits, else a plain close) once its unsent data passes
`websocket_max_backlog`, without slowing anybody else."  Also the
dropped_slow counter."""

import socket
import struct
import threading
import time

import requests

from clients import RawWS, status, url, wait_subscribers

SETTINGS = {"websocket_max_backlog": "64k", "max_message_size": "64k"}

MSG = 16 * 1024
COUNT = 600          # ~9.6 MB: far more than the kernel buffers hold
AHEAD = 32           # messages the publisher may be ahead of the fast reader


def parse_frames(data):
    """Frames in a byte string: [(opcode, payload)], leftover bytes."""
    out, i = [], 0
    while i + 2 <= len(data):
        b0, b1 = data[i], data[i + 1]
        n, j = b1 & 0x7F, i + 2
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
        out.append((b0 & 0xF, data[j:j + n]))
        i = j + n
    return out, data[i:]


def test_slow_reader_dropped_fast_reader_unaffected(server, ch):
    dropped_before = status(server).json()["dropped_slow"]
    slow = RawWS(server, query={"channel": ch}, rcvbuf=4096)
    fast = RawWS(server, query={"channel": ch})
    assert wait_subscribers(server, ch, 2)

    got, fast_err = [], []

    def reader():
        try:
            while len(got) < COUNT:
                op, data = fast.recv_message(timeout=10)
                got.append((data[:8], time.monotonic()))
        except Exception as e:      # reported below
            fast_err.append(repr(e))
    t = threading.Thread(target=reader)
    t.start()
    sent_at = []
    with requests.Session() as s:
        for i in range(COUNT):
            # The fast reader is a Python thread sharing the GIL with this
            # publisher: keep it within AHEAD messages (512 KB, well inside
            # the socket buffers), so that "fast" means a reader that keeps
            # up, not one that wins a race against the publisher on a busy
            # machine.  The slow reader still falls megabytes behind.
            deadline = time.monotonic() + 10
            while len(got) < i - AHEAD and not fast_err \
                    and time.monotonic() < deadline:
                time.sleep(0.001)
            body = (b"%08d" % i) + b"." * (MSG - 8)
            r = s.post(url(server, server.pub, channel=ch), data=body,
                       headers={"Content-Type": "application/octet-stream"},
                       timeout=10)
            assert r.status_code == 200, r.text
            sent_at.append(time.monotonic())
    t.join(20)
    assert not fast_err, fast_err
    assert [g[0] for g in got] == [b"%08d" % i for i in range(COUNT)]
    lag = max(g[1] - s for g, s in zip(got, sent_at))
    assert lag < 2.0, "the fast reader was held up by %.2fs" % lag
    publish_took = sent_at[-1] - sent_at[0]
    assert publish_took < 30, publish_took

    # the slow one: was cut off; what it did get is whole frames in order,
    # then (maybe) a 1008 close, then EOF
    assert wait_subscribers(server, ch, 1, timeout=5), \
        "the slow reader is still subscribed"
    slow.sock.settimeout(5)
    data = slow.buf
    while True:
        try:
            d = slow.sock.recv(1 << 20)
        except (ConnectionResetError, socket.timeout):
            break
        if not d:
            break
        data += d
    slow.close_socket()
    fast.close_socket()
    frames, rest = parse_frames(data)
    data_frames = [f for f in frames if f[0] in (1, 2)]
    assert len(data_frames) < COUNT, "the slow reader got everything"
    assert [p[:8] for _, p in data_frames] == \
        [b"%08d" % i for i in range(len(data_frames))]
    closes = [f for f in frames if f[0] == 8]
    if closes:
        assert struct.unpack("!H", closes[0][1][:2])[0] == 1008, closes
    assert status(server).json()["dropped_slow"] - dropped_before >= 1
