"""The opening handshake (RFC 6455 4.2): what is accepted, and every bad
handshake answered with the documented error (SPEC.md "Errors": JSON
{"status": false, "error": ...}; 400 bad key, 426 with
Sec-WebSocket-Version: 13 for a bad version, 405 with Allow for a wrong
method), never a 101."""

import base64
import json
import os
import socket
from urllib.parse import urlencode

import pytest

from cases import connect, expect_echo, expect_failure
from wsclient import (TEXT, accept_for, frame, handshake_request,
                      read_http_answer)


def ask(server, ch, raw=None, **kw):
    """Sends one handshake (or `raw` bytes); returns the HTTP answer."""
    key = kw.pop("key", base64.b64encode(os.urandom(16)).decode())
    query = kw.pop("query", {"channel": ch})
    target = server.sub + "?" + urlencode(query)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(raw if raw is not None else
                  handshake_request(server.port, target, key, **kw))
        ans, _ = read_http_answer(s, timeout=5)
    ans.key = key
    return ans


def assert_json_error(ans, status):
    assert ans.status == status, (ans.status, ans.headers, ans.body[:300])
    assert ans.headers.get("content-type", "").split(";")[0] == \
        "application/json", ans.headers
    j = json.loads(ans.body)
    assert j["status"] is False and j["error"], j
    return j


# --- accepted ----------------------------------------------------------------------

@pytest.mark.parametrize("extra", [
    {},
    {"Connection": "keep-alive, Upgrade"},                  # Firefox
    {"Upgrade": "WebSocket", "Connection": "upgrade"},      # any case
    {"Origin": "http://example.com"},
    {"Sec-WebSocket-Protocol": "chat, superchat"},
], ids=["plain", "keep-alive-upgrade", "mixed-case", "origin", "protocol"])
def test_h_handshake_accepted(server, ch, extra):
    ans = ask(server, ch, extra=extra)
    assert ans.status == 101, (ans.status, ans.body[:300])
    assert ans.headers["sec-websocket-accept"] == accept_for(ans.key)
    assert ans.headers["upgrade"].lower() == "websocket"
    # no subprotocol was asked of pushq, so none may be chosen
    assert "sec-websocket-protocol" not in ans.headers, ans.headers


def test_h_no_extension_negotiated(server, ch):
    """permessage-deflate offered: not accepted, so RSV1 stays an error."""
    with connect(server, ch, extra_headers={
            "Sec-WebSocket-Extensions":
            "permessage-deflate; client_max_window_bits"}) as ws:
        assert "sec-websocket-extensions" not in ws.answer.headers, \
            ws.answer.headers
        ws.send_frame(TEXT, b"plain")
        expect_echo(ws, TEXT, b"plain")
        ws.send_frame(TEXT, b"\xf2\x48\xcd\xc9\xc9\x07\x00", rsv=4)
        expect_failure(ws, 1002)


# --- refused -----------------------------------------------------------------------

def test_h_missing_key_400(server, ch):
    assert_json_error(ask(server, ch, omit=("Sec-WebSocket-Key",)), 400)


@pytest.mark.parametrize("key", [
    "c2hvcnQ=",                                   # 5 bytes
    base64.b64encode(b"x" * 17).decode(),         # 17 bytes
    "not base64 at all!!!!!!!",                   # 24 chars, not base64
    "",
], ids=["5-bytes", "17-bytes", "not-base64", "empty"])
def test_h_bad_key_400(server, ch, key):
    assert_json_error(ask(server, ch, key=key), 400)


@pytest.mark.parametrize("version", ["8", "12", "14", "x", "13, 8"])
def test_h_wrong_version_426(server, ch, version):
    ans = ask(server, ch, version=version)
    assert_json_error(ans, 426)
    assert ans.headers.get("sec-websocket-version") == "13", ans.headers


def test_h_missing_version(server, ch):
    ans = ask(server, ch, omit=("Sec-WebSocket-Version",))
    assert ans.status in (400, 426), ans.status
    assert_json_error(ans, ans.status)
    if ans.status == 426:
        assert ans.headers.get("sec-websocket-version") == "13"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_h_wrong_method_405(server, ch, method):
    raw = None
    if method in ("POST", "PUT"):
        key = base64.b64encode(os.urandom(16)).decode()
        raw = handshake_request(server.port, server.sub + "?channel=" + ch,
                                key, method=method,
                                extra={"Content-Length": "0"})
    ans = ask(server, ch, raw=raw, method=method)
    assert_json_error(ans, 405)
    allow = {m.strip() for m in ans.headers.get("allow", "").split(",")}
    assert "GET" in allow, ans.headers


def test_h_no_upgrade_header_is_a_longpoll(server, ch):
    """Without Upgrade, the request is a plain long-poll (timeout=0)."""
    ans = ask(server, ch, omit=("Upgrade",),
              query={"channel": ch, "timeout": "0"})
    assert ans.status == 200, (ans.status, ans.body[:200])
    assert json.loads(ans.body) == {"status": False, "msg": ""}


def test_h_upgrade_to_something_else_is_not_101(server, ch):
    ans = ask(server, ch, extra={"Upgrade": "h2c"},
              query={"channel": ch, "timeout": "0"})
    assert ans.status != 101, ans.headers
    assert ans.status in (200, 400), ans.status


def test_h_http10_not_upgraded(server, ch):
    key = base64.b64encode(os.urandom(16)).decode()
    raw = handshake_request(server.port, server.sub + "?channel=" + ch +
                            "&timeout=0", key).replace(b"HTTP/1.1",
                                                       b"HTTP/1.0", 1)
    ans = ask(server, ch, raw=raw)
    assert ans.status != 101, ans.headers


def test_h_bad_channel_400(server):
    ans = ask(server, None, query={"channel": "bad channel!"})
    j = assert_json_error(ans, 400)
    assert "channel" in j["error"].lower(), j


def test_h_refused_handshake_publishes_nothing(server, ch):
    """A refused handshake followed by frames: nothing is published."""
    key = base64.b64encode(os.urandom(16)).decode()
    raw = handshake_request(server.port, server.sub + "?channel=" + ch, key,
                            version="8") + frame(TEXT, b"sneaky")
    ans = ask(server, ch, raw=raw)
    assert ans.status == 426
    from cases import stored
    assert stored(server, ch) == []
