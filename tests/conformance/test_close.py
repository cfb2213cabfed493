"""Autobahn group 7 (close handling): the close handshake with and without
code and reason, every valid code echoed, every invalid code and a 1-byte
close payload -> 1002, invalid UTF-8 in the reason -> 1007, and nothing
after a close frame is processed."""

import struct

import pytest

from cases import (close_cleanly, connect, expect_echo, expect_failure,
                   stored)
from wsclient import BINARY, CLOSE, CONT, PING, TEXT, close_body, frame

VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012,
               1013, 1014, 3000, 3999, 4000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999,
                 5000, 65535]


def expect_close_echo(ws, code):
    f, _ = ws.expect_close(5.0)
    assert f.code == code, "close %d was answered %r" % (code, f)
    assert ws.expect_eof(3.0), "no TCP close after the close handshake"
    return f


@pytest.mark.also_nginx4
@pytest.mark.parametrize("code", VALID_CODES)
def test_7_7_valid_close_code_echoed(server, ch, code):
    with connect(server, ch) as ws:
        ws.send_frame(CLOSE, close_body(code))
        expect_close_echo(ws, code)


@pytest.mark.also_nginx4
@pytest.mark.parametrize("code", INVALID_CODES)
def test_7_9_invalid_close_code_1002(server, ch, code):
    with connect(server, ch) as ws:
        ws.send_frame(CLOSE, close_body(code))
        expect_failure(ws, 1002)


def test_7_3_1_close_without_payload(server, ch):
    with connect(server, ch) as ws:
        ws.send_frame(CLOSE, b"")
        f, _ = ws.expect_close()
        assert f.payload in (b"", struct.pack("!H", 1000)), f
        assert ws.expect_eof(3.0)


def test_7_3_2_one_byte_close_payload_1002(server, ch):
    with connect(server, ch) as ws:
        ws.send_frame(CLOSE, b"\x03")
        expect_failure(ws, 1002)


@pytest.mark.parametrize("reason", [b"", b"Hello World!", "f\u00e9ini \u2603"
                                    .encode(), b"*" * 123],
                         ids=["none", "ascii", "utf8", "123-bytes"])
def test_7_3_close_with_reason(server, ch, reason):
    with connect(server, ch) as ws:
        ws.send_frame(CLOSE, close_body(1000, reason))
        f = expect_close_echo(ws, 1000)
        # the reply is a valid close payload (a reason, if echoed, is UTF-8)
        f.payload[2:].decode("utf-8")


def test_7_3_6_close_reason_124_bytes_1002(server, ch):
    """Code + 124-byte reason = a 126-byte control frame."""
    with connect(server, ch) as ws:
        ws.send_frame(CLOSE, close_body(1000, b"*" * 124))
        expect_failure(ws, 1002)


@pytest.mark.parametrize("reason", [b"\xff", b"\xce\xba\xe1\xbd",
                                    b"\xed\xa0\x80", b"ok\xc0\xaf"],
                         ids=["ff", "truncated", "surrogate", "overlong"])
def test_7_5_1_invalid_utf8_reason_1007(server, ch, reason):
    with connect(server, ch) as ws:
        ws.send_frame(CLOSE, close_body(1000, reason))
        expect_failure(ws, 1007)


def test_7_1_1_echo_then_close(server, ch):
    with connect(server, ch) as ws:
        ws.send_frame(TEXT, b"Hello World!")
        expect_echo(ws, TEXT, b"Hello World!")
        close_cleanly(ws)


def test_7_1_2_close_twice(server, ch):
    with connect(server, ch) as ws:
        ws.send(frame(CLOSE, close_body(1000)) + frame(CLOSE, close_body(1001)))
        expect_close_echo(ws, 1000)


@pytest.mark.also_nginx4
@pytest.mark.parametrize("after", ["text", "binary", "ping", "fragment",
                                   "garbage"])
def test_7_1_3_data_after_close_ignored(server, ch, after):
    tail = {
        "text": frame(TEXT, b"after close"),
        "binary": frame(BINARY, b"\x00after"),
        "ping": frame(PING, b"after close"),
        "fragment": frame(TEXT, b"a", fin=False) + frame(CONT, b"b"),
        "garbage": b"\xff" * 40,
    }[after]
    with connect(server, ch) as ws:
        ws.send(frame(CLOSE, close_body(1000)) + tail)
        f, before = ws.expect_close()
        assert f.code == 1000, f
        assert before == []
        assert ws.expect_eof(3.0)
        assert ws.buf == b"", "bytes after the close frame: %r" % ws.buf
    assert stored(server, ch) == []


def test_7_1_5_close_inside_fragmented_message(server, ch):
    with connect(server, ch) as ws:
        ws.send(frame(TEXT, b"fragment1", fin=False) +
                frame(CLOSE, close_body(1000)) +
                frame(CONT, b"fragment2", fin=True))
        expect_close_echo(ws, 1000)
    assert stored(server, ch) == []


def test_7_1_6_large_message_then_close(server, ch):
    data = b"BAsd7&jh23" * 6553      # 65530 bytes
    with connect(server, ch) as ws:
        ws.send(frame(TEXT, data) + frame(PING, b"ping") +
                frame(CLOSE, close_body(1000)))
        f, before = ws.expect_close(allow=(TEXT, 0xA))
        assert f.code == 1000
        assert ws.expect_eof(3.0)
    assert [len(m["msg"]) for m in stored(server, ch)] == [len(data)]


@pytest.mark.parametrize("chop", [1, 3])
def test_7_close_dribbled(server, ch, chop):
    with connect(server, ch) as ws:
        ws.send_chopped(frame(CLOSE, close_body(3000, b"dribbled")),
                        piece=chop)
        expect_close_echo(ws, 3000)


def test_7_subscriber_gone_after_close(server, ch):
    with connect(server, ch) as ws:
        close_cleanly(ws)
    import json
    import urllib.request
    with urllib.request.urlopen("%s%s?channel=%s" % (server.base,
                                                     server.status, ch),
                                timeout=5) as r:
        assert json.loads(r.read()).get("subscribers") == 0
