#!/usr/bin/env bash
# Installs, from Debian's packages, everything pushq needs to build and to
# run its tests on a fresh Debian 12 machine.  Idempotent: packages already
# present are skipped, so a warm machine pays only the dpkg query.
set -euo pipefail

PACKAGES=(
    build-essential pkg-config          # the compilers and make
    libssl-dev                          # libcrypto: SHA-1 for the handshake
    libcmocka-dev                       # unit tests
    clang libclang-rt-14-dev            # libFuzzer targets
    nginx nginx-dev                     # the nginx module and its tests
    libcivetweb-dev                     # the CivetWeb plugin
    python3 python3-pytest python3-websockets python3-requests  # integration
    chromium                            # browser tests (playwright-core from npm)
    libnginx-mod-nchan                  # benchmarks compare against nchan
    libhiredis-dev redis-server         # Redis scale-out (pushq_redis) and its tests
    valgrind                            # memcheck pass of an nginx worker
    curl openssl procps psmisc iproute2
)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$p")
done

# Node.js and npm may come from elsewhere than Debian on a machine (this
# image ships them); install Debian's only where none is on PATH.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm  >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # Debian's nginx package starts a server on :80 on install where an init
    # system runs; policy-rc.d keeps it from starting (we use private prefixes).
    own_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        own_policy=1
    fi
    apt-get install -y -q --no-install-recommends "${missing[@]}"
    [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
fi
