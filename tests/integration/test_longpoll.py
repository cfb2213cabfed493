"""SPEC.md "Long-poll subscribe": answers, batch, timeout, Cache-Control,
disconnect, methods; "Concepts": a subscriber with neither name nor last_id
gets only new messages."""

import socket
import struct
import time

from checks import (allow_methods, assert_error, assert_message,
                    assert_timeout_answer, is_json_response)
from clients import (background, http, poll, poll_json, publish_ok, url,
                     wait_subscribers)

SETTINGS = {"longpoll_timeout": "2s"}


def timed_poll(server, ch, **params):
    t = time.monotonic()
    r = poll(server, ch, **params)
    return r, time.monotonic() - t


def test_timeout_answer(server, ch):
    r, dt = timed_poll(server, ch, timeout=0)
    assert r.status_code == 200
    assert is_json_response(r), r.headers
    assert r.json() == {"status": False, "msg": ""}


def test_timeout_answer_with_batch(server, ch):
    r = poll(server, ch, timeout=0, batch=5)
    assert r.status_code == 200
    assert r.json() == {"status": False, "msg": "", "msgs": []}


def test_message_published_while_waiting(server, ch):
    f = background(timed_poll, server, ch)
    assert wait_subscribers(server, ch, 1)
    t = time.monotonic()
    publish_ok(server, ch, "news")
    r, _ = f.result(10)
    latency = time.monotonic() - t
    assert r.status_code == 200, r.text
    assert is_json_response(r)
    assert r.json() == {"status": True, "msg": "news", "id": 1,
                        "channel": ch}
    assert latency < 1.0, latency


def test_without_name_or_last_id_only_new_messages(server, ch):
    publish_ok(server, ch, "old1")
    publish_ok(server, ch, "old2")
    assert_timeout_answer(poll_json(server, ch, timeout=0))
    f = background(poll, server, ch)
    assert wait_subscribers(server, ch, 1)
    publish_ok(server, ch, "new")
    assert_message(f.result(10).json(), ch, "new", id=3)


def test_waiting_message_answers_at_once(server, ch, name):
    assert_timeout_answer(poll_json(server, ch, name=name, timeout=0))
    publish_ok(server, ch, "queued")
    r, dt = timed_poll(server, ch, name=name)   # no timeout argument
    assert_message(r.json(), ch, "queued", id=1)
    assert dt < 1.0, dt


def test_timeout_argument(server, ch):
    """longpoll_timeout is 2s: timeout= shortens it, never lengthens it,
    decimals allowed, 0 answers at once."""
    cases = {"0": (0.0, 0.5), "0.25": (0.2, 1.0), "0.5": (0.4, 1.3),
             "1.5": (1.4, 2.4), "30": (1.8, 3.2), None: (1.8, 3.2),
             "2.0": (1.8, 3.2), "0.0": (0.0, 0.5)}
    futs = {k: background(timed_poll, server, ch, timeout=k) for k in cases}
    for k, (lo, hi) in cases.items():
        r, dt = futs[k].result(10)
        assert r.status_code == 200, (k, r.text)
        assert_timeout_answer(r.json())
        assert lo <= dt <= hi, "timeout=%s answered after %.2fs" % (k, dt)


def test_cache_control_no_store(server, ch, name):
    def no_store(r):
        cc = r.headers.get("Cache-Control", "")
        return "no-store" in [v.strip().lower() for v in cc.split(",")]
    r = poll(server, ch, name=name, timeout=0)
    assert no_store(r), ("timeout answer", r.headers)
    publish_ok(server, ch, "x")
    publish_ok(server, ch, "y")
    r = poll(server, ch, name=name, timeout=0)
    assert r.json()["status"] is True
    assert no_store(r), ("message answer", r.headers)
    r = poll(server, ch, last_id=0, batch=10, timeout=0)
    assert r.json()["status"] is True
    assert no_store(r), ("batch answer", r.headers)
    r = poll(server, ch, batch=10, timeout=0)
    assert no_store(r), ("batch timeout answer", r.headers)


def test_cache_control_no_store_on_error(server, ch):
    r = poll(server, ch, timeout="x")
    assert_error(r, 400, "timeout")
    assert "no-store" in r.headers.get("Cache-Control", "").lower(), \
        r.headers


def test_other_methods_405(server, ch):
    for method in ("POST", "PUT", "DELETE"):
        r = http(method, url(server, server.sub, channel=ch, timeout=0),
                 data=b"x")
        assert_error(r, 405)
        allow = allow_methods(r)
        assert "GET" in allow and method not in allow, r.headers
    # and nothing was published
    assert_timeout_answer(poll_json(server, ch, last_id=0, timeout=0))


