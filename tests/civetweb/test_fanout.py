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
