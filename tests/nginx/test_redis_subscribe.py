"""Named and last_id subscribers through Redis (issue 9), nginx module.

Two nginx instances (A: 1 worker, B: 2 workers, so that a subscriber may sit
in a worker that does not hold the subscription connection) share one
redis-server started here on a free loopback port, without persistence.
Checked: a named long-poll client bounced between the servers gets every
message once and in order; last_id resumes on the other server; two
connections with one name split the messages; a named WebSocket on B gets
what is published on A; a WebSocket client's message is published through
Redis; Redis going away while a named long-poll waits (it keeps waiting and
gets what is published once Redis is back); a WebSocket publish while Redis
is down closes with 1013.

Skipped when redis-server is not installed.
"""

import json
import os
import sys
import shutil
import socket
import time

import pytest

from servers import nginx  # noqa: F401  (path set up by conftest)

import clients  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "redis"))
import redis_server  # noqa: E402
from clients import (RawWS, background, new_channel, poll_json,  # noqa: E402
                     publish, publish_ok, wait_subscribers)

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"

pytestmark = pytest.mark.skipif(
    not os.access(REDIS_SERVER, os.X_OK),
    reason="redis-server is not installed (Debian: apt-get install "
           "redis-server); the Redis mode tests need one")

# The outage is logged once per worker at error level, by design.
OUTAGE = ("pushq: redis ",)


class Redis(redis_server.RedisServer):
    """Our own redis-server (tests/redis/redis_server.py): loopback, free
    port, nothing on disk."""


@pytest.fixture(scope="module")
def redis():
    r = Redis().start()
    yield r
    r.close()


@pytest.fixture
def pair(servers, redis):
    if redis.proc is None or redis.proc.poll() is not None:
        redis.start()
    kw = dict(redis=redis.url, longpoll_timeout="10s")
    a = servers.start(workers=1, **kw)
    b = servers.start(workers=2, **kw)
    for srv, n in ((a, 1), (b, 2)):
        assert clients.wait_for(
            lambda: srv.log_text().count(": connected") >= n, 10), \
            "nginx did not connect to redis:\n" + srv.log_text()[-2000:]
    return a, b


def _ids(answers):
    return [j["id"] for j in answers]


def _first_appearance(srv, ch, name):
    """A name exists from its first request on: timeout=0 says nothing."""
    j = poll_json(srv, ch, name=name, timeout=0)
    assert j == {"status": False, "msg": ""}, j


def test_named_longpoll_alternating_servers(pair):
    a, b = pair
    ch, name = new_channel("rl"), new_channel("n")
    _first_appearance(a, ch, name)

    sent = []
    for i in range(12):
        srv = a if i % 2 == 0 else b
        j = publish_ok(srv, ch, "m%d" % i)
        sent.append(j["id"])
    assert sent == list(range(1, 13)), sent

    got = []
    for i in range(12):
        srv = b if i % 2 == 0 else a
        j = poll_json(srv, ch, name=name, timeout=2)
        assert j["status"] is True, (i, j)
        assert j["msg"] == "m%d" % (j["id"] - 1), j
        assert j["channel"] == ch
        got.append(j["id"])
    assert got == sent

    # nothing left, on either server
    for srv in (a, b):
        assert poll_json(srv, ch, name=name, timeout=0) == \
            {"status": False, "msg": ""}

    # batch: the rest in one answer, wherever asked
    for i in range(5):
        publish_ok(a if i % 2 else b, ch, "b%d" % i)
    j = poll_json(b, ch, name=name, batch=10, timeout=2)
    assert j["status"] is True, j
    assert [m["id"] for m in j["msgs"]] == list(range(13, 18)), j
    assert [m["msg"] for m in j["msgs"]] == ["b%d" % i for i in range(5)]
    assert j["id"] == 17

    # a waiting named long-poll on one server is answered by a publish on
    # the other (the mirror rings it; the take brings the message)
    for waiter, pub in ((b, a), (a, b), (b, a)):
        f = background(poll_json, waiter, ch, name=name, timeout=8)
        assert wait_subscribers(waiter, ch, 1), "long-poll not waiting"
        t0 = time.monotonic()
        k = publish_ok(pub, ch, "wake")["id"]
        j = f.result(10)
        assert j["status"] is True and j["id"] == k, j
        assert time.monotonic() - t0 < 3, "answered by the timeout?"
    assert poll_json(a, ch, name=name, timeout=0)["status"] is False


