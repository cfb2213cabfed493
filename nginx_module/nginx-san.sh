#!/bin/sh
# Debian's nginx with the ASan and UBSan runtimes preloaded, to load the
# sanitized module (build/out/san/ngx_http_pushq_module.so) in tests.
# Reports go to stderr, which nginx redirects into its error log.
asan=$(gcc -print-file-name=libasan.so)
ubsan=$(gcc -print-file-name=libubsan.so)
export LD_PRELOAD="$asan:$ubsan${LD_PRELOAD:+:$LD_PRELOAD}"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
exec /usr/sbin/nginx "$@"
