#!/usr/bin/python3
"""Experiment for docs/BENCHMARKS.md, change 6: a channel per subscriber
(a queue per visitor).  N WebSockets, each on its own channel, on one
server; 3,000 messages published one at a time (the next when the
previous is answered) to random channels over one keep-alive connection.
Reports the server's CPU (workers' utime + stime) per message and checks
that every message arrived.  The clients are Python (this script), so
only the server's CPU is comparable, not the rate.  2 rounds, alternating.

    /usr/bin/python3 bench/experiments/channel_per_subscriber.py
"""
import base64
import os
import random
import selectors
import socket
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import bench  # noqa: E402

MSGS = 3000
SIZES = (5000, 10000)
SERVERS = ("pushq-1w", "nchan-1w", "pushq-2w", "nchan-2w")
FRAME = b"\x81\x08msg-0000"


def cpu_s(pids):
    t = 0
    for p in pids:
        with open("/proc/%d/stat" % p) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        t += int(fields[11]) + int(fields[12])
    return t / os.sysconf("SC_CLK_TCK")


def one(server, n, rnd):
    srv = bench.SERVERS[server]().start()
    sel = selectors.DefaultSelector()
    socks = []
    try:
        pids = srv.pids()
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", srv.port))
            s.sendall(("GET /sub?channel=v%d_%d HTTP/1.1\r\nHost: x\r\n"
                       "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Version: 13\r\n"
                       "Sec-WebSocket-Key: %s\r\n\r\n"
                       % (rnd, i, base64.b64encode(os.urandom(16)).decode())
                       ).encode())
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            socks.append(s)
        got = [0]

        def drain(timeout):
            for key, _ in sel.select(timeout):
                try:
                    data = key.fileobj.recv(65536)
                except BlockingIOError:
                    continue
                got[0] += data.count(FRAME)

        end = time.monotonic() + 5          # handshakes settle
        while time.monotonic() < end:
            drain(0.1)
        pub = socket.create_connection(("127.0.0.1", srv.port))
        rng = random.Random(rnd)
        c0 = cpu_s(pids)
        answers = b""
        for k in range(MSGS):
            if k % 900 == 0 and k:
                # nginx closes a keep-alive connection after 1000 requests
                pub.close()
                pub = socket.create_connection(("127.0.0.1", srv.port))
                answers = b""
            pub.sendall(b"POST /pub?channel=v%d_%d HTTP/1.1\r\nHost: x\r\n"
                        b"Content-Length: 8\r\n\r\nmsg-0000"
                        % (rnd, rng.randrange(n)))
            want = k % 900 + 1
            while answers.count(b"HTTP/1.1 ") < want:
                answers += pub.recv(65536)
            drain(0)
        end = time.monotonic() + 10
        while got[0] < MSGS and time.monotonic() < end:
            drain(0.1)
        c1 = cpu_s(pids)
        pub.close()
        assert got[0] == MSGS, (server, n, got[0])
        return (c1 - c0) * 1e6 / MSGS
    finally:
        for s in socks:
            s.close()
        srv.stop()


def main():
    bench.raise_nofile()
    os.makedirs(bench.RUN_DIR, exist_ok=True)
    res = {}
    for rnd in range(2):
        for n in SIZES:
            order = SERVERS if rnd % 2 == 0 else tuple(reversed(SERVERS))
            for server in order:
                res.setdefault((server, n), []).append(one(server, n, rnd))
    print("| %d messages, one at a time | %s |" % (
        MSGS, " | ".join("%d channels x 1 WS" % n for n in SIZES)))
    print("|---|%s" % ("---|" * len(SIZES)))
    for server in SERVERS:
        print("| %s: server CPU per message | %s |" % (server, " | ".join(
            "%.0f us (%s)" % (statistics.median(res[(server, n)]),
                              ", ".join("%.0f" % x for x in res[(server, n)]))
            for n in SIZES)))


if __name__ == "__main__":
    main()
