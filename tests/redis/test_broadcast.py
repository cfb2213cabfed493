"""Cross-server broadcast through Redis (issue 9, "Behaviour").

Three servers share one Redis: A (nginx, 1 worker), B (nginx, 2 workers),
C (pushq-civetweb).  A message published on any of them reaches the
WebSocket and long-poll subscribers of all three, and the ids grow by one
per channel whichever server published.
"""

import pytest

from clients import channel_stats, poll, poll_json, publish, wait_for
from rutil import (local_subscribers, poll_bg, pub, wait_local_subscribers,
                   ws_json, ws_nothing, ws_recv_n)


def test_publish_anywhere_reaches_everyone(cluster, ch):
    A, B, C = cluster.a, cluster.b, cluster.c
    # WebSockets: one on A, six on B (fresh connections spread over its
    # two workers), one on C
    wss = [ws_json(A, ch)] + [ws_json(B, ch) for _ in range(6)] \
        + [ws_json(C, ch)]
    try:
        # anonymous long-polls waiting: one on A and C, three on B
        lps = [poll_bg(s, ch, timeout=8) for s in (A, B, B, B, C)]
        wait_local_subscribers(A, ch, 2)
        wait_local_subscribers(B, ch, 9)
        wait_local_subscribers(C, ch, 2)

        order = [A, B, C, B, A, C]
        texts = ["m%d-from-%s" % (i, s.label) for i, s in enumerate(order)]
        ids = [pub(s, ch, t) for s, t in zip(order, texts)]
        assert ids == list(range(ids[0], ids[0] + len(ids))), \
            ("ids are not consecutive across servers", ids)
        assert ids[0] == 1, ("a fresh channel starts at id 1", ids)

        # every long-poll got the first message (it was waiting for it)
        for f in lps:
            j = f.result(timeout=10)
            assert j["status"] is True, j
            assert (j["id"], j["msg"]) == (ids[0], texts[0]), j
            assert j["channel"] == ch, j

        # every WebSocket got all six, in order, once
        for ws in wss:
            got = ws_recv_n(ws, len(ids))
            assert [(m["id"], m["msg"]) for m in got] == list(zip(ids, texts)), \
                (ws.label, got)
            assert all(m["channel"] == ch for m in got), got
        for ws in wss:
            ws_nothing(ws, 0.3)
    finally:
        for ws in wss:
            ws.close_socket()


def test_ids_consecutive_under_concurrent_publishers(cluster, ch):
    """Publishers on all three servers at once: the ids answered are
    exactly 1..N (none given twice, none skipped), and a cursor read on
    every server returns all N in id order."""
    from clients import background
    per = 15
    futs = [background(lambda s=s: [pub(s, ch, "%s-%d" % (s.label, i))
                                    for i in range(per)])
            for s in cluster.all]
    ids = sorted(i for f in futs for i in f.result(timeout=60))
    n = per * len(cluster.all)
    assert ids == list(range(1, n + 1)), ids
    for s in cluster.all:
        j = poll_json(s, ch, last_id=0, batch=1000, timeout=0)
        assert j["status"] is True, (s.label, j)
        assert [m["id"] for m in j["msgs"]] == list(range(1, n + 1)), \
            (s.label, j)
        # each publisher's own messages are in its publish order
        for t in cluster.all:
            mine = [m["msg"] for m in j["msgs"]
                    if m["msg"].startswith(t.label + "-")]
            assert mine == ["%s-%d" % (t.label, i) for i in range(per)], \
                (s.label, t.label, mine)


def test_websocket_publish_reaches_other_servers(cluster, ch):
    """A message a WebSocket client sends on C is published through Redis:
    subscribers on A and B get it, and the sender gets its own."""
    A, B, C = cluster.a, cluster.b, cluster.c
    wa, wb, wc = ws_json(A, ch), ws_json(B, ch), ws_json(C, ch)
    try:
        wait_local_subscribers(A, ch, 1)
        wait_local_subscribers(B, ch, 1)
        wait_local_subscribers(C, ch, 1)
        wc.send_text("hello from a websocket on C")
        for ws in (wa, wb, wc):
            (m,) = ws_recv_n(ws, 1)
            assert m["msg"] == "hello from a websocket on C", (ws.label, m)
            assert m["id"] == 1, (ws.label, m)
        wa.send_text("and one from A")
        for ws in (wa, wb, wc):
            (m,) = ws_recv_n(ws, 1)
            assert (m["id"], m["msg"]) == (2, "and one from A"), (ws.label, m)
    finally:
        for ws in (wa, wb, wc):
            ws.close_socket()


def test_subscribers_see_only_later_messages(cluster, ch):
    """An anonymous subscriber on another server gets only what is
    published after it connected (SPEC), not Redis's backlog nor B's
    mirror.  (B hears the publish a moment after A answered it: the test
    waits until B has it, so that it checks the rule, not that race.)"""
    A, B = cluster.a, cluster.b
    pub(A, ch, "before")
    assert wait_for(lambda: (channel_stats(B, ch) or {}).get("last_id") == 1)
    ws = ws_json(B, ch)
    try:
        wait_local_subscribers(B, ch, 1)
        ws_nothing(ws, 0.3)
        pub(A, ch, "after")
        (m,) = ws_recv_n(ws, 1)
        assert (m["id"], m["msg"]) == (2, "after"), m
    finally:
        ws.close_socket()
    assert local_subscribers(B, ch) is not None


def test_errors_still_local(cluster, ch):
    """Bad arguments are refused by the server itself, Redis or not."""
    from checks import assert_error
    for s in cluster.all:
        assert_error(publish(s, "bad channel!", "x"), 400, "channel")
        r = poll(s, ch, name="bad name!", timeout=0)
        assert_error(r, 400, "name")


@pytest.mark.parametrize("size", [0, 1, 3000, 60000])
def test_payloads_survive_the_trip(cluster, ch, size):
    """Empty, small, and large (near the 64k default limit) text and a
    binary message arrive byte-exact on another server."""
    import base64
    import os
    A, B = cluster.a, cluster.c
    text = "é" * (size // 2) + "a" * (size % 2)
    i = pub(A, ch, text)
    j = poll_json(B, ch, last_id=i - 1, timeout=0)
    assert j["status"] is True and j["id"] == i, j
    assert j["msg"] == text, (len(j["msg"]), len(text))
    data = os.urandom(max(size, 1) // 2) + b"\xff\x00"
    r = publish(A, ch, data, content_type="application/octet-stream")
    assert r.status_code == 200, r.text
    j = poll_json(cluster.b, ch, last_id=i, timeout=0)
    assert j.get("encoding") == "base64", j
    assert base64.b64decode(j["msg"]) == data