def test_last_id_resume_on_other_server(pair):
    a, b = pair
    ch = new_channel("rc")
    for i in range(6):
        publish_ok(a, ch, "x%d" % i)

    # resume after 2 on B: 3, 4, 5, 6
    j = poll_json(b, ch, last_id=2, batch=100, timeout=0)
    assert [m["id"] for m in j["msgs"]] == [3, 4, 5, 6], j
    j = poll_json(b, ch, last_id=4)
    assert (j["id"], j["msg"]) == (5, "x4"), j

    # caught up: waits on B, answered by a publish on A
    f = background(poll_json, b, ch, last_id=6, timeout=8)
    assert wait_subscribers(b, ch, 1)
    publish_ok(a, ch, "x6")
    j = f.result(10)
    assert (j["status"], j["id"], j["msg"]) == (True, 7, "x6"), j

    # last_id with a name moves the name, on the other server
    name = new_channel("n")
    _first_appearance(a, ch, name)
    j = poll_json(b, ch, name=name, last_id=3, timeout=0)
    assert j["id"] == 4, j
    j = poll_json(a, ch, name=name, timeout=0)
    assert j["id"] == 5, j

    # above the newest id: reset, from the oldest buffered
    j = poll_json(b, ch, last_id=1000, timeout=0)
    assert j["status"] is True and j["id"] == 1 and j.get("reset") is True, j


def test_two_longpoll_connections_one_name_split(pair):
    a, b = pair
    ch, name = new_channel("rs"), new_channel("n")
    _first_appearance(a, ch, name)
    total = 30

    def loop(srv):
        got = []
        idle = 0
        while idle < 2:
            j = poll_json(srv, ch, name=name, timeout=1)
            if j["status"]:
                got.append(j["id"])
                idle = 0
            else:
                idle += 1
        return got

    fa, fb = background(loop, a), background(loop, b)
    for i in range(total):
        publish_ok(a if i % 3 else b, ch, "s%d" % i)
    ga, gb = fa.result(30), fb.result(30)
    assert ga == sorted(ga) and gb == sorted(gb), (ga, gb)
    assert not set(ga) & set(gb), (ga, gb)
    assert sorted(ga + gb) == list(range(1, total + 1)), (ga, gb)


def _ws(srv, **query):
    return RawWS(srv, query=query)


def _ws_collect(ws, n, timeout=8.0):
    """Reads JSON frames until n messages came or timeout; returns them."""
    got = []
    end = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < end:
        try:
            op, data = ws.recv_message(max(0.05, end - time.monotonic()))
        except socket.timeout:
            break
        got.append(json.loads(data))
    return got


def test_named_websocket_gets_other_servers_messages(pair):
    a, b = pair
    ch, name = new_channel("rw"), new_channel("n")
    _first_appearance(a, ch, name)

    ws = _ws(b, channel=ch, name=name, format="json")
    try:
        assert wait_subscribers(b, ch, 1)
        for i in range(20):
            publish_ok(a if i % 4 else b, ch, "w%d" % i)
        got = _ws_collect(ws, 20)
        assert [j["id"] for j in got] == list(range(1, 21)), got
        assert [j["msg"] for j in got] == ["w%d" % i for i in range(20)]

        # the name's cursor moved in Redis: nothing left for a long-poll
        assert poll_json(a, ch, name=name, timeout=0)["status"] is False

        # and it goes on after a pause (the doorbell)
        time.sleep(0.3)
        publish_ok(a, ch, "late")
        j = _ws_collect(ws, 1)
        assert [(m["id"], m["msg"]) for m in j] == [(21, "late")], j
    finally:
        ws.close_socket()

    # the WebSocket's deliveries count for the name on every server
    publish_ok(b, ch, "after")
    j = poll_json(a, ch, name=name, timeout=2)
    assert (j["id"], j["msg"]) == (22, "after"), j


