"""Redis going away and coming back during traffic (issue 9, "Faults").

While Redis is down: publishes answer 503 with the JSON error (naming
Redis), at once, on every server, and nothing is stored locally (never
silently local); subscribers stay connected.  Redis then starts again on
the same port (empty: the tests run it without persistence, as after a
crash): publishes work again and the subscribers that waited through it
get them.  The loss is logged once per connection, not per request.
"""

import json
import time

import pytest

from checks import assert_error
from clients import channel_stats, poll_json, publish, wait_for
from rutil import (messages_of, poll_bg, pub, take, wait_local_subscribers,
                   ws_alive, ws_json, ws_nothing, ws_recv_n)
from servers import nginx

# long-polls held across the outage
SETTINGS = {"longpoll_timeout": "30s"}

# log lines about Redis are expected here (not alert/crit/emerg ones)
REDIS_LINES = r"^(?!.*\[(alert|crit|emerg)\]).*(?i:redis)"


def down_publish(srv, ch, n=12):
    """n publishes while Redis is down: each a prompt 503 JSON error."""
    for i in range(n):
        t = time.monotonic()
        r = publish(srv, ch, "down-%d" % i)
        took = time.monotonic() - t
        j = assert_error(r, 503)
        assert "redis" in j["error"].lower(), (srv.label, j)
        assert took < 3, ("%s: a publish with Redis down took %.1f s"
                          % (srv.label, took))


def publish_when_back(srv, ch, text, timeout=20):
    """Publishes until Redis is back for srv (503 meanwhile, nothing
    else); returns the id."""
    deadline = time.monotonic() + timeout
    while True:
        r = publish(srv, ch, text)
        if r.status_code == 200:
            return r.json()["id"]
        assert_error(r, 503)
        if time.monotonic() > deadline:
            raise AssertionError("%s: still 503 %.0f s after Redis came "
                                 "back: %s" % (srv.label, timeout, r.text))
        time.sleep(0.2)


def last_id(srv, ch):
    st = channel_stats(srv, ch)
    assert st is not None, srv.label
    return st.get("last_id"), st.get("messages")


def psubscribed(redis):
    """How many connections hold a pattern subscription on redis."""
    return sum(1 for c in redis.cli("CLIENT", "LIST").splitlines()
               if " psub=1 " in " " + c + " ")


def redis_lines(text):
    """Log lines about Redis at nginx's default error_log level (notice and
    up: nginx's [info] lines, like its "client closed connection", are
    per request by nature and not shown unless asked for)."""
    return [ln for ln in text.splitlines() if "redis" in ln.lower()
            and "[info]" not in ln and "[debug]" not in ln]


@pytest.mark.allow_log(REDIS_LINES)
def test_redis_restart_during_traffic(cluster, ch, name):
    A, B, C = cluster.a, cluster.b, cluster.c
    redis = cluster.redis
    wss = [ws_json(A, ch), ws_json(B, ch), ws_json(B, ch), ws_json(C, ch)]
    try:
        take(A, ch, name)                            # the name appears
        wait_local_subscribers(A, ch, 1)
        wait_local_subscribers(B, ch, 2)
        wait_local_subscribers(C, ch, 1)
        before = [(pub(s, ch, "up-%s" % s.label), "up-%s" % s.label)
                  for s in cluster.all]
        assert [i for i, _ in before] == [1, 2, 3], before
        for ws in wss:
            got = ws_recv_n(ws, 3)
            assert [(m["id"], m["msg"]) for m in got] == before, got
        j = take(B, ch, name, batch=10)
        assert messages_of(j) == before, j
        held_anon = poll_bg(C, ch, timeout=25)
        held_named = poll_bg(B, ch, name=name, timeout=25)
        wait_local_subscribers(C, ch, 2)
        wait_local_subscribers(B, ch, 3)
        stored = {s.label: last_id(s, ch) for s in cluster.all}
        mark = {s.label: len(s.log_text()) for s in cluster.all}

        redis.stop()
        for s in cluster.all:
            down_publish(s, ch)
        for ws in wss:
            ws_nothing(ws, 0.2)
            assert ws_alive(ws), ws.label
        assert not held_anon.done() and not held_named.done()
        for s in cluster.all:
            assert last_id(s, ch) == stored[s.label], \
                ("%s stored something locally while Redis was down"
                 % s.label, last_id(s, ch), stored[s.label])
        # a cursor read answers from nothing newer than before
        j = poll_json(A, ch, last_id=3, timeout=0)
        assert j["status"] is False, j

        redis.start()                                # same port, empty
        # published as soon as each server answers 200 again (its own
        # subscription connection may not be back yet; C first: CivetWeb
        # connects for a publish at once) ...
        after = []
        for s in (C, B, A):
            t = "back-%s" % s.label
            after.append((publish_when_back(s, ch, t), t))
        ids = [i for i, _ in after]
        assert ids == list(range(ids[0], ids[0] + 3)), after
        # ... and once every server has subscribed again
        assert wait_for(lambda: psubscribed(redis) >= len(cluster.all), 20), \
            ("the servers did not all PSUBSCRIBE again",
             redis.cli("CLIENT", "LIST"))
        for s in cluster.all:
            t = "later-%s" % s.label
            after.append((pub(s, ch, t), t))
        # named clients read Redis's stream: the held one got the first
        # message published after the restart, and the name goes on from
        # there on another server
        jn = held_named.result(timeout=10)
        assert (jn["id"], jn["msg"]) == after[0], jn
        j = take(A, ch, name, batch=10)
        assert messages_of(j) == after[1:], j
        assert not take(C, ch, name)["status"]

        # logged once per connection, not per request (12 publishes were
        # refused on each server; [info] lines are not counted)
        for s in cluster.all:
            lines = redis_lines(s.log_text()[mark[s.label]:])
            limit = 8 * s.workers
            assert len(lines) <= limit, \
                ("%s: %d log lines about Redis for one outage"
                 % (s.label, len(lines)), lines[:20])

        # anonymous subscribers (WebSockets, the held long-poll) hear
        # through their server's subscription: everything published since
        # Redis came back, including what was published before that
        # server had subscribed again
        problems = []
        for ws in wss:
            try:
                got = [(m["id"], m["msg"])
                       for m in ws_recv_n(ws, 6, 2 if problems else 10)]
            except AssertionError as e:
                problems.append(str(e))
                continue
            if got != after:
                problems.append("%s got %r" % (ws.label, got))
            ws_nothing(ws, 0.2)
        ja = held_anon.result(timeout=10)
        if (ja["id"], ja["msg"]) != after[0]:
            problems.append("held anonymous long-poll on C got %r" % (ja,))
        assert not problems, (
            "published right after Redis came back (%r), then once every "
            "server had subscribed again (%r); not delivered as such:\n%s"
            "\nchannel status: %r" % (after[:3], after[3:],
                                      "\n".join(problems),
                                      [(s.label, channel_stats(s, ch))
                                       for s in cluster.all]))
    finally:
        if not redis.running():
            redis.start()
        for ws in wss:
            ws.close_socket()


