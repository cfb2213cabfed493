"""SPEC.md "WebSocket subscribe": frames, format=json, publishing from the
client, and RFC 6455 server behaviour checked byte by byte (masking,
fragmentation, control frames, close handshake, UTF-8, sizes,
handshake errors)."""

import asyncio
import json

import pytest

from checks import (assert_message, assert_timeout_answer,
                    civetweb_impossible)
from clients import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,
                     RawWS, background, close_payload, encode_frame, poll,
                     poll_json, publish_ok, wait_subscribers, ws_connect)

SETTINGS = {"max_message_size": "1k"}


def nothing_published(server, ch):
    assert_timeout_answer(poll_json(server, ch, last_id=0, timeout=0))


def subscribed(server, ch, **q):
    q["channel"] = ch
    ws = RawWS(server, query=q)
    assert wait_subscribers(server, ch, 1)
    return ws


# --- delivery -----------------------------------------------------------------

def test_text_and_binary_messages_as_frames(server, ch):
    async def run():
        async with ws_connect(server, channel=ch) as w:
            assert wait_subscribers(server, ch, 1)
            publish_ok(server, ch, "h\u00e9llo")
            publish_ok(server, ch, b"\x00\x01\x02",
                       content_type="application/octet-stream")
            publish_ok(server, ch, b"bad \xff utf8", content_type="text/plain")
            publish_ok(server, ch, b"")
            return [await asyncio.wait_for(w.recv(), 3) for _ in range(4)]
    assert asyncio.run(run()) == ["h\u00e9llo", b"\x00\x01\x02",
                                  b"bad \xff utf8", ""]


def test_each_message_is_one_unfragmented_frame(server, ch):
    with subscribed(server, ch) as ws:
        big = "x" * 1000                   # 16-bit length encoding
        publish_ok(server, ch, "small")
        publish_ok(server, ch, big)
        publish_ok(server, ch, b"\x01" * 300,
                   content_type="application/octet-stream")
        frames = [ws.recv_frame() for _ in range(3)]
    assert [(f.fin, f.rsv, f.opcode) for f in frames] == \
        [(True, 0, OP_TEXT), (True, 0, OP_TEXT), (True, 0, OP_BINARY)]
    assert [f.payload for f in frames] == [b"small", big.encode(),
                                           b"\x01" * 300]


def test_only_messages_after_connect(server, ch):
    publish_ok(server, ch, "before")
    with subscribed(server, ch) as ws:
        publish_ok(server, ch, "after")
        assert ws.recv_text() == "after"


def test_format_json_frames(server, ch):
    with subscribed(server, ch, format="json") as ws:
        publish_ok(server, ch, "t\u00eaxt")
        publish_ok(server, ch, b"\xff\x00", content_type="application/octet-stream")
        f1, f2 = ws.recv_frame(), ws.recv_frame()
    assert f1.opcode == OP_TEXT and f2.opcode == OP_TEXT
    assert json.loads(f1.payload) == {"status": True, "msg": "t\u00eaxt",
                                      "id": 1, "channel": ch}
    assert json.loads(f2.payload) == {"status": True, "msg": "/wA=",
                                      "id": 2, "channel": ch,
                                      "encoding": "base64"}


def test_many_websockets_each_message_once_in_order(server, ch):
    n_ws, n_msg = 6, 20

    async def run():
        conns = [await ws_connect(server, channel=ch) for _ in range(n_ws)]
        try:
            assert wait_subscribers(server, ch, n_ws)
            loop = asyncio.get_running_loop()

            def pub():
                for i in range(n_msg):
                    j = publish_ok(server, ch, "m%d" % i)
                    assert j["subscribers"] == n_ws, j
            fut = loop.run_in_executor(None, pub)

            async def collect(w):
                return [await asyncio.wait_for(w.recv(), 5)
                        for _ in range(n_msg)]
            got = await asyncio.gather(*[collect(w) for w in conns])
            await fut
            extra = []
            for w in conns:
                try:
                    extra.append(await asyncio.wait_for(w.recv(), 0.2))
                except asyncio.TimeoutError:
                    pass
            return got, extra
        finally:
            for w in conns:
                await w.close()
    got, extra = asyncio.run(run())
    want = ["m%d" % i for i in range(n_msg)]
    assert all(g == want for g in got), got
    assert extra == [], "duplicates: %r" % extra


# --- publishing from the client ----------------------------------------------

