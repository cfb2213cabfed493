# Hostile and broken input: malformed queries and forms, name edge cases,
# huge headers and bodies, request smuggling, slowloris, slow readers,
# connections dropped mid-handshake, clients vanishing mid-long-poll --
# against nginx and pushq-civetweb; then on nginx with the module built
# with ASan+UBSan (memory comparisons are skipped there: ASan's quarantine
# grows RSS by design).
#
#   make test-hostile test-hostile-san

.PHONY: test-hostile test-hostile-san
TEST_STEPS += test-hostile test-hostile-san

HOSTILE_PYTEST := PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m pytest \
                  -q -rfEx -p no:cacheprovider
HOSTILE_SAN_ENV := PUSHQ_NGINX='$(abspath nginx_module/nginx-san.sh)' \
                   PUSHQ_NGINX_MODULE='$(abspath $(OUT)/san/ngx_http_pushq_module.so)' \
                   PUSHQ_SANITIZED=1 PUSHQ_SERVERS=nginx,nginx4

test-hostile: $(OUT)/ngx_http_pushq_module.so $(OUT)/pushq-civetweb
	$(HOSTILE_PYTEST) tests/hostile

test-hostile-san: $(OUT)/san/ngx_http_pushq_module.so
	$(HOSTILE_SAN_ENV) $(HOSTILE_PYTEST) tests/hostile
