#!/usr/bin/python3
"""Soak: nginx with 4 workers under churn, publishes, reloads and long-poll
timeouts for SOAK_SECONDS (default 600); fails when memory, fds or store
use grew, or when a named client missed, repeated or reordered a message.

    make soak                                   # nice'd, ~12 minutes
    SOAK_SECONDS=60 make soak                   # a short one

Phases: a warm-up (SOAK_WARMUP s, default 60) of the full load; a quiet
settle; the START figures; the main run (SOAK_SECONDS); a quiet settle; the
END figures.  Settling = every client gone, then message_ttl and
client_ttl (SOAK_TTL s, default 30) passed so that every channel and name
expired, and the old workers of the last reload exited.  Both figures are
thus taken in the same quiet state, after the same kind of load, and must
match within the tolerances printed with them (env: SOAK_TOL_MASTER_KB,
SOAK_TOL_WORKER_KB, SOAK_TOL_FDS, SOAK_TOL_SHM).

The load, all at once (threads; clients from tests/integration/clients.py):
- named clients (SOAK_NAMED, default 8; two per channel on 4 channels), each
  switching between WebSocket sessions (format=json, 1-6 s, ended by the
  client's close or by the server's 1001 at a reload) and runs of named
  long-polls (timeout=1, some with batch=20, timing out when idle);
- a publisher, SOAK_RATE messages/s (default 20) round-robin over those
  channels, each id recorded; and a second one on short-lived fresh
  channels (channel churn);
- WebSocket churn (SOAK_WS_CHURN threads, default 4): anonymous sessions
  that read, publish over the socket and check the echo, and end with a
  close handshake, a FIN, or an RST; handshakes cut halfway;
- long-poll churn (SOAK_LP_CHURN threads, default 3): anonymous long-polls
  that time out (timeout=1 on a quiet channel: the exact timeout answer),
  that get a message, and that vanish while waiting (FIN or RST);
- `nginx -s reload` every SOAK_RELOAD_EVERY s (default 30; 0: none, so
  that START and END measure the same worker processes).

At the end of each phase every named client drains its queue and must have
received exactly the messages published on its channel in that phase, each
once, in id order, with no "lost".  Errors in the nginx log ([alert],
[crit], [emerg], [error] other than a client's mistake, a worker that died
on a signal, "open socket ... left in connection") fail the run.
Writes the figures as JSON to build/soak/last.json (SOAK_JSON).
"""

import collections
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from clients import (OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT,  # noqa
                     RawWS, http, new_channel, url)
from servers import nginx  # noqa: E402


def env_num(name, default):
    v = os.environ.get(name)
    return type(default)(v) if v not in (None, "") else default


SECONDS = env_num("SOAK_SECONDS", 600)
WARMUP = env_num("SOAK_WARMUP", 60)
RELOAD_EVERY = env_num("SOAK_RELOAD_EVERY", 30.0)
RATE = env_num("SOAK_RATE", 20.0)
NAMED = env_num("SOAK_NAMED", 8)
WS_CHURN = env_num("SOAK_WS_CHURN", 4)
LP_CHURN = env_num("SOAK_LP_CHURN", 3)
TTL = env_num("SOAK_TTL", 30)
WORKERS = 4
TOL_MASTER_KB = env_num("SOAK_TOL_MASTER_KB", 1024)
TOL_WORKER_KB = env_num("SOAK_TOL_WORKER_KB", 2048)
TOL_FDS = env_num("SOAK_TOL_FDS", 0)
TOL_SHM = env_num("SOAK_TOL_SHM", 16384)
JSON_OUT = os.environ.get("SOAK_JSON") or os.path.join(ROOT, "build", "soak",
                                                       "last.json")
HTTP_WAIT = 30.0        # a long-poll's read timeout (its own timeout is 1 s)

SETTINGS = {
    "longpoll_timeout": "10s", "message_ttl": "%ds" % TTL,
    "client_ttl": "%ds" % TTL, "buffer": "2000", "websocket_ping": "5s",
}


def log(*a):
    print("[%s]" % time.strftime("%H:%M:%S"), *a, flush=True)


# --------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------

def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for ln in f:
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1])
    except OSError:
        pass
    return None


def nfds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


def store_status(srv):
    r = http("GET", url(srv, srv.status))
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()


def fd_kinds(pid):
    """What a process's fds are: {"socket": 12, "anon_inode:[eventfd]": 4,
    "/tmp/.../error.log": 1, ...}"""
    out = collections.Counter()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            out[t.split(":[")[0] if t.startswith("socket:") else t] += 1
    except OSError:
        pass
    return dict(out)


