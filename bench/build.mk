# Benchmarks: not test steps (docs/BENCHMARKS.md).
#
#   make bench-core    the core alone: publish cost against the number of
#                      named clients, memory per client and per message
#   make bench-quick   pushq (nginx 1 and 2 workers, pushq-civetweb) against
#                      nchan, small workloads, about 2 minutes
#   make bench         the whole set (a few rounds; well under 20 minutes);
#                      installs Debian's libnginx-mod-nchan if missing
#
# Results: build/bench/results-{quick,full}.{json,md}.

BENCH_CORE     := $(OUT)/bench/core_bench
BENCH_LOADGEN  := $(OUT)/pushq-loadgen
ALL_TARGETS    += $(BENCH_CORE) $(BENCH_LOADGEN)

$(BENCH_CORE): bench/core_bench.cpp $(LIBPUSHQ)
	@mkdir -p $(@D)
	$(CXX) -std=c++20 -O2 -g -Wall -Wextra -Werror -Icommon/include \
	    -o $@ $< $(LIBPUSHQ) $(CORE_LIBS)

$(BENCH_LOADGEN): bench/loadgen.cpp
	@mkdir -p $(@D)
	$(CXX) -std=c++20 -O2 -g -Wall -Wextra -Werror -o $@ $<

.PHONY: bench-core bench bench-quick
bench-core: $(BENCH_CORE)
	$(BENCH_CORE)

BENCH_DEPS := $(BENCH_CORE) $(BENCH_LOADGEN) $(OUT)/ngx_http_pushq_module.so \
              $(OUT)/pushq-civetweb

bench-quick: $(BENCH_DEPS)
	/usr/bin/python3 bench/bench.py --quick

bench: $(BENCH_DEPS)
	/usr/bin/python3 bench/bench.py --full
