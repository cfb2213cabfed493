"""Named clients and cursors across servers (issue 9: "named clients
exactly once and in order wherever their requests land, last_id resume").

A (nginx 1 worker), B (nginx 2 workers), C (pushq-civetweb) share one
Redis; every request is a fresh connection, so on B they also spread over
its two workers.
"""

import json
import threading
import time

from clients import background, poll_json
from rutil import (messages_of, poll_bg, pub, take, wait_local_subscribers,
                   wait_subscribers_exact, ws_close, ws_json, ws_recv_n)


def test_named_client_alternating_servers(cluster, ch, name):
    """One name, its requests round-robin over A, B and C (long-poll, some
    with batch), while a publisher round-robins too: every message once,
    in order, none lost."""
    servers = cluster.all
    j = take(cluster.a, ch, name)            # the name appears: now
    assert j["status"] is False, j
    total = 120
    sent = []
    done = threading.Event()

    def publisher():
        try:
            for i in range(total):
                s = servers[(i + 1) % 3]
                sent.append((pub(s, ch, "msg-%03d" % i), "msg-%03d" % i))
                if i % 10 == 0:
                    time.sleep(0.02)
        finally:
            done.set()

    pf = background(publisher)
    got, k = [], 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        s = servers[k % 3]
        params = {"batch": 7} if k % 4 == 3 else {}
        j = take(s, ch, name, timeout=0 if done.is_set() else 1, **params)
        k += 1
        assert "lost" not in j and "reset" not in j, j
        got += messages_of(j)
        if done.is_set() and not j["status"] and len(got) >= len(sent):
            break
    pf.result(timeout=10)
    assert [i for i, _ in sent] == list(range(1, total + 1)), sent
    ids = [i for i, _ in got]
    dups = sorted({i for i in ids if ids.count(i) > 1})
    missing = sorted(set(range(1, total + 1)) - set(ids))
    assert not dups and not missing, ("duplicated", dups, "missing", missing)
    assert got == sent, "order differs"
    assert k > 6, k


def test_named_client_across_transports_and_servers(cluster, ch, name):
    """A named WebSocket on A, then long-polls on C, then a named WebSocket
    on B, then a long-poll on A: each message once, in order."""
    A, B, C = cluster.a, cluster.b, cluster.c
    take(C, ch, name)                        # appears
    expect = []

    def publish_n(srv, n):
        for _ in range(n):
            t = "t%d" % (len(expect) + 1)
            expect.append((pub(srv, ch, t), t))

    got = []
    ws = ws_json(A, ch, name=name)
    try:
        wait_local_subscribers(A, ch, 1)
        publish_n(B, 5)
        got += [(m["id"], m["msg"]) for m in ws_recv_n(ws, 5)]
    finally:
        ws_close(ws)
    wait_subscribers_exact(A, ch, 0)
    publish_n(C, 4)
    for _ in range(2):
        got += messages_of(take(C, ch, name, timeout=1))
    ws = ws_json(B, ch, name=name)
    try:
        # the two the long-polls left are waiting for it
        got += [(m["id"], m["msg"]) for m in ws_recv_n(ws, 2)]
        publish_n(A, 3)
        got += [(m["id"], m["msg"]) for m in ws_recv_n(ws, 3)]
    finally:
        ws_close(ws)
    wait_subscribers_exact(B, ch, 0)
    publish_n(A, 2)
    j = take(A, ch, name, batch=100)
    got += messages_of(j)
    assert got == expect, (got, expect)
    assert not take(B, ch, name)["status"]


def test_last_id_resume_on_another_server(cluster, ch):
    A, B, C = cluster.a, cluster.b, cluster.c
    ids = [pub(A, ch, "x%d" % i) for i in range(10)]
    assert ids == list(range(1, 11)), ids
    j = poll_json(B, ch, last_id=3, timeout=0)
    assert (j["id"], j["msg"]) == (4, "x3"), j
    j = poll_json(C, ch, last_id=4, batch=100, timeout=0)
    assert [m["id"] for m in j["msgs"]] == list(range(5, 11)), j
    assert [m["msg"] for m in j["msgs"]] == ["x%d" % i for i in range(4, 10)]
    assert "lost" not in j and "reset" not in j, j

    # a cursor at the end waits, on C, for what A publishes next
    f = poll_bg(C, ch, last_id=10, timeout=8)
    wait_local_subscribers(C, ch, 1)
    pub(A, ch, "eleven")
    j = f.result(timeout=10)
    assert (j["id"], j["msg"]) == (11, "eleven"), j

    # and a WebSocket resumes with last_id on B
    ws = ws_json(B, ch, last_id=8)
    try:
        got = ws_recv_n(ws, 3)
        assert [m["id"] for m in got] == [9, 10, 11], got
    finally:
        ws.close_socket()


