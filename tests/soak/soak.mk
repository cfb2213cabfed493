# Soak (not part of `make test`): nginx with 4 workers, 10 minutes of
# WebSocket and long-poll churn, publishes, `nginx -s reload` every 30 s and
# long-poll timeouts; compares memory (RSS of master and workers), fds and
# store use (status: memory.used, channels, clients, subscribers) before and
# after, in the same quiet state, and checks that every named client got
# every message exactly once, in order.  Knobs: SOAK_SECONDS (600),
# SOAK_WARMUP, SOAK_RELOAD_EVERY, SOAK_RATE, SOAK_TTL, SOAK_TOL_* (see
# tests/soak/soak.py).  The module is copied first, so that a rebuild
# during the run does not change what a reload loads.
#
#   make soak                     # ~12 minutes (10 of load + warm-up, settles)
#   SOAK_SECONDS=60 make soak

.PHONY: soak
SOAK_DIR := build/soak

soak: $(OUT)/ngx_http_pushq_module.so
	mkdir -p $(SOAK_DIR)
	cp $(OUT)/ngx_http_pushq_module.so $(SOAK_DIR)/ngx_http_pushq_module.so
	PUSHQ_NGINX_MODULE=$(abspath $(SOAK_DIR))/ngx_http_pushq_module.so \
	    PYTHONDONTWRITEBYTECODE=1 nice -n 10 /usr/bin/python3 tests/soak/soak.py
