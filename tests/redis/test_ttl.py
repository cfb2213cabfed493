"""`client_ttl` in Redis mode: a name's cursor lives in Redis and expires
client_ttl after the end of its last request, wherever that was; past it
the name is new (SPEC "Named client")."""

import time

from rutil import pub, take

SETTINGS = {"client_ttl": "1s"}


def test_name_forgotten_after_client_ttl(cluster, ch, name):
    A, B, C = cluster.a, cluster.b, cluster.c
    redis = cluster.redis
    key = "pushq:{%s}:n:%s" % (ch, name)
    take(A, ch, name)                                  # appears
    pub(B, ch, "one")
    pub(C, ch, "two")
    # used within client_ttl (on different servers): it is remembered
    time.sleep(0.6)
    assert take(C, ch, name)["id"] == 1
    time.sleep(0.6)
    assert take(B, ch, name)["id"] == 2
    assert redis.cli("EXISTS", key) == "1"
    ttl_ms = int(redis.cli("PTTL", key))
    assert 0 < ttl_ms <= 1000, ttl_ms

    # unused for more than client_ttl: forgotten, in Redis too
    time.sleep(1.6)
    assert redis.cli("EXISTS", key) == "0"
    pub(A, ch, "three")                # published while it is forgotten
    j = take(C, ch, name)              # it returns: new, so only what
    assert j["status"] is False, j     # comes after now
    assert "lost" not in j, j
    pub(B, ch, "four")
    j = take(A, ch, name)
    assert (j["id"], j["msg"]) == (4, "four"), j
