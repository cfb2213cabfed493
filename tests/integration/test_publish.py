"""SPEC.md "Publish", "Concepts: Message ids / Message", "Errors" (413,
405 on the publisher)."""

import base64
from urllib.parse import quote

from checks import assert_error, assert_message, allow_methods, \
    is_json_response
from clients import (RawWS, background, channel_stats, new_channel, poll,
                     poll_json, publish, publish_form, publish_ok,
                     wait_subscribers)

SETTINGS = {"max_message_size": "1k"}


def fetch(server, ch, id):
    """The message with this id, by cursor (last_id = id - 1)."""
    return poll_json(server, ch, last_id=id - 1, timeout=0)


def test_publish_answer_fields(server, ch):
    r = publish(server, ch, "hello")
    assert r.status_code == 200, r.text
    assert is_json_response(r), r.headers
    j = r.json()
    assert j == {"status": True, "id": 1, "channel": ch, "subscribers": 0}


def test_ids_count_from_one_per_channel(server, ch):
    # fresh connection each time: on nginx4 they land on different workers
    ids = [publish_ok(server, ch, "m%d" % i)["id"] for i in range(6)]
    assert ids == [1, 2, 3, 4, 5, 6]
    other = new_channel()
    assert publish_ok(server, other, "x")["id"] == 1
    assert publish_ok(server, ch, "m6")["id"] == 7


def test_put_is_publish(server, ch):
    j = publish_ok(server, ch, "via put", method="PUT")
    assert j["id"] == 1 and j["channel"] == ch
    assert_message(fetch(server, ch, 1), ch, "via put", id=1)


def test_put_form(server, ch):
    from clients import http, url
    r = http("PUT", url(server, server.pub, channel=ch),
             headers={"Content-Type": "application/x-www-form-urlencoded"},
             data=b"content=put+form")
    assert r.status_code == 200, r.text
    assert_message(fetch(server, ch, r.json()["id"]), ch, "put form")


def test_form_field_content_is_the_message(server, ch):
    r = publish_form(server, ch, "other=1&content=hello+w%C3%B6rld%21&x=2")
    assert r.status_code == 200, r.text
    j = r.json()
    assert_message(fetch(server, ch, j["id"]), ch, "hello w\u00f6rld!")


def test_form_without_content_is_400_and_stores_nothing(server, ch):
    publish_ok(server, ch, "first")
    r = publish_form(server, ch, {"contents": "x", "msg": "y"})
    assert_error(r, 400, "content")
    # nothing changed: the next message still gets id 2
    assert publish_ok(server, ch, "second")["id"] == 2


def test_raw_body_when_not_a_form(server, ch):
    for ct, body in (("text/plain", "content=not+a+form"),
                     ("application/json", '{"content": "x"}'),
                     (None, "no content type")):
        j = publish_ok(server, ch, body, content_type=ct)
        assert_message(fetch(server, ch, j["id"]), ch, body)


def test_text_message_utf8(server, ch):
    j = publish_ok(server, ch, "h\u00e9llo \u2603 \U0001F600",
                   content_type="text/plain; charset=utf-8")
    assert_message(fetch(server, ch, j["id"]), ch,
                   "h\u00e9llo \u2603 \U0001F600")


def test_octet_stream_is_binary(server, ch):
    data = b"plain ascii but declared binary"
    j = publish_ok(server, ch, data, content_type="application/octet-stream")
    a = fetch(server, ch, j["id"])
    assert_message(a, ch, data, binary=True)
    assert a["msg"] == base64.b64encode(data).decode()


def test_invalid_utf8_is_binary(server, ch):
    for data in (b"\xff\xfe\x00\x01", b"abc\xc3", b"\xed\xa0\x80",
                 b"\xc0\xaf"):
        j = publish_ok(server, ch, data, content_type="text/plain")
        assert_message(fetch(server, ch, j["id"]), ch, data, binary=True)


def test_empty_message_allowed(server, ch):
    j = publish_ok(server, ch, b"")
    assert j["id"] == 1
    assert_message(fetch(server, ch, 1), ch, b"")
    j = publish_form(server, ch, "content=").json()
    assert j["id"] == 2
    assert_message(fetch(server, ch, 2), ch, b"")


def test_max_message_size_raw(server, ch):
    assert publish_ok(server, ch, b"a" * 1024)["id"] == 1
    r = publish(server, ch, b"a" * 1025)
    assert_error(r, 413)
    r = publish(server, ch, b"\x00" * 1025,
                content_type="application/octet-stream")
    assert_error(r, 413)
    assert publish_ok(server, ch, b"b")["id"] == 2   # nothing was stored


