"""CivetWeb-specific transport details: no Nagle delay on WebSocket
deliveries even when the server's tcp_nodelay option is off (the plugin
writes each frame with one send and sets TCP_NODELAY on each WebSocket
itself; NOTES.md measured ~44 ms per small message with CivetWeb's
defaults and mg_websocket_write), and long-polls on one keep-alive
connection."""

import asyncio
import statistics
import time

import requests
import websockets

from clients import new_channel


def test_websocket_round_trip_has_no_nagle_delay(cw_server):
    srv = cw_server(tcp_nodelay="0")
    ch = new_channel("rtt")

    async def run():
        async with websockets.connect(
                "ws://127.0.0.1:%d/sub?channel=%s" % (srv.port, ch),
                ping_interval=None) as ws:
            rtts = []
            for i in range(30):
                t = time.monotonic()
                await ws.send("m%d" % i)       # published to the channel,
                got = await asyncio.wait_for(ws.recv(), 3)   # and back
                rtts.append(time.monotonic() - t)
                assert got == "m%d" % i
            return rtts
    rtts = asyncio.run(run())
    assert statistics.median(rtts) < 0.02, rtts


def test_longpolls_on_one_keepalive_connection(cw_server):
    srv = cw_server(longpoll_timeout="5s")
    ch = new_channel("ka")
    with requests.Session() as s:
        for i in range(3):
            requests.post(srv.base + "/pub", params={"channel": ch},
                          data="k%d" % i,
                          headers={"Content-Type": "text/plain"})
            r = s.get(srv.base + "/sub", params={"channel": ch,
                                                 "last_id": i, "timeout": 1})
            assert r.json()["msg"] == "k%d" % i, r.text
            assert r.headers.get("Cache-Control") == "no-store"
        # a waiting poll on the same connection is still answered
        r = s.get(srv.base + "/sub", params={"channel": ch, "timeout": 0.3})
        assert r.json() == {"status": False, "msg": ""}
