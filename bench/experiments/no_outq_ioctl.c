/*
 * Experiment (docs/BENCHMARKS.md, finding 1): LD_PRELOAD into nginx to see
 * what pushq's WebSocket fan-out would cost without its per-delivery
 * ioctl(SIOCOUTQNSD).  Answers that ioctl with "0 bytes unsent" without a
 * system call (so pushq_websocket_max_backlog then counts only pushq's own
 * queue); every other ioctl goes to libc.  For measuring only.
 *
 *   gcc -O2 -shared -fPIC -o build/bench/no_outq_ioctl.so \
 *       bench/experiments/no_outq_ioctl.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <linux/sockios.h>
#include <stdarg.h>
#include <sys/ioctl.h>

int ioctl(int fd, unsigned long req, ...)
{
    static int (*real)(int, unsigned long, ...);
    va_list ap;
    void *arg;

    va_start(ap, req);
    arg = va_arg(ap, void *);
    va_end(ap);
    if (req == SIOCOUTQNSD && arg != 0) {
        *(int *) arg = 0;
        return 0;
    }
    if (real == 0)
        real = (int (*)(int, unsigned long, ...)) dlsym(RTLD_NEXT, "ioctl");
    return real(fd, req, arg);
}
