"""A short storm: WebSockets (named, anonymous, JSON, slow readers that
never read, clients vanishing mid-frame), long-polls (some given up by
the client), publishers, client publishes and three reloads, all at once
on 4 workers.  Afterwards: no worker died, nothing but info/warn in the
log, no subscriber left counted, and the store still works."""

import random
import socket
import threading
import time

from clients import (RawWS, channel_stats, encode_frame, http, new_channel,
                     publish_ok, url, wait_for)


def test_storm_with_reloads(servers):
    srv = servers.start(workers=4, longpoll_timeout="2s",
                        websocket_ping="1s", websocket_max_backlog="32k",
                        buffer=50)
    chs = [new_channel("s") for _ in range(3)]
    stop = time.monotonic() + 8
    rnd = random.Random(7)

    def ws_client(i):
        r = random.Random(i)
        while time.monotonic() < stop:
            try:
                q = {"channel": r.choice(chs)}
                if i % 2:
                    q["name"] = "ws%d" % i
                if i % 3 == 0:
                    q["format"] = "json"
                slow = i % 7 == 0
                w = RawWS(srv, query=q, rcvbuf=2048 if slow else None,
                          timeout=5)
                # slow readers stay to the end, the others come and go
                end = stop if slow else time.monotonic() + r.uniform(0.2, 2)
                while time.monotonic() < end:
                    if slow:
                        time.sleep(0.2)
                        continue
                    if i % 5 == 0 and r.random() < 0.05:
                        w.send_text("from %d" % i)
                    if r.random() < 0.01:
                        # vanish in the middle of a frame
                        w.send_raw(encode_frame(0x1, b"x" * 100)[:20])
                        break
                    try:
                        f = w.recv_frame(timeout=0.3)
                    except socket.timeout:
                        continue
                    if f.opcode == 0x9:
                        w.send_frame(0xA, f.payload)
                    elif f.opcode == 0x8:
                        break
                if r.random() < 0.5:
                    w.send_close(1000)
                w.close_socket()
            except (EOFError, OSError, AssertionError):
                pass

    def lp_client(i):
        r = random.Random(100 + i)
        while time.monotonic() < stop:
            try:
                http("GET", url(srv, srv.sub, channel=r.choice(chs),
                                name="lp%d" % (i % 4),
                                batch=r.choice([None, 5])),
                     timeout=r.choice([0.3, 5]))
            except Exception:
                pass

    def publisher():
        r = random.Random(rnd.random())
        while time.monotonic() < stop:
            try:
                http("POST", url(srv, srv.pub, channel=r.choice(chs)),
                     data=b"p" * r.randint(0, 3000))
            except Exception:
                pass
            time.sleep(0.002)

    threads = ([threading.Thread(target=ws_client, args=(i,))
                for i in range(24)]
               + [threading.Thread(target=lp_client, args=(i,))
                  for i in range(8)]
               + [threading.Thread(target=publisher) for _ in range(2)])
    for t in threads:
        t.start()
    for _ in range(3):
        time.sleep(2)
        srv.reload()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)

    assert srv.wait_old_workers_gone()
    for ch in chs:
        assert wait_for(lambda: channel_stats(srv, ch)["subscribers"] == 0,
                        timeout=10), channel_stats(srv, ch)
    # the readers that never read were dropped for their backlog
    st = http("GET", url(srv, srv.status)).json()
    assert st["dropped_slow"] > 0, st
    # still serving, ids going on
    last = channel_stats(srv, chs[0])["last_id"]
    assert publish_ok(srv, chs[0], "after")["id"] == last + 1
    assert "worker process" not in "".join(
        l for l in srv.log_text().splitlines() if "exited on signal" in l)
