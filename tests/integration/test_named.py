"""SPEC.md "Concepts: Named client" and "Cursor client" (last_id), over
long-poll and WebSocket, across connections (and nginx workers)."""

import asyncio
import time

from checks import assert_message, assert_timeout_answer
from clients import (background, channel_stats, drain, poll, poll_json,
                     publish_ok, wait_subscribers, ws_connect)

SETTINGS = {"client_ttl": "3s", "longpoll_timeout": "2s"}


def register(server, ch, name):
    """A name's first appearance (answers at once: nothing for it yet)."""
    assert_timeout_answer(poll_json(server, ch, name=name, timeout=0))


def test_receives_everything_after_first_appearance_in_order_once(
        server, ch, name):
    publish_ok(server, ch, "before")
    register(server, ch, name)
    for i in range(2, 9):
        assert publish_ok(server, ch, "m%d" % i)["id"] == i
    got = drain(server, ch, name)
    assert [(g["id"], g["msg"]) for g in got] == \
        [(i, "m%d" % i) for i in range(2, 9)]


def test_resumes_where_it_left(server, ch, name):
    register(server, ch, name)
    for i in range(1, 4):
        publish_ok(server, ch, "a%d" % i)
    assert_message(poll_json(server, ch, name=name, timeout=0), ch, "a1",
                   id=1)
    for i in range(4, 6):
        publish_ok(server, ch, "a%d" % i)
    assert [g["msg"] for g in drain(server, ch, name)] == \
        ["a2", "a3", "a4", "a5"]


def test_long_poll_loop_during_publishing(server, ch, name):
    """The seed's loop: one long-poll after another (each on a fresh
    connection, so on nginx4 on varying workers) while messages arrive:
    every message exactly once, in order."""
    register(server, ch, name)
    n = 40

    def publisher():
        for i in range(1, n + 1):
            publish_ok(server, ch, "p%d" % i)
            if i % 5 == 0:
                time.sleep(0.02)

    f = background(publisher)
    got = []
    end = time.monotonic() + 20
    while len(got) < n and time.monotonic() < end:
        j = poll_json(server, ch, name=name)
        if j["status"]:
            got.append((j["id"], j["msg"]))
    f.result(10)
    assert got == [(i, "p%d" % i) for i in range(1, n + 1)]
    assert_timeout_answer(poll_json(server, ch, name=name, timeout=0))


def test_two_connections_same_name_share_one_queue(server, ch, name):
    register(server, ch, name)
    a = background(poll, server, ch, name=name)
    b = background(poll, server, ch, name=name)
    assert wait_subscribers(server, ch, 2)
    publish_ok(server, ch, "one")
    publish_ok(server, ch, "two")
    answers = [a.result(10).json(), b.result(10).json()]
    msgs = sorted(j["msg"] for j in answers if j["status"])
    # each message went to exactly one of them; a connection that got
    # nothing before its timeout answers status false
    rest = [g["msg"] for g in drain(server, ch, name)]
    assert sorted(msgs + rest) == ["one", "two"], (answers, rest)
    assert msgs, "neither waiting connection was answered"


def test_two_websockets_same_name_share_one_queue(server, ch, name):
    register(server, ch, name)

    async def run():
        async with ws_connect(server, channel=ch, name=name) as w1, \
                ws_connect(server, channel=ch, name=name) as w2:
            assert wait_subscribers(server, ch, 2)
            for i in range(10):
                publish_ok(server, ch, "s%d" % i)
            got = []

            async def collect(w):
                try:
                    while True:
                        got.append(await asyncio.wait_for(w.recv(), 1.0))
                except asyncio.TimeoutError:
                    pass
            await asyncio.gather(collect(w1), collect(w2))
            return got
    got = asyncio.run(run())
    assert sorted(got) == sorted("s%d" % i for i in range(10)), got


def test_client_ttl_counts_from_end_of_last_request(server, ch):
    """client_ttl is 3s.  Name A's last request is a full long-poll that
    ends after 2s; name B's last request ends at once; name C holds a
    WebSocket open for 3.6s (a name stays alive while connected).  3.6s
    after the start, A and C are known and B is forgotten: when it returns
    it is new, so the message published before its return is not for
    it."""
    from clients import RawWS
    a_name, b_name, c_name = ["ttl-%s-%s" % (x, ch[-8:]) for x in "abc"]
    t0 = time.monotonic()
    fa = background(poll, server, ch, name=a_name)
    register(server, ch, b_name)
    t_b = time.monotonic()             # B's last request ended
    wc = RawWS(server, query={"channel": ch, "name": c_name})
    try:
        assert_timeout_answer(fa.result(10).json())      # ends at ~2s
        st = channel_stats(server, ch)
        assert st is not None and st["clients"] == 3, st
        time.sleep(max(0, 3.6 - (time.monotonic() - t0)))
        wc.send_close(1000)
        wc.expect_close()
    finally:
        wc.close_socket()
    assert wait_subscribers(server, ch, 0)
    # abandoned queues never leak: B is gone from the status already
    st = channel_stats(server, ch)
    assert st is not None and st["clients"] == 2, \
        ("%.2fs after B's last request (client_ttl 3s)"
         % (time.monotonic() - t_b), st)
    publish_ok(server, ch, "after ttl of B")
    assert_message(poll_json(server, ch, name=a_name, timeout=0), ch,
                   "after ttl of B", id=1)
    assert_message(poll_json(server, ch, name=c_name, timeout=0), ch,
                   "after ttl of B", id=1)
    assert_timeout_answer(poll_json(server, ch, name=b_name, timeout=0))