def proc(pid):
    return {"pid": pid, "rss_kb": rss_kb(pid), "fds": nfds(pid),
            "fd_kinds": fd_kinds(pid)}


def figures(srv, quiet=False):
    """quiet: after a settle -- the status request's own connection is
    given a second to close before the fds are counted."""
    st = store_status(srv)
    if quiet:
        time.sleep(1)
    master = srv.master_pid()
    workers = srv.pids()
    return {
        "master": proc(master),
        "workers": [proc(p) for p in workers],
        "shm_used": st["memory"]["used"], "shm_total": st["memory"]["total"],
        "channels": st["channels"], "messages": st["messages"],
        "clients": st["clients"],
        "subscribers": st["subscribers"]["longpoll"]
        + st["subscribers"]["websocket"],
        "published": st["published"], "delivered": st["delivered"],
        "lost": st["lost"], "dropped_slow": st["dropped_slow"],
    }


# --------------------------------------------------------------------------
# Shared state of a phase
# --------------------------------------------------------------------------

class Phase:
    def __init__(self, name):
        self.name = name
        self.stop = threading.Event()         # load threads end
        self.stop_publish = threading.Event()
        self.lock = threading.Lock()
        self.count = collections.Counter()
        self.errors = []
        self.published = collections.defaultdict(list)   # ch -> [(id, msg)]
        self.channels = [new_channel("soak-%s" % name) for _ in range(4)]
        # WebSocket churn publishes here, never on the named clients'
        # channels (their ids are the publisher's alone)
        self.churn_channels = [new_channel("soak-churn") for _ in range(2)]
        self.reloads = []       # (began, new workers up), monotonic

    def inc(self, what, n=1):
        with self.lock:
            self.count[what] += n

    def error(self, what):
        with self.lock:
            self.count["errors"] += 1
            if len(self.errors) < 50:
                self.errors.append("%s %s" % (time.strftime("%H:%M:%S"),
                                              what))
        log("ERROR:", what)


def guarded(phase, fn, *args):
    def run():
        while not phase.stop.is_set():
            try:
                fn(phase, *args)
            except Exception as e:      # reported, and the loop goes on
                phase.error("%s: %r" % (fn.__name__, e))
                time.sleep(0.5)
    t = threading.Thread(target=run, name=fn.__name__, daemon=True)
    t.start()
    return t


# --------------------------------------------------------------------------
# Publishers
# --------------------------------------------------------------------------

def channel_last_id(srv, ch):
    r = http("GET", url(srv, srv.status, channel=ch))
    if r.status_code != 200:
        return None
    return r.json().get("last_id")


def publish_once(phase, srv, ch, msg):
    """Publishes msg; records its id.  A transport error is resolved by
    asking the channel's last id (one publisher per channel): stored or
    not, never guessed."""
    known = phase.published[ch][-1][0] if phase.published[ch] else 0
    try:
        r = http("POST", url(srv, srv.pub, channel=ch),
                 headers={"Content-Type": "text/plain"}, data=msg.encode())
    except Exception as e:
        last = channel_last_id(srv, ch)
        if last == known + 1:
            phase.published[ch].append((last, msg))
            phase.inc("publish transport error, stored")
        else:
            phase.inc("publish transport error, not stored (retried)")
        log("publish %s: %r (last_id %s)" % (ch, e, last))
        return
    if r.status_code != 200:
        phase.error("publish answered %d: %s" % (r.status_code, r.text))
        return
    j = r.json()
    if j.get("id") != known + 1:
        phase.error("publish id %s, expected %d" % (j.get("id"), known + 1))
    phase.published[ch].append((j["id"], msg))
    phase.inc("publishes (named channels)")


def publisher(phase, srv):
    seq = 0
    t0 = time.monotonic()
    while not phase.stop_publish.is_set():
        for ch in phase.channels:
            want = len(phase.published[ch])
            publish_once(phase, srv, ch, "%s #%d" % (ch, want + 1))
            seq += 1
        ahead = t0 + seq / RATE - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    phase.stop_publish.wait()
    # parked until the phase ends
    while not phase.stop.is_set():
        time.sleep(0.2)