def test_websocket_last_id_catches_up_then_follows(pair):
    a, b = pair
    ch = new_channel("rk")
    for i in range(5):
        publish_ok(a, ch, "k%d" % i)
    ws = _ws(b, channel=ch, last_id=2, format="json")
    try:
        got = _ws_collect(ws, 3)
        assert [j["id"] for j in got] == [3, 4, 5], got
        assert wait_subscribers(b, ch, 1)
        for i in range(5, 10):
            publish_ok(a, ch, "k%d" % i)
        got = _ws_collect(ws, 5)
        assert [j["id"] for j in got] == [6, 7, 8, 9, 10], got
        assert [j["msg"] for j in got] == ["k%d" % i for i in range(5, 10)]
    finally:
        ws.close_socket()


def test_two_websockets_one_name_split(pair):
    a, b = pair
    ch, name = new_channel("rx"), new_channel("n")
    _first_appearance(b, ch, name)
    wa = _ws(a, channel=ch, name=name, format="json")
    wb = _ws(b, channel=ch, name=name, format="json")
    total = 40
    try:
        assert wait_subscribers(a, ch, 1) and wait_subscribers(b, ch, 1)
        for i in range(total):
            publish_ok(a if i % 2 else b, ch, "d%d" % i)
            if i % 10 == 9:
                time.sleep(0.1)
        fa = background(_ws_collect, wa, total, 4.0)
        fb = background(_ws_collect, wb, total, 4.0)
        ga = [j["id"] for j in fa.result(10)]
        gb = [j["id"] for j in fb.result(10)]
    finally:
        wa.close_socket()
        wb.close_socket()
    assert ga == sorted(ga) and gb == sorted(gb), (ga, gb)
    assert not set(ga) & set(gb), (ga, gb)
    assert sorted(ga + gb) == list(range(1, total + 1)), (ga, gb)


def test_websocket_publish_goes_through_redis(pair):
    a, b = pair
    ch, name = new_channel("rp"), new_channel("n")
    _first_appearance(b, ch, name)
    sender = _ws(a, channel=ch)                     # anonymous, on A
    named = _ws(b, channel=ch, name=name, format="json")
    anon = _ws(b, channel=ch)
    try:
        assert wait_subscribers(a, ch, 1) and wait_subscribers(b, ch, 2)
        sender.send_text("hello")
        sender.send_binary(b"\x00\xff")
        # the sender gets its own messages back through the mirror
        assert sender.recv_message() == (clients.OP_TEXT, b"hello")
        assert sender.recv_message() == (clients.OP_BINARY, b"\x00\xff")
        assert anon.recv_message() == (clients.OP_TEXT, b"hello")
        assert anon.recv_message() == (clients.OP_BINARY, b"\x00\xff")
        got = _ws_collect(named, 2)
        assert [j["id"] for j in got] == [1, 2], got
        assert got[0]["msg"] == "hello"
        assert got[1].get("encoding") == "base64", got
    finally:
        for w in (sender, named, anon):
            w.close_socket()
    # ids came from Redis: the next HTTP publish on B is 3
    assert publish_ok(b, ch, "x")["id"] == 3


