"""Autobahn group 5 (fragmentation): valid fragmented messages come back
whole (as one frame), control frames may sit between fragments, and every
fragmentation error closes with 1002 (close frame before the TCP close)."""

import pytest

from cases import connect, expect_echo, expect_failure, expect_pong, stored
from wsclient import BINARY, CONT, PING, PONG, TEXT, frame


def fragments(op, parts, between=None):
    """A message in len(parts) frames; `between` (bytes) after each
    non-final fragment."""
    out = b""
    for i, p in enumerate(parts):
        last = i == len(parts) - 1
        out += frame(op if i == 0 else CONT, p, fin=last)
        if between and not last:
            out += between
    return out


def send(ws, data, chop):
    if chop == "bytes":
        ws.send_chopped(data, piece=1, pause=0.0002)
    else:
        ws.send(data)


CHOPS = ["whole", "bytes"]


# --- valid -----------------------------------------------------------------------

@pytest.mark.also_nginx4
@pytest.mark.parametrize("chop", CHOPS)
def test_5_3_5_4_text_in_two_fragments(server, ch, chop):
    with connect(server, ch) as ws:
        send(ws, fragments(TEXT, [b"fragment1", b"fragment2"]), chop)
        expect_echo(ws, TEXT, b"fragment1fragment2")
    assert [m["msg"] for m in stored(server, ch)] == ["fragment1fragment2"]


def test_5_5_one_write_per_frame(server, ch):
    with connect(server, ch) as ws:
        ws.send(frame(TEXT, b"fragment1", fin=False))
        ws.send(frame(CONT, b"fragment2", fin=True))
        expect_echo(ws, TEXT, b"fragment1fragment2")


@pytest.mark.parametrize("n", [3, 20, 100])
def test_5_text_in_n_fragments(server, ch, n):
    parts = [b"p%03d;" % i for i in range(n)]
    with connect(server, ch) as ws:
        ws.send(fragments(TEXT, parts))
        expect_echo(ws, TEXT, b"".join(parts))


def test_5_binary_in_fragments_with_empty_ones(server, ch):
    parts = [b"", b"\x00\x01", b"", b"\xff" * 300, b""]
    with connect(server, ch) as ws:
        ws.send(fragments(BINARY, parts))
        expect_echo(ws, BINARY, b"".join(parts))


def test_6_1_2_empty_fragments_make_an_empty_message(server, ch):
    with connect(server, ch) as ws:
        ws.send(fragments(TEXT, [b"", b"", b""]))
        expect_echo(ws, TEXT, b"")


def test_5_large_message_in_fragments_across_length_classes(servers, ch):
    srv = servers(max_message_size="512k")
    parts = [b"a" * 125, b"b" * 126, b"c" * 65535, b"d" * 65536, b"e" * 200000]
    with connect(srv, ch) as ws:
        ws.send(fragments(TEXT, parts))
        expect_echo(ws, TEXT, b"".join(parts))


@pytest.mark.also_nginx4
@pytest.mark.parametrize("chop", CHOPS)
def test_5_6_5_7_ping_between_fragments(server, ch, chop):
    with connect(server, ch) as ws:
        send(ws, fragments(TEXT, [b"fragment1", b"fragment2"],
                           between=frame(PING, b"ping payload")), chop)
        expect_pong(ws, b"ping payload")
        expect_echo(ws, TEXT, b"fragment1fragment2")


def test_5_8_ping_between_fragments_one_write_per_frame(server, ch):
    with connect(server, ch) as ws:
        for f in (frame(TEXT, b"fragment1", fin=False), frame(PING, b"pp"),
                  frame(CONT, b"fragment2", fin=True)):
            ws.send(f)
        expect_pong(ws, b"pp")
        expect_echo(ws, TEXT, b"fragment1fragment2")


