"""The `pushq_redis` directive / `redis` option: URL syntax, password and
database number, the keys Redis holds (common/include/pushq_redis.h)."""

import pytest

import redis_server
from clients import poll_json, publish
from checks import assert_error
from rutil import pub, take
from servers import civetweb, nginx


def nginx_t(url):
    """`nginx -t` on a configuration with pushq_redis <url>: (rc, output)."""
    rc, out, _ = nginx.check_config(
        nginx.render_config(nginx.free_port(), 1, {"redis": url}))
    return rc, out


@pytest.mark.parametrize("url, words", [
    ("rediss://127.0.0.1:6379", ("tls",)),
    ("http://127.0.0.1:6379", ("redis://", "scheme")),
    ("redis://127.0.0.1:99999", ("port",)),
    ("redis://127.0.0.1:6379/x", ("db", "database")),
    ("redis://", ("host",)),
])
def test_bad_url_refused_by_nginx(url, words):
    rc, out = nginx_t(url)
    assert rc != 0, out
    assert "[emerg]" in out and "pushq_redis" in out, out
    assert "unknown directive" not in out, out
    assert any(w in out.lower() for w in words), (words, out)


def test_good_urls_accepted_by_nginx():
    for url in ("redis://127.0.0.1", "redis://127.0.0.1:6380/2",
                "redis://:pw@localhost:6379/0", "redis://user:pw@127.0.0.1:1/15"):
        rc, out = nginx_t(url)
        assert rc == 0, (url, out)


def test_bad_url_refused_by_civetweb():
    with pytest.raises(RuntimeError) as e:
        civetweb.start(redis="rediss://127.0.0.1:6379")
    assert "tls" in str(e.value).lower(), str(e.value)


def test_password_and_database(ch):
    """redis://:password@host:port/db: AUTH and SELECT are sent; the keys
    land in that database; a wrong password means 503, not local."""
    r = redis_server.start(password="s3cret-pw")
    srvs = []
    try:
        url = "redis://:s3cret-pw@127.0.0.1:%d/3" % r.port
        a = nginx.start(workers=1, redis=url, longpoll_timeout="2s")
        a.label = "A"
        srvs.append(a)
        c = civetweb.start(redis=url, longpoll_timeout="2s")
        c.label = "C"
        srvs.append(c)
        i = pub(a, ch, "secret")
        assert i == 1
        j = poll_json(c, ch, last_id=0, timeout=0)
        assert (j["id"], j["msg"]) == (1, "secret"), j
        assert pub(c, ch, "two") == 2
        key = "pushq:{%s}:seq" % ch
        assert r.cli("-n", "3", "EXISTS", key) == "1"
        assert r.cli("-n", "0", "EXISTS", key) == "0"

        bad = nginx.start(workers=1, longpoll_timeout="2s",
                          redis="redis://:wrong@127.0.0.1:%d/3" % r.port)
        bad.label = "bad"
        srvs.append(bad)
        assert_error(publish(bad, ch, "x"), 503)
        assert r.cli("-n", "3", "HGET", key, "seq") == "2"
    finally:
        for s in srvs:
            s.stop()
        r.close()


def test_keys_in_redis(cluster, ch, name):
    """The layout pushq_redis.h documents: seq hash, log stream with ids
    0-<id> and fields t/f/d, the name's cursor, all with an expiry."""
    A, B, C = cluster.a, cluster.b, cluster.c
    redis = cluster.redis
    take(B, ch, name)
    for i, s in enumerate((A, B, C)):
        pub(s, ch, "k%d" % i)
    assert take(C, ch, name)["id"] == 1
    pre = "pushq:{%s}:" % ch
    assert redis.cli("HGET", pre + "seq", "seq") == "3"
    assert int(redis.cli("HGET", pre + "seq", "epoch")) > 1_600_000_000_000
    assert redis.cli("XLEN", pre + "log") == "3"
    rng = redis.cli("XRANGE", pre + "log", "-", "+").split("\n")
    assert rng[0] == "0-1", rng
    assert "d" in rng and "k0" in rng and "t" in rng and "f" in rng, rng
    assert redis.cli("GET", pre + "n:" + name) == "1"
    ttl = int(redis.cli("TTL", pre + "n:" + name))
    assert 0 < ttl <= 300, ttl                       # client_ttl 5m
    for k in ("seq", "log"):
        ttl = int(redis.cli("TTL", pre + k))
        assert 0 < ttl <= 3600 + 300, (k, ttl)       # message + client ttl
    # a broadcast costs Redis one message per server: one connection per
    # server (nginx: worker 0 only) holds the pattern subscription
    clients = redis.cli("CLIENT", "LIST").splitlines()
    psub = [c for c in clients if " psub=1 " in " " + c + " "]
    assert len(psub) == 3, ("pattern subscribers (one per server)", clients)