def test_last_id_moves_the_name_across_servers(cluster, ch, name):
    """With name and last_id, last_id wins and moves the name's cursor,
    and the next request without last_id, on another server, goes on from
    there."""
    A, B, C = cluster.a, cluster.b, cluster.c
    take(A, ch, name)
    for i in range(8):
        pub(C, ch, "y%d" % i)
    j = take(B, ch, name, last_id=5)
    assert j["id"] == 6, j
    j = take(C, ch, name)
    assert j["id"] == 7, j
    j = take(A, ch, name, batch=10)
    assert [m["id"] for m in j["msgs"]] == [8], j


def test_last_id_above_newest_is_a_reset(cluster, ch):
    A, B = cluster.a, cluster.b
    for i in range(3):
        pub(A, ch, "z%d" % i)
    j = poll_json(B, ch, last_id=1000, batch=10, timeout=0)
    assert j.get("reset") is True, j
    assert [m["id"] for m in j["msgs"]] == [1, 2, 3], j


def test_same_name_on_two_servers_splits(cluster, ch, name):
    """Two connections with the same name, long-polling on A and on B,
    share one queue: each message goes to exactly one of them."""
    A, B, C = cluster.a, cluster.b, cluster.c
    take(A, ch, name)
    total = 40
    stop = threading.Event()
    got = {"A": [], "B": []}

    def consumer(srv, key):
        while not stop.is_set():
            j = take(srv, ch, name, timeout=1)
            got[key] += messages_of(j)

    fa = background(consumer, A, "A")
    fb = background(consumer, B, "B")
    wait_local_subscribers(A, ch, 1)
    wait_local_subscribers(B, ch, 1)
    ids = []
    for i in range(total):
        ids.append(pub(C, ch, "s%d" % i))
        time.sleep(0.03)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and \
            len(got["A"]) + len(got["B"]) < total:
        time.sleep(0.05)
    stop.set()
    fa.result(timeout=10)
    fb.result(timeout=10)
    a_ids = [i for i, _ in got["A"]]
    b_ids = [i for i, _ in got["B"]]
    assert not set(a_ids) & set(b_ids), ("delivered twice",
                                         sorted(set(a_ids) & set(b_ids)))
    assert sorted(a_ids + b_ids) == ids, ("lost",
                                          sorted(set(ids) - set(a_ids + b_ids)))
    assert a_ids == sorted(a_ids) and b_ids == sorted(b_ids), got
    assert a_ids and b_ids, ("one connection got everything", got)


def test_same_name_websockets_on_nginx_and_civetweb_split(cluster, ch, name):
    """Two WebSockets with one name, on B (nginx) and C (CivetWeb): each
    message goes to exactly one of them, each in order."""
    import socket
    A, B, C = cluster.a, cluster.b, cluster.c
    take(A, ch, name)
    wb, wc = ws_json(B, ch, name=name), ws_json(C, ch, name=name)
    try:
        wait_local_subscribers(B, ch, 1)
        wait_local_subscribers(C, ch, 1)
        ids = [pub(A, ch, "w%d" % i) for i in range(40)]
        got = {wb.label: [], wc.label: []}
        deadline = time.monotonic() + 10
        while sum(map(len, got.values())) < len(ids) and \
                time.monotonic() < deadline:
            for ws in (wb, wc):
                try:
                    m = ws.recv_text(0.05)
                except socket.timeout:
                    continue
                got[ws.label].append(json.loads(m)["id"])
        b_ids, c_ids = got[wb.label], got[wc.label]
        assert not set(b_ids) & set(c_ids), got
        assert sorted(b_ids + c_ids) == ids, got
        assert b_ids == sorted(b_ids) and c_ids == sorted(c_ids), got
    finally:
        wb.close_socket()
        wc.close_socket()
