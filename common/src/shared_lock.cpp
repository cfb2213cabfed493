/*
 * shared_lock.cpp -- robust process-shared mutex (see shared_lock.hpp).
 */

#include "shared_lock.hpp"

#include <cerrno>

namespace pushq {

bool shared_lock::init(pthread_mutex_t *m) noexcept
{
    pthread_mutexattr_t a;
    if (pthread_mutexattr_init(&a) != 0) {
        return false;
    }
    /* ERRORCHECK: a thread that locks again while holding the lock (a
     * fetch callback calling the store, against the rules) gets EDEADLK
     * and an error instead of hanging for ever. */
    bool ok = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED) == 0
              && pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) == 0
              && pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK) == 0
              && pthread_mutex_init(m, &a) == 0;
    pthread_mutexattr_destroy(&a);
    return ok;
}

lock_state shared_lock::lock(pthread_mutex_t *m) noexcept
{
    int rc = pthread_mutex_lock(m);
    if (rc == 0) {
        return lock_state::acquired;
    }
    if (rc == EOWNERDEAD) {
        return lock_state::owner_died;
    }
    /* EDEADLK: this thread already holds it (a re-entrant call);
     * ENOTRECOVERABLE: someone unlocked after EOWNERDEAD without calling
     * pthread_mutex_consistent(), which we never do. */
    return lock_state::failed;
}

void shared_lock::mark_consistent(pthread_mutex_t *m) noexcept
{
    pthread_mutex_consistent(m);
}

void shared_lock::unlock(pthread_mutex_t *m) noexcept
{
    pthread_mutex_unlock(m);
}

void shared_lock::destroy(pthread_mutex_t *m) noexcept
{
    pthread_mutex_destroy(m);
}

} // namespace pushq
