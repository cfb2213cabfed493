"""Directives at work: variables in pushq_channel/pushq_client, limits
merged http -> server -> location, subscriber transports per location."""

import json

from clients import (RawWS, http, new_channel, poll_json, publish_ok, url,
                     wait_subscribers)

ROOM_LOCATIONS = {
    "~ ^/say/(?<room>[a-z0-9-]+)$":
        "pushq_publisher; pushq_channel room-$room; pushq_buffer 3;",
    "~ ^/listen/(?<room>[a-z0-9-]+)$":
        "pushq_subscriber; pushq_channel room-$room; "
        "pushq_client $cookie_visitor;",
}


def test_channel_and_client_from_variables(servers):
    srv = servers.start(location_extra=ROOM_LOCATIONS)
    room = new_channel("r")
    cookie = {"Cookie": "visitor=alice-1"}

    # the name comes from the cookie: its first appearance
    r = http("GET", srv.base + "/listen/%s?timeout=0" % room, headers=cookie)
    assert r.status_code == 200 and r.json()["status"] is False, r.text

    for i in range(5):
        r = http("POST", srv.base + "/say/%s" % room, data=b"m%d" % i)
        assert r.status_code == 200, r.text
        assert r.json()["channel"] == "room-" + room, r.text

    # the publisher location keeps 3: the name lost 2
    r = http("GET", srv.base + "/listen/%s?timeout=0&batch=10" % room,
             headers=cookie)
    j = r.json()
    assert [m["msg"] for m in j["msgs"]] == ["m2", "m3", "m4"], j
    assert j["lost"] == 2, j
    assert j["channel"] == "room-" + room

    # the same channel through the plain locations
    j = poll_json(srv, "room-" + room, last_id=0, timeout=0, batch=10)
    assert [m["msg"] for m in j["msgs"]] == ["m2", "m3", "m4"], j

    # WebSocket on the variable location, named by the cookie
    w = RawWS(srv, path="/listen/" + room, query={"format": "json"},
              headers=cookie)
    assert wait_subscribers(srv, "room-" + room, 1)
    http("POST", srv.base + "/say/%s" % room, data=b"live")
    f = json.loads(w.recv_text())
    assert f["msg"] == "live" and f["channel"] == "room-" + room, f
    w.close_socket()

    # a variable that gives a bad name is the client's mistake: 400
    r = http("GET", srv.base + "/listen/%s?timeout=0" % room,
             headers={"Cookie": "visitor=bad%20name"})
    assert r.status_code == 400, r.text
    assert "name" in r.json()["error"]


def test_limits_merge_http_server_location(servers):
    srv = servers.start(buffer=2, server_extra="pushq_buffer 4;",
                        location_extra={"/send_msg/": "pushq_buffer 6;"})
    ch = new_channel("m")
    for i in range(10):
        publish_ok(srv, ch, "p%d" % i)                  # server: 4
    j = poll_json(srv, ch, last_id=0, timeout=0, batch=20)
    assert len(j["msgs"]) == 4, j
    ch2 = new_channel("m")
    for i in range(10):
        r = http("POST", url(srv, srv.seed_pub, channel=ch2),
                 data=b"content=s%d" % i,
                 headers={"Content-Type":
                          "application/x-www-form-urlencoded"})
        assert r.status_code == 200
    j = poll_json(srv, ch2, last_id=0, timeout=0, batch=20)
    assert len(j["msgs"]) == 6, j                       # location: 6


def test_transports_per_location(servers):
    srv = servers.start(subscriber="websocket", location_extra={
        "= /lp": "pushq_subscriber longpoll;",
    })
    ch = new_channel("t")
    # /sub is WebSocket only: a plain GET is 426 with the version
    r = http("GET", url(srv, srv.sub, channel=ch))
    assert r.status_code == 426, r.text
    assert r.headers["Sec-WebSocket-Version"] == "13"
    assert r.json()["status"] is False
    # /lp is long-poll only: an Upgrade is 400
    w = RawWS(srv, path="/lp", query={"channel": ch}, expect_101=False)
    assert w.error.status == 400
    r = http("GET", url(srv, "/lp", channel=ch, timeout=0))
    assert r.status_code == 200 and r.json() == {"status": False, "msg": ""}
