# The nginx dynamic module: build/out/ngx_http_pushq_module.so, built with
# nginx's own build system against Debian's nginx-dev (or NGINX_SRC=...),
# out of tree: configure writes everything into build/nginx/, nothing is
# written under the source tree /usr/share/nginx/src.
#
#   make build/out/ngx_http_pushq_module.so
#   NGINX_SRC=/path/to/nginx-1.x.y make build/out/ngx_http_pushq_module.so
#   make test-nginx        nginx-specific integration tests (tests/nginx/)
#   make demo              the chat demo on 127.0.0.1:$${PORT:-8080}

NGINX_SRC      ?= /usr/share/nginx/src
NGX_BUILD      := build/nginx
NGX_MODULE     := $(OUT)/ngx_http_pushq_module.so
NGX_MOD_SRCS   := $(wildcard nginx_module/*.c nginx_module/*.h)

ALL_TARGETS    += $(NGX_MODULE)

# Records the source tree in use, rewritten only when NGINX_SRC changes so
# that a change re-runs configure.
$(NGX_BUILD)/nginx-src: ngx-always
	@mkdir -p $(@D)
	@echo '$(abspath $(NGINX_SRC))' | cmp -s - $@ \
	    || echo '$(abspath $(NGINX_SRC))' > $@

# Debian's recipe (dh_nginx): its conf_flags give the same configure
# arguments (--with-compat, --with-threads, ...) as /usr/sbin/nginx, so
# that the module's binary signature matches.  A tree without conf_flags
# (an upstream tarball) gets --with-compat only: pass the arguments of
# `nginx -V` in NGX_CONF_ARGS to match another binary.
#   $(call ngx_configure,<builddir>,<cc-opt>,<ld-opt>,<libpushq.a>)
define ngx_configure
	@mkdir -p $(1)
	@echo "configuring nginx in $(NGINX_SRC) -> $(1) (log: $(1)/configure.log)"
	@cd '$(NGINX_SRC)' && \
	if [ -f conf_flags ]; then . ./conf_flags; \
	else NGX_CONF_FLAGS=(--with-compat $(NGX_CONF_ARGS)); fi; \
	PUSHQ_LIB='$(abspath $(4))' ./configure \
	    --with-cc-opt="$(2)" --with-ld-opt="$(3)" \
	    "$${NGX_CONF_FLAGS[@]}" \
	    --add-dynamic-module='$(abspath nginx_module)' \
	    --builddir='$(abspath $(1))' \
	    > '$(abspath $(1))/configure.log' 2>&1 \
	|| { tail -20 '$(abspath $(1))/configure.log'; exit 1; }
endef

# nginx's Makefile relinks when libpushq.a changes (it is in
# ngx_module_deps).  The .so is installed by rename, never rewritten in
# place: a running nginx maps it.
#   $(call ngx_make,<builddir>,<target .so>)
define ngx_make
	$(MAKE) --no-print-directory -f '$(abspath $(1))/Makefile' \
	    -C '$(NGINX_SRC)' modules
	@mkdir -p $(dir $(2))
	cp $(1)/ngx_http_pushq_module.so $(2).tmp && mv -f $(2).tmp $(2)
endef

NGX_CC_OPT := $$(dpkg-buildflags --get CFLAGS 2>/dev/null) -fPIC \
              $$(dpkg-buildflags --get CPPFLAGS 2>/dev/null)
NGX_LD_OPT := $$(dpkg-buildflags --get LDFLAGS 2>/dev/null) -fPIC

$(NGX_BUILD)/Makefile: nginx_module/config $(NGX_BUILD)/nginx-src
	$(call ngx_configure,$(NGX_BUILD),$(NGX_CC_OPT),$(NGX_LD_OPT),$(LIBPUSHQ))

$(NGX_MODULE): $(NGX_BUILD)/Makefile $(NGX_MOD_SRCS) $(LIBPUSHQ) \
               common/include/pushq.h common/include/pushq_redis.h
	$(call ngx_make,$(NGX_BUILD),$@)

# The same module with ASan+UBSan, linked with the sanitized core, for
# test-nginx-san (nginx runs with the sanitizer runtimes preloaded, see
# nginx_module/nginx-san.sh).
NGX_BUILD_SAN  := $(NGX_BUILD)/san
NGX_MODULE_SAN := $(OUT)/san/ngx_http_pushq_module.so

$(NGX_BUILD_SAN)/Makefile: nginx_module/config $(NGX_BUILD)/nginx-src
	$(call ngx_configure,$(NGX_BUILD_SAN),-g -O1 -fPIC $(SANITIZE),-fPIC $(SANITIZE),$(LIBPUSHQ_SAN))

$(NGX_MODULE_SAN): $(NGX_BUILD_SAN)/Makefile $(NGX_MOD_SRCS) \
                   $(LIBPUSHQ_SAN) common/include/pushq.h \
                   common/include/pushq_redis.h
	$(call ngx_make,$(NGX_BUILD_SAN),$@)

.PHONY: ngx-always test-nginx test-nginx-san demo
ngx-always:

TEST_STEPS += test-nginx test-nginx-san

NGX_PYTEST := PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m pytest -q \
              -p no:cacheprovider

test-nginx: $(NGX_MODULE)
	$(NGX_PYTEST) tests/nginx

# tests/nginx but the memory-growth test (ASan's quarantine grows RSS),
# then the shared SPEC tests on nginx with 1 and 4 workers; a sanitizer
# report lands in the error log, which every test checks.
NGX_SAN_ENV := PUSHQ_NGINX='$(abspath nginx_module/nginx-san.sh)' \
               PUSHQ_NGINX_MODULE='$(abspath $(NGX_MODULE_SAN))' \
               PUSHQ_SANITIZED=1

test-nginx-san: $(NGX_MODULE_SAN)
	$(NGX_SAN_ENV) $(NGX_PYTEST) tests/nginx
	$(NGX_SAN_ENV) PUSHQ_SERVERS=nginx,nginx4 $(NGX_PYTEST) \
	    tests/integration

# Starts Debian's nginx with the module in the foreground from a private
# prefix (build/demo), serving examples/chat/; Ctrl-C stops it and removes
# the prefix.
demo: $(NGX_MODULE)
	@bash nginx_module/demo.sh '$(abspath $(NGX_MODULE))' \
	    '$(abspath examples/chat)' '$(abspath build/demo)' "$${PORT:-8080}"
