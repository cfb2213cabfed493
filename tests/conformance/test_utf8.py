"""Autobahn group 6 (UTF-8 handling): valid text (boundary code points,
non-characters) is echoed; invalid text closes with 1007 -- sent whole, in
fragments (one byte per frame), one byte per TCP write, and failing fast:
the close arrives before the rest of the message is sent."""

import pytest

from cases import connect, expect_echo, expect_failure, stored
from wsclient import CONT, TEXT, frame

KOSME = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"   # "κόσμε"

VALID = {
    "6.2-hello": "Hello-µ@ßöäüàá-UTF-8!!".encode(),
    "6.5-kosme": KOSME,
    "6.7-first-1": b"\x00", "6.7-first-2": b"\xc2\x80",
    "6.7-first-3": b"\xe0\xa0\x80", "6.7-first-4": b"\xf0\x90\x80\x80",
    "6.9-last-1": b"\x7f", "6.9-last-2": b"\xdf\xbf",
    "6.9-last-3": b"\xef\xbf\xbf", "6.9-last-4": b"\xf4\x8f\xbf\xbf",
    "6.11-d7ff": b"\xed\x9f\xbf", "6.11-e000": b"\xee\x80\x80",
    "6.11-fffd": b"\xef\xbf\xbd", "6.22-fffe": b"\xef\xbf\xbe",
    "6.22-10fffe": b"\xf4\x8f\xbf\xbe", "6.23-bom": b"\xef\xbb\xbf",
    "mixed": "a\u00e9\u2603\U0001F600z".encode(),
}

INVALID = {
    "6.3-kosme-surrogate": KOSME + b"\xed\xa0\x80edited",
    "6.6-truncated-1": b"\xce",
    "6.6-truncated-3": b"\xce\xba\xe1",
    "6.6-truncated-4": b"\xce\xba\xe1\xbd",
    "6.8-5-byte": b"\xf8\x88\x80\x80\x80",
    "6.8-6-byte": b"\xfc\x84\x80\x80\x80\x80",
    "6.10-f7": b"\xf7\xbf\xbf\xbf",
    "6.10-fb": b"\xfb\xbf\xbf\xbf\xbf",
    "6.10-fd": b"\xfd\xbf\xbf\xbf\xbf\xbf",
    "6.11-above-10ffff": b"\xf4\x90\x80\x80",
    "6.12-cont-80": b"\x80", "6.12-cont-bf": b"\xbf",
    "6.12-cont-80bf": b"\x80\xbf", "6.12-cont-80bf80": b"\x80\xbf\x80",
    "6.13-lonely-c0": b"\xc0\x20", "6.13-lonely-e0": b"\xe0\x20",
    "6.13-lonely-f0": b"\xf0\x20", "6.13-lonely-f8": b"\xf8\x20",
    "6.13-lonely-fc": b"\xfc\x20",
    "6.14-missing-c0": b"\xc0", "6.14-missing-e0": b"\xe0\x80",
    "6.14-missing-f0": b"\xf0\x80\x80", "6.14-missing-df": b"\xdf",
    "6.14-missing-ef": b"\xef\xbf", "6.14-missing-f7": b"\xf7\xbf\xbf",
    "6.16-fe": b"\xfe", "6.16-ff": b"\xff", "6.16-fefeffff": b"\xfe\xfe\xff\xff",
    "6.17-overlong-slash-2": b"\xc0\xaf",
    "6.17-overlong-slash-3": b"\xe0\x80\xaf",
    "6.17-overlong-slash-4": b"\xf0\x80\x80\xaf",
    "6.18-max-overlong-2": b"\xc1\xbf",
    "6.18-max-overlong-3": b"\xe0\x9f\xbf",
    "6.18-max-overlong-4": b"\xf0\x8f\xbf\xbf",
    "6.19-overlong-nul-2": b"\xc0\x80",
    "6.19-overlong-nul-3": b"\xe0\x80\x80",
    "6.20-surrogate-d800": b"\xed\xa0\x80",
    "6.20-surrogate-db7f": b"\xed\xad\xbf",
    "6.20-surrogate-dc00": b"\xed\xb0\x80",
    "6.20-surrogate-dfff": b"\xed\xbf\xbf",
    "6.21-pair-d800-dc00": b"\xed\xa0\x80\xed\xb0\x80",
    "6.21-pair-dbff-dfff": b"\xed\xaf\xbf\xed\xbf\xbf",
}


