/*
 * wait_word.hpp -- blocking until a 32-bit word in shared memory changes.
 *
 * pushq_sub_wait blocks a thread until its channel gets a message.  Every
 * channel record has a sequence word that each publish increments; a waiter
 * reads it, checks readiness, and sleeps while the word still holds what it
 * read.  This is a Linux futex (FUTEX_WAIT_BITSET, not private: it works
 * across processes on a MAP_SHARED region and within one process on heap
 * memory), with an absolute CLOCK_MONOTONIC deadline.
 *
 * Why not a process-shared pthread condition variable: with glibc 2.36
 * (Debian 12) a waiter that dies inside pthread_cond_wait leaves its
 * reference in the condvar; pthread_cond_destroy then blocks for ever and a
 * later signal can stall switching waiter groups.  A futex word holds no
 * per-waiter state, so a killed waiter costs nothing, and waiting does not
 * need the store's mutex at all (no thundering re-lock after a broadcast).
 */

#ifndef PUSHQ_WAIT_WORD_HPP
#define PUSHQ_WAIT_WORD_HPP

#include <atomic>
#include <cstdint>

namespace pushq {

class wait_word {
public:
    /* Sleeps while *w == seen, until deadline_ms (CLOCK_MONOTONIC, ms), a
     * wake, or a signal.  Returns at once if *w != seen.  Spurious returns
     * happen: callers re-check their condition. */
    static void wait(std::atomic<uint32_t> *w, uint32_t seen,
        uint64_t deadline_ms) noexcept;

    /* Wakes every thread sleeping on w, in every process. */
    static void wake_all(std::atomic<uint32_t> *w) noexcept;

    /* CLOCK_MONOTONIC in ms (the core's own use; pushq_now_ms is the
     * adapters'). */
    static uint64_t monotonic_ms() noexcept;
};

} // namespace pushq

#endif
