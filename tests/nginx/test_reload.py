"""Reload (kill -HUP of the master) and graceful stop.

The store is in a shared zone reused across reloads: channels, messages
and named clients stay.  Old workers close their WebSockets with 1001 and
answer their long-polls at once; clients that resume by name lose nothing
and see nothing twice.  Reloads leak no descriptor and no shared memory.
"""

import json
import os
import threading
import time

from clients import (RawWS, channel_stats, http, new_channel, publish_ok,
                     url, wait_for, wait_subscribers)

PID_HEADER = 'add_header X-Worker $pid always;'


def poll(srv, ch, **params):
    r = http("GET", url(srv, srv.sub, channel=ch, **params), timeout=30)
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()


def test_reload_keeps_channels_messages_and_names(servers):
    srv = servers.start(workers=4, longpoll_timeout="5s")
    ch = new_channel("r")
    name = new_channel("n")
    for i in range(5):
        publish_ok(srv, ch, "before%d" % i)
    assert poll(srv, ch, name=name, timeout=0)["status"] is False
    for i in range(3):
        publish_ok(srv, ch, "kept%d" % i)
    old = srv.pids()

    srv.reload()
    assert not set(old) & set(srv.pids())

    st = channel_stats(srv, ch)
    assert st["last_id"] == 8 and st["messages"] == 8, st
    assert st["clients"] == 1, st
    got = [poll(srv, ch, name=name, timeout=0) for _ in range(4)]
    assert [g["msg"] for g in got[:3]] == ["kept0", "kept1", "kept2"]
    assert got[3]["status"] is False
    # ids go on where they were
    assert publish_ok(srv, ch, "after")["id"] == 9
    # one store: made once, then reused
    assert srv.log_text().count('in zone "pushq" created') == 1


class WsClient(threading.Thread):
    """A named WebSocket subscriber (format=json) that reconnects by name
    when the server closes it, recording every id and close code."""

    def __init__(self, srv, ch, name, until_id):
        super().__init__(daemon=True)
        self.srv, self.ch, self.name = srv, ch, name
        self.until_id = until_id
        self.ids, self.closes, self.pids = [], [], []
        self.error = None
        self.ws = self.connect()

    def connect(self):
        w = RawWS(self.srv, query={"channel": self.ch, "name": self.name,
                                   "format": "json"}, timeout=10)
        self.pids.append(int(w.headers["x-worker"]))
        return w

    def run(self):
        try:
            while not self.ids or self.ids[-1] < self.until_id:
                f = self.ws.recv_frame(timeout=20)
                if f.opcode == 0x8:
                    self.closes.append(f.close_code)
                    self.ws.close_socket()
                    self.ws = self.connect()
                    continue
                if f.opcode == 0x9:
                    self.ws.send_frame(0xA, f.payload)
                    continue
                self.ids.append(json.loads(f.payload)["id"])
            self.ws.close_socket()
        except Exception as e:      # reported by the test
            self.error = repr(e)


class LpClient(threading.Thread):
    def __init__(self, srv, ch, name, until_id):
        super().__init__(daemon=True)
        self.srv, self.ch, self.name = srv, ch, name
        self.until_id = until_id
        self.ids = []
        self.error = None
        assert poll(srv, ch, name=name, timeout=0)["status"] is False

    def run(self):
        try:
            while not self.ids or self.ids[-1] < self.until_id:
                j = poll(self.srv, self.ch, name=self.name, batch=10)
                if j["status"]:
                    self.ids.extend(m["id"] for m in j["msgs"])
        except Exception as e:
            self.error = repr(e)


def test_reload_under_traffic_loses_nothing(servers):
    srv = servers.start(workers=4, server_extra=PID_HEADER,
                        longpoll_timeout="3s", websocket_ping="60s")
    ch = new_channel("r")
    total = 240
    wss = [WsClient(srv, ch, new_channel("ws"), total) for _ in range(8)]
    lps = [LpClient(srv, ch, new_channel("lp"), total) for _ in range(3)]
    assert len({c.pids[0] for c in wss}) >= 2
    assert wait_subscribers(srv, ch, 8)
    for c in wss + lps:
        c.start()

    published = []
    for i in range(total):
        published.append(publish_ok(srv, ch, "m%d" % i)["id"])
        if i == total // 3:
            srv.reload()
        time.sleep(0.003)
    assert published == list(range(1, total + 1))

    for c in wss + lps:
        c.join(40)
    for c in wss:
        assert c.error is None, (c.name, c.error, c.ids[-5:])
        # every WebSocket was on an old worker: closed with 1001, resumed
        assert 1001 in c.closes, c.closes
        assert c.ids == published, (c.name, len(c.ids))
    for c in lps:
        assert c.error is None, c.error
        assert c.ids == published, (c.name, len(c.ids))
    assert srv.wait_old_workers_gone()


def _fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def _shared_maps(pid):
    with open("/proc/%d/maps" % pid) as f:
        return sum(1 for line in f if line.split()[1].endswith("s"))


def test_reloads_leak_no_fds_or_shared_memory(servers):
    srv = servers.start(workers=4, longpoll_timeout="2s")
    master = srv.master_pid()
    ch = new_channel("r")
    srv.reload()
    assert srv.wait_old_workers_gone()
    time.sleep(0.3)     # let the master close the old workers' channels
    fds, maps = _fds(master), _shared_maps(master)
    wfds = sorted(_fds(p) for p in srv.pids())
    for i in range(4):
        w = RawWS(srv, query={"channel": ch})
        publish_ok(srv, ch, "x%d" % i)
        assert w.recv_text() == "x%d" % i
        srv.reload()
        assert w.expect_close().close_code == 1001
        w.close_socket()
        assert srv.wait_old_workers_gone()
    # the master closes an old worker's channel right after reaping it
    assert wait_for(lambda: _fds(master) == fds, timeout=5), \
        (_fds(master), fds)
    assert _shared_maps(master) == maps
    assert sorted(_fds(p) for p in srv.pids()) == wfds
    assert channel_stats(srv, ch)["last_id"] == 4


def test_graceful_stop_answers_longpolls_and_closes_websockets(servers):
    srv = servers.start(workers=2, longpoll_timeout="30s")
    ch = new_channel("q")
    results = []

    def lp():
        t = time.monotonic()
        results.append((poll(srv, ch), time.monotonic() - t))

    threads = [threading.Thread(target=lp) for _ in range(4)]
    for t in threads:
        t.start()
    w = RawWS(srv, query={"channel": ch})
    closes = []

    def ws_reader():
        # answers the server's close as a browser does
        f = w.expect_close(timeout=10)
        closes.append(f.close_code)
        w.send_close(f.close_code)
        closes.append(w.expect_eof(timeout=10))
        w.close_socket()

    reader = threading.Thread(target=ws_reader)
    reader.start()
    assert wait_subscribers(srv, ch, 5)
    t0 = time.monotonic()
    srv.stop()
    took_stop = time.monotonic() - t0
    for t in threads + [reader]:
        t.join(10)
    assert len(results) == 4
    for j, took in results:
        assert j == {"status": False, "msg": ""}, j
        assert took < 5
    # 1001, then the server closed the connection after the handshake
    assert closes == [1001, True], closes
    assert took_stop < 4, took_stop
