"""pushq-civetweb in Redis mode (option `redis`, issue 9): two real
pushq-civetweb instances sharing a real redis-server (Debian's, started
on a free loopback port by tests/redis/redis_server.py).

- ids continue across the servers (Redis gives them);
- a subscriber on B (long-poll and WebSocket) receives A's publish;
- a named long-poll client alternating A/B gets each message exactly once,
  in order; a named WebSocket on B continues where the name stood on A;
- last_id resumes on the other server;
- Redis down: publishes answer 503 {"status": false, "error": "redis: ..."}
  (nothing stored locally), a WebSocket publish closes with 1013, the
  outage is logged once; Redis back: publishes work again and subscribers
  that stayed connected get them;
- subscription connections cut (CLIENT KILL TYPE pubsub) while messages
  are published: the mirror catches up from Redis's stream when it
  subscribes again, so subscribers get them in order without a later
  message;
- Redis restarted empty while WebSockets wait: the new ids 1, 2 carry the
  new contents;
- a bad `redis` URL is refused at attach, naming the option;
- detach with Redis attached (SIGTERM) exits 0 promptly.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ATTACH_CHECK, ROOT, check_log
from servers import civetweb
from servers.civetweb import free_port
import clients as c

sys.path.insert(0, os.path.join(ROOT, "tests", "redis"))
import redis_server  # noqa: E402

pytestmark = pytest.mark.skipif(
    not os.path.exists(redis_server.REDIS_SERVER),
    reason="redis-server is not installed (apt-get install redis-server)")


@pytest.fixture
def redis():
    r = redis_server.start()
    yield r
    r.close()


@pytest.fixture
def pair(redis):
    """Two pushq-civetweb instances on one Redis."""
    started = []

    def start(**settings):
        srv = civetweb.start(redis=redis.url, longpoll_timeout="15s",
                             **settings)
        started.append(srv)
        return srv
    a = start()
    b = start()
    yield a, b, start
    for srv in started:
        text = srv.log_text()
        rc = srv.stop()
        check_log(text)
        assert rc == 0, text[-3000:]


def wait_subscribed(srv, timeout=10):
    """The server's subscription thread logged that it listens."""
    ok = c.wait_for(lambda: "PSUBSCRIBE pushq:m:*" in srv.log_text(),
                    timeout)
    assert ok, srv.log_text()[-2000:]


def publish_retry(srv, ch, data, timeout=15):
    """Publishes until it answers 200 (Redis coming back)."""
    end = time.monotonic() + timeout
    while True:
        r = c.publish(srv, ch, data)
        if r.status_code == 200 or time.monotonic() > end:
            return r
        time.sleep(0.1)


def test_ids_continue_across_servers(pair):
    a, b, _ = pair
    ch = c.new_channel()
    ids = []
    for i, srv in enumerate([a, b, a, a, b, b, a]):
        j = c.publish_ok(srv, ch, "m%d" % i)
        assert j["channel"] == ch
        ids.append(j["id"])
    assert ids == list(range(1, 8))


def test_subscriber_on_b_receives_publish_on_a(pair):
    a, b, _ = pair
    wait_subscribed(a)
    wait_subscribed(b)
    ch = c.new_channel()
    fut = c.background(c.poll_json, b, ch, timeout=5)
    assert c.wait_subscribers(b, ch, 1)
    j = c.publish_ok(a, ch, "hello from A")
    # subscribers counts this server's (A's) own: none here
    assert j["subscribers"] == 0
    got = fut.result(10)
    assert got["status"] is True, got
    assert got["msg"] == "hello from A" and got["id"] == j["id"]

    # and the other way round, binary included
    fut = c.background(c.poll_json, a, ch, timeout=5)
    assert c.wait_subscribers(a, ch, 1)
    j = c.publish_ok(b, ch, b"\xff\x00bin",
                     content_type="application/octet-stream")
    got = fut.result(10)
    assert got["id"] == j["id"] and c.msg_bytes(got) == b"\xff\x00bin"
    assert got["encoding"] == "base64"


