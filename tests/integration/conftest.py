"""Fixtures shared by every integration test.

Each test body runs once per server kind: "nginx" (worker_processes 1),
"nginx4" (worker_processes 4) and "civetweb" (pushq-civetweb); PUSHQ_SERVERS
(a comma list) selects some of them.  A module starts one server per kind
and settings (module scope) and every test uses a fresh random channel, so
tests do not see each other's messages.

After every test the new part of each server's log is checked: no
"[alert]", "[crit]", "[emerg]" or sanitizer line; for nginx no "[error]"
line other than those nginx itself writes for a client's mistake; for
CivetWeb no "[civetweb]" (CivetWeb's own error messages) and no 5xx other
than 503 in its access lines.  A server process that died also fails the
test.
"""

import os
import re
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from clients import new_channel  # noqa: E402

ALL_KINDS = ["nginx", "nginx4", "civetweb"]

# Every server gets these unless the module overrides them: short waits
# keep the suite fast.
BASE_SETTINGS = {"longpoll_timeout": "2s"}


def selected_kinds():
    env = os.environ.get("PUSHQ_SERVERS", "").strip()
    if not env:
        return list(ALL_KINDS)
    kinds = [k.strip() for k in env.split(",") if k.strip()]
    bad = [k for k in kinds if k not in ALL_KINDS]
    if bad:
        raise pytest.UsageError("PUSHQ_SERVERS: unknown kind(s) %s; known: %s"
                                % (", ".join(bad), ", ".join(ALL_KINDS)))
    return kinds


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "allow_log(regex): server log lines matching regex are "
        "expected in this test (e.g. the store-exhausted warning)")


def start_server(kind, settings):
    if kind in ("nginx", "nginx4"):
        from servers import nginx
        return nginx.start(workers=4 if kind == "nginx4" else 1, **settings)
    if kind == "civetweb":
        from servers import civetweb
        return civetweb.start(**settings)
    raise ValueError(kind)


@pytest.fixture(scope="module", params=selected_kinds())
def server_kind(request):
    return request.param


class ServerPool:
    """The servers of one module and kind, one per distinct settings."""

    live = []   # every server alive now (all modules), for the log check

    def __init__(self, kind, module_settings):
        self.kind = kind
        self.module_settings = module_settings
        self.servers = {}

    def get(self, **settings):
        s = dict(BASE_SETTINGS)
        s.update(self.module_settings)
        s.update(settings)
        key = tuple(sorted(s.items()))
        if key not in self.servers:
            srv = start_server(self.kind, s)
            srv._pushq_log_seen = 0
            srv._pushq_access_seen = 0
            srv._pushq_pids = list(srv.pids())
            self.servers[key] = srv
            ServerPool.live.append(srv)
        return self.servers[key]

    def stop_all(self):
        for srv in self.servers.values():
            try:
                srv.stop()
            finally:
                if srv in ServerPool.live:
                    ServerPool.live.remove(srv)
        self.servers.clear()


@pytest.fixture(scope="module")
def servers(server_kind, request):
    """servers.get(**settings): a server of this kind with the module's
    SETTINGS overridden by settings (started once per module)."""
    pool = ServerPool(server_kind, getattr(request.module, "SETTINGS", {}))
    yield pool
    pool.stop_all()


@pytest.fixture(scope="module")
def server(servers):
    """The module's server (its SETTINGS)."""
    return servers.get()


@pytest.fixture
def ch():
    """A fresh channel name."""
    return new_channel("c")


@pytest.fixture
def name():
    """A fresh client name."""
    return new_channel("n")


# --------------------------------------------------------------------------
# Log check after every test
# --------------------------------------------------------------------------

BAD_ANY = ("[alert]", "[crit]", "[emerg]", "Sanitizer", "runtime error:")

# "[error]" lines nginx itself logs when a client errs (not the module).
NGINX_CLIENT_ERRORS = (
    "client intended to send too large body",
)


# pushq-civetweb logs CivetWeb's own error messages as "[civetweb] ..." and
# its access log as "[access] ... "<request>" <status> ...".
CIVETWEB_ACCESS_5XX = re.compile(r'\[access\] .*" 5(?!03)[0-9][0-9] ')


def bad_log_lines(srv, text, allowed):
    bad = []
    for line in text.splitlines():
        if allowed and any(re.search(a, line) for a in allowed):
            continue
        if any(b in line for b in BAD_ANY):
            bad.append(line)
        elif srv.kind == "nginx" and "[error]" in line and \
                not any(c in line for c in NGINX_CLIENT_ERRORS):
            bad.append(line)
        elif srv.kind == "civetweb" and ("[civetweb]" in line or
                                         CIVETWEB_ACCESS_5XX.search(line)):
            bad.append(line)
    return bad


NGINX_ACCESS_5XX = re.compile(r'" 5(?!03)[0-9][0-9] ')


def nginx_access_text(srv):
    """nginx's access log (the launcher writes it to logs/access.log in the
    prefix): a 5xx other than 503 is an internal error even when the
    module logged nothing."""
    if srv.kind != "nginx":
        return ""
    try:
        with open(os.path.join(srv.prefix, "logs", "access.log"),
                  errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is dead
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
    return True


@pytest.fixture(autouse=True)
def server_log_check(request):
    for srv in ServerPool.live:
        srv._pushq_log_seen = len(srv.log_text())
        srv._pushq_access_seen = len(nginx_access_text(srv))
        srv._pushq_pids = list(srv.pids())
    yield
    allowed = [m.args[0] for m in request.node.iter_markers("allow_log")]
    problems = []
    for srv in list(ServerPool.live):
        text = srv.log_text()
        new = text[srv._pushq_log_seen:]
        srv._pushq_log_seen = len(text)
        for line in bad_log_lines(srv, new, allowed):
            problems.append("%s log: %s" % (srv.kind, line))
        acc = nginx_access_text(srv)
        for line in acc[getattr(srv, "_pushq_access_seen", 0):].splitlines():
            if NGINX_ACCESS_5XX.search(line):
                problems.append("nginx access log: %s" % line)
        srv._pushq_access_seen = len(acc)
        dead = [p for p in getattr(srv, "_pushq_pids", None) or srv.pids()
                if not _alive(p)]
        if dead:
            problems.append("%s: process(es) %s died" % (srv.kind, dead))
    if problems:
        pytest.fail("server log / processes after the test:\n  " +
                    "\n  ".join(problems[:20]), pytrace=False)
