"""The mirror catching up (pushq_redis.h "Catching the mirror up"), nginx.

Worker 0's subscription connection hears every publish, except while it is
down or not yet back.  What was published meanwhile reaches a server's
anonymous subscribers (they read only the local mirror) through a read of
the stream: when the subscription is confirmed again, and when a heard
message is not its channel's next id.

Two nginx instances (A: 1 worker, B: 2 workers) share one redis-server
started here on a free loopback port without persistence.  To make "before
B's subscription is back" certain rather than a race, B's workers are
stopped (SIGSTOP) across the outage and continued after the publishes.
Checked:
  - Redis restarted empty while anonymous WebSockets and a long-poll wait
    on B: what A publishes as soon as it answers 200 again reaches them,
    in order, with nothing counted lost;
  - the subscription connections cut (CLIENT KILL TYPE pubsub) with
    publishes during the cut, and the same under steady traffic: B's
    subscribers get every message once, in order;
  - more channels to catch up than the reads table holds (64): all of them
    are read;
  - a server started after messages were published serves last_id
    subscribers from the stream (take), and its anonymous subscribers get
    only what is published after they connected.

Skipped when redis-server is not installed.
"""

import json
import os
import sys
import shutil
import signal
import socket
import threading
import time

import pytest
import requests

from servers import nginx  # noqa: F401  (path set up by conftest)

from clients import (RawWS, background, new_channel, poll_json,  # noqa: E402
                     publish, url, wait_for)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "redis"))
import redis_server  # noqa: E402

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"

pytestmark = pytest.mark.skipif(
    not os.access(REDIS_SERVER, os.X_OK) or not os.access(REDIS_CLI, os.X_OK),
    reason="redis-server is not installed (Debian: apt-get install "
           "redis-server); the Redis mode tests need one")

# The outage is logged once per connection at error level, by design.
OUTAGE = "pushq: redis "


class Redis(redis_server.RedisServer):
    """Our own redis-server (tests/redis/redis_server.py): loopback, free
    port, nothing on disk (so a restart begins empty, as after a crash)."""

    def psubscribed(self):
        """How many connections hold a pattern subscription."""
        return sum(1 for c in self.cli("CLIENT", "LIST").splitlines()
                   if " psub=1 " in " " + c + " ")


@pytest.fixture(scope="module")
def redis():
    r = Redis().start()
    yield r
    r.close()


def _connected(srv, n):
    assert wait_for(lambda: srv.log_text().count(": connected") >= n, 10), \
        "nginx did not connect to redis:\n" + srv.log_text()[-2000:]


@pytest.fixture
def pair(servers, redis):
    if not redis.running():
        redis.start()
    kw = dict(redis=redis.url, longpoll_timeout="30s")
    a = servers.start(workers=1, **kw)
    b = servers.start(workers=2, **kw)
    a.label, b.label = "A", "B"
    _connected(a, 1)
    _connected(b, 2)
    assert wait_for(lambda: redis.psubscribed() >= 2, 10)
    return a, b


class Stopped:
    """SIGSTOP every worker of srv for the block: its subscription cannot
    come back (nor hear anything) until the end of the block."""

    def __init__(self, srv):
        self.pids = srv.pids()
        assert self.pids, srv

    def __enter__(self):
        for p in self.pids:
            os.kill(p, signal.SIGSTOP)
        return self

    def __exit__(self, *exc):
        for p in self.pids:
            try:
                os.kill(p, signal.SIGCONT)
            except ProcessLookupError:
                pass
        return False


def ws_json(srv, ch, **params):
    q = {"channel": ch, "format": "json"}
    q.update(params)
    ws = RawWS(srv, query=q, timeout=5.0)
    ws.label = "%s ws" % srv.label
    return ws


def recv_n(ws, n, timeout=10.0):
    """n JSON frames within timeout overall."""
    end = time.monotonic() + timeout
    got = []
    while len(got) < n:
        left = end - time.monotonic()
        try:
            if left <= 0:
                raise socket.timeout()
            got.append(json.loads(ws.recv_text(left)))
        except socket.timeout:
            raise AssertionError("%s: %d of %d messages within %.0f s: %r"
                                 % (ws.label, len(got), n, timeout, got))
    return got


