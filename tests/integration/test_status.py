"""SPEC.md "Status": the JSON fields, per-channel status, Prometheus
format, counters summed over all workers or threads."""

import re

from checks import allow_methods, assert_error, is_json_response
from clients import (RawWS, background, channel_stats, http, poll,
                     poll_json, publish_ok, status, url, wait_subscribers)

COUNTERS = ["channels", "messages", "message_bytes", "clients", "published",
            "delivered", "lost", "dropped_slow"]


def snapshot(server):
    r = status(server)
    assert r.status_code == 200, r.text
    assert is_json_response(r), r.headers
    return r.json()


def test_status_fields(server):
    st = snapshot(server)
    for k in COUNTERS:
        assert isinstance(st.get(k), int) and st[k] >= 0, (k, st)
    mem = st.get("memory")
    assert isinstance(mem, dict), st
    assert isinstance(mem.get("used"), int) and isinstance(
        mem.get("total"), int), mem
    assert 0 < mem["used"] <= mem["total"], mem
    subs = st.get("subscribers")
    assert isinstance(subs, dict), st
    for k in ("longpoll", "websocket"):
        assert isinstance(subs.get(k), int) and subs[k] >= 0, subs


def test_status_counts(server, ch, name):
    a = snapshot(server)
    payloads = [b"one", b"twotwo", b"\x00\x01\x02"]
    for p in payloads:
        publish_ok(server, ch, p, content_type="application/octet-stream")
    poll_json(server, ch, name=name, timeout=0)           # a named client
    lp = background(poll, server, ch)
    ws = RawWS(server, query={"channel": ch})
    try:
        assert wait_subscribers(server, ch, 2)
        b = snapshot(server)
        assert b["published"] - a["published"] == 3, (a, b)
        assert b["channels"] - a["channels"] == 1, (a, b)
        assert b["messages"] - a["messages"] == 3, (a, b)
        grew = b["message_bytes"] - a["message_bytes"]
        assert sum(map(len, payloads)) <= grew <= \
            sum(map(len, payloads)) + 1024, (a, b)
        assert b["clients"] - a["clients"] == 1, (a, b)
        assert b["subscribers"]["longpoll"] - a["subscribers"]["longpoll"] \
            == 1, (a, b)
        assert b["subscribers"]["websocket"] - \
            a["subscribers"]["websocket"] == 1, (a, b)
        assert b["memory"]["used"] > a["memory"]["used"] or \
            b["memory"]["used"] > 0
        publish_ok(server, ch, "to both")
        assert lp.result(10).json()["msg"] == "to both"
        assert ws.recv_text() == "to both"
    finally:
        ws.close_socket()
    assert wait_subscribers(server, ch, 0)
    c = snapshot(server)
    assert c["published"] - a["published"] == 4
    assert c["delivered"] - b["delivered"] == 2, (b, c)
    assert c["subscribers"] == a["subscribers"], (a, c)


def test_status_same_on_every_worker(server, ch):
    a = snapshot(server)
    for i in range(12):
        publish_ok(server, ch, "w%d" % i)     # fresh connections
    seen = {snapshot(server)["published"] - a["published"]
            for _ in range(8)}
    assert seen == {12}, seen


def test_status_channel(server, ch, name):
    for i in range(4):
        publish_ok(server, ch, "c%d" % i)
    poll_json(server, ch, name=name, timeout=0)
    f = background(poll, server, ch, timeout=1)
    assert wait_subscribers(server, ch, 1)
    r = status(server, channel=ch)
    assert r.status_code == 200 and is_json_response(r), r.text
    st = r.json()
    for k, v in (("first_id", 1), ("last_id", 4), ("messages", 4),
                 ("subscribers", 1), ("clients", 1)):
        assert st.get(k) == v, (k, st)
    f.result(10)


def test_status_channel_bad_name_400(server):
    r = http("GET", url(server, server.status, raw_query="channel=a%20b"))
    assert_error(r, 400, "channel")


def test_status_other_methods_405(server):
    for method in ("POST", "PUT", "DELETE"):
        r = http(method, url(server, server.status), data=b"x")
        assert_error(r, 405)
        allow = allow_methods(r)
        assert "GET" in allow and method not in allow, r.headers


PROM_LINE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*"'
    r'(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*,?)?\})? '
    r'(-?[0-9.eE+-]+|NaN|\+Inf|-Inf)( -?[0-9]+)?$')


def parse_prometheus(text):
    """[(name, labels-string, value)]; asserts every line is valid text
    exposition format."""
    samples = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* ", line) \
                or not line.startswith(("# HELP", "# TYPE")), line
            continue
        m = PROM_LINE.match(line)
        assert m, "not Prometheus text format: %r" % line
        samples.append((m.group(1), m.group(3) or "", float(m.group(5))))
    return samples


def find(samples, *words):
    """The value of the one sample whose name+labels mention all words."""
    hits = [s for s in samples if all(w in s[0] + "{" + s[1] for w in words)]
    return hits


def test_status_prometheus(server, ch):
    publish_ok(server, ch, "p")
    j = snapshot(server)
    r = status(server, format="prometheus")
    assert r.status_code == 200, r.text
    assert r.headers.get("Content-Type", "").startswith("text/plain"), \
        r.headers
    samples = parse_prometheus(r.text)
    assert samples
    for k in COUNTERS:
        hits = [s for s in samples if re.search(r"(^|_)%s(_|$)" % k, s[0])]
        assert hits, "no sample for %s in:\n%s" % (k, r.text)
        if k in ("published", "channels", "dropped_slow"):
            assert any(h[2] == j[k] for h in hits), (k, hits, j)
    for words in (("memory", "used"), ("memory", "total"),
                  ("subscribers", "longpoll"), ("subscribers", "websocket")):
        assert find(samples, *words), "no sample for %s" % (words,)
    total = find(samples, "memory", "total")[0][2]
    assert total == j["memory"]["total"]


def test_status_prometheus_channel(server, ch):
    for i in range(3):
        publish_ok(server, ch, "q%d" % i)
    r = status(server, channel=ch, format="prometheus")
    assert r.status_code == 200, r.text
    samples = parse_prometheus(r.text)
    for k, v in (("first_id", 1), ("last_id", 3), ("messages", 3),
                 ("subscribers", 0), ("clients", 0)):
        hits = [s for s in samples if re.search(r"(^|_)%s(_|$)" % k, s[0])]
        assert any(h[2] == v for h in hits), (k, hits, r.text)
    assert ch in r.text
    assert channel_stats(server, ch)["last_id"] == 3