def test_websocket_on_b_receives_publishes_from_a_and_b(pair):
    a, b, _ = pair
    wait_subscribed(a)
    wait_subscribed(b)
    ch = c.new_channel()

    async def run():
        async with c.ws_connect(b, channel=ch, format="json") as ws:
            assert c.wait_subscribers(b, ch, 1)
            got = []
            c.publish_ok(a, ch, "one")
            got.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
            await ws.send("two")            # published through Redis by B
            got.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
            c.publish_ok(a, ch, "three")
            got.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
        return got
    got = asyncio.run(run())
    assert [(g["id"], g["msg"]) for g in got] == \
        [(1, "one"), (2, "two"), (3, "three")]


def test_named_longpoll_alternating_servers_exactly_once(pair):
    a, b, _ = pair
    wait_subscribed(a)
    wait_subscribed(b)
    ch = c.new_channel()
    name = c.new_channel("n")
    # the name appears (nothing yet): it receives what comes after
    j = c.poll_json(a, ch, name=name, timeout=0)
    assert j == {"status": False, "msg": ""}
    sent = []
    for i in range(12):
        srv = (a, b, b)[i % 3]
        sent.append(c.publish_ok(srv, ch, "m%d" % i)["id"])
    got = []
    servers = [a, b]
    for k in range(30):
        j = c.poll_json(servers[k % 2], ch, name=name, timeout=0)
        if not j["status"]:
            break
        got.append((j["id"], j["msg"]))
    assert got == [(sent[i], "m%d" % i) for i in range(12)]
    # both servers agree nothing is left
    assert c.poll_json(a, ch, name=name, timeout=0)["status"] is False
    assert c.poll_json(b, ch, name=name, timeout=0)["status"] is False

    # waiting on B, published on A: woken through the mirror
    fut = c.background(c.poll_json, b, ch, name=name, timeout=5)
    assert c.wait_subscribers(b, ch, 1)
    t0 = time.monotonic()
    j = c.publish_ok(a, ch, "late")
    got = fut.result(10)
    assert got["status"] is True and got["id"] == j["id"], got
    assert time.monotonic() - t0 < 2.0
    assert c.poll_json(a, ch, name=name, timeout=0)["status"] is False


def test_seed_chat_across_servers(pair):
    """The seed's chat behind a load balancer: the form posted to one
    server, each visitor's /get_msg/?name= loop on whichever server."""
    a, b, _ = pair
    wait_subscribed(a)
    wait_subscribed(b)
    alice, bob = c.new_channel("alice"), c.new_channel("bob")
    for who, srv in ((alice, a), (bob, b)):
        j = c.poll_json(srv, None, path=srv.seed_sub, name=who, timeout=0)
        assert j == {"status": False, "msg": ""}
    fut = c.background(c.poll_json, b, None, path=b.seed_sub, name=alice,
                       timeout=5)
    assert c.wait_subscribers(b, "default", 1)
    r = c.publish_form(a, None, {"content": "hi all"}, path=a.seed_pub)
    assert r.status_code == 200, r.text
    j = fut.result(10)
    assert (j["status"], j["msg"]) == (True, "hi all"), j
    j = c.poll_json(a, None, path=a.seed_sub, name=bob, timeout=1)
    assert (j["status"], j["msg"]) == (True, "hi all"), j
    for who in (alice, bob):
        for srv in (a, b):
            j = c.poll_json(srv, None, path=srv.seed_sub, name=who,
                            timeout=0)
            assert j == {"status": False, "msg": ""}, (who, j)


