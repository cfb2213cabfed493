"""nginx's own access control and limits apply to the pushq locations:
allow/deny, auth_request, limit_req, limit_conn; keep-alive for
publishers; access_log; TLS listeners (long-poll and WebSocket)."""

import asyncio
import os
import shutil
import ssl
import subprocess
import tempfile
import time

import pytest
import requests

from clients import (RawWS, http, new_channel, poll_json, publish_ok, url,
                     wait_for, wait_subscribers)
from servers import nginx


@pytest.mark.allow_log("access forbidden by rule")
def test_deny_on_publisher_allow_on_subscriber(servers):
    srv = servers.start(location_extra={
        "/pub": "deny all;",
        "/sub": "allow 127.0.0.1; deny all;",
        "/status": "allow 10.0.0.0/8; deny all;",
    })
    ch = new_channel("a")
    r = http("POST", url(srv, srv.pub, channel=ch), data=b"x")
    assert r.status_code == 403
    # the seed's publisher is not denied: its messages reach /sub
    r = http("POST", url(srv, srv.seed_pub), data=b"content=hi",
             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text
    j = poll_json(srv, "default", last_id=0, timeout=0)
    assert j["msg"] == "hi", j
    assert http("GET", url(srv, srv.status)).status_code == 403
    # a denied WebSocket gets 403 before any upgrade
    w = RawWS(srv, path=srv.pub, expect_101=False)
    assert w.error.status == 403


def test_auth_request_guards_subscriber(servers):
    srv = servers.start(location_extra={
        "/sub": "auth_request /auth;",
        "= /auth": 'internal; if ($http_x_token != "secret") '
                   '{ return 401; } return 204;',
    })
    ch = new_channel("a")
    publish_ok(srv, ch, "m")
    r = http("GET", url(srv, srv.sub, channel=ch, last_id=0, timeout=0))
    assert r.status_code == 401
    r = http("GET", url(srv, srv.sub, channel=ch, last_id=0, timeout=0),
             headers={"X-Token": "secret"})
    assert r.status_code == 200 and r.json()["msg"] == "m", r.text
    w = RawWS(srv, query={"channel": ch}, expect_101=False)
    assert w.error.status == 401
    w = RawWS(srv, query={"channel": ch}, headers={"X-Token": "secret"})
    assert wait_subscribers(srv, ch, 1)
    publish_ok(srv, ch, "ws")
    assert w.recv_text() == "ws"
    w.close_socket()


def test_limit_req_on_publisher(servers):
    srv = servers.start(
        http_extra="limit_req_zone $binary_remote_addr zone=pub:1m "
                   "rate=1r/m; limit_req_status 429; "
                   "limit_req_log_level warn;",
        location_extra={"/pub": "limit_req zone=pub burst=2 nodelay;"})
    ch = new_channel("a")
    codes = [http("POST", url(srv, srv.pub, channel=ch),
                  data=b"x").status_code for _ in range(8)]
    # one request, then a burst of 2, then 429 (the long-poll location is
    # not limited)
    assert codes == [200] * 3 + [429] * 5, codes
    assert poll_json(srv, ch, last_id=0, timeout=0, batch=10)["id"] == 3
    assert "limiting requests" in srv.log_text()


def test_limit_conn_on_subscriber(servers):
    srv = servers.start(
        longpoll_timeout="20s",
        http_extra="limit_conn_zone $binary_remote_addr zone=sub:1m; "
                   "limit_conn_status 429; limit_conn_log_level warn;",
        location_extra={"/sub": "limit_conn sub 2;"})
    ch = new_channel("a")
    a = RawWS(srv, query={"channel": ch})
    b = RawWS(srv, query={"channel": ch})
    c = RawWS(srv, query={"channel": ch}, expect_101=False)
    assert c.error.status == 429
    a.close_socket()
    b.close_socket()
    assert wait_subscribers(srv, ch, 0)
    d = RawWS(srv, query={"channel": ch})
    d.close_socket()


def test_keepalive_publisher_and_access_log(servers):
    srv = servers.start(http_extra="log_format conn '$connection "
                        "$connection_requests $status $request_uri'; "
                        "access_log logs/conn.log conn;")
    ch = new_channel("a")
    with requests.Session() as s:
        ids = [s.post(url(srv, srv.pub, channel=ch),
                      data=("k%d" % i).encode()).json()["id"]
               for i in range(20)]
    assert ids == list(range(1, 21))

    def access_lines(needle):
        # nginx writes the line after the answer went out: wait for it
        with open(os.path.join(srv.prefix, "logs", "access.log")) as f:
            return [l for l in f if needle in l]

    assert wait_for(lambda: len(access_lines("/pub?channel=" + ch)) == 20,
                    timeout=5)
    assert all('" 200 ' in l for l in access_lines("/pub?channel=" + ch))
    # keep-alive: the 20 requests used one connection
    with open(os.path.join(srv.prefix, "logs", "conn.log")) as f:
        conns = [l.split() for l in f if "/pub?channel=" + ch in l]
    assert len({c[0] for c in conns}) == 1, conns
    assert [int(c[1]) for c in conns] == list(range(1, 21)), conns
    w = RawWS(srv, query={"channel": ch})
    w.send_close(1000)
    w.expect_close()
    w.close_socket()
    assert wait_for(lambda: any('" 101 ' in l for l in
                                access_lines("/sub?channel=" + ch)),
                    timeout=5)


@pytest.fixture
def certificate():
    if not shutil.which("openssl"):
        pytest.skip("openssl command not installed")
    d = tempfile.mkdtemp(prefix="pushq-cert-")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", d + "/key.pem", "-out",
                    d + "/cert.pem", "-days", "2", "-subj", "/CN=127.0.0.1"],
                   check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_tls_listener_longpoll_and_websocket(servers, certificate):
    import websockets

    tls_port = nginx.free_port()
    srv = servers.start(max_message_size="256k", server_extra=(
        "listen 127.0.0.1:%d ssl; ssl_certificate %s/cert.pem; "
        "ssl_certificate_key %s/key.pem;" % (tls_port, certificate,
                                             certificate)))
    base = "https://127.0.0.1:%d" % tls_port
    requests.packages.urllib3.disable_warnings()
    ch = new_channel("t")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    big = "x" * 200000

    async def run():
        uri = "wss://127.0.0.1:%d/sub?channel=%s" % (tls_port, ch)
        async with websockets.connect(uri, ssl=ctx, ping_interval=None,
                                      max_size=None) as w:
            assert wait_subscribers(srv, ch, 1)
            r = requests.post(base + "/pub?channel=" + ch, data=b"secure",
                              verify=False)
            assert r.status_code == 200, r.text
            assert await asyncio.wait_for(w.recv(), 5) == "secure"
            await w.send(big)
            assert await asyncio.wait_for(w.recv(), 5) == big
            pong = await w.ping(b"p")
            await asyncio.wait_for(pong, 5)

    asyncio.run(run())
    r = requests.get(base + "/sub?channel=%s&last_id=0&timeout=0&batch=5"
                     % ch, verify=False)
    assert r.status_code == 200, r.text
    assert [m["msg"] for m in r.json()["msgs"]] == ["secure", big]


