"""Fixtures for the hostile-input suite: the same server pool as
tests/conformance (one server per kind and settings for the session), run
against "nginx" (1 worker) and "civetweb"; tests marked `also_nginx4` run
against "nginx4" too.  PUSHQ_SERVERS (comma list) narrows the kinds.

After every test: no "[alert]", "[crit]", "[emerg]" or sanitizer line in
the new part of a server's log, and every server process still alive.
"""

import os
import re
import sys
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
for p in (HERE, os.path.join(HERE, "..", "conformance"),
          os.path.join(HERE, "..", "integration")):
    if p not in sys.path:
        sys.path.insert(0, p)

from pool import apply_bug_markers, BAD, Pool, _alive  # noqa: E402


def selected(kinds):
    env = os.environ.get("PUSHQ_SERVERS", "").strip()
    if not env:
        return kinds
    want = [k.strip() for k in env.split(",") if k.strip()]
    return [k for k in kinds if k in want]


def pytest_configure(config):
    config.addinivalue_line("markers", "also_nginx4: run on nginx with 4 "
                            "workers too")
    config.addinivalue_line("markers", "bug(reason, kinds=...): a known "
                            "adapter bug (strict xfail on those kinds)")
    config.addinivalue_line("markers", "allow_log(regex): expected log "
                            "lines")


def pytest_generate_tests(metafunc):
    if "kind" in metafunc.fixturenames:
        kinds = ["nginx", "civetweb"]
        if metafunc.definition.get_closest_marker("also_nginx4"):
            kinds = ["nginx", "nginx4", "civetweb"]
        metafunc.parametrize("kind", selected(kinds), scope="session")


def pytest_collection_modifyitems(config, items):
    apply_bug_markers(items)


@pytest.fixture(scope="session", autouse=True)
def _stop_servers():
    yield
    Pool.stop_all()


@pytest.fixture
def servers(kind):
    return lambda **s: Pool.get(kind, **s)


@pytest.fixture
def server(kind):
    return Pool.get(kind)


@pytest.fixture
def ch():
    return "hx-" + uuid.uuid4().hex[:16]


@pytest.fixture(autouse=True)
def _log_check(request):
    seen = {id(s): len(s.log_text()) for s in Pool.servers.values()}
    yield
    allowed = [m.args[0] for m in request.node.iter_markers("allow_log")]
    problems = []
    for srv in Pool.servers.values():
        text = srv.log_text()
        for line in text[seen.get(id(srv), 0):].splitlines():
            if any(b in line for b in BAD) and \
                    not any(re.search(a, line) for a in allowed):
                problems.append("%s: %s" % (srv.pushq_kind, line))
        dead = [p for p in srv.pushq_pids if not _alive(p)]
        if dead:
            problems.append("%s: process(es) %s died"
                            % (srv.pushq_kind, dead))
            srv.pushq_pids = list(srv.pids())
    if problems:
        pytest.fail("server log / processes:\n  " + "\n  ".join(problems[:20]),
                    pytrace=False)


class Bystander:
    """A WebSocket subscriber on the default server of a kind that lives
    through the whole session: after every hostile test a message is
    published to it and must arrive at once, next in sequence."""

    conns = {}

    @classmethod
    def check(cls, kind):
        from cases import connect
        from util import publish
        srv = Pool.get(kind)
        entry = cls.conns.get(kind)
        if entry is None or entry[0] is not srv:
            ch = "bystander-" + uuid.uuid4().hex[:8]
            entry = [srv, connect(srv, ch), ch, 0]
            cls.conns[kind] = entry
        srv, ws, ch, n = entry
        entry[3] = n + 1
        st, h, body = publish(srv, ch, b"bystander %d" % n)
        assert st == 200, body
        while True:
            f = ws.recv_frame(3.0)
            if f.opcode == 0x9:           # the server's keep-alive ping
                ws.send_frame(0xA, f.payload)
                continue
            break
        assert f.payload == b"bystander %d" % n, \
            "the bystander subscriber got %r, expected message %d" % (f, n)


@pytest.fixture(autouse=True)
def _bystander(request):
    yield
    if "kind" in request.fixturenames:
        kind = request.getfixturevalue("kind")
        Bystander.check(kind)
