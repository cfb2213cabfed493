"""pushq_redis on nginx: each worker's link to a real redis-server.

Every test starts its own redis-server (Debian's, on a free loopback port,
no persistence) and nginx instances sharing it, and checks:
  - ids given by Redis continue across two nginx instances;
  - an anonymous long-poll or WebSocket subscriber on instance B gets what
    is published on instance A (through B's mirror, fed by its worker 0's
    subscription);
  - Redis stopped: publishes answer 503 with the error JSON, nothing is
    stored locally, the outage is logged once per worker (not per request);
  - Redis back (same port): publishes and the mirror work again without
    touching nginx, and the link logs that it is back.
"""

import json
import os
import re
import shutil
import socket
import sys
import time

import pytest

from servers import nginx
import clients as c

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "redis"))
import redis_server  # noqa: E402

REDIS_SERVER = shutil.which("redis-server")

pytestmark = pytest.mark.skipif(
    REDIS_SERVER is None,
    reason="redis-server is not installed (Debian: apt-get install "
           "redis-server)")


class Redis(redis_server.RedisServer):
    """Our own redis-server (tests/redis/redis_server.py), with DEBUG
    enabled (to stall it) and raw commands; stop() and start() again keep
    the port (a restart, as an operator would do one)."""

    def _argv(self):
        return super()._argv() + ["--enable-debug-command", "yes"]

    def command(self, *args, password=None, wait=True):
        """Sends one command (RESP); returns the raw reply, or the open
        socket when wait is False (the reply comes later)."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        pre = b""
        if password is not None:
            pre = resp("AUTH", password)
        s.sendall(pre + resp(*args))
        if not wait:
            return s
        with s:
            data = b""
            while not data.endswith(b"\r\n") or (pre and data.count(
                    b"\r\n") < 2):
                d = s.recv(65536)
                if not d:
                    break
                data += d
            return data


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


@pytest.fixture
def redis():
    r = Redis().start()
    yield r
    r.close()


def start(servers, redis, workers=2, **kw):
    """nginx with `pushq_redis <url>` at http level; returns once every
    worker's link is up (each logs "connected" once its connections are,
    worker 0 its subscription too)."""
    if "redis" in nginx.DIRECTIVES:
        srv = servers.start(workers=workers, redis=redis.url, **kw)
    else:
        srv = servers.start(workers=workers,
                            http_extra="    pushq_redis %s;" % redis.url,
                            **kw)
    assert wait_links_up(srv, workers), srv.log_text()[-3000:]
    return srv


def link_lines(srv, what):
    pat = re.compile(r"pushq: redis 127\.0\.0\.1:\d+: %s" % what)
    return [l for l in srv.log_text().splitlines() if pat.search(l)]


def wait_links_up(srv, n, again=False, timeout=10.0):
    what = "connected again" if again else "connected$"
    return c.wait_for(lambda: len(link_lines(srv, what)) >= n, timeout)


def error_lines(srv):
    return [l for l in srv.log_text().splitlines() if "[error]" in l]


# -------------------------------------------------------------------------


def test_ids_continue_across_two_servers(redis, servers):
    a = start(servers, redis)
    b = start(servers, redis)
    ch = c.new_channel("ids")

    got = [c.publish_ok(srv, ch, "m%d" % i)["id"]
           for i, srv in enumerate((a, b, a, b, b))]
    assert got == [1, 2, 3, 4, 5]

    # another channel counts on its own
    assert c.publish_ok(b, c.new_channel("ids"), "x")["id"] == 1


def test_anonymous_longpoll_on_b_gets_what_a_publishes(redis, servers):
    a = start(servers, redis)
    b = start(servers, redis)
    ch = c.new_channel("mirror")

    fut = c.background(c.poll_json, b, ch, timeout=5)
    assert c.wait_subscribers(b, ch, 1)

    j = c.publish_ok(a, ch, "from A")
    assert j["id"] == 1
    # subscribers: this server's (A has none; B's waits on B)
    assert j["subscribers"] == 0

    got = fut.result(10)
    assert got["status"] is True, got
    assert got["msg"] == "from A"
    assert got["id"] == 1

    # B's own publisher counts B's subscribers
    fut = c.background(c.poll_json, b, ch, timeout=5)
    assert c.wait_subscribers(b, ch, 1)
    j = c.publish_ok(b, ch, "from B")
    assert (j["id"], j["subscribers"]) == (2, 1)
    got = fut.result(10)
    assert (got["msg"], got["id"]) == ("from B", 2)


def test_anonymous_websocket_on_b_gets_what_a_publishes(redis, servers):
    a = start(servers, redis)
    b = start(servers, redis)
    ch = c.new_channel("ws")

    with c.RawWS(b, query={"channel": ch, "format": "json"}) as ws:
        assert c.wait_subscribers(b, ch, 1)
        for i in range(1, 4):
            c.publish_ok(a if i % 2 else b, ch, "msg %d" % i)
        got = [json.loads(ws.recv_text(timeout=5)) for _ in range(3)]
        assert [(g["id"], g["msg"]) for g in got] == \
            [(1, "msg 1"), (2, "msg 2"), (3, "msg 3")]


def test_publish_on_a_reaches_subscribers_on_every_worker_of_b(redis,
                                                               servers):
    """Worker 0 of B mirrors; the other workers are woken through their
    eventfds: 12 long-polls on fresh connections spread over B's 3
    workers all get the message."""
    a = start(servers, redis, workers=1)
    b = start(servers, redis, workers=3)
    ch = c.new_channel("fan")

    futs = [c.background(c.poll_json, b, ch, timeout=5) for _ in range(12)]
    assert c.wait_subscribers(b, ch, 12)
    c.publish_ok(a, ch, "to all")
    for f in futs:
        got = f.result(10)
        assert (got["status"], got["msg"], got["id"]) == (True, "to all", 1)


@pytest.mark.allow_log("pushq: redis 127.0.0.1:")
def test_redis_down_answers_503_and_comes_back(redis, servers):
    a = start(servers, redis, workers=1)
    b = start(servers, redis, workers=1)
    ch = c.new_channel("down")
    assert c.publish_ok(a, ch, "before")["id"] == 1

    redis.stop()

    # every publish is refused, none is stored locally instead
    for srv in (a, b, a, a, b):
        r = c.publish(srv, ch, "while down")
        assert r.status_code == 503, (r.status_code, r.text)
        j = r.json()
        assert j["status"] is False
        assert j["error"].startswith("redis: "), j
    for srv in (a, b):
        st = c.channel_stats(srv, ch)
        assert st is None or st.get("last_id", 0) <= 1, st

    # the outage is logged once per worker (one worker each), not per
    # request nor per retry (retries run every 100 ms .. 5 s meanwhile)
    time.sleep(1.0)
    for srv in (a, b):
        errs = error_lines(srv)
        assert len(errs) == 1, errs
        assert re.search(r"pushq: redis 127\.0\.0\.1:%d: .*, retrying$"
                         % redis.port, errs[0]), errs

    redis.start()

    # back without touching nginx: the link retries by itself (backoff is
    # at most 5 s here: the outage lasted about 1.5 s)
    for srv in (a, b):
        assert wait_links_up(srv, 1, again=True, timeout=10), \
            srv.log_text()[-2000:]

    # Redis lost everything (no persistence): the channel begins again
    assert c.publish_ok(a, ch, "after")["id"] == 1
    assert c.publish_ok(b, ch, "after")["id"] == 2

    # the mirror works again: B's subscription was made again too
    fut = c.background(c.poll_json, b, ch, timeout=5)
    assert c.wait_subscribers(b, ch, 1)
    c.publish_ok(a, ch, "mirrored")
    got = fut.result(10)
    assert (got["status"], got["msg"], got["id"]) == (True, "mirrored", 3)

    for srv in (a, b):
        assert len(error_lines(srv)) == 1, error_lines(srv)


@pytest.mark.allow_log("pushq: redis 127.0.0.1:")
def test_redis_absent_at_start_then_started(servers):
    """nginx starts while Redis is not there: 503 meanwhile, then it
    connects by itself."""
    redis = Redis()
    try:
        if "redis" in nginx.DIRECTIVES:
            a = servers.start(workers=2, redis=redis.url)
        else:
            a = servers.start(workers=2,
                              http_extra="    pushq_redis %s;" % redis.url)
        ch = c.new_channel("late")
        r = c.publish(a, ch, "nobody there")
        assert r.status_code == 503, (r.status_code, r.text)
        assert r.json()["error"].startswith("redis: 127.0.0.1:%d: "
                                            % redis.port), r.text

        redis.start()
        assert wait_links_up(a, 2, again=True, timeout=10), \
            a.log_text()[-2000:]
        assert [c.publish_ok(a, ch, "x")["id"] for _ in range(3)] == \
            [1, 2, 3]
        # once per worker
        assert len(error_lines(a)) <= 2, error_lines(a)
    finally:
        redis.close()


def test_local_scope_stays_local(redis, servers):
    """`pushq_redis off` in a location: its channels use the local store
    only; Redis never hears of them."""
    a = start(servers, redis, workers=1,
              location_extra={"/local": "pushq_publisher; pushq_redis off;"})
    b = start(servers, redis, workers=1)
    ch = c.new_channel("scope")
    assert [c.publish_ok(a, ch, "l", path="/local")["id"]
            for _ in range(3)] == [1, 2, 3]
    st = c.channel_stats(a, ch)
    assert st is not None and st["last_id"] == 3, st
    # Redis's ids for the channel begin at 1: the local ones never went
    assert c.publish_ok(b, ch, "r")["id"] == 1
    assert c.publish_ok(a, ch, "r")["id"] == 2


@pytest.mark.allow_log("pushq: redis 127.0.0.1:")
def test_publish_in_flight_when_redis_dies(redis, servers):
    """The reply never comes: the waiting publish answers 503 at once
    when the connection drops (not at its timeout)."""
    a = start(servers, redis, workers=1)
    ch = c.new_channel("inflight")
    c.publish_ok(a, ch, "first")

    sleeper = redis.command("DEBUG", "SLEEP", "3", wait=False)
    time.sleep(0.2)
    fut = c.background(c.publish, a, ch, "held")
    time.sleep(0.3)
    t0 = time.monotonic()
    redis.proc.kill()
    redis.proc.wait(5)
    r = fut.result(10)
    sleeper.close()
    assert time.monotonic() - t0 < 4    # not the 5 s timeout
    assert r.status_code == 503, (r.status_code, r.text)
    assert r.json()["error"].startswith("redis: 127.0.0.1:%d: "
                                        % redis.port), r.text


def test_client_gone_before_the_reply(redis, servers):
    """The publisher hangs up while Redis is busy: the op is cancelled,
    the late reply is dropped; the worker goes on serving."""
    a = start(servers, redis, workers=1)
    ch = c.new_channel("gone")
    pid = a.pids()[0]

    sleeper = redis.command("DEBUG", "SLEEP", "1", wait=False)
    time.sleep(0.2)
    body = b"gone away"
    s = socket.create_connection(("127.0.0.1", a.port))
    s.sendall(b"POST /pub?channel=%s HTTP/1.1\r\nHost: x\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (ch.encode(), len(body),
                                                body))
    time.sleep(0.2)
    s.close()
    sleeper.recv(64)
    sleeper.close()

    # the publish itself happened (Redis ran it), nobody was answered
    assert c.publish_ok(a, ch, "next")["id"] == 2
    assert a.pids() == [pid]


def test_no_reply_within_the_timeout(redis, servers):
    """Redis stalls (alive but busy for 7 s): the publish answers 503
    after 5 s; the reply that comes later is dropped."""
    a = start(servers, redis, workers=1)
    ch = c.new_channel("stall")
    sleeper = redis.command("DEBUG", "SLEEP", "6.5", wait=False)
    time.sleep(0.2)
    t0 = time.monotonic()
    r = c.publish(a, ch, "late")
    took = time.monotonic() - t0
    assert r.status_code == 503, (r.status_code, r.text)
    assert "no reply within 5 s" in r.json()["error"], r.text
    assert 4.5 < took < 8, took
    sleeper.recv(64)
    sleeper.close()
    assert c.publish_ok(a, ch, "on time")["id"] == 2


@pytest.mark.allow_log("pushq: redis 127.0.0.1:")
def test_scripts_flushed_are_loaded_again(redis, servers):
    a = start(servers, redis, workers=1)
    ch = c.new_channel("flush")
    assert c.publish_ok(a, ch, "1")["id"] == 1
    assert redis.command("SCRIPT", "FLUSH").startswith(b"+OK")

    r = c.publish(a, ch, "2")
    assert r.status_code == 503, (r.status_code, r.text)
    assert "NOSCRIPT" in r.json()["error"], r.text

    assert wait_links_up(a, 1, again=True, timeout=5), a.log_text()[-2000:]
    assert c.publish_ok(a, ch, "3")["id"] == 2


@pytest.mark.allow_log("pushq: redis 127.0.0.1:")
def test_password_and_db(servers):
    """AUTH and SELECT from the URL; a wrong password: 503 and the
    reason in the log, once."""
    redis = Redis(password="s3cret").start()
    try:
        url = "redis://:s3cret@127.0.0.1:%d/5" % redis.port
        kw = {"redis": url} if "redis" in nginx.DIRECTIVES else \
            {"http_extra": "    pushq_redis %s;" % url}
        a = servers.start(workers=1, **kw)
        assert wait_links_up(a, 1), a.log_text()[-2000:]
        ch = c.new_channel("auth")
        assert c.publish_ok(a, ch, "x")["id"] == 1
        keys = redis.command("KEYS", "*%s*" % ch, password="s3cret")
        assert keys.count(ch.encode()) == 0, keys    # not in db 0
        s = socket.create_connection(("127.0.0.1", redis.port))
        s.sendall(resp("AUTH", "s3cret") + resp("SELECT", "5")
                  + resp("KEYS", "*%s*" % ch))
        time.sleep(0.3)
        keys = s.recv(65536)
        s.close()
        assert ch.encode() in keys, keys

        url = "redis://:wrong@127.0.0.1:%d" % redis.port
        kw = {"redis": url} if "redis" in nginx.DIRECTIVES else \
            {"http_extra": "    pushq_redis %s;" % url}
        b = servers.start(workers=1, **kw)
        r = c.publish(b, ch, "refused")
        assert r.status_code == 503, (r.status_code, r.text)
        time.sleep(1.0)
        errs = error_lines(b)
        assert len(errs) == 1, errs
        assert "handshake refused: WRONGPASS" in errs[0], errs
    finally:
        redis.close()


def test_reload_keeps_working(redis, servers):
    """A reload: the old workers free their links and exit, the new ones
    connect; no alert (open socket left, ...) in the log."""
    a = start(servers, redis, workers=2)
    ch = c.new_channel("reload")
    assert c.publish_ok(a, ch, "1")["id"] == 1
    a.reload()
    assert a.wait_old_workers_gone()
    assert wait_links_up(a, 4), a.log_text()[-2000:]
    fut = c.background(c.poll_json, a, ch, timeout=5)
    assert c.wait_subscribers(a, ch, 1)
    assert c.publish_ok(a, ch, "2")["id"] == 2
    got = fut.result(10)
    assert (got["msg"], got["id"]) == ("2", 2)


@pytest.mark.allow_log("pushq: redis 127.0.0.1:")
def test_server_that_never_answers_times_out(servers):
    """Something accepts connections on the port but never answers (a
    stalled Redis): the link gives up on each attempt after 3 s, logs it
    once, and publishes answer 503 at once meanwhile."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)        # the kernel accepts; nobody reads or answers
    try:
        url = "redis://127.0.0.1:%d" % lsock.getsockname()[1]
        kw = {"redis": url} if "redis" in nginx.DIRECTIVES else \
            {"http_extra": "    pushq_redis %s;" % url}
        a = servers.start(workers=1, **kw)
        t0 = time.monotonic()
        r = c.publish(a, c.new_channel("stalled"), "x")
        assert time.monotonic() - t0 < 1
        assert r.status_code == 503, (r.status_code, r.text)
        assert r.json()["error"].startswith("redis: "), r.text
        assert c.wait_for(lambda: error_lines(a), timeout=6)
        errs = error_lines(a)
        assert len(errs) == 1, errs
        assert "connection or handshake timed out, retrying" in errs[0], errs
        r = c.publish(a, c.new_channel("stalled"), "x")
        assert r.status_code == 503, (r.status_code, r.text)
        assert "timed out" in r.json()["error"], r.text
    finally:
        lsock.close()


def test_concurrent_publishes_get_every_id_once(redis, servers):
    """200 publishes from 8 threads on two instances (4 workers, ops
    pipelined on each worker's connection): ids 1..200, each once; a
    WebSocket on B gets all 200 in id order."""
    a = start(servers, redis, workers=2)
    b = start(servers, redis, workers=2)
    ch = c.new_channel("many")
    with c.RawWS(b, query={"channel": ch, "format": "json"}) as ws:
        assert c.wait_subscribers(b, ch, 1)

        def burst(k):
            return [c.publish_ok(a if (k + i) % 2 else b, ch,
                                 "m%d-%d" % (k, i))["id"]
                    for i in range(25)]

        futs = [c.background(burst, k) for k in range(8)]
        ids = sorted(i for f in futs for i in f.result(60))
        assert ids == list(range(1, 201))

        got = [json.loads(ws.recv_text(timeout=10))["id"]
               for _ in range(200)]
        assert got == list(range(1, 201))