def test_named_clients_under_concurrent_publishers(pair):
    """Two publishers (one per server) and three named clients, each
    waiting alternately on A and B with batch=7: every client gets the 120
    messages exactly once, in id order."""
    a, b, _ = pair
    wait_subscribed(a)
    wait_subscribed(b)
    ch = c.new_channel()
    names = [c.new_channel("n%d" % i) for i in range(3)]
    for n in names:
        c.poll_json(a, ch, name=n, timeout=0)

    def publisher(srv, tag):
        return [c.publish_ok(srv, ch, "%s%d" % (tag, i))["id"]
                for i in range(60)]

    def reader(name):
        got = []
        k = 0
        while len(got) < 120:
            j = c.poll_json((a, b)[k % 2], ch, name=name, batch=7, timeout=3)
            k += 1
            if not j["status"]:
                break
            got += [(m["id"], m["msg"]) for m in j["msgs"]]
        return got
    readers = [c.background(reader, n) for n in names]
    pubs = [c.background(publisher, a, "a"), c.background(publisher, b, "b")]
    ids = sorted(pubs[0].result(60) + pubs[1].result(60))
    assert ids == list(range(1, 121))
    for f in readers:
        got = f.result(60)
        assert [i for i, _ in got] == ids, got
        texts = [t for _, t in got]
        assert sorted(texts) == sorted(["a%d" % i for i in range(60)]
                                       + ["b%d" % i for i in range(60)])


def test_named_longpoll_batch_and_two_waiters_share_a_name(pair):
    a, b, _ = pair
    wait_subscribed(a)
    wait_subscribed(b)
    ch = c.new_channel()
    name = c.new_channel("n")
    c.poll_json(b, ch, name=name, timeout=0)
    for i in range(5):
        c.publish_ok(a, ch, "b%d" % i)
    j = c.poll_json(b, ch, name=name, batch=3, timeout=0)
    assert [m["msg"] for m in j["msgs"]] == ["b0", "b1", "b2"]
    j = c.poll_json(a, ch, name=name, batch=10, timeout=0)
    assert [m["msg"] for m in j["msgs"]] == ["b3", "b4"]

    # one waiter on each server, one name: each message goes to one
    fa = c.background(c.poll_json, a, ch, name=name, timeout=4)
    fb = c.background(c.poll_json, b, ch, name=name, timeout=4)
    assert c.wait_subscribers(a, ch, 1) and c.wait_subscribers(b, ch, 1)
    c.publish_ok(a, ch, "x")
    c.publish_ok(b, ch, "y")
    answers = [fa.result(10), fb.result(10)]
    msgs = sorted(j["msg"] for j in answers if j["status"])
    leftover = [j["msg"] for j in c.drain(a, ch, name)]
    assert sorted(msgs + leftover) == ["x", "y"], (answers, leftover)


def test_named_websocket_continues_on_other_server(pair):
    a, b, _ = pair
    wait_subscribed(a)
    wait_subscribed(b)
    ch = c.new_channel()
    name = c.new_channel("n")
    c.poll_json(a, ch, name=name, timeout=0)
    c.publish_ok(a, ch, "w0")
    c.publish_ok(b, ch, "w1")
    assert c.poll_json(a, ch, name=name, timeout=0)["msg"] == "w0"

    async def run():
        async with c.ws_connect(b, channel=ch, name=name) as ws:
            first = await asyncio.wait_for(ws.recv(), 5)
            c.publish_ok(a, ch, "w2")
            second = await asyncio.wait_for(ws.recv(), 5)
            return [first, second]
    assert asyncio.run(run()) == ["w1", "w2"]
    # the WebSocket moved the name's cursor in Redis
    assert c.poll_json(a, ch, name=name, timeout=0)["status"] is False
    c.publish_ok(b, ch, "w3")
    assert c.poll_json(a, ch, name=name, timeout=0)["msg"] == "w3"


