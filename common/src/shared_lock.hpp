/*
 * shared_lock.hpp -- the store's lock: a robust, process-shared mutex.
 *
 * The region is shared by nginx workers (processes) or CivetWeb threads.
 * A worker may die while it holds the lock (crash, OOM kill, SIGKILL).  A
 * plain process-shared mutex (or nginx's ngx_shmtx) then stays locked for
 * ever and every other worker hangs: nchan's users lose whole channels to
 * exactly that.  With PTHREAD_MUTEX_ROBUST the kernel hands the lock to
 * the next locker with EOWNERDEAD; that locker repairs the state (the store
 * decides how) and calls pthread_mutex_consistent().
 */

#ifndef PUSHQ_SHARED_LOCK_HPP
#define PUSHQ_SHARED_LOCK_HPP

#include <pthread.h>

namespace pushq {

enum class lock_state {
    acquired,       /* normal case                                        */
    owner_died,     /* acquired; the previous owner died holding it: the
                       caller must repair, then call mark_consistent()     */
    failed          /* not acquired: re-entrant call (EDEADLK) or
                       ENOTRECOVERABLE                                   */
};

class shared_lock {
public:
    /* Formats m as a robust, process-shared, error-checking mutex.
     * Returns false when pthread refuses (then the store is unusable). */
    static bool init(pthread_mutex_t *m) noexcept;

    static lock_state lock(pthread_mutex_t *m) noexcept;
    static void mark_consistent(pthread_mutex_t *m) noexcept;
    static void unlock(pthread_mutex_t *m) noexcept;
    static void destroy(pthread_mutex_t *m) noexcept;
};

} // namespace pushq

#endif