@pytest.mark.allow_log(*OUTAGE)
def test_redis_down_named_longpoll_keeps_waiting(pair, redis):
    a, b = pair
    ch, name = new_channel("rd"), new_channel("n")
    _first_appearance(b, ch, name)
    publish_ok(a, ch, "before")
    assert poll_json(b, ch, name=name, timeout=0)["id"] == 1

    f = background(poll_json, b, ch, name=name, timeout=10)
    assert wait_subscribers(b, ch, 1)

    redis.stop()
    time.sleep(1.5)
    assert not f.done(), "answered while Redis was down: %r" % (
        f.result(),)
    # publishing answers 503 while it is down, and changes nothing
    r = publish(a, ch, "lost?")
    assert r.status_code == 503, (r.status_code, r.text)
    assert r.json()["status"] is False and "redis" in r.json()["error"]

    # a WebSocket publish that cannot be stored closes with 1013
    ws = _ws(a, channel=ch)
    try:
        ws.send_text("nope")
        assert ws.expect_close().close_code == 1013
    finally:
        ws.close_socket()

    # a named WebSocket opened now is accepted; it takes once Redis is back
    late = _ws(b, channel=ch, name=new_channel("w"), format="json")

    redis.start()       # empty: the channel begins a new life in Redis
    # both servers' links back (the subscription too: what is published
    # before it is back is not mirrored until the channel's next message)
    for srv, n in ((a, 1), (b, 2)):
        assert clients.wait_for(
            lambda: srv.log_text().count("connected again") >= n, 10), \
            srv.log_text()[-2000:]
    assert not f.done(), f.result()

    k = publish_ok(a, ch, "after")["id"]
    assert k == 1, k                    # Redis began again
    j = f.result(10)
    assert j["status"] is True, j
    assert (j["id"], j["msg"]) == (1, "after"), j
    # its cursor (1) was above what Redis held once it was back: reset
    assert j.get("reset") is True, j
    try:
        got = _ws_collect(late, 1)
        assert [(m["id"], m["msg"]) for m in got] == [(1, "after")], got
    finally:
        late.close_socket()
    assert poll_json(a, ch, name=name, timeout=0)["status"] is False


def test_named_longpoll_timeout_and_client_gone(pair):
    a, b = pair
    ch, name = new_channel("rt"), new_channel("n")
    _first_appearance(a, ch, name)

    # nothing within the timeout: the timeout answer, after the timeout
    t0 = time.monotonic()
    j = poll_json(b, ch, name=name, timeout=1)
    took = time.monotonic() - t0
    assert j == {"status": False, "msg": ""}, j
    assert 0.8 < took < 3, took
    j = poll_json(b, ch, name=name, batch=5, timeout=0.5)
    assert j == {"status": False, "msg": "", "msgs": []}, j

    # a client that goes away while waiting consumes nothing
    for srv in (a, b):
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(("GET /sub?channel=%s&name=%s&timeout=8 HTTP/1.1\r\n"
                   "Host: x\r\n\r\n" % (ch, name)).encode())
        assert wait_subscribers(srv, ch, 1)
        s.close()
        assert wait_subscribers(srv, ch, 0), "the long-poll is still there"
    k = publish_ok(a, ch, "kept")["id"]
    j = poll_json(b, ch, name=name, timeout=2)
    assert (j["id"], j["msg"]) == (k, "kept"), j


def test_named_lost_through_redis(servers, redis):
    if redis.proc is None or redis.proc.poll() is not None:
        redis.start()
    kw = dict(redis=redis.url, longpoll_timeout="10s", buffer=3)
    a = servers.start(workers=1, **kw)
    b = servers.start(workers=1, **kw)
    ch, name = new_channel("rl"), new_channel("n")
    _first_appearance(a, ch, name)
    for i in range(7):
        publish_ok(a if i % 2 else b, ch, "l%d" % i)
    # 1..4 are gone (the stream keeps 3): the next answer says so, once
    j = poll_json(b, ch, name=name, timeout=2)
    assert (j["id"], j.get("lost")) == (5, 4), j
    j = poll_json(a, ch, name=name, timeout=2)
    assert j["id"] == 6 and "lost" not in j, j

    # a WebSocket (JSON) reports it on its first message
    ws = _ws(a, channel=ch, name=name, format="json")
    try:
        got = _ws_collect(ws, 1)
        assert [(m["id"], m.get("lost")) for m in got] == [(7, None)], got
        for i in range(6):
            publish_ok(b, ch, "m%d" % i)
        got = _ws_collect(ws, 6, timeout=3)
        assert [m["id"] for m in got] == list(range(8, 14)), got
    finally:
        ws.close_socket()


