"""Fixtures for the hostile-input suite: the same server pool, hooks and
fixtures as tests/conformance (suite_fixtures.py), plus a bystander
subscriber that must get its message after every hostile test.
"""

import os
import sys
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
for p in (HERE, os.path.join(HERE, "..", "conformance"),
          os.path.join(HERE, "..", "integration")):
    if p not in sys.path:
        sys.path.insert(0, p)

from pool import Pool  # noqa: E402
from suite_fixtures import (  # noqa: E402,F401  (hooks and fixtures)
    selected, pytest_configure, pytest_generate_tests,
    pytest_collection_modifyitems, _stop_servers, servers, server,
    _log_check)


@pytest.fixture
def ch():
    return "hx-" + uuid.uuid4().hex[:16]


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