def nothing_more(ws, wait=0.3):
    try:
        m = ws.recv_message(wait)
    except socket.timeout:
        return
    raise AssertionError("%s: unexpected message %r" % (ws.label, m))


def pairs(frames):
    return [(f["id"], f["msg"]) for f in frames]


def assert_none_lost(frames, who):
    bad = [f for f in frames if f.get("lost")]
    assert not bad, ("%s: counted lost" % who, bad)


def pub(srv, ch, text):
    r = publish(srv, ch, text)
    assert r.status_code == 200, (srv.label, r.status_code, r.text)
    return r.json()["id"]


def publish_when_back(srv, ch, text, timeout=20):
    """Publishes as soon as srv answers 200 again (503 meanwhile)."""
    deadline = time.monotonic() + timeout
    while True:
        r = publish(srv, ch, text)
        if r.status_code == 200:
            return r.json()["id"]
        assert r.status_code == 503, (srv.label, r.status_code, r.text)
        assert time.monotonic() < deadline, \
            ("%s still 503 after %d s" % (srv.label, timeout), r.text)
        time.sleep(0.05)


def local_subscribers(srv, ch):
    r = requests.get(url(srv, srv.status, channel=ch), timeout=10)
    if r.status_code != 200:
        return 0
    return r.json().get("subscribers") or 0


def wait_subs(srv, ch, n):
    assert wait_for(lambda: local_subscribers(srv, ch) >= n, 5), \
        (srv.label, ch, local_subscribers(srv, ch), n)


def held_poll(srv, ch, **params):
    """An anonymous long-poll held in the background (HTTP read timeout
    longer than the server's 30 s)."""
    def run():
        r = requests.get(url(srv, srv.sub, channel=ch, **params),
                         headers={"Connection": "close"}, timeout=40)
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()
    return background(run)


@pytest.mark.allow_log(OUTAGE)
def test_restart_publish_before_resubscribe(pair, redis):
    """Redis restarts empty while B's subscribers wait; A publishes as soon
    as it answers 200, before B's subscription is back: B's anonymous
    WebSockets and long-poll get it, nothing counted lost."""
    a, b = pair
    ch = new_channel("cu")
    wss = [ws_json(b, ch) for _ in range(3)] + [ws_json(a, ch)]
    lp = None
    try:
        wait_subs(b, ch, 3)
        wait_subs(a, ch, 1)
        before = [(pub(a, ch, "before-%d" % k), "before-%d" % k)
                  for k in (1, 2, 3)]
        for ws in wss:
            assert pairs(recv_n(ws, 3)) == before
        lp = held_poll(b, ch)
        wait_subs(b, ch, 4)

        with Stopped(b):
            redis.stop()
            redis.start()                   # same port, empty
            i1 = publish_when_back(a, ch, "back-1")
            i2 = pub(a, ch, "back-2")
            assert (i1, i2) == (1, 2), (i1, i2)     # a new life
            # B's (stopped) workers cannot have subscribed again
            assert redis.psubscribed() <= 1, redis.cli("CLIENT", "LIST")

        for ws in wss:
            got = recv_n(ws, 2)
            assert pairs(got) == [(1, "back-1"), (2, "back-2")], \
                (ws.label, got)
            assert_none_lost(got, ws.label)
        j = lp.result(timeout=15)
        assert (j["id"], j["msg"]) == (1, "back-1"), j
        assert not j.get("lost"), j

        # and on from there once both are subscribed again
        assert wait_for(lambda: redis.psubscribed() >= 2, 10)
        assert pub(b, ch, "later") == 3
        for ws in wss:
            got = recv_n(ws, 1)
            assert pairs(got) == [(3, "later")], (ws.label, got)
            nothing_more(ws)
    finally:
        if not redis.running():
            redis.start()
        for ws in wss:
            ws.close_socket()


@pytest.mark.parametrize("kill", [("pubsub",), ("pubsub", "normal")],
                         ids=["subscription", "both-connections"])