def test_last_id_resumes_on_other_server(pair):
    a, b, _ = pair
    wait_subscribed(a)
    wait_subscribed(b)
    ch = c.new_channel()
    for i in range(5):
        c.publish_ok(a, ch, "L%d" % i)
    j = c.poll_json(b, ch, last_id=2, batch=10, timeout=0)
    assert [(m["id"], m["msg"]) for m in j["msgs"]] == \
        [(3, "L2"), (4, "L3"), (5, "L4")]
    # waits, then is woken by a publish on the other server
    fut = c.background(c.poll_json, b, ch, last_id=5, timeout=5)
    assert c.wait_subscribers(b, ch, 1)
    c.publish_ok(a, ch, "L5")
    j = fut.result(10)
    assert (j["id"], j["msg"]) == (6, "L5")
    # above the newest id: reset, from the oldest
    j = c.poll_json(a, ch, last_id=100, timeout=0)
    assert j["reset"] is True and j["id"] == 1

    # a last_id WebSocket catches up through Redis, then follows the mirror
    async def run():
        async with c.ws_connect(b, channel=ch, last_id=4) as ws:
            got = [await asyncio.wait_for(ws.recv(), 5) for _ in range(2)]
            c.publish_ok(a, ch, "L6")
            got.append(await asyncio.wait_for(ws.recv(), 5))
            return got
    assert asyncio.run(run()) == ["L4", "L5", "L6"]


def test_redis_down_503_then_back(pair, redis):
    a, b, _ = pair
    wait_subscribed(a)
    wait_subscribed(b)
    ch = c.new_channel()
    name = c.new_channel("n")
    wsname = c.new_channel("w")
    c.poll_json(b, ch, name=name, timeout=0)
    c.poll_json(b, ch, name=wsname, timeout=0)
    assert c.publish_ok(a, ch, "before")["id"] == 1
    assert c.poll_json(a, ch, name=name, timeout=0)["msg"] == "before"
    assert c.poll_json(a, ch, name=wsname, timeout=0)["msg"] == "before"

    # stay connected through the outage: a named long-poll on B, a named
    # WebSocket on A, an anonymous WebSocket on B
    fut = c.background(c.poll_json, b, ch, name=name, timeout=12)
    ws_named = c.RawWS(a, query={"channel": ch, "name": wsname})
    ws_anon = c.RawWS(b, query={"channel": ch})
    assert c.wait_subscribers(b, ch, 2) and c.wait_subscribers(a, ch, 1)

    redis.stop()
    r = c.publish(a, ch, "while down")
    assert r.status_code == 503, r.text
    j = r.json()
    assert j["status"] is False and j["error"].startswith("redis:"), j
    r = c.publish(b, ch, "while down")
    assert r.status_code == 503 and r.json()["error"].startswith("redis:")
    # several more: logged once, not per request
    for _ in range(5):
        assert c.publish(a, ch, "x").status_code == 503
    # nothing was stored locally instead
    st = c.channel_stats(a, ch)
    assert st is None or st["last_id"] <= 1, st

    # a WebSocket client's publish: close 1013
    with c.RawWS(a, query={"channel": ch}) as ws:
        ws.send_text("from ws")
        f = ws.expect_close()
    assert f.close_code == 1013, f

    time.sleep(0.5)
    redis.start()               # empty: as after a crash
    r = publish_retry(a, ch, "after")
    assert r.status_code == 200, r.text
    assert r.json()["id"] == 1              # Redis began the channel again
    got = fut.result(15)
    assert got["status"] is True and got["msg"] == "after", got
    assert got.get("reset") is True, got
    assert ws_named.recv_text(timeout=10) == "after"
    ws_named.close_socket()

    # the mirror is fed again once the subscription is back, and what was
    # published before B subscribed again is fetched from Redis's stream
    # (the new life's ids 1..) before the next message
    back = c.wait_for(lambda: "subscription back" in b.log_text(), 10)
    assert back, b.log_text()[-2000:]
    j = c.publish_ok(a, ch, "again")
    assert j["id"] == 2
    assert ws_anon.recv_text(timeout=10) == "after"
    assert ws_anon.recv_text(timeout=10) == "again"
    ws_anon.close_socket()
    fut = c.background(c.poll_json, b, ch, timeout=5)
    assert c.wait_subscribers(b, ch, 1)
    j = c.publish_ok(a, ch, "third")
    got = fut.result(10)
    assert got["status"] is True and got["msg"] == "third", got
    assert got["id"] == j["id"] == 3

    for srv in (a, b):
        log = srv.log_text()
        down = [ln for ln in log.splitlines()
                if "subscription down" in ln or "subscription lost" in ln]
        assert len(down) == 1, down
        pool = [ln for ln in log.splitlines()
                if "publish and take answer 503" in ln]
        assert len(pool) <= 1, pool


