"""Malformed query strings and forms, channel and name edge cases, huge
headers, URIs and bodies, and request-smuggling attempts on the
publisher.  Each gets its documented answer (SPEC.md "Errors": JSON
{"status": false, "error": ...} from pushq; the server's own answer for
what it refuses before pushq runs), nothing is stored by a refused
request, and the server keeps serving."""

import json
import uuid

import pytest

from util import (publish, raw_http, request, responses, stored)


def fresh(prefix="h"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


def assert_pushq_error(status, headers, body, want):
    assert status == want, (status, body[:200])
    assert headers.get("content-type", "").startswith("application/json"), \
        headers
    j = json.loads(body)
    assert j["status"] is False and j["error"], j
    return j


# --- malformed query strings ------------------------------------------------------

BAD_QUERIES = {
    "lone-percent": "channel=%",
    "short-escape": "channel=a%4",
    "bad-escape": "channel=%zz",
    "nul": "channel=a%00",
    "encoded-slash": "channel=a%2fb",
    "utf8": "channel=%E2%98%83",
    "overlong-utf8": "channel=%C0%AE",
    "2k-channel": "channel=" + "a" * 2000,
    "space": "channel=a+b",
}

BAD_NAMES = {
    "name-bad": "channel=ok&name=%ff",
    "name-65": "channel=ok&name=" + "n" * 65,
}

BAD_SUB_ARGS = {
    "last_id-neg": "last_id=-1", "last_id-float": "last_id=1.5",
    "last_id-hex": "last_id=0x10", "last_id-space": "last_id=%201",
    "last_id-huge": "last_id=" + "9" * 30, "last_id-plus": "last_id=%2B1",
    "timeout-nan": "timeout=nan", "timeout-inf": "timeout=inf",
    "timeout-exp": "timeout=1e3", "timeout-neg": "timeout=-1",
    "timeout-text": "timeout=soon", "timeout-hex": "timeout=0x1",
    "batch-0": "batch=0", "batch-1001": "batch=1001", "batch-text": "batch=x",
    "batch-huge": "batch=" + "9" * 25,
}


@pytest.mark.parametrize("case", sorted(BAD_QUERIES))
def test_bad_query_on_publish_400(server, case):
    out = raw_http(server, request("POST", server.pub + "?" +
                                   BAD_QUERIES[case], body=b"never"))
    [(st, h, body)] = responses(out)
    j = assert_pushq_error(st, h, body, 400)
    assert "channel" in j["error"].lower(), j


@pytest.mark.parametrize("case", sorted(BAD_QUERIES) + sorted(BAD_NAMES))
def test_bad_query_on_longpoll_400(server, case):
    q = BAD_QUERIES.get(case) or BAD_NAMES[case]
    out = raw_http(server, request("GET", server.sub + "?timeout=0&" + q))
    [(st, h, body)] = responses(out)
    j = assert_pushq_error(st, h, body, 400)
    assert ("name" if case.startswith("name") else "channel") in \
        j["error"].lower(), j


@pytest.mark.parametrize("case", sorted(BAD_QUERIES) + sorted(BAD_NAMES))
def test_bad_query_on_websocket_handshake_400(server, case):
    q = BAD_QUERIES.get(case) or BAD_NAMES[case]
    out = raw_http(server, request("GET", server.sub + "?" + q, [
        ("Upgrade", "websocket"), ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13")], close=False), first_only=True)
    [(st, h, body)] = responses(out)
    j = assert_pushq_error(st, h, body, 400)
    assert ("name" if case.startswith("name") else "channel") in \
        j["error"].lower(), j


@pytest.mark.parametrize("case", sorted(BAD_SUB_ARGS))
def test_bad_subscriber_argument_400(server, case):
    arg = BAD_SUB_ARGS[case]
    out = raw_http(server, request("GET", server.sub + "?channel=ok&" + arg))
    [(st, h, body)] = responses(out)
    j = assert_pushq_error(st, h, body, 400)
    assert arg.split("=")[0] in j["error"], j


@pytest.mark.parametrize("arg", ["last_id=", "timeout=", "batch=",
                                 "name=", "channel="])
def test_empty_argument_is_absent(server, arg):
    """An empty argument counts as absent (as an empty channel is
    `default`): both adapters answer as without it."""
    out = raw_http(server, request("GET", server.sub + "?timeout=0&" + arg
                                   if arg != "timeout=" else
                                   server.sub + "?last_id=0&channel=" +
                                   fresh() + "&timeout=0&" + arg))
    [(st, h, body)] = responses(out)
    assert st == 200, body
    assert json.loads(body)["status"] in (True, False)


@pytest.mark.parametrize("case", sorted(BAD_NAMES))
def test_publish_with_bad_name_same_on_both_adapters(case):
    """A publish carrying a bad `name` (an argument publishers do not use):
    nginx and CivetWeb must give the same answer."""
    import os
    env = os.environ.get("PUSHQ_SERVERS")
    if env and not {"nginx", "civetweb"} <= set(env.split(",")):
        pytest.skip("needs both nginx and civetweb")
    from pool import Pool
    got = []
    for k in ("nginx", "civetweb"):
        srv = Pool.get(k)
        out = raw_http(srv, request("POST", srv.pub + "?" + BAD_NAMES[case],
                                    body=b"x"))
        got.append(responses(out)[0][0])
    assert got[0] == got[1], "nginx answered %d, CivetWeb %d" % tuple(got)


def test_duplicate_and_empty_arguments(server):
    """First occurrence wins; empty keys and keys without '=' are
    ignored; an empty channel is `default`."""
    a, b = fresh(), fresh()
    st, h, body = publish(server, "%s&channel=%s" % (a, b), b"dup")
    assert st == 200 and json.loads(body)["channel"] == a, body
    out = raw_http(server, request("POST", server.pub + "?&&=&=x&channel" +
                                   "&junk&channel=" + a, body=b"weird"))
    [(st, h, body)] = responses(out)
    assert st == 200, body
    assert json.loads(body)["channel"] in ("default", a), body
    assert [m["msg"] for m in stored(server, b)] == []


# --- forms ----------------------------------------------------------------------------

FORM = "application/x-www-form-urlencoded"

FORMS = [
    # body, stored message (None: refused 400)
    (b"content=hello", b"hello"),
    (b"content=a+b%2B%26%3D", b"a b+&="),
    (b"content=a&content=b", b"a"),              # first wins
    (b"other=1&content=x&more=2", b"x"),
    (b"content", b""),                          # no '=': empty message
    (b"content=", b""),
    (b"content=a%00b", b"a\x00b"),
    (b"content=%E2%98%83", "\u2603".encode()),
    (b"content=%zz", b"%zz"),                   # broken escape kept as is
    (b"content=%4", b"%4"),
    (b"&&&content=x&&", b"x"),
    (b"contents=x", None),
    (b"Content=x", None),                        # names are case-sensitive
    (b"", None),
    (b"=x", None),
]


@pytest.mark.parametrize("body,want", FORMS,
                         ids=[f[0].decode()[:20] or "empty" for f in FORMS])
def test_form_bodies(server, ch, body, want):
    st, h, ans = publish(server, ch, body, ctype=FORM)
    if want is None:
        j = assert_pushq_error(st, h, ans, 400)
        assert "content" in j["error"], j
        assert stored(server, ch) == []
        return
    assert st == 200, ans
    [m] = stored(server, ch)
    got = m["msg"].encode("utf-8") if "encoding" not in m else \
        __import__("base64").b64decode(m["msg"])
    assert got == want, m


def test_form_content_type_with_parameters(server, ch):
    st, h, ans = publish(server, ch, b"content=x",
                         ctype="Application/X-WWW-Form-Urlencoded; "
                         "charset=UTF-8")
    assert st == 200, ans
    assert [m["msg"] for m in stored(server, ch)] == ["x"]


# --- channel and name edge cases ---------------------------------------------------

@pytest.mark.parametrize("name", [".", "..", "-", ":", "_", "...", "a" * 64,
                                  "default", "A-b_c.d:e"])
def test_edge_channel_names_work(server, name):
    st, h, ans = publish(server, name, b"edge")
    assert st == 200, ans
    j = json.loads(ans)
    assert j["channel"] == name
    out = raw_http(server, request("GET", "%s?channel=%s&last_id=%d&timeout=0"
                                   % (server.sub, name, j["id"] - 1)))
    [(st, h, body)] = responses(out)
    m = json.loads(body)
    assert (m["status"], m["msg"], m["channel"]) == (True, "edge", name), m


def test_channel_names_are_case_sensitive(server):
    low = fresh("case")
    up = low.upper()
    publish(server, low, b"low")
    publish(server, up, b"UP")
    assert [m["msg"] for m in stored(server, low)] == ["low"]
    assert [m["msg"] for m in stored(server, up)] == ["UP"]


def test_name_same_as_channel(server, ch):
    out = raw_http(server, request("GET", "%s?channel=%s&name=%s&timeout=0"
                                   % (server.sub, ch, ch)))
    [(st, h, body)] = responses(out)
    assert st == 200 and json.loads(body)["status"] is False, body
    publish(server, ch, b"x")
    out = raw_http(server, request("GET", "%s?channel=%s&name=%s&timeout=0"
                                   % (server.sub, ch, ch)))
    [(st, h, body)] = responses(out)
    assert json.loads(body)["msg"] == "x", body


# --- huge headers, URIs and bodies -------------------------------------------------

def still_serving(server):
    ch = fresh()
    st, h, ans = publish(server, ch, b"alive")
    assert st == 200, ans
    assert [m["msg"] for m in stored(server, ch)] == ["alive"]


@pytest.mark.parametrize("what", ["100k-header", "4000-headers",
                                  "64k-uri", "1m-header"])
def test_huge_request_head_refused(server, what):
    if what == "100k-header":
        req = request("GET", server.sub + "?timeout=0",
                      [("X-Big", "a" * 100000)])
    elif what == "1m-header":
        req = request("GET", server.sub + "?timeout=0",
                      [("X-Big", "a" * (1 << 20))])
    elif what == "4000-headers":
        req = request("GET", server.sub + "?timeout=0",
                      [("X-H%d" % i, "v") for i in range(4000)])
    else:
        req = request("GET", server.sub + "?timeout=0&pad=" + "a" * 65536)
    out = raw_http(server, req)
    rs = responses(out)
    if rs:        # an answer, when there is one, refuses
        assert rs[0][0] in (400, 413, 414, 431, 494), rs[0][:2]
    still_serving(server)


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_body_over_max_message_size_413(server, ch, chunked):
    body = b"x" * (4 << 20)                     # 4 MiB, limit is 128k
    if chunked:
        enc = b"".join(b"%x\r\n%s\r\n" % (65536, body[i:i + 65536])
                       for i in range(0, len(body), 65536)) + b"0\r\n\r\n"
        req = request("POST", server.pub + "?channel=" + ch,
                      [("Transfer-Encoding", "chunked")], enc)
    else:
        req = request("POST", server.pub + "?channel=" + ch, body=body)
    rs = responses(raw_http(server, req, timeout=10))
    assert rs and rs[0][0] == 413, rs[:1]
    assert stored(server, ch) == []
    still_serving(server)


def test_body_shorter_than_content_length_then_gone(server, ch):
    req = request("POST", server.pub + "?channel=" + ch,
                  [("Content-Length", "1000")], b"only a little")
    raw_http(server, req, timeout=0.5)         # client gives up, closes
    assert stored(server, ch) == []
    still_serving(server)


# --- request smuggling on the publisher ---------------------------------------------

def smuggle(server, ch, ch2, headers, body):
    """A publish with conflicting framing followed by a second request
    that only exists if the framing is read one particular way."""
    second = request("POST", server.pub + "?channel=" + ch2, body=b"smuggled")
    req = request("POST", server.pub + "?channel=" + ch, headers, body,
                  close=False) + second
    return responses(raw_http(server, req, timeout=3))


def test_content_length_and_transfer_encoding(server, ch):
    """nginx refuses (400) and runs nothing more on the connection; CivetWeb
    follows RFC 7230 3.3.3 (Transfer-Encoding wins, Content-Length is
    ignored), so there is no desync: the chunked body is the message and
    the next request is a normal pipelined one."""
    ch2 = fresh()
    rs = smuggle(server, ch, ch2, [("Content-Length", "4"),
                                   ("Transfer-Encoding", "chunked")],
                 b"5\r\nhello\r\n0\r\n\r\n")
    if server.kind == "nginx":
        assert [r[0] for r in rs] == [400], rs
        assert stored(server, ch) == [] and stored(server, ch2) == []
    else:
        assert [r[0] for r in rs][:1] == [200], rs
        assert [m["msg"] for m in stored(server, ch)] == ["hello"]


@pytest.mark.parametrize("case", ["two-lengths", "bad-chunk-size",
                                  "length-plus"])
def test_ambiguous_framing_refused_civetweb_bugs(server, ch, case):
    test_ambiguous_framing_refused(server, ch, case)


@pytest.mark.parametrize("case", ["te-gzip", "te-unknown",
                                  "te-double-chunked", "negative-length"])
def test_ambiguous_framing_refused(server, ch, case):
    """Framing a server cannot read one unambiguous way is refused, and
    nothing -- neither the body nor a request hidden in it -- is
    published."""
    ch2 = fresh()
    headers, body = {
        "two-lengths": ([("Content-Length", "3"), ("Content-Length", "5")],
                        b"hello"),
        "te-gzip": ([("Transfer-Encoding", "gzip, chunked")],
                    b"5\r\nhello\r\n0\r\n\r\n"),
        "te-unknown": ([("Transfer-Encoding", "xchunked")],
                       b"5\r\nhello\r\n0\r\n\r\n"),
        "te-double-chunked": ([("Transfer-Encoding", "chunked, chunked")],
                              b"5\r\nhello\r\n0\r\n\r\n"),
        "bad-chunk-size": ([("Transfer-Encoding", "chunked")],
                           b"zz\r\nhello\r\n0\r\n\r\n"),
        "negative-length": ([("Content-Length", "-1")], b"hello"),
        "length-plus": ([("Content-Length", "+5")], b"hello"),
    }[case]
    rs = smuggle(server, ch, ch2, headers, body)
    assert rs, "no answer at all (the connection was just dropped)"
    assert 400 <= rs[0][0] < 600 and rs[0][0] != 500, rs[0][:2]
    assert stored(server, ch) == []
    assert stored(server, ch2) == [], "the hidden request was run"
