"""nginx-specific integration tests: Debian's nginx with the built module,
each server from a fresh private prefix and a free loopback port (see
tests/integration/servers/nginx.py).

After every test, every server started by it is checked: no "[alert]",
"[crit]", "[emerg]" and no "[error]" line in its error log (the module logs
client mistakes at info/warn), and no worker died.
"""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
INTEGRATION = os.path.join(os.path.dirname(HERE), "integration")
if INTEGRATION not in sys.path:
    sys.path.insert(0, INTEGRATION)

from servers import nginx  # noqa: E402

BAD = ("[alert]", "[crit]", "[emerg]", "[error]", "Sanitizer")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        # keep the prefixes (config, logs) of servers stopped from now on
        nginx.FAILED = True


class Servers:
    """Starts servers for one test and checks and stops them after it."""

    def __init__(self):
        self.started = []

    def start(self, workers=1, **kw):
        srv = nginx.start(workers=workers, **kw)
        self.started.append(srv)
        return srv

    def problems(self, allowed=()):
        out = []
        for srv in self.started:
            for line in srv.log_text().splitlines():
                if any(a in line for a in allowed):
                    continue
                if any(b in line for b in BAD):
                    out.append("%s: %s" % (srv.prefix, line))
        return out

    def stop_all(self):
        for srv in self.started:
            srv.stop()
        self.started = []


@pytest.fixture
def servers(request):
    s = Servers()
    yield s
    allowed = []
    for m in request.node.iter_markers("allow_log"):
        allowed.extend(m.args)
    problems = s.problems(allowed)
    for srv in s.started:
        if srv.proc is not None and srv.proc.poll() is not None:
            problems.append("%s: master exited" % srv.prefix)
    s.stop_all()
    if problems:
        pytest.fail("server log:\n  " + "\n  ".join(problems[:20]),
                    pytrace=False)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "allow_log(*substrings): log lines containing one of "
        "them are expected")