def subscription_count(redis):
    """Connections subscribed to Redis (PSUBSCRIBE pushq:m:*)."""
    out = redis.cli("CLIENT", "LIST", "TYPE", "pubsub")
    return len([ln for ln in out.splitlines() if ln.strip()])


def test_subscription_cut_catches_up_without_a_later_message(pair, redis):
    """Redis stays up, but both servers' subscription connections are cut
    (CLIENT KILL TYPE pubsub) and cannot subscribe again for a while (an
    ACL takes PSUBSCRIBE away meanwhile, so the cut is certain to last):
    what is published meanwhile reaches every subscriber -- anonymous
    WebSockets on both servers, a long-poll on B -- in order, once the
    subscriptions are back, with no later message to reveal the gap."""
    a, b, _ = pair
    wait_subscribed(a)
    wait_subscribed(b)
    ch = c.new_channel()
    wss = [c.RawWS(s, query={"channel": ch, "format": "json"})
           for s in (a, b)]
    try:
        assert c.wait_subscribers(a, ch, 1) and c.wait_subscribers(b, ch, 1)
        assert c.publish_ok(a, ch, "before")["id"] == 1
        for ws in wss:
            j = json.loads(ws.recv_text(5))
            assert (j["id"], j["msg"]) == (1, "before"), j
        fut = c.background(c.poll_json, b, ch, timeout=12)
        assert c.wait_subscribers(b, ch, 2)

        redis.cli("ACL", "SETUSER", "default", "-psubscribe")
        try:
            assert int(redis.cli("CLIENT", "KILL", "TYPE", "pubsub")) == 2
            sent = []
            for i, srv in enumerate((a, b, a, b, b)):
                sent.append((c.publish_ok(srv, ch, "cut%d" % i)["id"],
                             "cut%d" % i))
            assert [i for i, _ in sent] == [2, 3, 4, 5, 6]
            # deaf meanwhile: nothing is delivered
            time.sleep(0.3)
            assert subscription_count(redis) == 0
            assert not fut.done()
        finally:
            redis.cli("ACL", "SETUSER", "default", "+psubscribe")

        assert c.wait_for(lambda: subscription_count(redis) == 2, 15)
        for ws in wss:
            got = [json.loads(ws.recv_text(10)) for _ in range(len(sent))]
            assert [(g["id"], g["msg"]) for g in got] == sent, got
            assert all(not g.get("lost") for g in got), got
        j = fut.result(10)
        assert j["status"] is True and (j["id"], j["msg"]) == sent[0], j
        # and the mirror follows the subscription again
        j = c.publish_ok(b, ch, "after")
        assert j["id"] == 7
        for ws in wss:
            g = json.loads(ws.recv_text(5))
            assert (g["id"], g["msg"]) == (7, "after"), g
    finally:
        for ws in wss:
            ws.close_socket()
    for srv in (a, b):
        lines = srv.log_text().splitlines()
        down = [ln for ln in lines
                if "subscription lost" in ln or "subscription down" in ln]
        assert len(down) == 1, down
        assert len([ln for ln in lines if "subscription back" in ln]) == 1
        assert not [ln for ln in lines if "cannot catch" in ln], lines


