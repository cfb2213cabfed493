# The integration suite (tests/integration, kind "nginx": one worker), the
# reload tests (tests/nginx/test_reload.py: 4 workers, reloads under
# traffic, graceful stop) and two Redis-mode files (tests/redis: three nginx
# servers sharing a redis-server) with nginx -- masters and workers -- under
# valgrind memcheck: no invalid access, no uninitialised use, no leak.
# nginx forks its workers without exec, so they run under memcheck as the
# master does; each process writes build/valgrind/run/vg.<pid>.log, and
# tests/valgrind/check.py fails the step on any error that
# tests/valgrind/nginx.supp (nginx's own and valgrind's, each entry says
# why) does not cover, or on a process that did not exit under valgrind.
# PUSHQ_TIME_FACTOR stretches the launcher's waits, not any assertion.
# The module is copied first (a rebuild by someone else during the run
# does not change it between servers).
#
#   make test-valgrind                       # ~1.5 minutes here
#   VALGRIND_TESTS=tests/integration/test_named.py make test-valgrind

.PHONY: test-valgrind
TEST_STEPS += test-valgrind

VALGRIND_DIR   := build/valgrind/run
VALGRIND_TESTS ?= tests/integration tests/nginx/test_reload.py
# a pytest run of its own (test file names repeat across the suites)
VALGRIND_REDIS_TESTS ?= tests/redis/test_broadcast.py tests/redis/test_named.py
VALGRIND_OPTS  := --tool=memcheck --leak-check=full \
                  --show-leak-kinds=definite,possible \
                  --errors-for-leak-kinds=definite,possible \
                  --error-exitcode=99 --keep-debuginfo=yes --num-callers=40 \
                  --show-error-list=yes --gen-suppressions=all \
                  --suppressions=$(abspath tests/valgrind/nginx.supp) \
                  --log-file=$(abspath $(VALGRIND_DIR))/vg.%p.log
VALGRIND_ENV   := PUSHQ_SERVERS=nginx PUSHQ_REDIS_KINDS=nginx,nginx,nginx \
                  PUSHQ_TIME_FACTOR=3 \
                  PUSHQ_NGINX_WRAPPER='valgrind $(VALGRIND_OPTS)' \
                  PUSHQ_NGINX_MODULE=$(abspath $(VALGRIND_DIR))/ngx_http_pushq_module.so \
                  PYTHONDONTWRITEBYTECODE=1

test-valgrind: $(OUT)/ngx_http_pushq_module.so
	rm -rf $(VALGRIND_DIR) && mkdir -p $(VALGRIND_DIR)
	cp $(OUT)/ngx_http_pushq_module.so $(VALGRIND_DIR)/
	@rc=0; $(VALGRIND_ENV) /usr/bin/python3 -m pytest -q -rfEx \
	    -p no:cacheprovider $(VALGRIND_TESTS) || rc=$$?; \
	if [ -n "$(VALGRIND_REDIS_TESTS)" ]; then \
	    $(VALGRIND_ENV) /usr/bin/python3 -m pytest -q -rfEx \
	    -p no:cacheprovider $(VALGRIND_REDIS_TESTS) || rc=$$?; fi; \
	/usr/bin/python3 tests/valgrind/check.py $(VALGRIND_DIR) || rc=1; \
	exit $$rc
