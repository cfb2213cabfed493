# Redis scale-out tests (issue 9): a real redis-server (Debian's, started by
# the tests on a free loopback port with no persistence), two nginx
# instances (1 and 2 workers) and one pushq-civetweb sharing it.
#
#   make test-redis
#   /usr/bin/python3 -m pytest -q tests/redis -k restart     # one part
#
# PUSHQ_KEEP=1 keeps the servers' temporary directories (logs).  The
# core's own Redis unit tests live in tests/redis/core/ (not run here).

REDIS_PYTEST := PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m pytest \
                -q -rfEx -p no:cacheprovider

.PHONY: test-redis
TEST_STEPS += test-redis

test-redis: $(OUT)/ngx_http_pushq_module.so $(OUT)/pushq-civetweb
	@command -v redis-server >/dev/null || { echo "test-redis: redis-server missing (apt-get install -y redis-server)"; exit 1; }
	$(REDIS_PYTEST) --ignore=tests/redis/core tests/redis

# The two-server benchmark (not a test step; docs/BENCHMARKS.md "Redis: two
# servers"): pushq on one server, in Redis mode on one and on two servers,
# nchan alone and in its Redis mode on two servers, in one run (~2 min).
# Results: build/bench/results-redis.{md,json}.
.PHONY: bench-redis
bench-redis: $(OUT)/pushq-loadgen $(OUT)/ngx_http_pushq_module.so
	/usr/bin/python3 bench/bench_redis.py
