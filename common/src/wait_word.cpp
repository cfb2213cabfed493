/*
 * wait_word.cpp -- futex-based waiting on a shared word (see wait_word.hpp).
 */

#include "wait_word.hpp"

#include <climits>
#include <ctime>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace pushq {

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t),
              "futex needs a plain 32-bit word");
static_assert(std::atomic<uint32_t>::is_always_lock_free);

void wait_word::wait(std::atomic<uint32_t> *w, uint32_t seen,
    uint64_t deadline_ms) noexcept
{
    struct timespec ts;
    ts.tv_sec = static_cast<time_t>(deadline_ms / 1000);
    ts.tv_nsec = static_cast<long>((deadline_ms % 1000) * 1000000);
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time (plain
     * FUTEX_WAIT a relative one, which drifts across EINTR loops). */
    syscall(SYS_futex, reinterpret_cast<uint32_t *>(w), FUTEX_WAIT_BITSET,
            seen, &ts, nullptr, FUTEX_BITSET_MATCH_ANY);
}

void wait_word::wake_all(std::atomic<uint32_t> *w) noexcept
{
    syscall(SYS_futex, reinterpret_cast<uint32_t *>(w), FUTEX_WAKE, INT_MAX,
            nullptr, nullptr, 0);
}

uint64_t wait_word::monotonic_ms() noexcept
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000 +
           static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

} // namespace pushq