def test_client_publish_reaches_sender_others_and_longpoll(server, ch):
    lp = background(poll, server, ch)

    async def run():
        async with ws_connect(server, channel=ch) as a, \
                ws_connect(server, channel=ch) as b:
            assert wait_subscribers(server, ch, 3)
            await a.send("from a")
            ra = await asyncio.wait_for(a.recv(), 3)
            rb = await asyncio.wait_for(b.recv(), 3)
            await b.send(b"\x00bin\xff")
            ra2 = await asyncio.wait_for(a.recv(), 3)
            rb2 = await asyncio.wait_for(b.recv(), 3)
            return ra, rb, ra2, rb2
    assert asyncio.run(run()) == ("from a", "from a", b"\x00bin\xff",
                                  b"\x00bin\xff")
    assert_message(lp.result(10).json(), ch, "from a", id=1)
    j = poll_json(server, ch, last_id=1, timeout=0)
    assert_message(j, ch, b"\x00bin\xff", id=2, binary=True)


def test_client_binary_frame_is_a_binary_message(server, ch):
    """A WebSocket binary frame publishes a binary message even when its
    bytes are valid UTF-8."""
    with subscribed(server, ch) as ws:
        ws.send_binary(b"plain text bytes")
        f = ws.recv_frame()
        assert (f.opcode, f.payload) == (OP_BINARY, b"plain text bytes")
        ws.send_text("text")
        f = ws.recv_frame()
        assert (f.opcode, f.payload) == (OP_TEXT, b"text")
    j = poll_json(server, ch, last_id=0, batch=10, timeout=0)
    assert j["msgs"] == [
        {"id": 1, "msg": "cGxhaW4gdGV4dCBieXRlcw==", "encoding": "base64"},
        {"id": 2, "msg": "text"}], j


def test_close_in_the_middle_of_a_fragmented_message(server, ch):
    with subscribed(server, ch) as ws:
        ws.send_frame(OP_TEXT, b"half", fin=False)
        ws.send_close(1000)
        assert ws.expect_close().close_code == 1000
        assert ws.expect_eof(3)
    nothing_published(server, ch)


def test_named_websocket_leaves_undelivered_for_the_name(server, ch, name):
    with RawWS(server, query={"channel": ch, "name": name}) as ws:
        assert wait_subscribers(server, ch, 1)
        publish_ok(server, ch, "one")
        assert ws.recv_text() == "one"
        ws.send_close(1000)
        ws.expect_close()
    assert wait_subscribers(server, ch, 0)
    publish_ok(server, ch, "two")
    assert_message(poll_json(server, ch, name=name, timeout=0), ch, "two",
                   id=2)
    assert_timeout_answer(poll_json(server, ch, name=name, timeout=0))


def test_client_publish_format_json_echo_has_id(server, ch):
    publish_ok(server, ch, "first")

    async def run():
        async with ws_connect(server, channel=ch, format="json") as w:
            await w.send("second")
            await w.send("")
            return [json.loads(await asyncio.wait_for(w.recv(), 3))
                    for _ in range(2)]
    got = asyncio.run(run())
    assert got == [{"status": True, "msg": "second", "id": 2, "channel": ch},
                   {"status": True, "msg": "", "id": 3, "channel": ch}]


def test_client_publish_fragmented_with_interleaved_ping(server, ch):
    with subscribed(server, ch) as ws:
        ws.send_frame(OP_TEXT, b"abc", fin=False)
        ws.send_frame(OP_PING, b"mid")
        ws.send_frame(OP_CONT, b"def", fin=False)
        ws.send_frame(OP_CONT, b"", fin=False)
        ws.send_frame(OP_CONT, b"ghi", fin=True)
        ws.send_frame(OP_BINARY, b"\x01", fin=False)
        ws.send_frame(OP_CONT, b"\x02", fin=True)
        frames = [ws.recv_frame() for _ in range(3)]
    assert (frames[0].opcode, frames[0].payload) == (OP_PONG, b"mid")
    assert [(f.fin, f.opcode, f.payload) for f in frames[1:]] == \
        [(True, OP_TEXT, b"abcdefghi"), (True, OP_BINARY, b"\x01\x02")]


def test_client_publish_utf8_split_across_fragments(server, ch):
    snow = "\u2603".encode()                       # 3 bytes
    with subscribed(server, ch) as ws:
        ws.send_frame(OP_TEXT, b"a" + snow[:1], fin=False)
        ws.send_frame(OP_CONT, snow[1:2], fin=False)
        ws.send_frame(OP_CONT, snow[2:] + b"z", fin=True)
        assert ws.recv_text() == "a\u2603z"


