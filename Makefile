# pushq -- top-level build.
#
#   make        builds everything into build/out/
#   make test   builds and runs every test suite (unit, sanitizers, fuzz,
#               integration against real nginx and CivetWeb)
#   make demo   builds and starts the chat demo (nginx on 127.0.0.1:8080)
#
# Each part of the tree has its own build.mk, included below; it appends its
# outputs to ALL_TARGETS and its test steps to TEST_STEPS (run in order).

.DEFAULT_GOAL := all
SHELL        := /bin/bash

OUT          := build/out
OBJ          := build/obj
CC           := gcc
CXX          := g++

# The core: C++20, position independent (it is linked into an nginx .so),
# warnings are errors, only pushq_* exported.
CORE_CXXFLAGS := -std=c++20 -fPIC -O2 -g -Wall -Wextra -Werror \
                 -fvisibility=hidden -fvisibility-inlines-hidden \
                 -Icommon/include
TEST_CFLAGS   := -std=c11 -O1 -g -Wall -Wextra -Werror -Icommon/include
TEST_CXXFLAGS := -std=c++20 -O1 -g -Wall -Wextra -Werror -Icommon/include
# What a program linking libpushq.a needs besides it.
CORE_LIBS     := -lcrypto -lpthread -lstdc++
SANITIZE      := -fsanitize=address,undefined -fno-omit-frame-pointer \
                 -fno-sanitize-recover=all

ALL_TARGETS  :=
TEST_STEPS   :=

include common/build.mk
include $(wildcard tests/unit/build.mk)
include $(wildcard tests/redis/core/build.mk)
include $(wildcard tests/fuzz/build.mk)
include $(wildcard nginx_module/build.mk)
include $(wildcard civetweb_plugin/build.mk)
include $(wildcard tests/integration/build.mk)
include $(wildcard tests/browser/browser.mk)
include $(wildcard tests/conformance/conformance.mk)
include $(wildcard tests/hostile/hostile.mk)
include $(wildcard tests/redis/redis.mk)
include $(wildcard bench/build.mk)
include $(wildcard tests/valgrind/valgrind.mk)
include $(wildcard tests/soak/soak.mk)

.PHONY: all test clean demo
all: $(ALL_TARGETS)

# Steps run one after another; the first failure stops `make test`.
test: all
	@set -e; for step in $(TEST_STEPS); do \
	    echo "=== $$step"; $(MAKE) --no-print-directory $$step; \
	done; echo "=== all test steps passed"

clean:
	rm -rf build/out build/obj
