# Browser tests: the chat demo (examples/chat/), the seed's jQuery page
# (examples/seed-chat.html) and clients/js/pushq.js in Debian's headless
# Chromium, driven by playwright-core (npm, tests/browser/package-lock.json),
# against nginx with the module and against pushq-civetweb.
#
#   make test-browser
#   PUSHQ_BROWSER_SERVERS=nginx make test-browser     one adapter only
#
# Screenshots go to build/out/screenshots/.

BROWSER_DIR  := tests/browser
BROWSER_DEPS := $(BROWSER_DIR)/node_modules/.package-lock.json

# npm ci from the committed lock file; again whenever the lock file changes.
$(BROWSER_DEPS): $(BROWSER_DIR)/package-lock.json $(BROWSER_DIR)/package.json
	cd $(BROWSER_DIR) && npm ci --no-audit --no-fund
	@touch $@

.PHONY: test-browser
TEST_STEPS += test-browser

# node's test runner prints "# pass N" / "# fail N" and exits non-zero on
# any failure.
test-browser: all $(BROWSER_DEPS)
	@test -x /usr/bin/chromium || { echo "test-browser: /usr/bin/chromium is missing: apt-get install chromium (build/install-deps.sh)"; exit 1; }
	node --test $(BROWSER_DIR)/