def noise_publisher(phase, srv):
    """Fresh channels, one to three messages each: channels come and go."""
    ch = new_channel("soak-noise")
    for i in range(random.randint(1, 3)):
        r = http("POST", url(srv, srv.pub, channel=ch), data=b"noise %d" % i,
                 headers={"Content-Type": "text/plain"})
        if r.status_code != 200:
            phase.error("noise publish answered %d" % r.status_code)
        phase.inc("publishes (fresh channels)")
    time.sleep(0.2)


# --------------------------------------------------------------------------
# Named clients
# --------------------------------------------------------------------------

class Named:
    def __init__(self, phase, ch, name):
        self.phase, self.ch, self.name = phase, ch, name
        self.got = []            # (id, msg) in arrival order
        self.lost = 0

    def take(self, j):
        if "lost" in j:
            self.lost += j["lost"]
        if "msgs" in j:
            for m in j["msgs"]:
                if "lost" in m:
                    self.lost += m["lost"]
                self.got.append((m["id"], m["msg"]))
        elif j.get("status"):
            self.got.append((j["id"], j["msg"]))

    def poll(self, srv, timeout, batch=None):
        r = http("GET", url(srv, srv.sub, channel=self.ch, name=self.name,
                            timeout=timeout, batch=batch), timeout=HTTP_WAIT)
        if r.status_code != 200:
            self.phase.error("named long-poll answered %d: %s"
                             % (r.status_code, r.text[:200]))
            return None
        j = r.json()
        self.take(j)
        return j

    def longpolls(self, srv):
        for _ in range(random.randint(1, 6)):
            j = self.poll(srv, 1, random.choice((None, None, 20)))
            if j is not None and not j["status"]:
                self.phase.inc("long-poll timeouts (named)")
            self.phase.inc("long-polls (named)")
            if self.phase.stop.is_set():
                return

    def websocket(self, srv):
        ws = RawWS(srv, query={"channel": self.ch, "name": self.name,
                               "format": "json"}, timeout=10)
        self.phase.inc("websocket sessions (named)")
        try:
            code = ws_session(self.phase, ws, random.uniform(1, 6),
                              on_text=lambda d: self.take(json.loads(d)))
            self.phase.inc("websocket close %s" % code)
        finally:
            ws.close_socket()

    def loop(self, phase, srv):
        if random.random() < 0.5:
            self.websocket(srv)
        else:
            self.longpolls(srv)

    def drain(self, srv):
        for _ in range(10000):
            j = self.poll(srv, 0, 100)
            if j is None or not j["status"]:
                return
        raise AssertionError("drain did not end")


def ws_session(phase, ws, seconds, on_text=None, echo=None):
    """Reads frames for `seconds` (pongs to pings), then closes with the
    close handshake; a server close (1001 at a reload) is echoed.  Returns
    the close code the session ended with."""
    end = time.monotonic() + seconds
    sent_close = False
    while True:
        left = end - time.monotonic()
        if left <= 0 and not sent_close:
            ws.send_close(1000)
            sent_close = True
            end = time.monotonic() + 10
            continue
        try:
            f = ws.recv_frame(max(0.05, left))
        except socket.timeout:
            if sent_close:
                raise AssertionError("no close answer within 10 s")
            continue
        if f.opcode == OP_PING:
            if not sent_close:
                ws.send_frame(OP_PONG, f.payload)
            continue
        if f.opcode == OP_PONG:
            continue
        if f.opcode == OP_CLOSE:
            code = f.close_code
            if not sent_close:
                ws.send_close(code if code is not None else 1000)
            if code not in (1000, 1001):
                phase.error("websocket closed with %r" % (f,))
            return code
        if f.opcode in (OP_TEXT, OP_BINARY):
            assert f.fin, f
            if on_text:
                on_text(f.payload.decode("utf-8"))
            if echo is not None and f.payload == echo[0]:
                echo[1] = True


# --------------------------------------------------------------------------
# Churn
# --------------------------------------------------------------------------

def rst_close(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    struct.pack("ii", 1, 0))
    sock.close()


