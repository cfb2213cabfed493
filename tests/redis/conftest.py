"""Fixtures for the Redis scale-out tests (issue 9).

Each test module gets its own redis-server (tests/redis/redis_server.py: a
free loopback port, no persistence) and one cluster sharing it:

    cluster.a   nginx, worker_processes 1
    cluster.b   nginx, worker_processes 2 (so worker 0 -- the one holding
                the subscription -- and worker 1 both serve subscribers)
    cluster.c   pushq-civetweb

all with `redis` set to that server's URL and the module's SETTINGS (a
dict, like tests/integration's).  cluster.all is [a, b, c].  For work on
one adapter, PUSHQ_REDIS_KINDS picks the three kinds (default
"nginx1,nginx2,civetweb"; e.g. "civetweb,civetweb,civetweb").  The launchers
are tests/integration/servers/{nginx,civetweb}.py.

After every test the new part of each server's log is checked (as in
tests/integration/conftest.py): no [alert]/[crit]/[emerg] or sanitizer
line, no nginx [error] line, no CivetWeb "[civetweb]" line, no 5xx other
than 503 in the access logs, and no server process died.  A test that
expects log lines (Redis going away) marks them with
@pytest.mark.allow_log(regex).
"""

import os
import re
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
INTEGRATION = os.path.join(os.path.dirname(HERE), "integration")
for p in (HERE, INTEGRATION):
    if p not in sys.path:
        sys.path.insert(0, p)

import redis_server  # noqa: E402
from clients import new_channel  # noqa: E402
from rutil import new_log  # noqa: E402
from servers import civetweb, nginx  # noqa: E402

BASE_SETTINGS = {"longpoll_timeout": "3s"}


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "allow_log(regex): server log lines matching regex are "
        "expected in this test")


def pytest_runtest_makereport(item, call):
    if call.excinfo is not None and call.when == "call":
        nginx.FAILED = True
        civetweb.FAILED = True


def start_kind(kind, settings):
    if kind.startswith("nginx"):
        return nginx.start(workers=int(kind[5:] or 1), **settings)
    if kind == "civetweb":
        return civetweb.start(**settings)
    raise ValueError("unknown server kind %r" % kind)


class Cluster:
    def __init__(self, redis, settings):
        self.redis = redis
        self.settings = dict(BASE_SETTINGS)
        self.settings.update(settings)
        self.settings["redis"] = redis.url
        self.a = self.b = self.c = None
        self.all = []

    def start(self):
        kinds = os.environ.get("PUSHQ_REDIS_KINDS",
                               "nginx1,nginx2,civetweb").split(",")
        assert len(kinds) == 3, "PUSHQ_REDIS_KINDS: three kinds"
        try:
            for letter, kind in zip("ABC", kinds):
                srv = start_kind(kind.strip(), self.settings)
                srv.label = "%s(%s)" % (letter, kind.strip())
                self.all.append(srv)
            self.a, self.b, self.c = self.all
        except Exception:
            self.stop()
            raise
        for s in self.all:
            s._log_seen = 0
            s._access_seen = 0
            s._pids = list(s.pids())
        return self

    def stop(self):
        for s in self.all:
            try:
                s.stop()
            except Exception:   # noqa: BLE001 -- stop the others anyway
                pass


@pytest.fixture(scope="module")
def redis():
    r = redis_server.start()
    yield r
    r.close()


@pytest.fixture(scope="module")
def cluster(redis, request):
    c = Cluster(redis, getattr(request.module, "SETTINGS", {})).start()
    LIVE.append(c)
    yield c
    LIVE.remove(c)
    c.stop()


@pytest.fixture
def ch():
    return new_channel("r")


@pytest.fixture
def name():
    return new_channel("n")


# --------------------------------------------------------------------------
# Log check after every test
# --------------------------------------------------------------------------

LIVE = []

BAD_ANY = ("[alert]", "[crit]", "[emerg]", "Sanitizer", "runtime error:")
ACCESS_5XX = re.compile(r'" 5(?!03)[0-9][0-9] ')
CIVETWEB_ACCESS_5XX = re.compile(r'\[access\] .*" 5(?!03)[0-9][0-9] ')


def access_text(srv):
    if srv.kind != "nginx":
        return ""
    try:
        with open(os.path.join(srv.prefix, "logs", "access.log"),
                  errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def bad_lines(srv, text, allowed):
    bad = []
    for line in text.splitlines():
        if allowed and any(re.search(a, line) for a in allowed):
            continue
        if any(b in line for b in BAD_ANY):
            bad.append(line)
        elif srv.kind == "nginx" and "[error]" in line:
            bad.append(line)
        elif srv.kind == "civetweb" and ("[civetweb]" in line or
                                         CIVETWEB_ACCESS_5XX.search(line)):
            bad.append(line)
    return bad


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(autouse=True)
def server_log_check(request):
    for c in LIVE:
        for s in c.all:
            s._log_seen = len(s.log_text())
            s._access_seen = len(access_text(s))
            s._pids = list(s.pids())
    yield
    allowed = [m.args[0] for m in request.node.iter_markers("allow_log")]
    problems = []
    for c in LIVE:
        for s in c.all:
            for line in bad_lines(s, new_log(s), allowed):
                problems.append("%s log: %s" % (s.label, line))
            acc = access_text(s)
            for line in acc[s._access_seen:].splitlines():
                if ACCESS_5XX.search(line):
                    problems.append("%s access log: %s" % (s.label, line))
            s._access_seen = len(acc)
            dead = [p for p in s._pids if not alive(p)]
            if dead:
                problems.append("%s: process(es) %s died" % (s.label, dead))
    if problems:
        pytest.fail("server logs / processes after the test:\n  "
                    + "\n  ".join(problems[:20]), pytrace=False)
