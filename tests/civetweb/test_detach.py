"""pushq_civetweb_detach under traffic (pushq-civetweb and the embedding
example call it on SIGTERM): waiting long-polls are answered, WebSockets
are closed with 1001, publishers are not left hanging, and the process
exits 0."""

import asyncio
import os
import signal
import subprocess
import threading
import time

import requests
import websockets

from aclient import get_json, http, wait_subscribers
from clients import new_channel
from conftest import EMBED, check_log
from servers.civetweb import free_port

N_LP = 10
N_WS = 10


async def traffic_then_stop(port, ch, stop):
    """Long-polls and WebSockets wait, a publisher runs; then stop() (in a
    thread).  Returns (long-poll answers, WebSocket close codes, messages
    the WebSockets received)."""

    async def ws_client():
        ws = await websockets.connect(
            "ws://127.0.0.1:%d/sub?channel=%s" % (port, ch),
            open_timeout=10, ping_interval=None, close_timeout=5)
        got = 0
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 15)
                got += 1
        except websockets.ConnectionClosed as e:
            return e.code, got

    async def lp_client():
        status, body = await http(
            port, "GET", "/sub?channel=%s-lp&timeout=20" % ch, timeout=15)
        return status, body

    ws_tasks = [asyncio.create_task(ws_client()) for _ in range(N_WS)]
    lp_tasks = [asyncio.create_task(lp_client()) for _ in range(N_LP)]
    assert await wait_subscribers(port, ch, N_WS)
    assert await wait_subscribers(port, ch + "-lp", N_LP)

    running = True

    async def publisher():
        n = 0
        while running:
            try:
                await http(port, "POST", "/pub?channel=%s" % ch,
                           b"tick %d" % n, {"Content-Type": "text/plain"},
                           timeout=10)
            except (OSError, IndexError, ValueError, asyncio.TimeoutError):
                pass    # refused or cut off once the server stops
            n += 1
            await asyncio.sleep(0.01)
    pub = asyncio.create_task(publisher())
    await asyncio.sleep(0.5)

    t0 = time.monotonic()
    loop = asyncio.get_running_loop()
    stopper = loop.run_in_executor(None, stop)
    lps = await asyncio.gather(*lp_tasks)
    lp_time = time.monotonic() - t0
    wss = await asyncio.gather(*ws_tasks)
    running = False
    await pub
    rc = await stopper
    return lps, wss, lp_time, rc


def check(lps, wss, lp_time, rc):
    for status, body in lps:
        assert status == 200, (status, body)
        assert body == b'{"status": false, "msg": ""}', body
    assert lp_time < 5, lp_time
    for code, got in wss:
        assert code == 1001, code
    assert sum(got for _, got in wss) > 0, "no traffic before the stop"
    assert rc == 0, rc


def test_program_sigterm_detaches_under_traffic(cw_server):
    srv = cw_server(longpoll_timeout="30s")
    ch = new_channel("det")
    rc_box = []

    def stop():
        rc_box.append(srv.stop())
        return rc_box[0]
    log_before = srv.log_text
    lps, wss, lp_time, rc = asyncio.run(traffic_then_stop(srv.port, ch, stop))
    check(lps, wss, lp_time, rc)


def test_embed_example_sigterm_detaches_under_traffic():
    port = free_port()
    p = subprocess.Popen([EMBED, str(port)], stderr=subprocess.PIPE,
                         text=True)
    try:
        line = p.stderr.readline()
        assert "listening" in line, line
        ch = new_channel("emb")

        def stop():
            p.send_signal(signal.SIGTERM)
            return p.wait(15)
        lps, wss, lp_time, rc = asyncio.run(traffic_then_stop(port, ch, stop))
        check(lps, wss, lp_time, rc)
        rest = p.stderr.read()
        check_log(rest)
        assert "stopped" in rest, rest
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
