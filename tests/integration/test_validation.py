"""SPEC.md "Concepts: Channel / Named client / Cursor client", "Long-poll
subscribe" (batch, timeout) and "Errors" (400): argument validation on the
publisher, the long-poll subscriber and the WebSocket handshake."""

import pytest

from checks import assert_error, assert_message
from clients import (RawWS, http, new_channel, poll_json, publish,
                     publish_ok, url)

BAD_NAMES = [
    "a" * 65,                 # 65 bytes
    "%41" * 65,               # 65 bytes once decoded
    "a%20b",                  # space
    "a+b",                    # '+' is a space in a query
    "a%2Fb",                  # '/'
    "a/b",
    "%C3%A9t%C3%A9",          # non-ASCII
    "a*b",
    "a%00b",
    "a%zzb",                  # broken escape
    "a,b",
    "a%25b",                  # '%'
]

GOOD_NAMES = [
    ("a" * 64, "a" * 64),
    ("%41" * 64, "A" * 64),
    ("Az09_.:-", "Az09_.:-"),
    ("x%3Ay%2Dz", "x:y-z"),
]


def ids(vals):
    return [v if len(v) <= 20 else v[:12] + "..%d" % len(v) for v in vals]


# --- channel ---------------------------------------------------------------

@pytest.mark.parametrize("raw", BAD_NAMES, ids=ids(BAD_NAMES))
def test_bad_channel_publish_400(server, raw):
    r = publish(server, None, "x", raw_query="channel=" + raw)
    assert_error(r, 400, "channel")


@pytest.mark.parametrize("raw", BAD_NAMES, ids=ids(BAD_NAMES))
def test_bad_channel_longpoll_400(server, raw):
    r = http("GET", url(server, server.sub, timeout="0",
                        raw_query="channel=" + raw))
    assert_error(r, 400, "channel")


@pytest.mark.parametrize("raw", ["a" * 65, "a%20b", "%C3%A9"])
def test_bad_channel_websocket_400(server, raw):
    ws = RawWS(server, query="channel=" + raw, expect_101=False)
    assert ws.status == 400, ws.status
    j = ws.error.json()
    assert j["status"] is False and "channel" in j["error"].lower(), j


@pytest.mark.parametrize("raw,decoded", GOOD_NAMES,
                         ids=ids([g[0] for g in GOOD_NAMES]))
def test_good_channel_decoded(server, raw, decoded):
    # these names are shared by every kind: count relative to the newest id
    r = publish(server, None, "ok", raw_query="channel=" + raw)
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["channel"] == decoded
    a = poll_json(server, decoded, last_id=j["id"] - 1, timeout=0)
    assert_message(a, decoded, "ok", id=j["id"])
    # the subscriber decodes too
    a = http("GET", url(server, server.sub, last_id=j["id"] - 1, timeout=0,
                        raw_query="channel=" + raw)).json()
    assert_message(a, decoded, "ok", id=j["id"])


@pytest.mark.parametrize("query", ["channel=", None])
def test_empty_or_absent_channel_is_default(server, query):
    text = new_channel("to-default")
    r = publish(server, None, text, raw_query=query)
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["channel"] == "default"
    a = http("GET", url(server, server.sub, last_id=j["id"] - 1, timeout=0,
                        raw_query=query)).json()
    assert_message(a, "default", text, id=j["id"])


# --- name ------------------------------------------------------------------

@pytest.mark.parametrize("raw", BAD_NAMES, ids=ids(BAD_NAMES))
def test_bad_name_400(server, ch, raw):
    r = http("GET", url(server, server.sub, channel=ch, timeout="0",
                        raw_query="name=" + raw))
    assert_error(r, 400, "name")


def test_bad_name_websocket_400(server, ch):
    ws = RawWS(server, query="channel=%s&name=%s" % (ch, "n" * 65),
               expect_101=False)
    assert ws.status == 400
    assert "name" in ws.error.json()["error"].lower()


@pytest.mark.parametrize("raw,decoded", GOOD_NAMES,
                         ids=ids([g[0] for g in GOOD_NAMES]))
def test_good_name_accepted(server, ch, raw, decoded):
    r = http("GET", url(server, server.sub, channel=ch, timeout="0",
                        raw_query="name=" + raw))
    assert r.status_code == 200, r.text
    assert r.json()["status"] is False
    publish_ok(server, ch, "for name")
    r = http("GET", url(server, server.sub, channel=ch, timeout="0",
                        raw_query="name=" + raw))
    assert_message(r.json(), ch, "for name")


# --- last_id, batch, timeout -----------------------------------------------

@pytest.mark.parametrize("raw", ["-1", "abc", "1.5", "1e3", "0x10", " 1",
                                 "1a"])
def test_bad_last_id_400(server, ch, raw):
    r = http("GET", url(server, server.sub, channel=ch, timeout="0",
                        raw_query="last_id=" + raw.replace(" ", "%20")))
    assert_error(r, 400, "last_id")


def test_bad_last_id_websocket_400(server, ch):
    ws = RawWS(server, query="channel=%s&last_id=-3" % ch, expect_101=False)
    assert ws.status == 400
    assert "last_id" in ws.error.json()["error"].lower()


@pytest.mark.parametrize("raw", ["0", "1001", "x", "-1", "1.5", "99999999999"])
def test_bad_batch_400(server, ch, raw):
    r = http("GET", url(server, server.sub, channel=ch, timeout="0",
                        raw_query="batch=" + raw))
    assert_error(r, 400, "batch")


@pytest.mark.parametrize("k", ["1", "1000"])
def test_batch_bounds_accepted(server, ch, k):
    publish_ok(server, ch, "b")
    j = poll_json(server, ch, last_id=0, timeout=0, batch=k)
    assert j["status"] is True and [m["msg"] for m in j["msgs"]] == ["b"]


@pytest.mark.parametrize("raw", ["abc", "-1", "1,5", "1s", "--"])
def test_bad_timeout_400(server, ch, raw):
    r = http("GET", url(server, server.sub, channel=ch,
                        raw_query="timeout=" + raw))
    assert_error(r, 400, "timeout")


def test_default_max_message_size_64k(server, ch):
    """SPEC.md's default max_message_size is 64k (this module's server
    does not set it)."""
    assert publish_ok(server, ch, b"m" * 65536)["id"] == 1
    assert_error(publish(server, ch, b"m" * 65537), 413)


def test_rejected_request_changes_nothing(server, ch, name):
    """SPEC.md "Errors": an error answer changes nothing -- a refused
    long-poll or handshake does not make its name appear (a name that
    appears later is new and does not get what was published before)."""
    from checks import assert_timeout_answer
    for bad in ("batch=0", "timeout=x", "last_id=-1"):
        r = http("GET", url(server, server.sub, channel=ch, name=name,
                            raw_query=bad))
        assert_error(r, 400)
    ws = RawWS(server, query="channel=%s&name=%s&batch=5000" % (ch, name),
               expect_101=False)
    assert ws.status == 400
    publish_ok(server, ch, "before the name appeared")
    assert_timeout_answer(poll_json(server, ch, name=name, timeout=0))
