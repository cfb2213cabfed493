# The core's Redis scripts against a real redis-server (Debian's
# redis-server; the test starts its own on a free loopback port and kills
# it).  A cmocka program using sync hiredis, run plain and with
# ASan+UBSan against the sanitized core.

REDIS_CORE_TEST     := $(OUT)/tests-redis/test_redis_core
REDIS_CORE_TEST_SAN := $(OUT)/tests-redis/test_redis_core-san

$(REDIS_CORE_TEST): tests/redis/core/test_redis_core.c $(LIBPUSHQ) \
                    common/include/pushq_redis.h
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(LIBPUSHQ) -lcmocka $(HIREDIS_LIBS) \
	    $(CORE_LIBS)

$(REDIS_CORE_TEST_SAN): tests/redis/core/test_redis_core.c $(LIBPUSHQ_SAN) \
                        common/include/pushq_redis.h
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) $(SANITIZE) -o $@ $< $(LIBPUSHQ_SAN) -lcmocka \
	    $(HIREDIS_LIBS) $(CORE_LIBS)

.PHONY: test-redis-core
TEST_STEPS += test-redis-core

test-redis-core: $(REDIS_CORE_TEST) $(REDIS_CORE_TEST_SAN)
	$(REDIS_CORE_TEST) 2>&1
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    $(REDIS_CORE_TEST_SAN) 2>&1
