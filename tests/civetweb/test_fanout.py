"""200 concurrent long-polls and 200 WebSockets on one channel: every
subscriber receives every message exactly once, in order.  With CivetWeb
each of them holds a worker thread (and each WebSocket a sender thread of
pushq's) for its whole life."""

import asyncio

import websockets

from aclient import get_json, publish, wait_subscribers
from clients import new_channel

N_LP = 200
N_WS = 200
N_MSG = 20


def test_200_longpolls_and_200_websockets_every_message_once(cw_server):
    srv = cw_server(longpoll_timeout="10s", num_threads="700")
    ch = new_channel("fan")
    port = srv.port
    texts = ["message %d \u00e9" % i for i in range(1, N_MSG + 1)]

    async def longpoll_client(name):
        # a named client: it receives everything published after it first
        # appeared, one message per answer, whatever happens in between
        got = []
        loop = asyncio.get_running_loop()
        end = loop.time() + 60
        while len(got) < N_MSG and loop.time() < end:
            j = await get_json(port, "/sub?channel=%s&name=%s&timeout=8"
                               % (ch, name))
            if j["status"]:
                got.append((j["id"], j["msg"]))
        return got

    async def ws_client(ws):
        got = []
        while len(got) < N_MSG:
            got.append(await asyncio.wait_for(ws.recv(), 30))
        return got

    async def run():
        names = [new_channel("n") for _ in range(N_LP)]
        # the names appear (cursor at the channel's newest id, 0)
        for name in names:
            j = await get_json(port, "/sub?channel=%s&name=%s&timeout=0"
                               % (ch, name))
            assert j["status"] is False, j
        sockets = []
        for i in range(N_WS):
            sockets.append(await websockets.connect(
                "ws://127.0.0.1:%d/sub?channel=%s" % (port, ch),
                open_timeout=10, ping_interval=None, max_size=None))
        lp_tasks = [asyncio.create_task(longpoll_client(n)) for n in names]
        ws_tasks = [asyncio.create_task(ws_client(w)) for w in sockets]
        assert await wait_subscribers(port, ch, N_LP + N_WS, timeout=20), \
            "not all %d subscribers registered" % (N_LP + N_WS)
        for i, t in enumerate(texts):
            j = await publish(port, ch, t)
            assert j["id"] == i + 1, j
            if i == 0:
                assert j["subscribers"] == N_LP + N_WS, j
        lp = await asyncio.gather(*lp_tasks)
        ws = await asyncio.gather(*ws_tasks)
        for w in sockets:
            await w.close()
        return lp, ws

    lp, ws = asyncio.run(run())
    want = [(i + 1, t) for i, t in enumerate(texts)]
    for got in lp:
        assert got == want, got
    for got in ws:
        assert got == texts, got

    # and nothing more arrives for anyone: a named poll now times out
    st = asyncio.run(get_json(port, "/status?channel=%s" % ch))
    assert st["last_id"] == N_MSG, st


def test_shipped_config_holds_1000_subscribers(tmp_path):
    """civetweb_plugin/pushq-civetweb.conf promises 1,000 subscribers:
    500 WebSockets and 500 named long-polls on one channel, each receiving
    every message once."""
    import os
    import resource
    import signal
    import subprocess
    import time
    from conftest import PROGRAM, ROOT
    from servers.civetweb import free_port

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096 and hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    port = free_port()
    src = os.path.join(ROOT, "civetweb_plugin", "pushq-civetweb.conf")
    with open(src) as f:
        text = "".join("listening_ports 127.0.0.1:%d\n" % port
                       if ln.startswith("listening_ports") else ln
                       for ln in f)
    conf = tmp_path / "c.conf"
    conf.write_text(text)
    log = open(tmp_path / "log", "w+")
    p = subprocess.Popen([PROGRAM, str(conf)], cwd=ROOT, stderr=log)
    n_ws, n_lp, n_msg = 500, 500, 5
    ch = new_channel("k")

    async def run():
        for _ in range(200):
            log.seek(0)
            if "listening on port" in log.read():
                break
            await asyncio.sleep(0.05)
        socks = [await websockets.connect(
            "ws://127.0.0.1:%d/sub?channel=%s" % (port, ch),
            ping_interval=None, open_timeout=20) for _ in range(n_ws)]

        async def lp(i):
            got = []
            while len(got) < n_msg:
                j = await get_json(port, "/sub?channel=%s&name=n%d&timeout=20"
                                   % (ch, i), timeout=60)
                if j["status"]:
                    got.append(j["id"])
            return got
        for i in range(n_lp):
            await get_json(port, "/sub?channel=%s&name=n%d&timeout=0" % (ch, i))
        lps = [asyncio.create_task(lp(i)) for i in range(n_lp)]
        assert await wait_subscribers(port, ch, n_ws + n_lp, timeout=30)

        async def wsr(w):
            return [await asyncio.wait_for(w.recv(), 30) for _ in range(n_msg)]
        wss = [asyncio.create_task(wsr(w)) for w in socks]
        for k in range(n_msg):
            await publish(port, ch, "x%d" % k)
        got_lp = await asyncio.gather(*lps)
        got_ws = await asyncio.gather(*wss)
        for w in socks:
            await w.close()
        return got_lp, got_ws

    try:
        got_lp, got_ws = asyncio.run(run())
    finally:
        p.send_signal(signal.SIGTERM)
        rc = p.wait(30)
        log.close()
    assert all(g == list(range(1, n_msg + 1)) for g in got_lp)
    assert all(g == ["x%d" % k for k in range(n_msg)] for g in got_ws)
    assert rc == 0
