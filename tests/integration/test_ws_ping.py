"""SPEC.md: "A server ping every `websocket_ping` drops dead peers."
(websocket_ping 500ms here.)"""

import socket
import time

from clients import (OP_PING, OP_PONG, RawWS, publish_ok, status,
                     wait_subscribers)

SETTINGS = {"websocket_ping": "500ms"}
PING = 0.5


def test_server_pings_and_answered_peer_stays(server, ch):
    with RawWS(server, query={"channel": ch}) as ws:
        assert wait_subscribers(server, ch, 1)
        pings = []
        end = time.monotonic() + 6 * PING
        while time.monotonic() < end:
            try:
                f = ws.recv_frame(timeout=max(0.01, end - time.monotonic()))
            except socket.timeout:
                break
            assert f.opcode == OP_PING, f
            pings.append(time.monotonic())
            ws.send_frame(OP_PONG, f.payload)
        assert len(pings) >= 3, "server pings seen in %.1fs: %d" % (
            6 * PING, len(pings))
        # still subscribed and receiving
        publish_ok(server, ch, "alive")
        assert ws.recv_text(timeout=3) == "alive"


def test_dead_peer_dropped(server, ch):
    before = status(server).json()["subscribers"]["websocket"]
    ws = RawWS(server, query={"channel": ch})
    try:
        assert wait_subscribers(server, ch, 1)
        t = time.monotonic()
        # never answer: the server must give up on us
        assert ws.expect_eof(timeout=8 * PING + 2), \
            "no disconnect of a peer that answers no ping"
        dt = time.monotonic() - t
        assert dt >= PING * 0.9, dt
    finally:
        ws.close_socket()
    assert wait_subscribers(server, ch, 0)
    assert status(server).json()["subscribers"]["websocket"] == before


def test_pong_from_client_ping_not_confused(server, ch):
    with RawWS(server, query={"channel": ch}) as ws:
        ws.send_frame(OP_PING, b"mine")
        end = time.monotonic() + 3
        while time.monotonic() < end:
            f = ws.recv_frame(timeout=3)
            if f.opcode == OP_PING:
                ws.send_frame(OP_PONG, f.payload)
                continue
            assert (f.opcode, f.payload) == (OP_PONG, b"mine"), f
            break
        else:
            raise AssertionError("no pong")