def test_redis_restarted_empty_same_ids_new_contents_websocket(pair, redis):
    """Redis restarts empty while WebSocket subscribers wait (raw and
    format=json, on both servers): the channel begins again at id 1, and
    the new life's messages 1 and 2 reach them with their own contents,
    never with the bytes of the old life's messages of the same ids (a
    frame cached by message id alone would send those)."""
    a, b, _ = pair
    wait_subscribed(a)
    wait_subscribed(b)
    ch = c.new_channel()
    subs = [(fmt, c.RawWS(s, query=dict({"channel": ch}, **extra)))
            for s in (a, b)
            for fmt, extra in (("raw", {}), ("json", {"format": "json"}))]

    def recv(fmt, ws):
        text = ws.recv_text(10)
        if fmt == "raw":
            return text
        j = json.loads(text)
        return "%d:%s" % (j["id"], j["msg"])
    try:
        assert c.wait_subscribers(a, ch, 2) and c.wait_subscribers(b, ch, 2)
        assert c.publish_ok(a, ch, "old-1")["id"] == 1
        assert c.publish_ok(b, ch, "old-2")["id"] == 2
        for fmt, ws in subs:
            want = (["old-1", "old-2"] if fmt == "raw"
                    else ["1:old-1", "2:old-2"])
            assert [recv(fmt, ws) for _ in range(2)] == want

        redis.stop()
        redis.start()               # empty
        for srv in (a, b):
            back = c.wait_for(
                lambda: "subscription back" in srv.log_text(), 15)
            assert back, srv.log_text()[-2000:]
        assert publish_retry(b, ch, "new-1").json()["id"] == 1
        assert c.publish_ok(a, ch, "new-2")["id"] == 2
        for fmt, ws in subs:
            want = (["new-1", "new-2"] if fmt == "raw"
                    else ["1:new-1", "2:new-2"])
            assert [recv(fmt, ws) for _ in range(2)] == want, fmt
    finally:
        for _, ws in subs:
            ws.close_socket()


def test_server_starts_while_redis_is_down(redis):
    redis.stop()
    srv = civetweb.start(redis=redis.url, longpoll_timeout="2s")
    try:
        r = c.publish(srv, "ch", "x")
        assert r.status_code == 503 and "redis" in r.json()["error"]
        redis.start()
        assert publish_retry(srv, "ch", "y").status_code == 200
        wait_subscribed(srv, 15)
    finally:
        text = srv.log_text()
        assert srv.stop() == 0
        check_log(text)


def test_password_and_database(tmp_path):
    r = redis_server.RedisServer(password="s3cret").start()
    try:
        url = "redis://:s3cret@127.0.0.1:%d/3" % r.port
        srv = civetweb.start(redis=url, longpoll_timeout="2s")
        try:
            assert c.publish_ok(srv, "pw", "x")["id"] == 1
            assert r.cli("-n", "3", "HGET", "pushq:{pw}:seq", "seq") == "1"
            assert r.cli("-n", "0", "EXISTS", "pushq:{pw}:seq") == "0"
            wait_subscribed(srv)
            assert "s3cret" not in srv.log_text()
        finally:
            srv.stop()
        # a wrong password: 503 naming Redis's refusal
        srv = civetweb.start(redis="redis://:wrong@127.0.0.1:%d" % r.port,
                             longpoll_timeout="2s")
        try:
            resp = c.publish(srv, "pw", "x")
            assert resp.status_code == 503, resp.text
            assert resp.json()["error"].startswith("redis:")
        finally:
            srv.stop()
    finally:
        r.close()


@pytest.mark.parametrize("value,says", [
    ("http://127.0.0.1:6379", "redis"),
    ("redis://127.0.0.1:notaport", "port"),
    ("rediss://127.0.0.1:6379", "TLS"),
    ("redis://127.0.0.1:6379/x", "redis"),
])
def test_bad_redis_url_refused(value, says):
    cmd = [ATTACH_CHECK, str(free_port()), "publisher_uri", "/p",
           "redis", value]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    out = p.stdout.strip()
    assert p.returncode == 1, out
    assert out.startswith("error: ") and '"redis"' in out, out
    assert says.lower() in out.lower(), out


