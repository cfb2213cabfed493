/*
 * Experiment (docs/BENCHMARKS.md, finding 2): LD_PRELOAD into nginx to
 * measure pushq's WebSockets with Nagle left on, as nchan does: a
 * setsockopt(TCP_NODELAY, 1) becomes a no-op.  For measuring only.
 *
 *   gcc -O2 -shared -fPIC -o build/bench/no_nodelay.so \
 *       bench/experiments/no_nodelay.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
    static int (*real)(int, int, int, const void *, socklen_t);

    if (level == IPPROTO_TCP && name == TCP_NODELAY)
        return 0;
    if (real == 0)
        real = (int (*)(int, int, int, const void *, socklen_t))
            dlsym(RTLD_NEXT, "setsockopt");
    return real(fd, level, name, val, len);
}
