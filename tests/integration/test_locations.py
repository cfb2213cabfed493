"""SPEC.md: `subscriber websocket` (plain request -> 426), `subscriber
longpoll` (Upgrade -> 400), `websocket_publish off` (client message ->
close 1008)."""

import asyncio

import websockets

from checks import assert_error, assert_timeout_answer
from clients import (OP_TEXT, OP_BINARY, RawWS, http, poll, poll_json,
                     publish_ok, url, wait_subscribers, ws_connect)

WS_ONLY = {"subscriber": "websocket", "websocket_publish": "off"}
LP_ONLY = {"subscriber": "longpoll"}


def test_plain_get_on_websocket_only_location_426(servers, ch):
    srv = servers.get(**WS_ONLY)
    r = poll(srv, ch, timeout=0)
    assert_error(r, 426)
    assert r.headers.get("Sec-WebSocket-Version") == "13", r.headers
    # even with a name: nothing registered, nothing consumed
    r = http("GET", url(srv, srv.sub, channel=ch, name="n1", timeout=0))
    assert_error(r, 426)


def test_websocket_only_location_serves_websockets(servers, ch):
    srv = servers.get(**WS_ONLY)

    async def run():
        async with ws_connect(srv, channel=ch) as w:
            assert wait_subscribers(srv, ch, 1)
            publish_ok(srv, ch, "ws only")
            return await asyncio.wait_for(w.recv(), 3)
    assert asyncio.run(run()) == "ws only"


def test_websocket_publish_off_closes_1008(servers, ch):
    srv = servers.get(**WS_ONLY)
    for op, data in ((OP_TEXT, b"no"), (OP_BINARY, b"\x00")):
        with RawWS(srv, query={"channel": ch}) as ws:
            ws.send_frame(op, data)
            f = ws.expect_close()
            assert f.close_code == 1008, f
            assert ws.expect_eof(3)
    # nothing was published
    publish_ok(srv, ch, "http still works")
    with RawWS(srv, query={"channel": ch, "last_id": "0"}) as ws:
        assert ws.recv_text() == "http still works"


def test_websocket_publish_off_ping_still_answered(servers, ch):
    srv = servers.get(**WS_ONLY)
    with RawWS(srv, query={"channel": ch}) as ws:
        ws.send_frame(0x9, b"p")
        f = ws.recv_frame()
        assert (f.opcode, f.payload) == (0xA, b"p")


def test_websocket_publish_off_with_library_client(servers, ch):
    srv = servers.get(**WS_ONLY)

    async def run():
        async with ws_connect(srv, channel=ch) as w:
            await w.send("hello")
            try:
                await asyncio.wait_for(w.recv(), 3)
            except websockets.ConnectionClosed as e:
                return e.rcvd.code if e.rcvd else None
    assert asyncio.run(run()) == 1008


def test_upgrade_on_longpoll_only_location_400(servers, ch):
    srv = servers.get(**LP_ONLY)
    ws = RawWS(srv, query={"channel": ch}, expect_101=False)
    assert ws.status == 400, (ws.status, ws.headers)
    j = ws.error.json()
    assert j["status"] is False and j["error"], j


def test_longpoll_only_location_serves_longpoll(servers, ch):
    srv = servers.get(**LP_ONLY)
    publish_ok(srv, ch, "lp only")
    assert poll_json(srv, ch, last_id=0, timeout=0)["msg"] == "lp only"
    assert_timeout_answer(poll_json(srv, ch, timeout=0))