def test_bad_redis_url_in_program_config_names_line(tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text("listening_ports 127.0.0.1:%d\npublisher_uri /p\n"
                    "redis redis://:pw@host:99999\n" % free_port())
    p = subprocess.run([civetweb.PROGRAM, str(conf)], capture_output=True,
                       text=True, timeout=20)
    assert p.returncode == 2, p.stderr
    assert "c.conf:3" in p.stderr and "redis" in p.stderr, p.stderr
    assert "pw@" not in p.stderr, "the password is not echoed"


def test_detach_with_idle_and_waiting_clients_is_prompt(pair):
    a, b, _ = pair
    wait_subscribed(a)
    ch = c.new_channel()
    fut = c.background(c.poll, a, ch, name="w", timeout=5)
    assert c.wait_subscribers(a, ch, 1)
    t0 = time.monotonic()
    assert a.stop() == 0
    assert time.monotonic() - t0 < 4
    fut.result(10)


@pytest.mark.skipif(not os.path.exists("/usr/bin/valgrind"),
                    reason="valgrind is not installed")
def test_no_leak_and_no_memory_error_under_valgrind(redis, tmp_path):
    """pushq-civetweb under memcheck: publishes, named and last_id
    long-polls and WebSockets, a Redis outage and return, then SIGTERM
    (detach stops the subscription thread and frees the pool): no error,
    nothing definitely lost."""
    port = free_port()
    conf = tmp_path / "vg.conf"
    conf.write_text("listening_ports 127.0.0.1:%d\nnum_threads 20\n"
                    "publisher_uri /pub\nsubscriber_uri /sub\n"
                    "status_uri /status\nlongpoll_timeout 3s\nredis %s\n"
                    % (port, redis.url))
    log = tmp_path / "vg.log"

    class Srv:
        base = "http://127.0.0.1:%d" % port
        pub, sub, status = "/pub", "/sub", "/status"
    s = Srv()
    s.port = port
    with open(log, "w") as lf:
        p = subprocess.Popen(["/usr/bin/valgrind", "--leak-check=full",
                              "--errors-for-leak-kinds=definite",
                              "--error-exitcode=9", civetweb.PROGRAM,
                              str(conf)], stdout=lf, stderr=lf)
    try:
        ok = c.wait_for(lambda: "PSUBSCRIBE" in log.read_text(), 60, 0.2)
        assert ok, log.read_text()[-3000:]
        assert c.publish_ok(s, "ch", "a")["id"] == 1
        assert c.poll_json(s, "ch", name="n", timeout=0)["status"] is False
        c.publish_ok(s, "ch", "b")
        assert c.poll_json(s, "ch", name="n", timeout=0)["msg"] == "b"
        ws = c.RawWS(s, query={"channel": "ch", "name": "n"}, timeout=20)
        ws2 = c.RawWS(s, query={"channel": "ch", "last_id": "0"},
                      timeout=20)
        c.publish_ok(s, "ch", "c")
        assert ws.recv_text(20) == "c"
        assert [ws2.recv_text(20) for _ in range(3)] == ["a", "b", "c"]
        fut = c.background(c.poll_json, s, "ch", name="m", timeout=3)
        redis.stop()
        assert c.publish(s, "ch", "d").status_code == 503
        redis.start()
        assert publish_retry(s, "ch", "e", 30).status_code == 200
        fut.result(30)
        ws.close_socket()
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(120)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = p.wait()
    text = log.read_text()
    assert rc == 0, text[-4000:]
    assert "ERROR SUMMARY: 0 errors" in text, text[-4000:]
    assert "definitely lost: 0 bytes" in text or \
        "All heap blocks were freed" in text, text[-4000:]
