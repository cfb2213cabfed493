# Unit tests: every tests/unit/test_*.c / test_*.cpp is one cmocka program,
# built twice: plain, and with ASan+UBSan against the sanitized core.

UNIT_C_SRCS   := $(wildcard tests/unit/test_*.c)
UNIT_CXX_SRCS := $(wildcard tests/unit/test_*.cpp)
UNIT_NAMES    := $(basename $(notdir $(UNIT_C_SRCS) $(UNIT_CXX_SRCS)))
UNIT_BINS     := $(addprefix $(OUT)/tests/,$(UNIT_NAMES))
UNIT_SAN_BINS := $(addprefix $(OUT)/tests-san/,$(UNIT_NAMES))
UNIT_LIBS     := -lcmocka $(CORE_LIBS)

$(OUT)/tests/%: tests/unit/%.c $(LIBPUSHQ) $(wildcard tests/unit/*.h)
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(LIBPUSHQ) $(UNIT_LIBS)

$(OUT)/tests/%: tests/unit/%.cpp $(LIBPUSHQ) $(wildcard tests/unit/*.h)
	@mkdir -p $(@D)
	$(CXX) $(TEST_CXXFLAGS) -Icommon/src -o $@ $< $(LIBPUSHQ) $(UNIT_LIBS)

$(OUT)/tests-san/%: tests/unit/%.c $(LIBPUSHQ_SAN) $(wildcard tests/unit/*.h)
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) $(SANITIZE) -o $@ $< $(LIBPUSHQ_SAN) $(UNIT_LIBS)

$(OUT)/tests-san/%: tests/unit/%.cpp $(LIBPUSHQ_SAN) $(wildcard tests/unit/*.h)
	@mkdir -p $(@D)
	$(CXX) $(TEST_CXXFLAGS) -Icommon/src $(SANITIZE) -o $@ $< $(LIBPUSHQ_SAN) $(UNIT_LIBS)

.PHONY: test-unit test-unit-san
TEST_STEPS += test-unit test-unit-san

# cmocka prints its summary on stderr; each binary's exit code is its
# number of failed tests.
test-unit: $(UNIT_BINS)
	@set -e; for t in $^; do echo "--- $$t"; $$t 2>&1; done

test-unit-san: $(UNIT_SAN_BINS)
	@set -e; for t in $^; do echo "--- $$t (asan+ubsan)"; \
	    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $$t 2>&1; done
