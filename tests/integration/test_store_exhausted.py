"""SPEC.md "Errors": 503 when the store's memory is exhausted (and nothing
changes); "WebSocket subscribe": a client publish that cannot be stored
closes with 1013; expired messages free the memory again (message_ttl)."""

import time

import pytest

from checks import assert_error
from clients import (RawWS, channel_stats, new_channel, publish, publish_ok,
                     status, wait_for)

SETTINGS = {"shm_size": "1m", "message_ttl": "2s", "max_message_size": "60k",
            "buffer_bytes": "16m"}
ALLOW = r"\[(warn|error)\].*(memory|exhaust|full)"


def fill(server):
    """Publishes 50k messages over many channels until a 503; returns the
    503 response and the channels used."""
    chans = []
    blob = b"\xaa" * 50000
    for i in range(200):
        c = new_channel("fill")
        r = publish(server, c, blob, content_type="application/octet-stream")
        if r.status_code == 503:
            return r, chans
        assert r.status_code == 200, r.text
        chans.append(c)
    pytest.fail("200 x 50k published into a 1m store without a 503")


@pytest.mark.allow_log(ALLOW)
def test_store_exhausted_503_then_recovers(server, ch):
    publish_ok(server, ch, "kept")
    r, chans = fill(server)
    assert_error(r, 503)
    assert chans, "the store held not even one 50k message"
    st = status(server).json()
    assert st["memory"]["used"] <= st["memory"]["total"]
    # nothing changed on the channel of a refused publish
    r = publish(server, ch, b"\xbb" * 50000,
                content_type="application/octet-stream")
    assert_error(r, 503)
    assert channel_stats(server, ch)["last_id"] == 1

    # a client publish over WebSocket that cannot be stored: 1013
    with RawWS(server, query={"channel": ch}) as ws:
        ws.send_binary(b"\xcc" * 50000)
        f = ws.expect_close()
        assert f.close_code == 1013, f
    assert channel_stats(server, ch)["last_id"] == 1

    # after message_ttl the messages expire and publishing works again
    def recovered():
        r = publish(server, new_channel("after"), b"\xdd" * 50000,
                    content_type="application/octet-stream")
        return r.status_code == 200
    t = time.monotonic()
    assert wait_for(recovered, timeout=6, interval=0.25), \
        "still 503 %.1fs after message_ttl" % (time.monotonic() - t)
    # and the refused publishes left nothing behind: the channel goes on
    j = publish_ok(server, ch, "after recovery")
    assert j["id"] in (1, 2), j
