# WebSocket conformance (RFC 6455, modelled on the Autobahn|Testsuite case
# list): every case against nginx (1 worker; a subset with 4 workers) and
# pushq-civetweb; then the nginx cases again with the module built with
# ASan+UBSan (nginx_module/build.mk's sanitized build and launcher), where
# a sanitizer report in the error log fails the test.
# PUSHQ_SERVERS=nginx,nginx4,civetweb narrows the kinds.
#
#   make test-conformance test-conformance-san

.PHONY: test-conformance test-conformance-san
TEST_STEPS += test-conformance test-conformance-san

CONFORMANCE_PYTEST := PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m pytest \
                      -q -rfEx -p no:cacheprovider
CONFORMANCE_SAN_ENV := PUSHQ_NGINX='$(abspath nginx_module/nginx-san.sh)' \
                       PUSHQ_NGINX_MODULE='$(abspath $(OUT)/san/ngx_http_pushq_module.so)' \
                       PUSHQ_SANITIZED=1 PUSHQ_SERVERS=nginx,nginx4

test-conformance: $(OUT)/ngx_http_pushq_module.so $(OUT)/pushq-civetweb
	$(CONFORMANCE_PYTEST) tests/conformance

test-conformance-san: $(OUT)/san/ngx_http_pushq_module.so
	$(CONFORMANCE_SAN_ENV) $(CONFORMANCE_PYTEST) tests/conformance
