"""Fixtures for the WebSocket conformance suite (the shared hooks and
fixtures are in suite_fixtures.py).

Servers are started once per kind and settings for the whole session;
every test uses a fresh channel, on which the client is its own echo
(a WebSocket client's published message comes back to it).
"""

import os
import sys
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
INTEGRATION = os.path.join(HERE, "..", "integration")
for p in (HERE, INTEGRATION):
    if p not in sys.path:
        sys.path.insert(0, p)

from suite_fixtures import (  # noqa: E402,F401  (hooks and fixtures)
    selected, pytest_configure, pytest_generate_tests,
    pytest_collection_modifyitems, _stop_servers, servers, server,
    _log_check)


@pytest.fixture
def ch():
    return "cf-" + uuid.uuid4().hex[:16]
