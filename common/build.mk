# The core library: every common/src/*.cpp -> build/out/libpushq.a, plus an
# ASan/UBSan build of it for the sanitizer test runs.
#
# Redis mode (pushq_redis.h): the core's redis_*.cpp read hiredis's
# redisReply (<hiredis/hiredis.h>, Debian's libhiredis-dev) but call no
# hiredis function, so libpushq.a alone needs no -lhiredis.  A program that
# makes Redis connections itself (the adapters, the Redis tests) links
# $(HIREDIS_LIBS).
HIREDIS_LIBS   := -lhiredis

CORE_SRCS      := $(wildcard common/src/*.cpp)
CORE_OBJS      := $(patsubst common/src/%.cpp,$(OBJ)/core/%.o,$(CORE_SRCS))
CORE_SAN_OBJS  := $(patsubst common/src/%.cpp,$(OBJ)/core-san/%.o,$(CORE_SRCS))
CORE_HDRS      := common/include/pushq.h common/include/pushq_redis.h \
                  $(wildcard common/src/*.hpp)

LIBPUSHQ       := $(OUT)/libpushq.a
LIBPUSHQ_SAN   := $(OUT)/san/libpushq.a

ALL_TARGETS    += $(LIBPUSHQ) $(OUT)/include/pushq.h \
                  $(OUT)/include/pushq_redis.h

$(OBJ)/core/%.o: common/src/%.cpp $(CORE_HDRS)
	@mkdir -p $(@D)
	$(CXX) $(CORE_CXXFLAGS) -c -o $@ $<

$(OBJ)/core-san/%.o: common/src/%.cpp $(CORE_HDRS)
	@mkdir -p $(@D)
	$(CXX) $(CORE_CXXFLAGS) -O1 $(SANITIZE) -c -o $@ $<

$(LIBPUSHQ): $(CORE_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(LIBPUSHQ_SAN): $(CORE_SAN_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(OUT)/include/pushq.h: common/include/pushq.h
	@mkdir -p $(@D)
	cp $< $@

$(OUT)/include/pushq_redis.h: common/include/pushq_redis.h
	@mkdir -p $(@D)
	cp $< $@
