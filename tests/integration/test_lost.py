"""SPEC.md "Concepts": a channel keeps its last `buffer` messages (at most
`buffer_bytes`) for `message_ttl`; "Lost" (by count, bytes, age; on a
message or on the timeout answer); channels forgotten after message_ttl
restart their ids (reset)."""

import asyncio
import json
import time

from checks import assert_message, assert_timeout_answer
from clients import (channel_stats, drain, new_channel, poll_json,
                     publish_ok, status, ws_connect)

SETTINGS = {"buffer": "3", "message_ttl": "2s"}
TTL = 2.0


def register(server, ch, name):
    assert_timeout_answer(poll_json(server, ch, name=name, timeout=0))


def test_buffer_keeps_last_n(server, ch):
    for i in range(1, 6):
        publish_ok(server, ch, "m%d" % i)
    st = channel_stats(server, ch)
    assert st is not None, "status ?channel= failed"
    assert (st["first_id"], st["last_id"], st["messages"]) == (3, 5, 3), st


def test_lost_by_count_named(server, ch, name):
    before = status(server).json()["lost"]
    register(server, ch, name)
    for i in range(1, 6):
        publish_ok(server, ch, "m%d" % i)
    j = poll_json(server, ch, name=name, timeout=0)
    assert_message(j, ch, "m3", id=3)
    assert j.get("lost") == 2, j
    rest = drain(server, ch, name)
    assert [g["id"] for g in rest] == [4, 5]
    assert all("lost" not in g for g in rest), rest
    assert status(server).json()["lost"] - before >= 2


def test_lost_by_count_cursor(server, ch):
    for i in range(1, 6):
        publish_ok(server, ch, "m%d" % i)
    for last_id, lost in ((0, 2), (1, 1), (2, None)):
        j = poll_json(server, ch, last_id=last_id, timeout=0)
        assert_message(j, ch, "m3", id=3)
        assert j.get("lost") == lost, (last_id, j)


def test_lost_by_count_batch(server, ch, name):
    register(server, ch, name)
    for i in range(1, 7):
        publish_ok(server, ch, "m%d" % i)
    j = poll_json(server, ch, name=name, batch=10, timeout=0)
    assert [m["id"] for m in j["msgs"]] == [4, 5, 6], j
    assert j.get("lost") == 3, j
    assert all("lost" not in m for m in j["msgs"][1:]), j


def test_lost_on_websocket_format_json(server, ch, name):
    register(server, ch, name)
    for i in range(1, 6):
        publish_ok(server, ch, "m%d" % i)

    async def run():
        async with ws_connect(server, channel=ch, name=name,
                              format="json") as w:
            return [json.loads(await asyncio.wait_for(w.recv(), 3))
                    for _ in range(3)]
    got = asyncio.run(run())
    assert [g["id"] for g in got] == [3, 4, 5]
    assert got[0].get("lost") == 2, got
    assert all(g["status"] is True and g["channel"] == ch for g in got)
    assert all("lost" not in g for g in got[1:]), got


def test_lost_by_age_on_timeout_answer_and_on_message(server, name):
    ch1, ch2 = new_channel("age1"), new_channel("age2")
    for c in (ch1, ch2):
        register(server, c, name)
        publish_ok(server, c, "old1")
        publish_ok(server, c, "old2")
    time.sleep(TTL + 0.4)
    publish_ok(server, ch2, "fresh")
    # nothing new on ch1: the timeout answer tells
    j = poll_json(server, ch1, name=name, timeout=0)
    assert j == {"status": False, "msg": "", "lost": 2}, j
    assert_timeout_answer(poll_json(server, ch1, name=name, timeout=0))
    # on ch2 the fresh message carries it
    j = poll_json(server, ch2, name=name, timeout=0)
    assert_message(j, ch2, "fresh", id=3)
    assert j.get("lost") == 2, j


def test_lost_by_bytes(servers, ch, name):
    srv = servers.get(buffer="100", buffer_bytes="100")
    register(srv, ch, name)
    for i in range(1, 6):
        publish_ok(srv, ch, ("%d" % i) * 40)
    got = drain(srv, ch, name)
    assert got, "nothing left of 5 x 40 bytes with buffer_bytes 100"
    ids = [g["id"] for g in got]
    assert ids == list(range(ids[0], 6)), ids         # the newest ones
    assert sum(len(g["msg"]) for g in got) <= 100, got
    assert got[0].get("lost") == ids[0] - 1, got
    assert got[0]["lost"] >= 3, got


def test_expired_channel_forgotten_and_ids_restart_with_reset(server, ch):
    publish_ok(server, ch, "a")
    publish_ok(server, ch, "b")
    time.sleep(TTL + 0.4)
    st = channel_stats(server, ch)
    assert st is None or st["messages"] == 0, st   # expired
    j = publish_ok(server, ch, "again")
    if j["id"] == 1:
        # forgotten and restarted: a cursor client from before is told
        a = poll_json(server, ch, last_id=2, timeout=0)
        assert_message(a, ch, "again", id=1)
        assert a.get("reset") is True, a
    else:
        assert j["id"] == 3, j
        a = poll_json(server, ch, last_id=2, timeout=0)
        assert_message(a, ch, "again", id=3)
