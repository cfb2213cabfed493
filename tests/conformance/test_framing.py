"""Autobahn groups 1 (framing: every payload length class, text and binary),
2 (pings and pongs), 3 (reserved bits), 4 (reserved opcodes), 9 (a
16 MiB message) and masking.

The client publishes by WebSocket and is its own subscriber: each message
must come back to it as one unfragmented frame, byte for byte.  Every
protocol error must be answered with a close frame carrying 1002 before
the TCP close, and must store nothing."""

import os

import pytest

from cases import (connect, expect_echo, expect_failure, expect_pong,
                   still_open, stored)
from wsclient import BINARY, CLOSE, CONT, PING, PONG, TEXT, frame

LENGTHS = [0, 125, 126, 127, 128, 65535, 65536]


def text_of(n):
    return (b"Hello, world! " * (n // 14 + 1))[:n]


def binary_of(n):
    return (bytes(range(256)) * (n // 256 + 1))[:n]


# --- 1.1 / 1.2: payload length classes ---------------------------------------

@pytest.mark.also_nginx4
@pytest.mark.parametrize("n", LENGTHS)
def test_1_1_text_length(server, ch, n):
    with connect(server, ch) as ws:
        ws.send_frame(TEXT, text_of(n))
        expect_echo(ws, TEXT, text_of(n))
    assert len(stored(server, ch)) == 1


@pytest.mark.also_nginx4
@pytest.mark.parametrize("n", LENGTHS)
def test_1_2_binary_length(server, ch, n):
    with connect(server, ch) as ws:
        ws.send_frame(BINARY, binary_of(n))
        expect_echo(ws, BINARY, binary_of(n))


@pytest.mark.parametrize("op", [TEXT, BINARY], ids=["text", "binary"])
def test_1_x_8_65536_in_997_byte_writes(server, ch, op):
    data = text_of(65536) if op == TEXT else binary_of(65536)
    with connect(server, ch) as ws:
        ws.send_chopped(frame(op, data), piece=997, pause=0)
        expect_echo(ws, op, data)


def test_1_x_length_encodings_in_one_byte_writes(server, ch):
    """7-, 16- and 64-bit length headers dribbled one byte per write."""
    with connect(server, ch) as ws:
        for n in (5, 300, 70000):
            f = frame(BINARY, binary_of(n))
            hdr = {5: 6, 300: 8, 70000: 14}[n]
            ws.send_chopped(f[:hdr], piece=1)
            ws.send_chopped(f[hdr:], piece=max(1, n // 7), pause=0.001)
            expect_echo(ws, BINARY, binary_of(n))


@pytest.mark.parametrize("n", [1, 125, 300])
def test_1_x_dribbled_one_byte_per_write(server, ch, n):
    with connect(server, ch) as ws:
        ws.send_chopped(frame(TEXT, text_of(n)), piece=1)
        expect_echo(ws, TEXT, text_of(n))


def test_1_x_many_messages_back_to_back(server, ch):
    msgs = [os.urandom(i % 300) for i in range(100)]
    with connect(server, ch) as ws:
        ws.send(b"".join(frame(BINARY, m) for m in msgs))
        for m in msgs:
            expect_echo(ws, BINARY, m)
    assert len(stored(server, ch)) == 100


# --- 9: 16 MiB ------------------------------------------------------------------

BIG = {"max_message_size": "16m", "shm_size": "64m", "buffer_bytes": "32m",
       "websocket_max_backlog": "40m"}


@pytest.mark.parametrize("op", [TEXT, BINARY], ids=["text", "binary"])
def test_9_16mib_message(servers, ch, op):
    srv = servers(**BIG)
    n = 16 << 20
    data = text_of(n) if op == TEXT else binary_of(n)
    with connect(srv, ch, timeout=30) as ws:
        ws.send(frame(op, data))
        expect_echo(ws, op, data, timeout=30)


def test_9_16mib_plus_one_closes_1009(servers, ch):
    srv = servers(**BIG)
    with connect(srv, ch, timeout=30) as ws:
        try:
            ws.send(frame(BINARY, binary_of((16 << 20) + 1)))
        except (BrokenPipeError, ConnectionResetError):
            pass          # the server may stop reading once it knows
        expect_failure(ws, 1009, timeout=30)
    assert stored(srv, ch) == []


# --- 2: ping / pong ---------------------------------------------------------------

@pytest.mark.also_nginx4
@pytest.mark.parametrize("n", [0, 1, 10, 64, 124, 125])
def test_2_ping_payload_echoed_in_pong(server, ch, n):
    payload = binary_of(n)[::-1]
    with connect(server, ch) as ws:
        ws.send_frame(PING, payload)
        expect_pong(ws, payload)
        still_open(ws)
    assert stored(server, ch) == []


def test_2_3_ping_binary_payload(server, ch):
    with connect(server, ch) as ws:
        ws.send_frame(PING, b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff")
        expect_pong(ws, b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff")


def test_2_5_ping_126_bytes_1002(server, ch):
    with connect(server, ch) as ws:
        ws.send_frame(PING, b"\xfe" * 126)
        expect_failure(ws, 1002)


def test_2_6_ping_125_dribbled(server, ch):
    with connect(server, ch) as ws:
        ws.send_chopped(frame(PING, b"\xfe" * 125), piece=1)
        expect_pong(ws, b"\xfe" * 125)


def test_2_7_2_8_unsolicited_pong_ignored(server, ch):
    with connect(server, ch) as ws:
        ws.send_frame(PONG, b"")
        ws.send_frame(PONG, b"unsolicited pong payload")
        ws.send_frame(TEXT, b"after pongs")
        expect_echo(ws, TEXT, b"after pongs")
        ws.nothing_within(0.2)
    assert len(stored(server, ch)) == 1


def test_2_9_unsolicited_pong_then_ping(server, ch):
    with connect(server, ch) as ws:
        ws.send_frame(PONG, b"unsolicited pong payload")
        ws.send_frame(PING, b"ping payload")
        expect_pong(ws, b"ping payload")


@pytest.mark.parametrize("chop", [False, True], ids=["whole", "dribbled"])
def test_2_10_2_11_ten_pings(server, ch, chop):
    data = b"".join(frame(PING, b"payload-%d" % i) for i in range(10))
    with connect(server, ch) as ws:
        if chop:
            ws.send_chopped(data, piece=1, pause=0.0002)
        else:
            ws.send(data)
        for i in range(10):
            expect_pong(ws, b"payload-%d" % i)


# --- 3: reserved bits ---------------------------------------------------------------

@pytest.mark.parametrize("rsv", range(1, 8))
def test_3_rsv_on_text_1002(server, ch, rsv):
    with connect(server, ch) as ws:
        ws.send_frame(TEXT, b"Hello, world!", rsv=rsv)
        expect_failure(ws, 1002)
    assert stored(server, ch) == []


@pytest.mark.parametrize("op,rsv", [(BINARY, 5), (PING, 4), (PING, 6),
                                    (CLOSE, 7), (PONG, 1), (CONT, 2)],
                         ids=["binary-5", "ping-4", "ping-6", "close-7",
                              "pong-1", "cont-2"])
def test_3_rsv_on_other_frames_1002(server, ch, op, rsv):
    with connect(server, ch) as ws:
        ws.send_frame(op, b"\x03\xe8" if op == CLOSE else b"\x00\xff",
                      rsv=rsv)
        expect_failure(ws, 1002)


def test_3_2_rsv_after_valid_message(server, ch):
    """The valid message is echoed, then the bad frame fails."""
    with connect(server, ch) as ws:
        ws.send(frame(TEXT, b"good") + frame(TEXT, b"bad", rsv=2) +
                frame(PING, b"never"))
        expect_failure(ws, 1002, allow=(TEXT,))
    assert [m["msg"] for m in stored(server, ch)] == ["good"]


def test_3_3_rsv_dribbled(server, ch):
    with connect(server, ch) as ws:
        ws.send_chopped(frame(TEXT, b"good") + frame(TEXT, b"bad", rsv=3),
                        piece=1)
        expect_failure(ws, 1002, allow=(TEXT,))


# --- 4: reserved opcodes -----------------------------------------------------------

RESERVED = [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF]


@pytest.mark.also_nginx4
@pytest.mark.parametrize("op", RESERVED, ids=["op%X" % o for o in RESERVED])
def test_4_reserved_opcode_1002(server, ch, op):
    with connect(server, ch) as ws:
        ws.send_frame(op, b"reserved opcode")
        expect_failure(ws, 1002)
    assert stored(server, ch) == []


@pytest.mark.parametrize("op", [4, 0xC], ids=["op4", "opC"])
def test_4_reserved_opcode_after_valid_message(server, ch, op):
    with connect(server, ch) as ws:
        ws.send(frame(TEXT, b"good") + frame(op, b"") + frame(PING, b"x"))
        expect_failure(ws, 1002, allow=(TEXT,))
    assert [m["msg"] for m in stored(server, ch)] == ["good"]


@pytest.mark.parametrize("op", [5, 0xD], ids=["op5", "opD"])
def test_4_reserved_opcode_dribbled(server, ch, op):
    with connect(server, ch) as ws:
        ws.send_chopped(frame(TEXT, b"good") + frame(op, b"payload"), piece=1)
        expect_failure(ws, 1002, allow=(TEXT,))


# --- masking ------------------------------------------------------------------------

@pytest.mark.civetweb_impossible(
    "CivetWeb accepts unmasked client frames and does not tell the handler "
    "the mask bit")
@pytest.mark.parametrize("op,payload", [(TEXT, b"unmasked"),
                                        (BINARY, b"\x00\x01"),
                                        (PING, b"p"),
                                        (CLOSE, b"\x03\xe8")],
                         ids=["text", "binary", "ping", "close"])
def test_unmasked_client_frame_1002(server, ch, op, payload):
    with connect(server, ch) as ws:
        ws.send_frame(op, payload, mask=False)
        expect_failure(ws, 1002)
    assert stored(server, ch) == []


def test_zero_mask_key_is_still_masked(server, ch):
    """A masked frame whose key is 0 is valid (payload sent as is)."""
    with connect(server, ch) as ws:
        ws.send_frame(TEXT, b"zero key", key=b"\0\0\0\0")
        expect_echo(ws, TEXT, b"zero key")
