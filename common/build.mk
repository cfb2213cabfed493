# The core library: every common/src/*.cpp -> build/out/libpushq.a, plus an
# ASan/UBSan build of it for the sanitizer test runs.

CORE_SRCS      := $(wildcard common/src/*.cpp)
CORE_OBJS      := $(patsubst common/src/%.cpp,$(OBJ)/core/%.o,$(CORE_SRCS))
CORE_SAN_OBJS  := $(patsubst common/src/%.cpp,$(OBJ)/core-san/%.o,$(CORE_SRCS))
CORE_HDRS      := common/include/pushq.h $(wildcard common/src/*.hpp)

LIBPUSHQ       := $(OUT)/libpushq.a
LIBPUSHQ_SAN   := $(OUT)/san/libpushq.a

ALL_TARGETS    += $(LIBPUSHQ) $(OUT)/include/pushq.h

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