@pytest.mark.allow_log(REDIS_LINES)
def test_server_started_while_redis_is_down(cluster, ch):
    """A server whose Redis is not there yet starts, refuses publishes with
    503, and joins once Redis comes (here after a crash: SIGKILL)."""
    A = cluster.a
    redis = cluster.redis
    ws = ws_json(A, ch)
    d = None
    try:
        wait_local_subscribers(A, ch, 1)
        redis.kill()
        d = nginx.start(workers=1, **cluster.settings)
        d.label = "D(nginx 1w)"
        down_publish(d, ch, 3)
        down_publish(A, ch, 3)
        redis.start()
        i = publish_when_back(d, ch, "from-D")
        assert wait_for(lambda: psubscribed(redis) >= 4, 20), \
            ("the servers did not all PSUBSCRIBE again",
             redis.cli("CLIENT", "LIST"))
        j = publish_when_back(A, ch, "from-A")
        assert j == i + 1, (i, j)
        got = [(m["id"], m["msg"]) for m in ws_recv_n(ws, 1, timeout=10)]
        if got == [(i + 1, "from-A")]:
            raise AssertionError(
                "the message D published as soon as Redis was back (before "
                "A had subscribed again) never reached A's subscriber")
        got += [(m["id"], m["msg"]) for m in ws_recv_n(ws, 1, timeout=10)]
        assert got == [(i, "from-D"), (i + 1, "from-A")], got
        bad = [ln for ln in d.log_text().splitlines()
               if any(b in ln for b in ("[alert]", "[crit]", "[emerg]"))]
        assert not bad, bad
    finally:
        if not redis.running():
            redis.start()
        ws.close_socket()
        if d is not None:
            d.stop()


@pytest.mark.allow_log(REDIS_LINES)
def test_error_answer_shape_when_down(cluster, ch):
    """The 503 body is exactly SPEC's error object; a WebSocket client's
    message that cannot be published closes its connection with 1013 (as
    a publish the store cannot take, SPEC)."""
    redis = cluster.redis
    wss = [ws_json(s, ch) for s in cluster.all]
    for s in cluster.all:
        wait_local_subscribers(s, ch, 1)
    redis.stop()
    try:
        for s in cluster.all:
            r = publish(s, ch, "x")
            assert r.status_code == 503, (s.label, r.status_code, r.text)
            j = json.loads(r.text)
            assert set(j) == {"status", "error"}, j
            assert j["status"] is False, j
        for ws in wss:
            ws.send_text("from a websocket while Redis is down")
            f = ws.expect_close(10)
            assert f.close_code == 1013, (ws.label, f)
    finally:
        for ws in wss:
            ws.close_socket()
        redis.start()
        for s in cluster.all:
            publish_when_back(s, ch, "ok again")


@pytest.mark.allow_log(REDIS_LINES)
def test_subscription_connections_cut(cluster, ch):
    """Redis stays up but drops every server's subscription connection
    (CLIENT KILL TYPE pubsub, as a network cut would): what is published
    before they subscribe again still reaches every server's anonymous
    subscribers, in order (the mirror catches up from the stream)."""
    A, B, C = cluster.a, cluster.b, cluster.c
    redis = cluster.redis
    wss = [ws_json(s, ch) for s in cluster.all]
    try:
        for s in cluster.all:
            wait_local_subscribers(s, ch, 1)
        first = pub(B, ch, "before the cut")
        for ws in wss:
            (m,) = ws_recv_n(ws, 1)
            assert (m["id"], m["msg"]) == (first, "before the cut"), m
        killed = int(redis.cli("CLIENT", "KILL", "TYPE", "pubsub"))
        assert killed >= len(cluster.all), killed
        sent = [(pub(s, ch, "cut-%s" % s.label), "cut-%s" % s.label)
                for s in (A, C, B)]
        assert wait_for(lambda: psubscribed(redis) >= len(cluster.all), 20)
        sent.append((pub(A, ch, "after"), "after"))
        assert [i for i, _ in sent] == list(range(first + 1, first + 5))
        for ws in wss:
            msgs = ws_recv_n(ws, 4, 10)
            got = [(m["id"], m["msg"]) for m in msgs]
            assert got == sent, (ws.label, msgs)
            assert all("lost" not in m for m in msgs), (ws.label, msgs)
    finally:
        for ws in wss:
            ws.close_socket()