def test_reload_with_redis_subscribers(pair):
    a, b = pair
    ch, name = new_channel("rr"), new_channel("n")
    _first_appearance(b, ch, name)
    ws = _ws(b, channel=ch, name=name + "w", format="json")
    f = background(poll_json, b, ch, name=name, timeout=8)
    try:
        assert wait_subscribers(b, ch, 2)
        b.reload()
        # the old worker answers the long-poll and closes the WebSocket
        j = f.result(10)
        assert j["status"] is False, j
        assert ws.expect_close(10).close_code == 1001
    finally:
        ws.close_socket()
    # the new workers serve the name where it was
    k = publish_ok(a, ch, "after reload")["id"]
    j = poll_json(b, ch, name=name, timeout=3)
    assert (j["id"], j["msg"]) == (k, "after reload"), j


def test_named_burst_websocket_and_batch_longpoll(pair):
    """Many messages at once: the WebSocket takes again while Redis holds
    more; a batch long-poll bounced between servers sees each once."""
    import requests
    a, b = pair
    ch, nw, nl = new_channel("rb"), new_channel("w"), new_channel("l")
    _first_appearance(a, ch, nw)
    _first_appearance(a, ch, nl)
    total = 300
    ws = _ws(b, channel=ch, name=nw, format="json")
    try:
        assert wait_subscribers(b, ch, 1)
        with requests.Session() as s:
            for i in range(total):
                srv = a if i % 2 else b
                r = s.post(clients.url(srv, srv.pub, channel=ch),
                           data=("z%d" % i).encode(), timeout=10)
                assert r.status_code == 200, r.text
        got = _ws_collect(ws, total, timeout=15)
    finally:
        ws.close_socket()
    assert [m["id"] for m in got] == list(range(1, total + 1))
    assert [m["msg"] for m in got] == ["z%d" % i for i in range(total)]

    seen = []
    for i in range(total):
        j = poll_json(b if i % 2 else a, ch, name=nl, batch=7, timeout=0)
        if not j["status"]:
            break
        seen += [m["id"] for m in j["msgs"]]
    assert seen == list(range(1, total + 1)), seen[:20]


def test_websocket_publish_flood_in_order(pair):
    """A client publishing faster than Redis answers: every message is
    published, once, in the order sent (reading pauses while too many
    publishes are in flight, then resumes)."""
    a, b = pair
    ch, name = new_channel("rf"), new_channel("n")
    _first_appearance(b, ch, name)
    total = 1500
    sender = _ws(a, channel=ch, name=new_channel("s"))
    named = _ws(b, channel=ch, name=name, format="json")
    try:
        assert wait_subscribers(b, ch, 1)
        # ~300 KB: many reads, each with more publishes than may be in
        # flight
        frames = b"".join(clients.encode_frame(clients.OP_TEXT,
                                               (b"f%d " % i).ljust(200, b"."))
                          for i in range(total))
        sender.send_raw(frames)
        got = _ws_collect(named, total, timeout=20)
    finally:
        sender.close_socket()
        named.close_socket()
    assert [m["msg"].split(" ")[0] for m in got] == \
        ["f%d" % i for i in range(total)]
    assert [m["id"] for m in got] == list(range(1, total + 1))


def test_new_named_websocket_begins_at_the_101(pair):
    """A new name begins when its WebSocket is accepted: what is published
    (anywhere) once the client saw the 101 is for it, nothing before."""
    a, b = pair
    for i in range(6):
        ch, name = new_channel("rn"), new_channel("n")
        publish_ok(a, ch, "before")
        ws = _ws(b if i % 2 else a, channel=ch, name=name, format="json")
        try:
            publish_ok(a if i % 2 else b, ch, "first")
            got = _ws_collect(ws, 1)
            assert [(m["id"], m["msg"]) for m in got] == [(2, "first")], got
        finally:
            ws.close_socket()
