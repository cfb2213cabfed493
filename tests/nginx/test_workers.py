"""worker_processes 4: one store for all workers.

Every answer carries the pid of the worker that served it (add_header
X-Worker $pid), and every request uses a fresh connection, so that with
`listen ... reuseport` the requests spread over the workers; the tests
check that they did.
"""

import asyncio
import concurrent.futures
import json
import threading
import time

import requests

from clients import (RawWS, channel_stats, http, new_channel, publish_ok,
                     url, wait_for, wait_subscribers)

PID_HEADER = 'add_header X-Worker $pid always;'


def start4(servers, **kw):
    return servers.start(workers=4, server_extra=PID_HEADER,
                         longpoll_timeout="10s", **kw)


def poll(srv, ch, **params):
    r = http("GET", url(srv, srv.sub, channel=ch, **params), timeout=20)
    assert r.status_code == 200, (r.status_code, r.text)
    return int(r.headers["X-Worker"]), r.json()


def test_publish_on_one_worker_reaches_all_workers_exactly_once(servers):
    srv = start4(servers)
    ch = new_channel("w")
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=64)

    # WebSockets until every worker holds at least two
    sockets = []
    per_worker = {}
    while len(sockets) < 64 and (len(per_worker) < 4
                                 or min(per_worker.values()) < 2):
        w = RawWS(srv, query={"channel": ch})
        pid = int(w.headers["x-worker"])
        per_worker[pid] = per_worker.get(pid, 0) + 1
        sockets.append(w)
    assert set(per_worker) == set(srv.pids()), per_worker

    # long-polls, each on its own connection
    polls = [pool.submit(poll, srv, ch) for _ in range(24)]
    assert wait_subscribers(srv, ch, len(sockets) + 24, timeout=10)

    first = publish_ok(srv, ch, "one")
    answers = [f.result(timeout=15) for f in polls]
    lp_pids = {pid for pid, _ in answers}
    assert len(lp_pids) >= 2, lp_pids
    for pid, j in answers:
        assert j["status"] is True and j["msg"] == "one", j
        assert j["id"] == first["id"], j

    second = publish_ok(srv, ch, "two")
    for w in sockets:
        assert w.recv_text(timeout=5) == "one"
        assert w.recv_text(timeout=5) == "two"
    assert second["id"] == first["id"] + 1

    # exactly once: nothing more arrives on any socket
    for w in sockets:
        w.sock.settimeout(0.05)
        try:
            data = w.sock.recv(100)
        except OSError:
            data = None
        assert not data, data
        w.close_socket()
    pool.shutdown()


def test_publishers_on_all_workers_ids_in_order(servers):
    """Publishes spread over the workers get consecutive ids, and one
    WebSocket sees them all in id order."""
    srv = start4(servers)
    ch = new_channel("w")
    w = RawWS(srv, query={"channel": ch, "format": "json"})
    assert wait_subscribers(srv, ch, 1)
    pub_pids = set()
    ids = []
    for i in range(40):
        r = http("POST", url(srv, srv.pub, channel=ch),
                 data=("m%d" % i).encode())
        assert r.status_code == 200, r.text
        pub_pids.add(int(r.headers["X-Worker"]))
        ids.append(r.json()["id"])
    assert len(pub_pids) >= 2, pub_pids
    assert ids == list(range(ids[0], ids[0] + 40))
    got = [json.loads(w.recv_text()) for _ in range(40)]
    assert [g["id"] for g in got] == ids
    assert [g["msg"] for g in got] == ["m%d" % i for i in range(40)]
    w.close_socket()


def test_named_client_on_changing_workers_loses_nothing(servers):
    srv = start4(servers)
    ch = new_channel("w")
    name = new_channel("n")
    total = 150

    # first appearance
    pid, j = poll(srv, ch, name=name, timeout=0)
    assert j["status"] is False

    def publisher():
        for i in range(total):
            publish_ok(srv, ch, "m%d" % i)
            if i % 10 == 0:
                time.sleep(0.01)

    t = threading.Thread(target=publisher)
    t.start()
    got, pids = [], set()
    deadline = time.monotonic() + 60
    while len(got) < total and time.monotonic() < deadline:
        pid, j = poll(srv, ch, name=name, timeout=5, batch=7)
        pids.add(pid)
        if j["status"]:
            got.extend(m["msg"] for m in j["msgs"])
    t.join()
    assert got == ["m%d" % i for i in range(total)]
    assert len(pids) >= 3, pids
    # and nothing more (no duplicate)
    pid, j = poll(srv, ch, name=name, timeout=0)
    assert j["status"] is False, j


def test_same_name_on_two_workers_shares_one_queue(servers):
    """Two long-polls with one name, on different workers: each message
    goes to one of them (as in the seed), none is lost or doubled."""
    srv = start4(servers)
    ch = new_channel("w")
    name = new_channel("n")
    poll(srv, ch, name=name, timeout=0)
    stop = time.monotonic() + 20
    got = []
    lock = threading.Lock()

    def client():
        while time.monotonic() < stop and len(got) < 60:
            pid, j = poll(srv, ch, name=name, timeout=1)
            if j["status"]:
                with lock:
                    got.append(j["msg"])

    threads = [threading.Thread(target=client) for _ in range(3)]
    for th in threads:
        th.start()
    for i in range(60):
        publish_ok(srv, ch, "m%d" % i)
        time.sleep(0.005)
    for th in threads:
        th.join()
    assert sorted(got, key=lambda s: int(s[1:])) == ["m%d" % i
                                                     for i in range(60)]


def test_status_sums_over_workers(servers):
    srv = start4(servers)
    ch = new_channel("w")
    sockets = [RawWS(srv, query={"channel": ch}) for _ in range(12)]
    pids = {int(w.headers["x-worker"]) for w in sockets}
    assert len(pids) >= 2, pids
    assert wait_subscribers(srv, ch, 12)
    st = requests.get(srv.base + srv.status,
                      headers={"Connection": "close"}).json()
    assert st["subscribers"]["websocket"] >= 12, st
    for w in sockets:
        w.close_socket()
    assert wait_subscribers(srv, ch, 0)