def test_frames_pipelined_with_the_handshake(server, ch):
    frames = encode_frame(OP_TEXT, b"early") + encode_frame(OP_PING, b"p")
    with RawWS(server, query={"channel": ch}, pipelined=frames) as ws:
        got = [ws.recv_frame() for _ in range(2)]
    assert sorted((f.opcode, f.payload) for f in got) == \
        [(OP_TEXT, b"early"), (OP_PONG, b"p")]


def test_many_frames_in_one_write(server, ch):
    data = b"".join(encode_frame(OP_TEXT, b"f%d" % i) for i in range(50))
    with subscribed(server, ch) as ws:
        ws.send_raw(data)
        got = [ws.recv_text() for _ in range(50)]
    assert got == ["f%d" % i for i in range(50)]


def test_max_message_size_accepted(server, ch):
    with subscribed(server, ch) as ws:
        ws.send_text("y" * 1024)
        assert ws.recv_text() == "y" * 1024


# --- control frames and close -----------------------------------------------

@pytest.mark.parametrize("payload", [b"", b"ping!", b"\x00" * 125])
def test_ping_answered_by_pong(server, ch, payload):
    with subscribed(server, ch) as ws:
        ws.send_frame(OP_PING, payload)
        f = ws.recv_frame()
        assert (f.fin, f.opcode, f.payload) == (True, OP_PONG, payload)
        ws.send_frame(OP_PONG, b"unsolicited")      # ignored (RFC 5.5.3)
        publish_ok(server, ch, "still open")
        assert ws.recv_text() == "still open"


@pytest.mark.parametrize("code", [1000, 1001, 3000, 4999])
def test_close_handshake_echoes_code(server, ch, code):
    with subscribed(server, ch) as ws:
        ws.send_close(code, "bye")
        f = ws.expect_close()
        assert f.close_code == code, f
        assert ws.expect_eof(3), "server did not close the TCP connection"
    assert wait_subscribers(server, ch, 0)


def test_close_without_code(server, ch):
    with subscribed(server, ch) as ws:
        ws.send_close()
        f = ws.expect_close()
        assert f.payload in (b"", close_payload(1000)), f
        assert ws.expect_eof(3)


def test_abrupt_disconnect_frees_subscriber(server, ch):
    ws = subscribed(server, ch)
    ws.close_socket()
    assert wait_subscribers(server, ch, 0)
    assert publish_ok(server, ch, "x")["subscribers"] == 0


def protocol_error(server, ch, data, code, timeout=5.0):
    """Sends raw bytes on a fresh WebSocket; the server must answer with a
    close frame carrying `code`, close the connection and publish
    nothing."""
    with subscribed(server, ch) as ws:
        ws.send_raw(data)
        f = ws.expect_close(timeout)
        got = f.close_code
        assert ws.expect_eof(3), "no TCP close after close %s" % got
    assert got == code, "expected close %d, got %r" % (code, f)
    nothing_published(server, ch)


def test_unmasked_client_frame_1002(request, server, ch):
    civetweb_impossible(request, server, "it accepts unmasked client frames "
                        "and does not tell the handler the mask bit")
    protocol_error(server, ch, encode_frame(OP_TEXT, b"hi", mask=False), 1002,
                   timeout=2.0)


@pytest.mark.parametrize("data", [
    encode_frame(0x3, b"x"),                          # reserved data opcode
    encode_frame(0xB, b"x"),                          # reserved control
    encode_frame(OP_TEXT, b"x", rsv=4),               # RSV1, no extension
    encode_frame(OP_TEXT, b"x", rsv=1),               # RSV3
    encode_frame(OP_CONT, b"x"),                      # nothing to continue
    encode_frame(OP_TEXT, b"a", fin=False) + encode_frame(OP_TEXT, b"b"),
    encode_frame(OP_PING, b"x", fin=False),           # fragmented control
    encode_frame(OP_PING, b"x" * 126),                # control over 125
    encode_frame(OP_CLOSE, b"\x03"),                  # 1-byte close body
    encode_frame(OP_CLOSE, close_payload(999)),
    encode_frame(OP_CLOSE, close_payload(1005)),
    encode_frame(OP_CLOSE, close_payload(1006)),
    encode_frame(OP_CLOSE, close_payload(1015)),
    encode_frame(OP_CLOSE, close_payload(5000)),
], ids=["opcode3", "opcodeB", "rsv1", "rsv3", "lone-continuation",
        "text-inside-fragmented", "fragmented-ping", "ping-126",
        "close-1-byte", "close-999", "close-1005", "close-1006",
        "close-1015", "close-5000"])
def test_protocol_errors_close_1002(server, ch, data):
    protocol_error(server, ch, data, 1002)


