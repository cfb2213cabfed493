"""CivetWeb-specific integration tests: the real pushq-civetweb program
(through tests/integration/servers/civetweb.py), the embedding example
build/out/pushq-embed-example, and build/out/tests/civetweb_attach_check
(pushq_civetweb_attach on a real CivetWeb context).  The shared SPEC
clauses live in tests/integration/ and run against CivetWeb there."""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
INTEGRATION = os.path.join(ROOT, "tests", "integration")
for p in (HERE, INTEGRATION):
    if p not in sys.path:
        sys.path.insert(0, p)

from servers import civetweb  # noqa: E402

OUT = os.path.join(ROOT, "build", "out")
PROGRAM = os.path.join(OUT, "pushq-civetweb")
EMBED = os.path.join(OUT, "pushq-embed-example")
ATTACH_CHECK = os.path.join(OUT, "tests", "civetweb_attach_check")

BAD_LOG = ("Sanitizer", "runtime error:", "terminate called", "Aborted")


def check_log(text):
    bad = [ln for ln in text.splitlines() if any(b in ln for b in BAD_LOG)]
    assert not bad, bad


@pytest.fixture
def cw_server():
    """A fresh pushq-civetweb per test; stop() returns its exit code."""
    started = []

    def start(**settings):
        srv = civetweb.start(**settings)
        started.append(srv)
        return srv
    yield start
    for srv in started:
        text = srv.log_text()
        srv.stop()
        check_log(text)
