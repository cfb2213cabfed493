"""`lost` counts in Redis mode (SPEC "Lost"): a named or cursor client that
fell further behind than the buffer (here 5 messages) is told how many it
missed, wherever it asks, and then goes on in order."""

from clients import poll_json
from rutil import messages_of, pub, take, ws_json, ws_recv_n

SETTINGS = {"buffer": 5}


def test_named_client_behind_the_buffer(cluster, ch, name):
    A, B, C = cluster.a, cluster.b, cluster.c
    take(A, ch, name)                        # appears before the first
    ids = [pub(cluster.all[i % 3], ch, "L%d" % i) for i in range(12)]
    assert ids == list(range(1, 13)), ids
    # ids 1..7 are gone (the buffer keeps 8..12): asked on C
    j = take(C, ch, name)
    assert j["status"] is True, j
    assert j.get("lost") == 7, j
    assert (j["id"], j["msg"]) == (8, "L7"), j
    # the rest, on B then A, with no lost count
    j = take(B, ch, name, batch=2)
    assert [m["id"] for m in j["msgs"]] == [9, 10], j
    assert "lost" not in j, j
    j = take(A, ch, name, batch=10)
    assert [m["id"] for m in j["msgs"]] == [11, 12], j
    assert "lost" not in j, j
    assert not take(C, ch, name)["status"]


def test_cursor_client_behind_the_buffer(cluster, ch):
    A, B = cluster.a, cluster.b
    for i in range(9):
        pub(A, ch, "c%d" % i)
    j = poll_json(B, ch, last_id=2, batch=100, timeout=0)
    assert j.get("lost") == 2, j               # 3 and 4 are gone
    assert [m["id"] for m in j["msgs"]] == [5, 6, 7, 8, 9], j
    j = poll_json(cluster.c, ch, last_id=0, timeout=0)
    assert j.get("lost") == 4 and j["id"] == 5, j


def test_lost_over_websocket(cluster, ch, name):
    """A named WebSocket on another server: the lost count rides on its
    first frame (format=json), then the kept messages follow in order."""
    A, B = cluster.a, cluster.b
    take(A, ch, name)
    for i in range(8):
        pub(B, ch, "w%d" % i)
    ws = ws_json(A, ch, name=name)
    try:
        got = ws_recv_n(ws, 5)
        assert [m["id"] for m in got] == [4, 5, 6, 7, 8], got
        assert got[0].get("lost") == 3, got
        assert all("lost" not in m for m in got[1:]), got
    finally:
        ws.close_socket()


def test_stream_is_trimmed_to_the_buffer(cluster, ch):
    """Redis keeps no more than `buffer` messages of the channel."""
    for i in range(20):
        pub(cluster.all[i % 3], ch, "t%d" % i)
    assert int(cluster.redis.cli("XLEN", "pushq:{%s}:log" % ch)) == 5
    j = poll_json(cluster.c, ch, last_id=15, batch=100, timeout=0)
    assert [m for m in messages_of(j)] == [(16, "t15"), (17, "t16"),
                                           (18, "t17"), (19, "t18"),
                                           (20, "t19")], j