@pytest.mark.allow_log(OUTAGE)
def test_subscription_cut_publishes_during_cut(pair, redis, kill):
    """CLIENT KILL TYPE pubsub while B cannot subscribe again; what A
    publishes meanwhile reaches B's subscribers, in order.  With the
    command connections cut too, B's reads wait until its command
    connection is back."""
    a, b = pair
    ch = new_channel("cu")
    wss = [ws_json(b, ch) for _ in range(2)]
    lp = None
    try:
        wait_subs(b, ch, 2)
        assert pub(a, ch, "m1") == 1
        for ws in wss:
            assert pairs(recv_n(ws, 1)) == [(1, "m1")]
        lp = held_poll(b, ch)
        wait_subs(b, ch, 3)

        with Stopped(b):
            for t in kill:
                redis.cli("CLIENT", "KILL", "TYPE", t)
            sent = [(publish_when_back(a, ch, "cut-2"), "cut-2")]
            sent += [(pub(a, ch, "cut-%d" % k), "cut-%d" % k)
                     for k in range(3, 7)]
        assert [i for i, _ in sent] == list(range(2, 7)), sent

        for ws in wss:
            got = recv_n(ws, 5)
            assert pairs(got) == sent, (ws.label, got)
            assert_none_lost(got, ws.label)
        j = lp.result(timeout=15)
        assert (j["id"], j["msg"]) == sent[0], j
        assert not j.get("lost"), j

        assert wait_for(lambda: redis.psubscribed() >= 2, 10)
        assert pub(a, ch, "after") == 7
        for ws in wss:
            assert pairs(recv_n(ws, 1)) == [(7, "after")]
            nothing_more(ws)
    finally:
        for ws in wss:
            ws.close_socket()


@pytest.mark.allow_log(OUTAGE)
def test_subscription_cut_under_traffic(pair, redis):
    """Publishes every few ms on A while the subscription connections are
    cut twice: B's subscribers (both workers) get every id once, in
    order (the gaps heard after each reconnect are read)."""
    a, b = pair
    ch = new_channel("cu")
    wss = [ws_json(b, ch) for _ in range(4)] + [ws_json(a, ch)]
    n = 60
    sent = []
    errors = []

    def publisher():
        try:
            for k in range(1, n + 1):
                sent.append((pub(a, ch, "t-%d" % k), "t-%d" % k))
                time.sleep(0.01)
        except Exception as e:  # noqa: BLE001 -- reported below
            errors.append(e)

    try:
        wait_subs(b, ch, 4)
        wait_subs(a, ch, 1)
        t = threading.Thread(target=publisher)
        t.start()
        for k in (15, 35):
            assert wait_for(lambda: len(sent) >= k, 10), (len(sent), errors)
            redis.cli("CLIENT", "KILL", "TYPE", "pubsub")
        t.join(30)
        assert not errors, errors
        assert [i for i, _ in sent] == list(range(1, n + 1))
        for ws in wss:
            got = recv_n(ws, n, timeout=15)
            assert pairs(got) == sent, (ws.label, pairs(got))
            assert_none_lost(got, ws.label)
            nothing_more(ws)
    finally:
        for ws in wss:
            ws.close_socket()


@pytest.mark.allow_log(OUTAGE)
def test_many_channels_to_catch_up(pair, redis):
    """More channels with subscribers than reads at once (64): after a cut,
    every one of them is read."""
    a, b = pair
    chans = [new_channel("cm") for _ in range(90)]
    wss = []
    try:
        for ch in chans:
            wss.append(ws_json(b, ch))
        # each channel comes from Redis on B (mirrored once)
        for ch in chans:
            assert pub(a, ch, "first") == 1
        for ws in wss:
            assert pairs(recv_n(ws, 1)) == [(1, "first")]

        with Stopped(b):
            redis.cli("CLIENT", "KILL", "TYPE", "pubsub")
            for ch in chans:
                assert pub(a, ch, "x-" + ch) == 2
                assert pub(a, ch, "y-" + ch) == 3

        for ch, ws in zip(chans, wss):
            got = recv_n(ws, 2)
            assert pairs(got) == [(2, "x-" + ch), (3, "y-" + ch)], got
            assert_none_lost(got, ws.label)
    finally:
        for ws in wss:
            ws.close_socket()