@pytest.mark.parametrize("data", [
    encode_frame(OP_TEXT, b"ok \xff"),
    encode_frame(OP_TEXT, b"\xed\xa0\x80"),                  # surrogate
    encode_frame(OP_TEXT, b"\xc0\xaf"),                      # overlong
    encode_frame(OP_TEXT, b"\xf4\x90\x80\x80"),              # > U+10FFFF
    encode_frame(OP_TEXT, b"a\xe2\x98", fin=False) +         # bad across
    encode_frame(OP_CONT, b"\x28", fin=True),                #  fragments
    encode_frame(OP_TEXT, b"\xce", fin=True),                # truncated
    encode_frame(OP_CLOSE, close_payload(1000, b"\xff")),    # close reason
], ids=["ff", "surrogate", "overlong", "above-10ffff", "across-fragments",
        "truncated", "close-reason"])
def test_invalid_utf8_closes_1007(server, ch, data):
    protocol_error(server, ch, data, 1007)


@pytest.mark.parametrize("data", [
    encode_frame(OP_TEXT, b"z" * 1025),
    encode_frame(OP_BINARY, b"z" * 5000),
    encode_frame(OP_TEXT, b"z" * 600, fin=False) +
    encode_frame(OP_CONT, b"z" * 600, fin=True),
], ids=["text-1025", "binary-5000", "fragments-1200"])
def test_message_over_max_size_closes_1009(server, ch, data):
    protocol_error(server, ch, data, 1009)


def test_valid_close_after_protocol_ok_traffic(server, ch):
    """A close carrying a valid UTF-8 reason is echoed (not 1007)."""
    with subscribed(server, ch) as ws:
        ws.send_close(1000, "f\u00e9ini")
        assert ws.expect_close().close_code == 1000


# --- handshake errors -------------------------------------------------------

@pytest.mark.parametrize("version", ["8", "12", "14", "x"])
def test_bad_websocket_version_426(server, ch, version):
    ws = RawWS(server, query={"channel": ch}, version=version,
               expect_101=False)
    assert ws.status == 426, (ws.status, ws.headers)
    assert ws.headers.get("sec-websocket-version") == "13", ws.headers
    j = ws.error.json()
    assert j["status"] is False and j["error"], j


def test_missing_websocket_version_426(server, ch):
    ws = RawWS(server, query={"channel": ch}, omit=("Sec-WebSocket-Version",),
               expect_101=False)
    assert ws.status in (400, 426), ws.status
    if ws.status == 426:
        assert ws.headers.get("sec-websocket-version") == "13"


@pytest.mark.parametrize("key,omit", [
    (None, ("Sec-WebSocket-Key",)),
    ("c2hvcnQ=", ()),                                  # 5 bytes, not 16
    ("not base64 at all!!!!!!!", ()),
])
def test_bad_websocket_key_400(server, ch, key, omit):
    ws = RawWS(server, query={"channel": ch}, key=key, omit=omit,
               expect_101=False)
    assert ws.status == 400, ws.status
    assert ws.error.json()["status"] is False


# --- fan-out ------------------------------------------------------------------

def test_fanout_to_many_longpolls_and_websockets(server, ch):
    """One message reaches every waiting long-poll and open WebSocket on
    the channel (over all workers), each exactly once."""
    n = 40
    polls = [background(poll, server, ch) for _ in range(n)]
    conns = [RawWS(server, query={"channel": ch}) for _ in range(n)]
    try:
        assert wait_subscribers(server, ch, 2 * n, timeout=5)
        j = publish_ok(server, ch, "to all")
        assert j["subscribers"] == 2 * n, j
        for p in polls:
            assert_message(p.result(10).json(), ch, "to all", id=1)
        for ws in conns:
            assert ws.recv_text() == "to all"
        publish_ok(server, ch, "again")
        for ws in conns:
            assert ws.recv_text() == "again"
    finally:
        for ws in conns:
            ws.close_socket()


def test_64bit_frame_lengths(servers, ch):
    """Frames over 65535 bytes use the 64-bit length, both ways."""
    srv = servers.get(max_message_size="128k")
    big = bytes(range(256)) * 300                     # 76800 bytes
    with RawWS(srv, query={"channel": ch}) as ws:
        assert wait_subscribers(srv, ch, 1)
        publish_ok(srv, ch, big, content_type="application/octet-stream")
        f = ws.recv_frame()
        assert (f.fin, f.opcode, f.payload) == (True, OP_BINARY, big)
        ws.send_binary(big[::-1])                      # 64-bit, masked
        f = ws.recv_frame()
        assert (f.opcode, f.payload) == (OP_BINARY, big[::-1])