def test_across_transports_longpoll_then_websocket_then_longpoll(
        server, ch, name):
    register(server, ch, name)
    publish_ok(server, ch, "lp1")
    assert_message(poll_json(server, ch, name=name, timeout=0), ch, "lp1")
    publish_ok(server, ch, "queued2")
    publish_ok(server, ch, "queued3")

    async def ws_part():
        async with ws_connect(server, channel=ch, name=name) as w:
            got = [await asyncio.wait_for(w.recv(), 3) for _ in range(2)]
            assert wait_subscribers(server, ch, 1)
            publish_ok(server, ch, "live4")
            got.append(await asyncio.wait_for(w.recv(), 3))
            return got
    assert asyncio.run(ws_part()) == ["queued2", "queued3", "live4"]
    publish_ok(server, ch, "lp5")
    assert_message(poll_json(server, ch, name=name, timeout=0), ch, "lp5",
                   id=5)
    assert_timeout_answer(poll_json(server, ch, name=name, timeout=0))


def test_websocket_name_first_appearance(server, ch, name):
    """A name that first appears on a WebSocket gets what is published
    after it connected, not before."""
    publish_ok(server, ch, "before")

    async def run():
        async with ws_connect(server, channel=ch, name=name) as w:
            assert wait_subscribers(server, ch, 1)
            publish_ok(server, ch, "after")
            return await asyncio.wait_for(w.recv(), 3)
    assert asyncio.run(run()) == "after"
    publish_ok(server, ch, "later")
    assert_message(poll_json(server, ch, name=name, timeout=0), ch, "later",
                   id=3)


# --- cursor clients ---------------------------------------------------------

def test_last_id_answers_buffered_after_n(server, ch):
    for i in range(1, 6):
        publish_ok(server, ch, "c%d" % i)
    assert_message(poll_json(server, ch, last_id=2, timeout=0), ch, "c3",
                   id=3)
    assert_message(poll_json(server, ch, last_id=0, timeout=0), ch, "c1",
                   id=1)
    j = poll_json(server, ch, last_id=2, batch=10, timeout=0)
    assert [(m["id"], m["msg"]) for m in j["msgs"]] == \
        [(3, "c3"), (4, "c4"), (5, "c5")]
    assert j["id"] == 5 and "reset" not in j and "lost" not in j
    assert_timeout_answer(poll_json(server, ch, last_id=5, timeout=0))


def test_last_id_keeps_no_state(server, ch):
    for i in range(1, 4):
        publish_ok(server, ch, "k%d" % i)
    for _ in range(3):   # the same answer each time
        assert_message(poll_json(server, ch, last_id=1, timeout=0), ch,
                       "k2", id=2)
    st = channel_stats(server, ch)
    assert st is not None and st["clients"] == 0, st


def test_last_id_at_newest_waits_for_next(server, ch):
    publish_ok(server, ch, "x1")
    f = background(poll, server, ch, last_id=1)
    assert wait_subscribers(server, ch, 1)
    publish_ok(server, ch, "x2")
    assert_message(f.result(10).json(), ch, "x2", id=2)


def test_last_id_with_name_moves_the_cursor(server, ch, name):
    register(server, ch, name)
    for i in range(1, 6):
        publish_ok(server, ch, "v%d" % i)
    assert_message(poll_json(server, ch, name=name, last_id=3, timeout=0),
                   ch, "v4", id=4)
    assert_message(poll_json(server, ch, name=name, timeout=0), ch, "v5",
                   id=5)
    assert_timeout_answer(poll_json(server, ch, name=name, timeout=0))
    # backwards too: last_id wins for that request and moves the cursor
    assert_message(poll_json(server, ch, name=name, last_id=1, timeout=0),
                   ch, "v2", id=2)
    assert [g["id"] for g in drain(server, ch, name)] == [3, 4, 5]


def test_last_id_with_new_name_starts_there(server, ch, name):
    for i in range(1, 4):
        publish_ok(server, ch, "w%d" % i)
    assert_message(poll_json(server, ch, name=name, last_id=0, timeout=0),
                   ch, "w1", id=1)
    assert [g["id"] for g in drain(server, ch, name)] == [2, 3]