def test_case_data_is_right():
    """The lists agree with Python's strict UTF-8 decoder."""
    for k, v in VALID.items():
        v.decode("utf-8")
    for k, v in INVALID.items():
        with pytest.raises(UnicodeDecodeError):
            v.decode("utf-8")


# --- valid --------------------------------------------------------------------

@pytest.mark.parametrize("case", sorted(VALID))
def test_6_valid_utf8_echoed(server, ch, case):
    data = b"<" + VALID[case] + b">"
    with connect(server, ch) as ws:
        ws.send_frame(TEXT, data)                               # whole
        ws.send(b"".join(frame(TEXT if i == 0 else CONT, data[i:i + 1],
                               fin=i == len(data) - 1)
                         for i in range(len(data))))            # 6.6
        ws.send_chopped(frame(TEXT, data), piece=1, pause=0.0002)
        for _ in range(3):
            expect_echo(ws, TEXT, data)
    assert len(stored(server, ch)) == 3


# --- invalid ---------------------------------------------------------------------

def split_fragments(data):
    """One byte per frame."""
    return b"".join(frame(TEXT if i == 0 else CONT, data[i:i + 1],
                          fin=i == len(data) - 1) for i in range(len(data)))


MODES = ["whole", "fragments", "writes"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", sorted(INVALID))
def test_6_invalid_utf8_1007(server, ch, case, mode):
    data = b"ok " + INVALID[case]
    with connect(server, ch) as ws:
        if mode == "whole":
            ws.send_frame(TEXT, data)
        elif mode == "fragments":
            ws.send(split_fragments(data))
        else:
            ws.send_chopped(frame(TEXT, data), piece=1, pause=0.0002)
        expect_failure(ws, 1007)
    assert stored(server, ch) == []


# Sequences wrong as soon as their first bad byte arrives.
FAIL_FAST = {
    "6.4.1-above-10ffff": b"\xf4\x90\x80\x80",
    "6.4.2-surrogate": b"\xed\xa0\x80",
    "6.4.3-ff": b"\xff",
    "6.4.4-overlong": b"\xc0\xaf",
    "lone-continuation": b"\x80",
}


@pytest.mark.also_nginx4
@pytest.mark.parametrize("case", sorted(FAIL_FAST))
def test_6_4_fail_fast_across_fragments(server, ch, case):
    """The first fragment carries invalid UTF-8; the server closes 1007
    without waiting for the message's end (which is never sent)."""
    with connect(server, ch) as ws:
        ws.send_frame(TEXT, KOSME, fin=False)
        ws.send_frame(CONT, FAIL_FAST[case] + b"edited", fin=False)
        expect_failure(ws, 1007, timeout=3)
    assert stored(server, ch) == []


@pytest.mark.civetweb_impossible(
    "CivetWeb reads a whole frame before the handler sees any of it, so "
    "the plugin cannot fail inside an unfinished frame")
@pytest.mark.parametrize("case", sorted(FAIL_FAST))
def test_6_4_fail_fast_inside_a_frame(server, ch, case):
    """A 64 KiB text frame whose first bytes are invalid: the close 1007
    arrives while most of the frame is still unsent."""
    bad = KOSME + FAIL_FAST[case]
    with connect(server, ch) as ws:
        whole = frame(TEXT, bad + b"x" * (65536 - len(bad)))
        ws.send(whole[:14 + len(bad) + 10])       # header, mask, bad bytes
        expect_failure(ws, 1007, timeout=1.0)
    assert stored(server, ch) == []


def test_6_truncated_sequence_split_over_fragments_is_valid(server, ch):
    """A code point cut between fragments is not an error by itself."""
    snow = "\u2603".encode()
    with connect(server, ch) as ws:
        ws.send(frame(TEXT, b"a" + snow[:2], fin=False)
                + frame(CONT, snow[2:] + b"b", fin=True))
        expect_echo(ws, TEXT, b"a" + snow + b"b")


def test_6_binary_frames_are_not_checked(server, ch):
    with connect(server, ch) as ws:
        ws.send_frame(0x2, b"\xff\xfe\xed\xa0\x80")
        expect_echo(ws, 0x2, b"\xff\xfe\xed\xa0\x80")
