"""The pytest hooks and fixtures the conformance and hostile suites share
(each conftest.py imports them; pytest finds hooks and fixtures by name in
a conftest's namespace).

Every test runs against "nginx" (worker_processes 1) and "civetweb"
(pushq-civetweb); tests marked `also_nginx4` run against "nginx4"
(worker_processes 4) too.  PUSHQ_SERVERS (comma list) narrows the kinds.
After every test: no "[alert]", "[crit]", "[emerg]" or sanitizer line in
the new part of a server's log, and every server process still alive.
"""

import os
import re

import pytest

from pool import apply_bug_markers, BAD, Pool, _alive

DEFAULT_KINDS = ["nginx", "civetweb"]
ALL_KINDS = ["nginx", "nginx4", "civetweb"]


def selected(kinds):
    env = os.environ.get("PUSHQ_SERVERS", "").strip()
    if not env:
        return kinds
    want = [k.strip() for k in env.split(",") if k.strip()]
    return [k for k in kinds if k in want]


def pytest_configure(config):
    config.addinivalue_line("markers", "also_nginx4: run on nginx with 4 "
                            "workers too")
    config.addinivalue_line("markers", "civetweb_impossible(reason): "
                            "strict xfail on CivetWeb, with the reason")
    config.addinivalue_line("markers", "bug(reason, kinds=...): a known "
                            "adapter bug (strict xfail on those kinds)")
    config.addinivalue_line("markers", "allow_log(regex): expected log "
                            "lines")


def pytest_generate_tests(metafunc):
    if "kind" in metafunc.fixturenames:
        kinds = DEFAULT_KINDS
        if metafunc.definition.get_closest_marker("also_nginx4"):
            kinds = ALL_KINDS
        metafunc.parametrize("kind", selected(list(kinds)), scope="session")


def pytest_collection_modifyitems(config, items):
    apply_bug_markers(items)
    for item in items:
        m = item.get_closest_marker("civetweb_impossible")
        cs = getattr(item, "callspec", None)
        if m and cs and cs.params.get("kind") == "civetweb":
            item.add_marker(pytest.mark.xfail(
                reason="CivetWeb 1.15: " + m.args[0], strict=True))


@pytest.fixture(scope="session", autouse=True)
def _stop_servers():
    yield
    Pool.stop_all()


@pytest.fixture
def servers(kind):
    """servers(**settings) -> a server of this test's kind."""
    return lambda **s: Pool.get(kind, **s)


@pytest.fixture
def server(kind):
    return Pool.get(kind)


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