def test_last_id_above_newest_is_reset(server, ch):
    for i in range(1, 4):
        publish_ok(server, ch, "r%d" % i)
    j = poll_json(server, ch, last_id=100, timeout=0)
    assert_message(j, ch, "r1", id=1)
    assert j.get("reset") is True, j
    j = poll_json(server, ch, last_id=100, batch=10, timeout=0)
    assert [m["id"] for m in j["msgs"]] == [1, 2, 3]
    assert j.get("reset") is True, j
    # not on an ordinary answer
    assert "reset" not in poll_json(server, ch, last_id=1, timeout=0)


def test_last_id_above_newest_on_empty_channel_reset_on_timeout(server, ch):
    j = poll_json(server, ch, last_id=7, timeout=0)
    assert j.get("status") is False and j.get("msg") == "", j
    assert j.get("reset") is True, j


def test_websocket_last_id_and_reset_format_json(server, ch):
    import json
    for i in range(1, 4):
        publish_ok(server, ch, "j%d" % i)

    async def run(**params):
        async with ws_connect(server, channel=ch, format="json",
                              **params) as w:
            return [json.loads(await asyncio.wait_for(w.recv(), 3))
                    for _ in range(3 if params["last_id"] == 50 else 2)]
    got = asyncio.run(run(last_id=1))
    assert [(g["id"], g["msg"]) for g in got] == [(2, "j2"), (3, "j3")]
    assert all("reset" not in g for g in got), got
    got = asyncio.run(run(last_id=50))
    assert [g["id"] for g in got] == [1, 2, 3]
    assert got[0].get("reset") is True, got
    assert all("reset" not in g for g in got[1:]), got


def test_two_long_poll_loops_same_name_split_the_messages(server, ch, name):
    """Two pages of one visitor (the seed's shared queue): every message
    goes to exactly one of the two loops, in order within each loop."""
    register(server, ch, name)
    n = 30
    stop = []

    def loop():
        got = []
        while not stop:
            j = poll_json(server, ch, name=name, timeout=0.5)
            if j["status"]:
                got.append(j["id"])
        return got
    loops = [background(loop), background(loop)]
    assert wait_subscribers(server, ch, 2)
    for i in range(1, n + 1):
        publish_ok(server, ch, "s%d" % i)
    time.sleep(1.0)
    stop.append(True)
    got = [f.result(10) for f in loops]
    assert sorted(got[0] + got[1]) == list(range(1, n + 1)), got
    assert all(g == sorted(g) for g in got), got


def test_websocket_name_with_last_id_moves_the_cursor(server, ch, name):
    register(server, ch, name)
    for i in range(1, 5):
        publish_ok(server, ch, "u%d" % i)

    async def run():
        async with ws_connect(server, channel=ch, name=name,
                              last_id=2) as w:
            return [await asyncio.wait_for(w.recv(), 3) for _ in range(2)]
    assert asyncio.run(run()) == ["u3", "u4"]
    assert_timeout_answer(poll_json(server, ch, name=name, timeout=0))


def test_keep_alive_long_poll_loop(server, ch, name):
    """Browsers keep the connection: the loop runs on one keep-alive
    connection, through message and timeout answers."""
    import requests
    from clients import url
    with requests.Session() as s:
        def get(**p):
            r = s.get(url(server, server.sub, channel=ch, name=name, **p),
                      timeout=10)
            assert r.status_code == 200
            return r.json()
        assert_timeout_answer(get(timeout=0))
        for i in range(3):
            publish_ok(server, ch, "k%d" % i)
            assert_message(get(), ch, "k%d" % i, id=i + 1)
            assert_timeout_answer(get(timeout=0.2))


def test_name_cursor_is_per_channel(server, ch, name):
    from clients import new_channel
    other = new_channel()
    register(server, ch, name)
    register(server, other, name)
    publish_ok(server, ch, "c1")
    publish_ok(server, ch, "c2")
    publish_ok(server, other, "o1")
    assert [g["msg"] for g in drain(server, other, name)] == ["o1"]
    assert [g["msg"] for g in drain(server, ch, name)] == ["c1", "c2"]


def test_same_name_on_websocket_and_longpoll_shares_the_queue(
        server, ch, name):
    from clients import RawWS
    register(server, ch, name)
    with RawWS(server, query={"channel": ch, "name": name}) as ws:
        assert wait_subscribers(server, ch, 1)
        lp = background(poll, server, ch, name=name)
        assert wait_subscribers(server, ch, 2)
        for i in range(6):
            publish_ok(server, ch, "q%d" % i)
        lp_got = lp.result(10).json()
        got = [lp_got["msg"]] if lp_got["status"] else []
        while True:
            try:
                got.append(ws.recv_text(timeout=0.7))
            except Exception:
                break
    got += [g["msg"] for g in drain(server, ch, name)]
    assert sorted(got) == ["q%d" % i for i in range(6)], got
