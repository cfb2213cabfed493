# libFuzzer targets for the protocol core (clang, ASan + UBSan).
#
# The targets are built with clang++ straight from the core's protocol
# sources (not from libpushq.a, which g++ builds), into build/out/fuzz/.
#
#   make test-fuzz   (a TEST_STEPS entry) runs each target for
#                    FUZZ_TEST_SECONDS (14 s: about a minute in all) from
#                    its seed corpus in tests/fuzz/corpus/<target>/
#   make fuzz        runs each target for FUZZ_SECONDS (1800 s) in turn,
#                    e.g. `nice -n 19 make fuzz FUZZ_SECONDS=600`
#
# New inputs go to build/out/fuzz/corpus/<target>/ (the committed seeds are
# only read); a crash leaves build/out/fuzz/artifacts/<target>-crash-*.

FUZZ_NAMES        := ws_parser ws_handshake args json
FUZZ_CORE_NAMES   := status limits utf8 base64 sha1 urlencoded args form \
                     json prometheus ws_handshake ws_frame ws_parser
FUZZ_CXX          := clang++
FUZZ_CXXFLAGS     := -std=c++20 -O1 -g -Wall -Wextra -Werror \
                     -fno-omit-frame-pointer -fno-sanitize-recover=all \
                     -Icommon/include -Icommon/src
FUZZ_SAN          := address,undefined
FUZZ_BINS         := $(addprefix $(OUT)/fuzz/fuzz_,$(FUZZ_NAMES))
FUZZ_CORE_OBJS    := $(addprefix $(OBJ)/fuzz/,$(addsuffix .o,$(FUZZ_CORE_NAMES)))
FUZZ_TEST_SECONDS ?= 14
FUZZ_SECONDS      ?= 1800
# libFuzzer options common to both runs: 10 s per input at most, 2 GB.
FUZZ_OPTS         := -timeout=10 -rss_limit_mb=2048 -print_final_stats=1

$(OBJ)/fuzz/%.o: common/src/%.cpp $(CORE_HDRS)
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -fsanitize=fuzzer-no-link,$(FUZZ_SAN) \
	    -c -o $@ $<

$(OUT)/fuzz/fuzz_%: tests/fuzz/fuzz_%.cpp $(FUZZ_CORE_OBJS)
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -fsanitize=fuzzer,$(FUZZ_SAN) -o $@ $< \
	    $(FUZZ_CORE_OBJS) -lcrypto

# Keep the objects: make would delete them as intermediates.
.SECONDARY: $(FUZZ_CORE_OBJS)

.PHONY: fuzz-build test-fuzz fuzz
TEST_STEPS += test-fuzz

fuzz-build: $(FUZZ_BINS)

# Runs each target in turn for $(1) seconds from its seeds; on a failure
# prints the end of its log and stops.
define fuzz_run
	@mkdir -p $(OUT)/fuzz/artifacts
	@set -e; for t in $(FUZZ_NAMES); do \
	    mkdir -p $(OUT)/fuzz/corpus/$$t; \
	    echo "--- fuzz_$$t: $(1) s from tests/fuzz/corpus/$$t"; \
	    if ! $(OUT)/fuzz/fuzz_$$t $(FUZZ_OPTS) -max_total_time=$(1) \
	        -artifact_prefix=$(OUT)/fuzz/artifacts/$$t- \
	        $(OUT)/fuzz/corpus/$$t tests/fuzz/corpus/$$t \
	        > $(OUT)/fuzz/$$t.log 2>&1; then \
	        tail -n 60 $(OUT)/fuzz/$$t.log; \
	        echo "fuzz_$$t FAILED (log: $(OUT)/fuzz/$$t.log)"; exit 1; \
	    fi; \
	    grep -E '^(stat::number_of_executed_units|stat::new_units_added)' \
	        $(OUT)/fuzz/$$t.log | tr '\n' ' '; echo; \
	done
endef

test-fuzz: $(FUZZ_BINS)
	$(call fuzz_run,$(FUZZ_TEST_SECONDS))

fuzz: $(FUZZ_BINS)
	$(call fuzz_run,$(FUZZ_SECONDS))