def test_batch(server, ch, name):
    assert_timeout_answer(poll_json(server, ch, name=name, timeout=0))
    for i in range(1, 6):
        publish_ok(server, ch, "m%d" % i)
    j = poll_json(server, ch, name=name, batch=3, timeout=0)
    assert j == {"status": True, "channel": ch, "id": 3,
                 "msgs": [{"id": 1, "msg": "m1"}, {"id": 2, "msg": "m2"},
                          {"id": 3, "msg": "m3"}]}, j
    j = poll_json(server, ch, name=name, batch=10, timeout=0)
    assert j == {"status": True, "channel": ch, "id": 5,
                 "msgs": [{"id": 4, "msg": "m4"}, {"id": 5, "msg": "m5"}]}, j
    assert poll_json(server, ch, name=name, batch=10, timeout=0) == \
        {"status": False, "msg": "", "msgs": []}


def test_batch_one_is_an_array(server, ch):
    publish_ok(server, ch, "solo")
    j = poll_json(server, ch, last_id=0, batch=1, timeout=0)
    assert j == {"status": True, "channel": ch, "id": 1,
                 "msgs": [{"id": 1, "msg": "solo"}]}, j


def test_batch_binary_element(server, ch):
    publish_ok(server, ch, "t")
    publish_ok(server, ch, b"\x00\xff", content_type="application/octet-stream")
    j = poll_json(server, ch, last_id=0, batch=10, timeout=0)
    assert j["msgs"][0] == {"id": 1, "msg": "t"}
    assert j["msgs"][1] == {"id": 2, "msg": "AP8=", "encoding": "base64"}


def test_batch_answers_when_first_message_arrives(server, ch):
    f = background(timed_poll, server, ch, batch=50)
    assert wait_subscribers(server, ch, 1)
    publish_ok(server, ch, "one")
    r, dt = f.result(10)
    j = r.json()
    assert j["status"] is True and j["id"] == 1, j
    assert [m["msg"] for m in j["msgs"]] == ["one"]
    assert dt < 1.9, "waited for the timeout instead of answering: %.2f" % dt


def test_batch_1000_messages(server, ch):
    import requests
    with requests.Session() as s:   # keep-alive: fast
        for i in range(1, 1002):
            r = s.post(url(server, server.pub, channel=ch), data=str(i))
            assert r.status_code == 200
    j = poll_json(server, ch, last_id=0, batch=1000, timeout=0)
    assert len(j["msgs"]) == 1000
    assert [m["id"] for m in j["msgs"]] == list(range(2, 1002)), \
        "buffer default is 1000: ids 2..1001 remain"
    assert j["id"] == 1001


def test_disconnect_while_waiting_consumes_nothing(server, ch, name):
    assert_timeout_answer(poll_json(server, ch, name=name, timeout=0))
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(("GET %s?channel=%s&name=%s HTTP/1.1\r\nHost: x\r\n\r\n"
               % (server.sub, ch, name)).encode())
    assert wait_subscribers(server, ch, 1)
    t = time.monotonic()
    s.close()
    # "forgotten at once"
    assert wait_subscribers(server, ch, 0, timeout=1.5), \
        "the waiting request was not dropped after the disconnect"
    dt = time.monotonic() - t
    publish_ok(server, ch, "kept")
    assert_message(poll_json(server, ch, name=name, timeout=0), ch, "kept",
                   id=1)
    assert dt < 1.0, dt


def test_disconnect_repeatedly_consumes_nothing(server, ch, name):
    """Requests for one name that go away while waiting (RST this time)
    never take the message published after they left."""
    assert_timeout_answer(poll_json(server, ch, name=name, timeout=0))
    for i in range(3):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(("GET %s?channel=%s&name=%s HTTP/1.1\r\nHost: x\r\n\r\n"
                   % (server.sub, ch, name)).encode())
        assert wait_subscribers(server, ch, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))      # close with RST
        s.close()
        assert wait_subscribers(server, ch, 0, timeout=1.5)
        publish_ok(server, ch, "m%d" % i)
        assert_message(poll_json(server, ch, name=name, timeout=0), ch,
                       "m%d" % i, id=i + 1)


def test_other_channels_do_not_answer(server, ch):
    from clients import RawWS, new_channel
    other = new_channel()
    f = background(timed_poll, server, ch, timeout=0.6)
    with RawWS(server, query={"channel": ch}) as ws:
        assert wait_subscribers(server, ch, 2)
        publish_ok(server, other, "elsewhere")
        r, dt = f.result(10)
        assert_timeout_answer(r.json())
        publish_ok(server, ch, "here")
        assert ws.recv_text() == "here"      # not "elsewhere" first