def test_max_message_size_counts_decoded_form_field(server, ch):
    # 1024 decoded bytes in a 3000+ byte body: allowed
    body = "content=" + "%41" * 1024
    r = publish_form(server, ch, body)
    assert r.status_code == 200, r.text
    assert_message(fetch(server, ch, r.json()["id"]), ch, "A" * 1024)
    # 1025 decoded bytes: too big
    r = publish_form(server, ch, "content=" + "%41" * 1025)
    assert_error(r, 413)
    # a small message in a big form (other fields) is fine
    r = publish_form(server, ch, "pad=" + "x" * 1500 + "&content=small")
    assert r.status_code == 200, r.text
    assert_message(fetch(server, ch, r.json()["id"]), ch, "small")


def test_subscribers_count_in_publish_answer(server, ch):
    polls = [background(poll, server, ch) for _ in range(2)]
    with RawWS(server, query={"channel": ch}) as ws:
        assert wait_subscribers(server, ch, 3)
        j = publish_ok(server, ch, "to three")
        assert j["subscribers"] == 3, j
        for p in polls:
            r = p.result(10)
            assert_message(r.json(), ch, "to three", id=1)
        assert ws.recv_text() == "to three"
    assert wait_subscribers(server, ch, 0)
    assert publish_ok(server, ch, "to none")["subscribers"] == 0


def test_publisher_other_methods_405(server, ch):
    from clients import http, url
    for method in ("GET", "DELETE", "PATCH"):
        r = http(method, url(server, server.pub, channel=ch))
        assert_error(r, 405)
        allow = allow_methods(r)
        assert {"POST", "PUT"} <= allow, r.headers
        assert method not in allow
    st = channel_stats(server, ch)
    assert st is None or st.get("last_id", 0) == 0, st


def test_publish_channel_percent_decoded(server):
    ch = new_channel("p") + ":x.y_z"
    r = publish(server, None, "dec", raw_query="channel=" +
                quote(ch, safe=""))
    assert r.status_code == 200, r.text
    assert r.json()["channel"] == ch
    assert_message(fetch(server, ch, r.json()["id"]), ch, "dec")


def test_concurrent_publishers_get_unique_consecutive_ids(server, ch):
    """Ids are 1, 2, 3... whatever worker or thread published: 4
    publishers at once, each on fresh connections."""
    def burst(k):
        return [publish_ok(server, ch, "b%d-%d" % (k, i))["id"]
                for i in range(15)]
    futs = [background(burst, k) for k in range(4)]
    ids = sorted(i for f in futs for i in f.result(30))
    assert ids == list(range(1, 61)), ids
    j = poll_json(server, ch, last_id=0, batch=100, timeout=0)
    assert [m["id"] for m in j["msgs"]] == list(range(1, 61))
    # each publisher's own messages are in its order
    for k in range(4):
        mine = [m["msg"] for m in j["msgs"] if m["msg"].startswith("b%d-" % k)]
        assert mine == ["b%d-%d" % (k, i) for i in range(15)]


def test_json_escaping_of_any_text(server, ch):
    text = ('q"uote \\back\\slash\n\t\r\x00\x01\x1f\x7f </script> '
            '\u2028\u2029 \u00ff \U0001F600')
    j = publish_ok(server, ch, text)
    a = fetch(server, ch, j["id"])
    assert_message(a, ch, text)


def test_chunked_request_body(server, ch):
    def gen():
        yield b"chunk one, "
        yield b"chunk two"
    from clients import http, url
    r = http("POST", url(server, server.pub, channel=ch),
             headers={"Content-Type": "text/plain"}, data=gen())
    assert r.status_code == 200, r.text
    assert_message(fetch(server, ch, r.json()["id"]), ch,
                   "chunk one, chunk two")


def test_expect_100_continue(server, ch):
    """curl sends `Expect: 100-continue` for bodies over 1 KB."""
    import socket
    import json as _json
    body = b"content=" + b"e" * 900
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    s.sendall(("POST %s?channel=%s HTTP/1.1\r\nHost: x\r\n"
               "Content-Type: application/x-www-form-urlencoded\r\n"
               "Content-Length: %d\r\nExpect: 100-continue\r\n"
               "Connection: close\r\n\r\n"
               % (server.pub, ch, len(body))).encode())
    s.settimeout(1.0)
    try:
        first = s.recv(4096)
    except socket.timeout:
        first = b""
    s.settimeout(5)
    s.sendall(body)
    data = first
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    if data.startswith(b"HTTP/1.1 100"):
        data = data.split(b"\r\n\r\n", 1)[1]
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), data[:300]
    assert _json.loads(rest)["id"] == 1
    assert_message(fetch(server, ch, 1), ch, "e" * 900)


def test_media_types_are_case_insensitive(server, ch):
    """RFC 9110 8.3.1: type and subtype are case-insensitive."""
    r = publish(server, ch, b"content=form+case",
                content_type="Application/X-WWW-Form-URLEncoded")
    assert r.status_code == 200, r.text
    assert_message(fetch(server, ch, r.json()["id"]), ch, "form case")
    r = publish(server, ch, b"abc", content_type="APPLICATION/OCTET-STREAM")
    assert r.status_code == 200, r.text
    assert_message(fetch(server, ch, r.json()["id"]), ch, b"abc",
                   binary=True)
