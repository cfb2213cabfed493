# The CivetWeb plugin: civetweb_plugin/src/*.cpp -> build/out/libpushq_civetweb.a
# (link it with libpushq.a), the ready server build/out/pushq-civetweb and
# the embedding example build/out/pushq-embed-example.

CW_SRCS      := $(wildcard civetweb_plugin/src/*.cpp)
CW_OBJS      := $(patsubst civetweb_plugin/src/%.cpp,$(OBJ)/civetweb/%.o,$(CW_SRCS))
CW_HDRS      := civetweb_plugin/include/pushq_civetweb.h \
                common/include/pushq_redis.h \
                civetweb_plugin/include/pushq_civetweb.hpp \
                $(wildcard civetweb_plugin/src/*.hpp) common/include/pushq.h
CW_CXXFLAGS  := -std=c++20 -O2 -g -Wall -Wextra -Werror -pthread \
                -Icommon/include -Icivetweb_plugin/include
CW_CFLAGS    := -std=c11 -O2 -g -Wall -Wextra -Werror -pthread \
                -Icommon/include -Icivetweb_plugin/include
# hiredis (Redis mode, option redis); common/build.mk may define it first.
HIREDIS_LIBS ?= -lhiredis
# libpushq_civetweb.a, then libpushq.a, then what both need.
CW_LIBS      := $(OUT)/libpushq_civetweb.a $(LIBPUSHQ) -lcivetweb \
                $(HIREDIS_LIBS) $(CORE_LIBS)

LIBPUSHQ_CW  := $(OUT)/libpushq_civetweb.a

ALL_TARGETS  += $(LIBPUSHQ_CW) $(OUT)/pushq-civetweb $(OUT)/pushq-embed-example \
                $(OUT)/include/pushq_civetweb.h $(OUT)/include/pushq_civetweb.hpp

$(OBJ)/civetweb/%.o: civetweb_plugin/src/%.cpp $(CW_HDRS)
	@mkdir -p $(@D)
	$(CXX) $(CW_CXXFLAGS) -c -o $@ $<

$(LIBPUSHQ_CW): $(CW_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(OUT)/pushq-civetweb: civetweb_plugin/pushq_civetweb_main.cpp $(LIBPUSHQ_CW) $(LIBPUSHQ) $(CW_HDRS)
	@mkdir -p $(@D)
	$(CXX) $(CW_CXXFLAGS) -o $@ $< $(CW_LIBS)

$(OUT)/pushq-embed-example: civetweb_plugin/examples/embed.c $(LIBPUSHQ_CW) $(LIBPUSHQ) $(CW_HDRS)
	@mkdir -p $(@D)
	$(CC) $(CW_CFLAGS) -o $@ $< $(CW_LIBS)

$(OUT)/include/pushq_civetweb.h: civetweb_plugin/include/pushq_civetweb.h
	@mkdir -p $(@D)
	cp $< $@

$(OUT)/include/pushq_civetweb.hpp: civetweb_plugin/include/pushq_civetweb.hpp
	@mkdir -p $(@D)
	cp $< $@

.PHONY: civetweb test-civetweb
civetweb: $(LIBPUSHQ_CW) $(OUT)/pushq-civetweb $(OUT)/pushq-embed-example \
          $(OUT)/include/pushq_civetweb.h $(OUT)/include/pushq_civetweb.hpp

TEST_STEPS += test-civetweb

test-civetweb: $(OUT)/pushq-civetweb $(OUT)/pushq-embed-example $(OUT)/tests/civetweb_attach_check $(OUT)/tests/civetweb_wrapper_check
	/usr/bin/python3 -m pytest -q tests/civetweb

# A tiny program for tests/civetweb: attach with the options on its command
# line, print the outcome.
$(OUT)/tests/civetweb_attach_check: tests/civetweb/attach_check.c $(LIBPUSHQ_CW) $(LIBPUSHQ) $(CW_HDRS)
	@mkdir -p $(@D)
	$(CC) $(CW_CFLAGS) -o $@ $< $(CW_LIBS)

# The C++ wrapper on a real CivetServer (libcivetweb-cpp).
$(OUT)/tests/civetweb_wrapper_check: tests/civetweb/wrapper_check.cpp $(LIBPUSHQ_CW) $(LIBPUSHQ) $(CW_HDRS)
	@mkdir -p $(@D)
	$(CXX) $(CW_CXXFLAGS) -o $@ $< $(OUT)/libpushq_civetweb.a $(LIBPUSHQ) -lcivetweb-cpp -lcivetweb $(HIREDIS_LIBS) $(CORE_LIBS)
