# Benchmarks: not test steps.  `make bench-core` builds and runs the core
# benchmark (publish cost against the number of named clients, memory per
# client and per message); the figures go into README.md "The store".

BENCH_CORE     := $(OUT)/bench/core_bench
ALL_TARGETS    += $(BENCH_CORE)

$(BENCH_CORE): bench/core_bench.cpp $(LIBPUSHQ)
	@mkdir -p $(@D)
	$(CXX) -std=c++20 -O2 -g -Wall -Wextra -Werror -Icommon/include \
	    -o $@ $< $(LIBPUSHQ) $(CORE_LIBS)

.PHONY: bench-core
bench-core: $(BENCH_CORE)
	$(BENCH_CORE)
