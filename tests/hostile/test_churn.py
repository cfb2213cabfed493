"""Connections that vanish: 1,000 opened and dropped mid-handshake (FIN or
RST, at every point of the request, or right after sending a complete
handshake), and long-poll clients that vanish while waiting.  Live clients
lose nothing, the server forgets the dead ones (subscriber counts, fds),
named clients keep their messages, memory settles."""

import base64
import json
import os
import random
import socket
import threading
import time

import pytest

from cases import connect
from util import (SANITIZED, channel_status, fd_count, publish, request,
                  responses, rss_kb, rst_close, stored, wait_subscribers,
                  wait_until)
from wsclient import TEXT


def handshake(srv, ch):
    key = base64.b64encode(os.urandom(16)).decode()
    return ("GET %s?channel=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
            % (srv.sub, ch, key)).encode()


def drop_round(srv, ch, n, rng):
    """n connections, in batches of 200: each sends a prefix of a
    handshake (sometimes all of it) and is closed with FIN or RST."""
    full = handshake(srv, ch)
    left = n
    while left:
        batch = min(200, left)
        left -= batch
        socks = []
        for _ in range(batch):
            s = socket.socket()
            s.settimeout(5)
            s.connect(("127.0.0.1", srv.port))
            cut = rng.choice([0, 1, 10, len(full) // 2, len(full) - 3,
                              len(full) - 1, len(full)])
            if cut:
                s.sendall(full[:cut])
            socks.append(s)
        for s in socks:
            if rng.random() < 0.5:
                rst_close(s)
            else:
                s.close()


def test_1000_connections_dropped_mid_handshake(servers, ch):
    """While 1,000 handshakes are cut off at random points, a subscriber
    receives every message; afterwards the channel has exactly the live
    subscriber, the server's fds are back, and a second 1,000 leave memory
    where the first left it."""
    # CivetWeb: 64 threads, so that the memory check is not fooled by
    # hundreds of thread stacks being touched for the first time
    server = servers(civetweb_options=(("num_threads", "64"),))
    rng = random.Random(6455)
    live = connect(server, ch)
    assert wait_subscribers(server, ch, 1)
    fds0 = fd_count(server)
    got, errs = [], []

    def reader():
        try:
            while len(got) < 40:
                f = live.recv_frame(20)
                got.append(f.payload)
        except Exception as e:
            errs.append(repr(e))
    t = threading.Thread(target=reader)
    t.start()
    rss = []
    for rnd in range(2):
        for i in range(20):
            st, h, body = publish(server, ch, b"m%d-%d" % (rnd, i))
            assert st == 200, body
            if i % 4 == 0:
                drop_round(server, ch, 200, rng)
        assert wait_subscribers(server, ch, 1, timeout=10), \
            channel_status(server, ch)
        assert wait_until(lambda: fd_count(server) <= fds0, 10), \
            "server holds %d fds, %d before" % (fd_count(server), fds0)
        rss.append(rss_kb(server))
    t.join(20)
    live.close()
    assert not errs, errs
    assert got == [b"m%d-%d" % (r, i) for r in range(2) for i in range(20)]
    # only the published 40 are stored: no dropped handshake published
    assert len(stored(server, ch)) == 40
    assert SANITIZED or rss[1] < rss[0] + 2048, "RSS %d kB after the second 1,000, %d " \
        "kB after the first" % (rss[1], rss[0])


def test_complete_handshake_then_vanish(server, ch):
    """200 clients send a whole handshake and vanish before reading the
    101: the server's subscriber count comes back to 0, publishes go on."""
    socks = []
    for i in range(200):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        s.sendall(handshake(server, ch))
        socks.append(s)
    for i, s in enumerate(socks):
        (rst_close if i % 2 else socket.socket.close)(s)
    assert wait_subscribers(server, ch, 0, timeout=10), \
        channel_status(server, ch)
    with connect(server, ch) as ws:
        assert wait_subscribers(server, ch, 1)
        st, h, body = publish(server, ch, b"after")
        assert json.loads(body)["subscribers"] == 1, body
        f = ws.recv_frame()
        assert (f.opcode, f.payload) == (TEXT, b"after")


def longpoll(srv, ch, name=None, timeout=None):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    q = "channel=%s" % ch
    if name:
        q += "&name=" + name
    if timeout is not None:
        q += "&timeout=%s" % timeout
    s.sendall(request("GET", "%s?%s" % (srv.sub, q)))
    return s


def read_answer(s, timeout=10):
    s.settimeout(timeout)
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    [(st, h, body)] = responses(data)
    return st, json.loads(body)


def test_longpoll_reset_at_once_consumes_nothing(servers, ch):
    """20 named long-polls reset (RST) right after sending their request:
    forgotten at once, and each name still gets the next message."""
    srv = servers(longpoll_timeout="20s")
    names = ["r%02d-%s" % (i, ch[-6:]) for i in range(20)]
    # the names exist (a name gets what is published after it appeared)
    for n in names:
        read_answer(longpoll(srv, ch, n, timeout=0))
    for n in names:
        rst_close(longpoll(srv, ch, n))
    time.sleep(0.5)
    assert wait_subscribers(srv, ch, 0, timeout=3), \
        "reset long-polls still subscribed: %r" % (channel_status(srv, ch),)
    st, h, body = publish(srv, ch, b"after reset")
    assert st == 200, body
    missing = []
    for n in names:
        st, j = read_answer(longpoll(srv, ch, n, timeout=0))
        if j.get("msg") != "after reset":
            missing.append(n)
    assert not missing, "%d of 20 names lost the message" % len(missing)


@pytest.mark.also_nginx4
def test_clients_vanish_mid_longpoll(servers, ch):
    """100 named and 100 anonymous long-polls vanish (FIN or RST) while
    waiting; a live long-poll stays.  The server forgets the vanished ones
    at once; a publish reaches the live one; every vanished name still gets
    that message on its next poll, exactly once (nothing was consumed)."""
    srv = servers(longpoll_timeout="20s")
    names = ["v%03d-%s" % (i, ch[-6:]) for i in range(100)]
    named = [longpoll(srv, ch, n) for n in names]
    anon = [longpoll(srv, ch) for _ in range(100)]
    live = longpoll(srv, ch)
    assert wait_subscribers(srv, ch, 201, timeout=10), \
        channel_status(srv, ch)
    for i, s in enumerate(named + anon):
        (rst_close if i % 2 else socket.socket.close)(s)
    assert wait_subscribers(srv, ch, 1, timeout=10), \
        "subscribers still %r" % (channel_status(srv, ch),)
    st, h, body = publish(srv, ch, b"after vanish")
    assert st == 200 and json.loads(body)["subscribers"] == 1, body
    st, j = read_answer(live)
    assert (st, j["status"], j["msg"]) == (200, True, "after vanish"), j
    for n in names:
        conn = longpoll(srv, ch, n, timeout=0)
        st, j = read_answer(conn)
        assert (j["status"], j.get("msg"), j.get("id")) == \
            (True, "after vanish", 1), (n, j)
        conn = longpoll(srv, ch, n, timeout=0)
        st, j = read_answer(conn)
        assert j == {"status": False, "msg": ""}, (n, j)
