# Integration tests: every clause of SPEC.md, one test body run against each
# server kind -- nginx (worker_processes 1), nginx4 (worker_processes 4) and
# civetweb (pushq-civetweb) -- with real clients (requests, websockets and a
# raw-socket WebSocket client).  PUSHQ_SERVERS=nginx,nginx4,civetweb (a comma
# list) selects the kinds; the default is all three:
#
#   make test-integration
#   PUSHQ_SERVERS=nginx make test-integration
#
# Debian's python3 on purpose: the pyenv python3 on PATH lacks
# python3-websockets.  pytest prints its summary line and exits non-zero
# when a test fails.

INTEGRATION_PYTEST := PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m pytest \
                      -q -rfEx -p no:cacheprovider

.PHONY: test-integration
TEST_STEPS += test-integration

test-integration: $(OUT)/ngx_http_pushq_module.so $(OUT)/pushq-civetweb
	$(INTEGRATION_PYTEST) tests/integration