@pytest.mark.parametrize("chop", CHOPS)
def test_5_19_5_20_five_fragments_two_pings(server, ch, chop):
    data = (frame(TEXT, b"fragment1", fin=False)
            + frame(CONT, b"fragment2", fin=False)
            + frame(PING, b"pongme 1!")
            + frame(CONT, b"fragment3", fin=False)
            + frame(PONG, b"unsolicited")
            + frame(CONT, b"fragment4", fin=False)
            + frame(PING, b"pongme 2!")
            + frame(CONT, b"fragment5", fin=True))
    with connect(server, ch) as ws:
        send(ws, data, chop)
        expect_pong(ws, b"pongme 1!")
        expect_pong(ws, b"pongme 2!")
        expect_echo(ws, TEXT, b"fragment1fragment2fragment3fragment4"
                    b"fragment5")


def test_5_fragmented_message_then_unfragmented(server, ch):
    with connect(server, ch) as ws:
        ws.send(fragments(BINARY, [b"\x01", b"\x02"]) + frame(TEXT, b"next"))
        expect_echo(ws, BINARY, b"\x01\x02")
        expect_echo(ws, TEXT, b"next")
    assert len(stored(server, ch)) == 2


# --- invalid ---------------------------------------------------------------------

BAD = {
    # 5.1 / 5.2: fragmented control frames
    "5.1-ping-fragmented": frame(PING, b"fragment1", fin=False)
    + frame(CONT, b"fragment2", fin=True),
    "5.2-pong-fragmented": frame(PONG, b"fragment1", fin=False)
    + frame(CONT, b"fragment2", fin=True),
    "close-fragmented": frame(0x8, b"\x03\xe8", fin=False)
    + frame(CONT, b"", fin=True),
    # 5.9 / 5.12: continuation without a start
    "5.9-continuation-fin": frame(CONT, b"fragment1", fin=True)
    + frame(TEXT, b"fragment2") + frame(PING, b""),
    "5.12-continuation-nofin": frame(CONT, b"fragment1", fin=False)
    + frame(TEXT, b"fragment2") + frame(PING, b""),
    "binary-continuation-alone": frame(CONT, b"\x00", fin=True),
    # 5.18: a new message while one is in fragments
    "5.18-text-during-text": frame(TEXT, b"fragment1", fin=False)
    + frame(TEXT, b"fragment2", fin=True),
    "binary-during-text": frame(TEXT, b"fragment1", fin=False)
    + frame(BINARY, b"fragment2", fin=True),
    "text-during-binary-nofin": frame(BINARY, b"fragment1", fin=False)
    + frame(TEXT, b"fragment2", fin=False),
}


@pytest.mark.also_nginx4
@pytest.mark.parametrize("chop", CHOPS)
@pytest.mark.parametrize("case", sorted(BAD))
def test_5_fragmentation_error_1002(server, ch, case, chop):
    with connect(server, ch) as ws:
        send(ws, BAD[case], chop)
        expect_failure(ws, 1002)
    assert stored(server, ch) == []


@pytest.mark.parametrize("chop", CHOPS)
def test_5_15_valid_then_continuation_then_new_message(server, ch, chop):
    """Autobahn 5.15: a complete fragmented message (echoed), then a
    continuation with no start (1002)."""
    data = (frame(TEXT, b"fragment1", fin=False)
            + frame(CONT, b"fragment2", fin=True)
            + frame(CONT, b"fragment3", fin=False)
            + frame(TEXT, b"fragment4", fin=True))
    with connect(server, ch) as ws:
        send(ws, data, chop)
        before = expect_failure(ws, 1002, allow=(TEXT,))
    assert [f.payload for f in before] in ([], [b"fragment1fragment2"])
    assert [m["msg"] for m in stored(server, ch)] == ["fragment1fragment2"]


@pytest.mark.also_nginx4
def test_5_server_message_while_client_sends_fragments(server, ch):
    """A message published over HTTP reaches the client while the client
    is in the middle of sending a fragmented message; both arrive whole."""
    import urllib.request
    with connect(server, ch) as ws:
        ws.send(frame(TEXT, b"part one ", fin=False))
        req = urllib.request.Request(
            "%s%s?channel=%s" % (server.base, server.pub, ch),
            data=b"from http", method="POST",
            headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 200
        expect_echo(ws, TEXT, b"from http")
        ws.send(frame(CONT, b"part two", fin=True))
        expect_echo(ws, TEXT, b"part one part two")
    assert [m["msg"] for m in stored(server, ch)] == ["from http",
                                                      "part one part two"]