def ws_churn(phase, srv):
    way = random.random()
    ch = random.choice(phase.churn_channels if 0.15 <= way < 0.55
                       else phase.channels)
    if way < 0.15:
        # a handshake cut halfway, by FIN or RST
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        req = ("GET %s?channel=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket"
               "\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
               % (srv.sub, ch)).encode()
        s.sendall(req[:random.randint(0, len(req) - 1)])
        time.sleep(random.uniform(0, 0.3))
        (rst_close if random.random() < 0.5 else socket.socket.close)(s)
        phase.inc("websocket handshakes cut")
        return
    ws = RawWS(srv, query={"channel": ch}, timeout=10)
    phase.inc("websocket sessions (anonymous)")
    try:
        if way < 0.55:
            # reads, publishes one message over the socket, sees it come
            # back, closes with the handshake
            msg = ("ws %s" % new_channel("m")).encode()
            ws.send_text(msg)
            echo = [msg, False]
            code = ws_session(phase, ws, random.uniform(0.5, 4), echo=echo)
            if not echo[1] and code == 1000:
                phase.error("websocket publish not echoed to its sender")
            phase.inc("websocket publishes")
            phase.inc("websocket close %s" % code)
        else:
            # reads a while, then vanishes: FIN or RST, no close frame
            end = time.monotonic() + random.uniform(0.2, 3)
            while time.monotonic() < end:
                try:
                    ws.recv_frame(0.2)
                except socket.timeout:
                    pass
                except EOFError:
                    break
            if random.random() < 0.5:
                rst_close(ws.sock)
                ws.closed = True
                phase.inc("websocket vanished (RST)")
            else:
                phase.inc("websocket vanished (FIN)")
    finally:
        ws.close_socket()


TIMEOUT_ANSWER = {"status": False, "msg": ""}


def lp_churn(phase, srv):
    way = random.random()
    if way < 0.4:
        quiet = new_channel("soak-quiet")
        t = time.monotonic()
        r = http("GET", url(srv, srv.sub, channel=quiet, timeout=1),
                 timeout=HTTP_WAIT)
        t1 = time.monotonic()
        if r.status_code != 200 or r.json() != TIMEOUT_ANSWER:
            phase.error("long-poll timeout answered %d %s"
                        % (r.status_code, r.text[:200]))
        elif t1 - t < 0.9:
            # a worker that exits (reload) answers its long-polls at once:
            # the master tells the old ones once the new ones started
            if any(a <= t1 and t <= b + 1.0 for a, b in phase.reloads):
                phase.inc("long-polls answered early by a reload")
            else:
                phase.error("long-poll timeout after %.2f s" % (t1 - t))
        phase.inc("long-poll timeouts (anonymous)")
    elif way < 0.7:
        ch = random.choice(phase.channels)
        r = http("GET", url(srv, srv.sub, channel=ch, timeout=2),
                 timeout=HTTP_WAIT)
        if r.status_code != 200:
            phase.error("long-poll answered %d" % r.status_code)
        phase.inc("long-polls (anonymous)")
    else:
        ch = random.choice(phase.channels + [new_channel("soak-quiet")])
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        s.sendall(("GET %s?channel=%s HTTP/1.1\r\nHost: x\r\n\r\n"
                   % (srv.sub, ch)).encode())
        time.sleep(random.uniform(0.05, 0.6))
        if random.random() < 0.5:
            rst_close(s)
        else:
            s.close()
        phase.inc("long-polls vanished")


# --------------------------------------------------------------------------
# Reloads
# --------------------------------------------------------------------------

