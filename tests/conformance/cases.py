"""Shared helpers for the conformance cases: echo, expected failures,
what a channel stored."""

import json
import urllib.request

from wsclient import CLOSE, PING, PONG, WS, frame


def stored(server, ch):
    """The messages the channel holds, as a list of message JSON objects
    (a cursor poll from id 0, answered at once)."""
    url = "%s%s?channel=%s&last_id=0&batch=1000&timeout=0" % (
        server.base, server.sub, ch)
    with urllib.request.urlopen(url, timeout=10) as r:
        j = json.loads(r.read())
    return j.get("msgs", [])


def connect(server, ch, **kw):
    return WS(server, ch, **kw)


def expect_echo(ws, opcode, payload, timeout=5.0):
    """The server sends the client's own message back as ONE frame."""
    f = ws.recv_frame(timeout)
    assert f.opcode == opcode and f.fin, f
    assert len(f.payload) == len(payload), (len(f.payload), len(payload))
    assert f.payload == payload, f


def expect_pong(ws, payload, timeout=5.0):
    f = ws.recv_frame(timeout)
    assert (f.opcode, f.fin, f.payload) == (PONG, True, payload), f


def expect_failure(ws, code, timeout=5.0, allow=()):
    """The server fails the connection: a close frame carrying `code`
    (before the TCP close), then the TCP close."""
    f, before = ws.expect_close(timeout, allow=allow)
    assert f.code == code, "expected close %d, got %r" % (code, f)
    assert ws.expect_eof(3.0), "no TCP close after close %d" % code
    return before


def close_cleanly(ws, code=1000):
    """Client-initiated close: the server echoes the code, closes TCP."""
    ws.send(frame(CLOSE, code.to_bytes(2, "big")))
    f, _ = ws.expect_close(5.0)
    assert f.code == code, f
    assert ws.expect_eof(3.0), "no TCP close after the close handshake"


def still_open(ws):
    """A ping is still answered: the connection is alive."""
    ws.send(frame(PING, b"alive?"))
    expect_pong(ws, b"alive?")
