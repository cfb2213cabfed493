"""SPEC.md "Long-poll subscribe": a client that disconnects while waiting
is forgotten at once and consumes nothing.  CivetWeb has no API for
noticing it; the plugin polls the socket for POLLRDHUP between 200 ms
waits, so it must notice within well under a second."""

import socket
import struct
import time

import pytest

from clients import http, new_channel, poll_json, publish_ok, url
from clients import channel_stats, wait_subscribers


def open_longpoll(srv, ch, name, timeout=20):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(("GET /sub?channel=%s&name=%s&timeout=%d HTTP/1.1\r\n"
               "Host: x\r\n\r\n" % (ch, name, timeout)).encode())
    return s


def gone_within(srv, ch, limit):
    t = time.monotonic()
    while time.monotonic() - t < limit:
        st = channel_stats(srv, ch)
        if st is not None and st["subscribers"] == 0:
            return time.monotonic() - t
        time.sleep(0.02)
    return None


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_vanished_longpoll_noticed_fast_and_consumes_nothing(cw_server, how):
    srv = cw_server(longpoll_timeout="30s")
    ch, name = new_channel("d"), new_channel("n")
    j = poll_json(srv, ch, name=name, timeout=0)     # the name appears
    assert j["status"] is False
    s = open_longpoll(srv, ch, name)
    assert wait_subscribers(srv, ch, 1)
    if how == "rst":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
    s.close()
    took = gone_within(srv, ch, 2.0)
    assert took is not None, "the vanished long-poll still counts"
    assert took < 1.0, took

    delivered = http("GET", url(srv, srv.status)).json()["delivered"]
    publish_ok(srv, ch, "for zed")
    time.sleep(0.3)
    # nobody took it: the delivered counter did not move ...
    assert http("GET", url(srv, srv.status)).json()["delivered"] == delivered
    # ... and the name gets it when it comes back
    j = poll_json(srv, ch, name=name, timeout=0)
    assert j["status"] is True and j["msg"] == "for zed" and j["id"] == 1, j


def test_vanished_client_does_not_disturb_the_others(cw_server):
    """A client that vanishes while others wait does not disturb them."""
    srv = cw_server(longpoll_timeout="30s")
    ch = new_channel("d")
    keep = open_longpoll(srv, ch, new_channel("k"), timeout=10)
    gone = open_longpoll(srv, ch, new_channel("g"), timeout=10)
    assert wait_subscribers(srv, ch, 2)
    gone.close()
    assert wait_subscribers(srv, ch, 1)
    publish_ok(srv, ch, "to the one left")
    data = b""
    keep.settimeout(5)
    while b"to the one left" not in data:
        d = keep.recv(65536)
        assert d, data
        data += d
    assert data.startswith(b"HTTP/1.1 200"), data
    keep.close()