def test_http2_longpoll(servers):
    """Long-poll over HTTP/2 (h2c, prior knowledge) with curl: answered by
    a publish, and a client that goes away is forgotten at once."""
    if not shutil.which("curl"):
        pytest.skip("curl not installed")
    h2_port = nginx.free_port()
    srv = servers.start(longpoll_timeout="20s", server_extra=(
        "listen 127.0.0.1:%d http2;" % h2_port))
    ch = new_channel("h")
    base = "http://127.0.0.1:%d" % h2_port
    p = subprocess.Popen(["curl", "-s", "--http2-prior-knowledge",
                          "-w", "\\n%{http_version}",
                          base + "/sub?channel=" + ch],
                         stdout=subprocess.PIPE)
    assert wait_subscribers(srv, ch, 1)
    publish_ok(srv, ch, "over h2")
    out = p.communicate(timeout=10)[0].decode()
    body, version = out.rsplit("\n", 1)
    assert version == "2", out
    assert '"msg": "over h2"' in body, out
    # a client that gives up after 1 s: its subscriber is gone at once
    p = subprocess.Popen(["curl", "-s", "--http2-prior-knowledge", "-m", "1",
                          base + "/sub?channel=" + ch],
                         stdout=subprocess.PIPE)
    assert wait_subscribers(srv, ch, 1)
    p.communicate(timeout=10)
    assert wait_subscribers(srv, ch, 0, timeout=2)