@pytest.mark.allow_log(OUTAGE)
def test_channel_that_keeps_failing(pair, redis):
    """A channel whose stream cannot be read (its key holds a string) is
    given up after a few reads, logged once; the others are caught up;
    once the stream is readable again the channel goes on, the messages
    it cannot have counted lost."""
    a, b = pair
    bad, good = new_channel("cf"), new_channel("cg")
    wb, wg = ws_json(b, bad), ws_json(b, good)
    try:
        wait_subs(b, bad, 1)
        wait_subs(b, good, 1)
        for ch, ws in ((bad, wb), (good, wg)):
            assert pub(a, ch, "one") == 1
            assert pairs(recv_n(ws, 1)) == [(1, "one")]
        mark = len(b.log_text())
        with Stopped(b):
            redis.cli("CLIENT", "KILL", "TYPE", "pubsub")
            assert pub(a, bad, "two") == 2
            assert pub(a, good, "two") == 2
            key = "pushq:{%s}:log" % bad
            redis.cli("DEL", key)
            redis.cli("SET", key, "not a stream")
        assert pairs(recv_n(wg, 1)) == [(2, "two")]
        assert wait_for(lambda: "cannot catch channel" in
                        b.log_text()[mark:], 10), b.log_text()[mark:]
        nothing_more(wb)
        lines = [ln for ln in b.log_text()[mark:].splitlines()
                 if "cannot catch channel" in ln]
        assert len(lines) == 1, lines
        assert bad in lines[0], lines

        # readable again: the next publish is heard past a gap, read, and
        # the message the stream lost is counted
        redis.cli("DEL", key)
        assert pub(a, bad, "three") == 3
        got = recv_n(wb, 1)
        assert pairs(got) == [(3, "three")], got
        assert got[0].get("lost") == 1, got
        assert pub(a, bad, "four") == 4
        assert pairs(recv_n(wb, 1)) == [(4, "four")]
        nothing_more(wb)
        nothing_more(wg)
    finally:
        wb.close_socket()
        wg.close_socket()


@pytest.mark.allow_log(OUTAGE)
def test_late_server_last_id(servers, redis, pair):
    """A server started after messages were published: last_id readers get
    them from the stream (take); its anonymous subscribers get only what
    is published after they connected."""
    a, _ = pair
    ch = new_channel("cl")
    sent = [(pub(a, ch, "early-%d" % k), "early-%d" % k) for k in (1, 2, 3)]
    assert [i for i, _ in sent] == [1, 2, 3]

    c = servers.start(workers=2, redis=redis.url, longpoll_timeout="30s")
    c.label = "C"
    _connected(c, 2)
    assert wait_for(lambda: redis.psubscribed() >= 3, 10)

    j = poll_json(c, ch, last_id=0, timeout=0)
    assert (j["id"], j["msg"]) == sent[0], j
    j = poll_json(c, ch, last_id=1, batch=10, timeout=0)
    assert [(m["id"], m["msg"]) for m in j["msgs"]] == sent[1:], j

    wl = ws_json(c, ch, last_id=1)
    wa = ws_json(c, ch)
    try:
        got = recv_n(wl, 2)
        assert pairs(got) == sent[1:], got
        wait_subs(c, ch, 2)
        nothing_more(wa)
        assert pub(a, ch, "late") == 4
        assert pairs(recv_n(wl, 1)) == [(4, "late")]
        got = recv_n(wa, 1)
        assert pairs(got) == [(4, "late")], got
        assert_none_lost(got, "C anonymous")
        nothing_more(wa)
        nothing_more(wl)
        # a cursor long-poll waits on C's mirror for the next one
        fut = background(poll_json, c, ch, last_id=4, timeout=8)
        wait_subs(c, ch, 3)
        assert pub(a, ch, "next") == 5
        j = fut.result(timeout=10)
        assert (j["id"], j["msg"]) == (5, "next"), j
    finally:
        wl.close_socket()
        wa.close_socket()


@pytest.mark.allow_log(OUTAGE)
def test_ws_new_life_same_id(pair, redis):
    """Redis restarts empty; the channel's new life begins again at id 1:
    a WebSocket that got the old id 1 gets the new id 1's content."""
    a, b = pair
    ch = new_channel("cn")
    ws = ws_json(b, ch)
    try:
        wait_subs(b, ch, 1)
        assert pub(a, ch, "old-1") == 1
        assert pairs(recv_n(ws, 1)) == [(1, "old-1")]
        redis.stop()
        redis.start()
        assert publish_when_back(a, ch, "new-1") == 1
        got = recv_n(ws, 1)
        assert pairs(got) == [(1, "new-1")], got
    finally:
        if not redis.running():
            redis.start()
        ws.close_socket()
