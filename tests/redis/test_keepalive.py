"""Long-polls on keep-alive connections in Redis mode.

Browsers (and the seed's jQuery chat loop) send their next long-poll on
the same keep-alive connection; in Redis mode a named or `last_id` request
is answered from a take through Redis, so the request after it on that
connection must be served as on a fresh one."""

import time

import requests

from clients import background, publish
from rutil import pub, wait_local_subscribers

HTTP_TIMEOUT = 8


def get(session, srv, path, **params):
    r = session.get(srv.base + path, params=params, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, (srv.label, r.status_code, r.text)
    return r.json()


def test_named_longpolls_on_one_keepalive_connection(cluster, ch, name):
    for srv in cluster.all:
        n = "%s-%s" % (name, srv.label[0])
        with requests.Session() as s:
            j = get(s, srv, srv.sub, channel=ch, name=n, timeout=0)
            assert j["status"] is False, (srv.label, j)
            ids = [pub(cluster.a, ch, "%s-%d" % (srv.label, i))
                   for i in range(3)]
            got = []
            for _ in range(3):                 # all on one connection
                t = time.monotonic()
                try:
                    j = get(s, srv, srv.sub, channel=ch, name=n, timeout=0)
                except requests.exceptions.Timeout:
                    raise AssertionError(
                        "%s: a named long-poll after %d others on the same "
                        "keep-alive connection got no answer in %d s"
                        % (srv.label, len(got) + 1, HTTP_TIMEOUT)) from None
                assert time.monotonic() - t < 4, (srv.label, j)
                got.append(j.get("id"))
            assert got == ids, (srv.label, got, ids)
            # and a waiting one on that connection, answered by a publish
            # on another server
            f = background(get, s, srv, srv.sub, channel=ch, name=n,
                           timeout=5)
            wait_local_subscribers(srv, ch, 1)
            i = pub(cluster.b, ch, "wake %s" % srv.label)
            j = f.result(timeout=HTTP_TIMEOUT + 2)
            assert j.get("id") == i, (srv.label, j)


def test_cursor_longpolls_on_one_keepalive_connection(cluster, ch):
    ids = [pub(cluster.c, ch, "c%d" % i) for i in range(3)]
    for srv in cluster.all:
        with requests.Session() as s:
            for k in range(3):
                try:
                    j = get(s, srv, srv.sub, channel=ch, last_id=ids[k] - 1,
                            timeout=0)
                except requests.exceptions.Timeout:
                    raise AssertionError(
                        "%s: a last_id long-poll after %d others on the "
                        "same keep-alive connection got no answer in %d s"
                        % (srv.label, k, HTTP_TIMEOUT)) from None
                assert j.get("id") == ids[k], (srv.label, j)


def test_seed_chat_loop_keepalive(cluster, ch):
    """The seed's page: GET /get_msg/?name=<me> in a loop on one
    connection, POST /send_msg/ content=... on another server."""
    name = "visitor-%d" % int(time.time() * 1000)
    srv = cluster.b
    with requests.Session() as s:
        j = get(s, srv, srv.seed_sub, name=name, timeout=0)
        for i in range(3):
            r = publish(cluster.c, "default", "content=hello%d" % i,
                        content_type="application/x-www-form-urlencoded",
                        path=cluster.c.seed_pub)
            assert r.status_code == 200, r.text
        got = []
        for _ in range(3):
            try:
                j = get(s, srv, srv.seed_sub, name=name, timeout=1)
            except requests.exceptions.Timeout:
                raise AssertionError("%s: the chat loop's request %d on its "
                                     "keep-alive connection got no answer"
                                     % (srv.label, len(got) + 2)) from None
            got.append(j.get("msg"))
        assert got == ["hello0", "hello1", "hello2"], got


def test_request_ends_after_a_take(cluster, ch, name):
    """A named or last_id long-poll answered through Redis ends its
    request: with `Connection: close` the server closes the connection
    (a request left open would hold a connection per poll)."""
    import socket
    pub(cluster.a, ch, "x")
    for srv in cluster.all:
        for q in ("last_id=0&timeout=0", "name=%s&last_id=0&timeout=0" % name,
                  "name=%s&timeout=0" % name):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=3)
            try:
                s.sendall(("GET %s?channel=%s&%s HTTP/1.1\r\nHost: x\r\n"
                           "Connection: close\r\n\r\n"
                           % (srv.sub, ch, q)).encode())
                data = b""
                try:
                    while True:
                        d = s.recv(65536)
                        if not d:
                            break
                        data += d
                except socket.timeout:
                    raise AssertionError(
                        "%s: %s: the connection stays open after the answer "
                        "(%r)" % (srv.label, q, data[-60:])) from None
                assert data.startswith(b"HTTP/1.1 200"), (srv.label, data)
            finally:
                s.close()