def reload(srv, phase=None):
    """`nginx -s reload`, then waits for a full set of new workers."""
    old = set(srv._workers(include_exiting=True))
    window = [time.monotonic(), float("inf")]     # until the new workers run
    if phase is not None:
        phase.reloads.append(window)
    p = subprocess.run([nginx.NGINX, "-p", srv.prefix + "/", "-c",
                        srv.conf_path, "-s", "reload"],
                       capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise RuntimeError("nginx -s reload: %s" % p.stderr)
    end = time.monotonic() + 30
    while time.monotonic() < end:
        now = srv.pids()
        if len(now) == WORKERS and not set(now) & old:
            window[1] = time.monotonic()
            return
        time.sleep(0.05)
    raise RuntimeError("reload: new workers did not start in 30 s")


def reloader(phase, srv):
    if RELOAD_EVERY <= 0:           # no reloads: the same workers all along
        phase.stop.wait()
        return
    if phase.stop.wait(RELOAD_EVERY):
        return
    reload(srv, phase)
    phase.inc("reloads")


# --------------------------------------------------------------------------
# A phase
# --------------------------------------------------------------------------

def run_phase(srv, name, seconds, samples):
    phase = Phase(name)
    named = []
    for i in range(NAMED):
        n = Named(phase, phase.channels[i % len(phase.channels)],
                  new_channel("soak-name"))
        n.poll(srv, 0)             # first appearance: before any publish
        named.append(n)
    log("%s: %d s of load (%d named clients on %d channels)"
        % (name, seconds, NAMED, len(phase.channels)))
    threads = [guarded(phase, publisher, srv),
               guarded(phase, noise_publisher, srv),
               guarded(phase, reloader, srv)]
    threads += [guarded(phase, n.loop, srv) for n in named]
    threads += [guarded(phase, ws_churn, srv) for _ in range(WS_CHURN)]
    threads += [guarded(phase, lp_churn, srv) for _ in range(LP_CHURN)]
    end = time.monotonic() + seconds
    next_sample = time.monotonic()
    while time.monotonic() < end:
        if time.monotonic() >= next_sample:
            f = figures(srv)
            f["t"] = time.time()
            f["phase"] = name
            samples.append(f)
            log("%s: workers rss %s kB, fds %s; master %s kB %s fds; shm "
                "%d B; channels %d, clients %d, subscribers %d; %s"
                % (name, [w["rss_kb"] for w in f["workers"]],
                   [w["fds"] for w in f["workers"]], f["master"]["rss_kb"],
                   f["master"]["fds"], f["shm_used"], f["channels"],
                   f["clients"], f["subscribers"],
                   dict(phase.count)))
            next_sample += 30
        time.sleep(min(1.0, max(0.0, end - time.monotonic())))
    phase.stop_publish.set()
    time.sleep(1)
    phase.stop.set()
    for t in threads:
        t.join(60)
        if t.is_alive():
            phase.error("thread %s did not end" % t.name)
    # every named client fetches what is left, then the check
    for n in named:
        n.drain(srv)
    verdict = check_named(phase, named)
    return phase, verdict


def check_named(phase, named):
    out = []
    for n in named:
        want = phase.published[n.ch]
        got = n.got
        ids = [i for i, _ in got]
        dup = len(ids) - len(set(ids))
        missing = len({i for i, _ in want} - set(ids))
        order = all(a < b for a, b in zip(ids, ids[1:]))
        exact = got == want
        out.append({"name": n.name, "channel": n.ch, "published": len(want),
                    "received": len(got), "duplicates": dup,
                    "missing": missing, "in_order": order, "lost": n.lost,
                    "exact": exact})
        if not exact or n.lost:
            phase.error("named client %s on %s: %d published, %d received, "
                        "%d missing, %d duplicated, in order %s, lost %d"
                        % (n.name, n.ch, len(want), len(got), missing, dup,
                           order, n.lost))
    return out


def settle(srv, phase_name):
    """No client left; channels and names expired; old workers gone."""
    log("%s: settling (ttl %d s)" % (phase_name, TTL))
    time.sleep(TTL + 2)
    end = time.monotonic() + 3 * TTL + 30
    while time.monotonic() < end:
        st = store_status(srv)
        subs = st["subscribers"]["longpoll"] + st["subscribers"]["websocket"]
        if (st["channels"] == 0 and st["clients"] == 0 and subs == 0
                and srv.wait_old_workers_gone(1)):
            break
        time.sleep(1)
    time.sleep(2)


BAD_LOG = ("[alert]", "[crit]", "[emerg]", "exited on signal",
           "left in connection")
CLIENT_ERRORS = ("client intended to send too large body",)


def log_problems(srv):
    bad = []
    for line in srv.log_text().splitlines():
        if any(b in line for b in BAD_LOG) or (
                "[error]" in line and
                not any(c in line for c in CLIENT_ERRORS)):
            bad.append(line)
    return bad


def compare(start, end):
    """[(what, start, end, tolerance, ok)]"""
    rows = []

    def row(what, a, b, tol):
        rows.append((what, a, b, tol, b is not None and a is not None
                     and b <= a + tol))
    row("master RSS (kB)", start["master"]["rss_kb"], end["master"]["rss_kb"],
        TOL_MASTER_KB)
    row("master fds", start["master"]["fds"], end["master"]["fds"], TOL_FDS)
    row("worker RSS, largest (kB)",
        max(w["rss_kb"] for w in start["workers"]),
        max(w["rss_kb"] for w in end["workers"]), TOL_WORKER_KB)
    row("worker fds, most", max(w["fds"] for w in start["workers"]),
        max(w["fds"] for w in end["workers"]), TOL_FDS)
    row("shm memory.used (B)", start["shm_used"], end["shm_used"], TOL_SHM)
    row("channels", start["channels"], end["channels"], 0)
    row("clients", start["clients"], end["clients"], 0)
    row("subscribers", start["subscribers"], end["subscribers"], 0)
    rows.append(("workers", len(start["workers"]), len(end["workers"]), 0,
                 len(end["workers"]) == WORKERS))
    return rows


def main():
    t_begin = time.time()
    samples = []
    srv = nginx.start(workers=WORKERS, **SETTINGS)
    failed = []
    result = {"settings": SETTINGS, "seconds": SECONDS, "warmup": WARMUP,
              "reload_every": RELOAD_EVERY, "rate": RATE, "named": NAMED,
              "ws_churn": WS_CHURN, "lp_churn": LP_CHURN}
    try:
        log("nginx %s, 4 workers, prefix %s" % (srv.base, srv.prefix))
        cold = figures(srv, quiet=True)
        warm, warm_named = run_phase(srv, "warmup", WARMUP, samples)
        settle(srv, "warmup")
        start = figures(srv, quiet=True)
        main_phase, main_named = run_phase(srv, "main", SECONDS, samples)
        settle(srv, "main")
        end = figures(srv, quiet=True)
        rows = compare(start, end)
        problems = log_problems(srv)
        for ph in (warm, main_phase):
            if ph.count["errors"]:
                failed.append("%s: %d error(s)" % (ph.name,
                                                   ph.count["errors"]))
        for what, a, b, tol, ok in rows:
            if not ok:
                failed.append("%s grew: %s -> %s (tolerance %s)"
                              % (what, a, b, tol))
        if problems:
            failed.append("%d bad line(s) in the nginx log"
                          % len(problems))
        result.update({
            "cold": cold, "start": start, "end": end,
            "compare": [{"what": r[0], "start": r[1], "end": r[2],
                         "tolerance": r[3], "ok": r[4]} for r in rows],
            "counts": {"warmup": dict(warm.count),
                       "main": dict(main_phase.count)},
            "named": {"warmup": warm_named, "main": main_named},
            "errors": warm.errors + main_phase.errors,
            "log_problems": problems[:50],
            "samples": samples,
            "wall_seconds": round(time.time() - t_begin),
            "failed": failed,
        })
        print()
        print("== soak: %d s main run (+%d s warm-up), 4 workers, %s, "
              "%g publishes/s on %d named clients' channels"
              % (SECONDS, WARMUP, "reload every %g s" % RELOAD_EVERY
                 if RELOAD_EVERY > 0 else "no reloads", RATE, NAMED))
        print("%-28s %14s %14s %10s" % ("", "start", "end", "tolerance"))
        for what, a, b, tol, ok in rows:
            print("%-28s %14s %14s %10s %s" % (what, a, b, "+%s" % tol,
                                               "ok" if ok else "GREW"))
        print("workers at start: %s" % [(w["rss_kb"], w["fds"])
                                         for w in start["workers"]])
        print("workers at end:   %s" % [(w["rss_kb"], w["fds"])
                                         for w in end["workers"]])
        mx = max(max(w["rss_kb"] for w in s["workers"]) for s in samples)
        print("largest worker RSS while loaded: %d kB; shm used at most %d B"
              % (mx, max(s["shm_used"] for s in samples)))
        print("main run: %s" % dict(sorted(main_phase.count.items())))
        ex = sum(1 for n in main_named if n["exact"] and not n["lost"])
        print("named clients exact (every message once, in order): %d/%d "
              "main, %d/%d warm-up; %d messages checked"
              % (ex, len(main_named),
                 sum(1 for n in warm_named if n["exact"] and not n["lost"]),
                 len(warm_named), sum(n["received"] for n in main_named)))
        if end["workers"] and start["workers"]:
            print("fds of a worker at start: %s" % start["workers"][0]
                  ["fd_kinds"])
            for w in end["workers"]:
                print("fds of worker %d at end: %s" % (w["pid"],
                                                      w["fd_kinds"]))
        for line in problems[:10]:
            print("log: " + line)
    except Exception as e:
        failed.append("soak aborted: %r" % (e,))
        srv.keep = True
        raise
    finally:
        srv.stop()
        os.makedirs(os.path.dirname(JSON_OUT), exist_ok=True)
        result["failed"] = failed
        with open(JSON_OUT, "w") as f:
            json.dump(result, f, indent=1, default=str)
        print("figures: %s; wall %d s" % (JSON_OUT, time.time() - t_begin))
    if failed:
        print("SOAK FAILED:\n  " + "\n  ".join(failed))
        return 1
    print("SOAK PASSED")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    sys.exit(main())
