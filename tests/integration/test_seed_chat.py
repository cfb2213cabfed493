"""SPEC.md "The seed's chat, which must work unchanged": POST /send_msg/
with form field content; GET /get_msg/?name=<me> blocks up to the timeout
and answers {"status": true, "msg": "<text>"} or {"status": false,
"msg": ""}; requests as jQuery's $.ajax sends them."""

import time

import requests

from clients import background, new_channel, wait_for

SETTINGS = {"longpoll_timeout": "2s"}

JQUERY_HEADERS = {
    "Accept": "application/json, text/javascript, */*; q=0.01",
    "X-Requested-With": "XMLHttpRequest",
}


def send(srv, content):
    # $.ajax({type: 'POST', url: '/send_msg/', data: {content: ...}})
    return requests.post(srv.base + srv.seed_pub, data={"content": content},
                         headers=dict(JQUERY_HEADERS, Connection="close"),
                         timeout=10)


def get(srv, me):
    # $.ajax({url: '/get_msg/', data: {name: me}, dataType: 'JSON'})
    t = time.monotonic()
    r = requests.get(srv.base + srv.seed_sub, params={"name": me},
                     headers=dict(JQUERY_HEADERS, Connection="close"),
                     timeout=10)
    return r, time.monotonic() - t


def seed_status(srv):
    """Status of the channel the seed paths use (the default one)."""
    r = requests.get(srv.base + srv.status, params={"channel": "default"},
                     timeout=5)
    return r.json() if r.status_code == 200 else {}


def test_seed_chat_flow(server):
    alice, bob = new_channel("alice"), new_channel("bob")
    base_subs = seed_status(server).get("subscribers", 0)
    # both pages start their loop
    fa, fb = background(get, server, alice), background(get, server, bob)
    wait_for(lambda: seed_status(server).get("subscribers") == base_subs + 2)
    r = send(server, "hello from alice \u00e9")
    assert r.status_code == 200, r.text
    assert r.json()["status"] is True
    for f in (fa, fb):
        resp, dt = f.result(10)
        assert resp.status_code == 200
        assert resp.headers["Content-Type"].split(";")[0] == \
            "application/json"
        j = resp.json()
        assert j["status"] is True and j["msg"] == "hello from alice \u00e9", j
        assert dt < 1.9, "answered only at the timeout"
    # next round: both queues got the message in between -> at once
    assert send(server, "second").status_code == 200
    assert send(server, "third").status_code == 200
    for me in (alice, bob):
        got = [get(server, me)[0].json()["msg"] for _ in range(2)]
        assert got == ["second", "third"], (me, got)
    # nothing more: the timeout answer after longpoll_timeout (2s)
    fa, fb = background(get, server, alice), background(get, server, bob)
    for f in (fa, fb):
        resp, dt = f.result(10)
        assert resp.json() == {"status": False, "msg": ""}
        assert 1.8 <= dt <= 3.5, dt


def test_seed_form_encoding(server):
    me = new_channel("carol")
    assert get_now(server, me) is None
    raw = "content=a+b%26c%3Dd%0A%F0%9F%98%80"
    r = requests.post(server.base + server.seed_pub, data=raw,
                      headers={"Content-Type":
                               "application/x-www-form-urlencoded; "
                               "charset=UTF-8", "Connection": "close"},
                      timeout=10)
    assert r.status_code == 200, r.text
    j, _ = get(server, me)
    assert j.json()["msg"] == "a b&c=d\n\U0001F600"


def get_now(srv, me):
    """A registration poll that answers at once (the seed page would simply
    wait; tests use timeout=0 to be quick)."""
    r = requests.get(srv.base + srv.seed_sub,
                     params={"name": me, "timeout": "0"}, timeout=10)
    j = r.json()
    return j["msg"] if j["status"] else None


def test_seed_jquery_cache_buster_ignored(server):
    """$.ajax({cache: false}) adds `_=<timestamp>`; unknown arguments are
    ignored."""
    me = new_channel("erin")
    r = requests.get(server.base + server.seed_sub,
                     params={"name": me, "timeout": "0",
                             "_": "1764100000000"}, timeout=10)
    assert r.json() == {"status": False, "msg": ""}
    send(server, "hi erin")
    r = requests.get(server.base + server.seed_sub,
                     params={"name": me, "_": "1764100000001"}, timeout=10)
    j = r.json()
    assert j["status"] is True and j["msg"] == "hi erin", j


def test_seed_visitor_gets_only_messages_after_arrival(server):
    send(server, "before dave")
    dave = new_channel("dave")
    assert get_now(server, dave) is None
    send(server, "for dave")
    assert get_now(server, dave) == "for dave"
    assert get_now(server, dave) is None
