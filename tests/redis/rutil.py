"""Helpers shared by the Redis tests (on top of tests/integration/clients)."""

import json
import socket
import time

from clients import (RawWS, background, channel_stats, poll, poll_json,
                     publish, wait_for)


def new_log(srv):
    """The server's log written since the last check (and marks it read)."""
    text = srv.log_text()
    new = text[srv._log_seen:]
    srv._log_seen = len(text)
    return new


def pub(srv, ch, text):
    """Publishes; returns the id (asserts 200 and the answer's shape)."""
    r = publish(srv, ch, text)
    assert r.status_code == 200, (srv.label, r.status_code, r.text)
    j = r.json()
    assert j["status"] is True and j["channel"] == ch, j
    assert isinstance(j["id"], int) and j["id"] >= 1, j
    assert isinstance(j["subscribers"], int), j
    return j["id"]


def ws_json(srv, ch, **params):
    """A WebSocket subscriber with format=json (so frames carry ids)."""
    q = {"channel": ch, "format": "json"}
    q.update(params)
    ws = RawWS(srv, query=q, timeout=5.0)
    ws.label = srv.label
    return ws


def ws_recv_json(ws, timeout=5.0):
    return json.loads(ws.recv_text(timeout))


def ws_recv_n(ws, n, timeout=8.0):
    """n JSON frames (messages) from ws, within timeout overall."""
    end = time.monotonic() + timeout
    got = []
    while len(got) < n:
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError("%s: %d of %d messages within %.0f s: %r"
                                 % (ws.label, len(got), n, timeout, got))
        try:
            got.append(ws_recv_json(ws, left))
        except socket.timeout:
            raise AssertionError("%s: %d of %d messages within %.0f s: %r"
                                 % (ws.label, len(got), n, timeout, got))
    return got


def ws_nothing(ws, wait=0.5):
    """True when no data message arrives within `wait` seconds (pings are
    answered)."""
    try:
        m = ws.recv_message(wait)
    except socket.timeout:
        return True
    raise AssertionError("%s: unexpected message %r" % (ws.label, m))


def ws_alive(ws):
    """The connection is open: a ping is answered by a pong."""
    from clients import OP_PING, OP_PONG
    ws.send_frame(OP_PING, b"alive?")
    end = time.monotonic() + 5
    while time.monotonic() < end:
        f = ws.recv_frame(max(0.05, end - time.monotonic()))
        if f.opcode == OP_PONG and f.payload == b"alive?":
            return True
        if f.opcode == 0x8:
            raise AssertionError("%s: closed %r" % (ws.label, f))
        if f.opcode in (0x1, 0x2):
            raise AssertionError("%s: unexpected message %r"
                                 % (ws.label, f))
    return False


def local_subscribers(srv, ch):
    st = channel_stats(srv, ch)
    if st is None or not isinstance(st.get("subscribers"), int):
        return None
    return st["subscribers"]


def wait_local_subscribers(srv, ch, n, timeout=5.0):
    """Waits until srv's status counts >= n subscribers on ch (its own:
    long-polls waiting and WebSockets open on that server)."""
    ok = wait_for(lambda: (local_subscribers(srv, ch) or 0) >= n, timeout)
    assert ok, ("%s: %r subscribers on %s, wanted %d"
                % (srv.label, local_subscribers(srv, ch), ch, n))


def wait_subscribers_exact(srv, ch, n, timeout=5.0):
    ok = wait_for(lambda: local_subscribers(srv, ch) == n, timeout)
    assert ok, ("%s: %r subscribers on %s, wanted %d"
                % (srv.label, local_subscribers(srv, ch), ch, n))


def ws_close(ws):
    """Closes with the close handshake (so the server has seen it)."""
    try:
        ws.send_close(1000)
        ws.expect_close(3)
    except Exception:   # noqa: BLE001 -- closed either way
        pass
    ws.close_socket()


def poll_bg(srv, ch, **params):
    """A long-poll in a background thread; returns a Future of the JSON."""
    def run():
        r = poll(srv, ch, **params)
        assert r.status_code == 200, (srv.label, r.status_code, r.text)
        j = r.json()
        j["_server"] = srv.label
        return j
    return background(run)


def take(srv, ch, name, timeout=0, **params):
    """One named long-poll; returns the JSON."""
    j = poll_json(srv, ch, name=name, timeout=timeout, **params)
    j["_server"] = srv.label
    return j


def messages_of(j):
    """(id, text) pairs of one long-poll answer (single or batch)."""
    if not j.get("status"):
        return []
    if "msgs" in j:
        return [(m["id"], m["msg"]) for m in j["msgs"]]
    return [(j["id"], j["msg"])]
