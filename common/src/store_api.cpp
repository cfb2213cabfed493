/*
 * store_api.cpp -- the store's extern "C" entry points (pushq.h "The
 * store").  Each is noexcept and catches at the edge: nothing inside is
 * meant to throw (no heap allocation, no std containers), but an exception
 * must never unwind into nginx's or CivetWeb's C frames.
 */

#include <cstdint>
#include <cstring>
#include <new>

#include "pushq.h"
#include "shared_lock.hpp"
#include "store.hpp"

using pushq::store;

namespace {

/* Runs f; bad_alloc -> PUSHQ_ENOMEM, anything else -> PUSHQ_EINTERNAL. */
template <typename F>
pushq_status_t guarded(const char **why, F &&f) noexcept
{
    try {
        return f();
    } catch (const std::bad_alloc &) {
        if (why) *why = "store: out of memory";
        return PUSHQ_ENOMEM;
    } catch (...) {
        if (why) *why = "store: internal error";
        return PUSHQ_EINTERNAL;
    }
}

bool usable(pushq_store_t *s) noexcept
{
    return s != nullptr &&
           store::header(s)->magic_ == pushq::store_magic;
}

} // namespace

namespace pushq {

pushq_status_t store_mirror_ex(pushq_store_t *s, const char *chan,
    size_t chan_len, uint64_t epoch, uint64_t id, const void *msg,
    size_t len, unsigned flags, const pushq_limits_t *lim, uint64_t now_ms,
    pushq_publish_result_t *out, mirror_opts *opt, const char **why)
    noexcept
{
    if (out) std::memset(out, 0, sizeof(*out));
    return guarded(why, [&]() -> pushq_status_t {
        if (!usable(s)) {
            if (why) *why = "store: not initialised";
            return PUSHQ_EBADARG;
        }
        return store(store::header(s)).mirror(chan, chan_len, epoch, id,
            msg, len, flags, lim, now_ms, out, why, opt);
    });
}

bool store_mirror_restart(pushq_store_t *s, const char *chan,
    size_t chan_len, uint64_t epoch, uint64_t *wakers) noexcept
{
    if (wakers) *wakers = 0;
    if (!usable(s)) {
        return false;
    }
    try {
        return store(store::header(s)).mirror_restart(chan, chan_len, epoch,
                                                      wakers);
    } catch (...) {
        return false;
    }
}

} // namespace pushq

extern "C" {

PUSHQ_API size_t pushq_store_redis_channels(pushq_store_t *s,
    pushq_redis_chan_cb cb, void *ctx)
{
    if (!usable(s)) {
        return 0;
    }
    try {
        return store(store::header(s)).redis_channels(cb, ctx);
    } catch (...) {
        return 0;
    }
}

PUSHQ_API size_t pushq_store_min_size(void)
{
    return store::min_size();
}

PUSHQ_API pushq_status_t pushq_store_init(void *mem, size_t size,
    pushq_store_t **out, int *created, const char **why)
{
    return guarded(why, [&]() -> pushq_status_t {
        if (created) *created = 0;
        if (out == nullptr || mem == nullptr ||
            (reinterpret_cast<uintptr_t>(mem) & 15) != 0)
        {
            if (why) *why = "store: region must be non-NULL and 16-byte "
                            "aligned";
            return PUSHQ_EBADARG;
        }
        *out = nullptr;
        if (size < store::min_size()) {
            if (why) *why = "store: region smaller than "
                            "pushq_store_min_size() (64 KiB)";
            return PUSHQ_EBADARG;
        }
        if (store::formatted(mem, size)) {
            /* an nginx zone kept across reload: keep its contents (old
             * workers may still be using it, so the mutex is left alone) */
            *out = static_cast<pushq_store_t *>(mem);
            return PUSHQ_OK;
        }
        store s(static_cast<pushq::store_header *>(mem));
        if (!s.format(size)) {
            if (why) *why = "store: cannot create a robust process-shared "
                            "mutex";
            return PUSHQ_EINTERNAL;
        }
        if (created) *created = 1;
        *out = static_cast<pushq_store_t *>(mem);
        return PUSHQ_OK;
    });
}

PUSHQ_API pushq_store_t *pushq_store_attach(void *mem, size_t size)
{
    if (mem == nullptr || (reinterpret_cast<uintptr_t>(mem) & 15) != 0 ||
        size < store::min_size() || !store::formatted(mem, size))
    {
        return nullptr;
    }
    return static_cast<pushq_store_t *>(mem);
}

PUSHQ_API void pushq_store_destroy(pushq_store_t *s)
{
    if (!usable(s)) {
        return;
    }
    pushq::store_header *h = store::header(s);
    /* Wake blocked waiters so that none sleeps on freed memory; they see
     * the store gone and return.  The per-channel wait words need no
     * destruction (see wait_word.hpp). */
    store(h).wake_all();
    h->magic_ = 0;
    pushq::shared_lock::destroy(&h->mutex_);
}

PUSHQ_API void pushq_store_recoveries(pushq_store_t *s, uint64_t *recovered,
    uint64_t *resets)
{
    uint64_t a = 0, b = 0;
    if (usable(s)) {
        store st(store::header(s));
        pushq::store_guard g(st);
        if (g.ok()) {
            a = st.h()->recovered_;
            b = st.h()->resets_;
        }
    }
    if (recovered) *recovered = a;
    if (resets) *resets = b;
}

PUSHQ_API pushq_status_t pushq_store_owner_register(pushq_store_t *s,
    int32_t pid, uint32_t waker, uint32_t *owner, const char **why)
{
    return guarded(why, [&]() -> pushq_status_t {
        if (!usable(s)) {
            if (why) *why = "store: not initialised";
            return PUSHQ_EBADARG;
        }
        return store(store::header(s)).register_owner(pid, waker, owner,
                                                      why);
    });
}

PUSHQ_API void pushq_store_owner_release(pushq_store_t *s, uint32_t owner,
    uint64_t now_ms)
{
    if (!usable(s) || owner >= PUSHQ_MAX_OWNERS) {
        return;
    }
    try {
        store st(store::header(s));
        pushq::store_guard g(st);
        if (g.ok() && st.h()->owners_[owner].in_use_) {
            pushq::mutation mu(st);
            st.release_owner(owner, now_ms);
        }
    } catch (...) {
    }
}

PUSHQ_API uint32_t pushq_store_owner_reap(pushq_store_t *s, uint64_t now_ms)
{
    if (!usable(s)) {
        return 0;
    }
    try {
        return store(store::header(s)).reap_owners(now_ms);
    } catch (...) {
        return 0;
    }
}

PUSHQ_API pushq_status_t pushq_store_publish(pushq_store_t *s,
    const char *chan, size_t chan_len, const void *msg, size_t len,
    unsigned flags, const pushq_limits_t *lim, uint64_t now_ms,
    pushq_publish_result_t *out, const char **why)
{
    if (out) std::memset(out, 0, sizeof(*out));
    return guarded(why, [&]() -> pushq_status_t {
        if (!usable(s)) {
            if (why) *why = "store: not initialised";
            return PUSHQ_EBADARG;
        }
        return store(store::header(s)).publish(chan, chan_len, msg, len,
            flags, lim, now_ms, out, why);
    });
}

PUSHQ_API pushq_status_t pushq_store_mirror(pushq_store_t *s,
    const char *chan, size_t chan_len, uint64_t epoch, uint64_t id,
    const void *msg, size_t len, unsigned flags, const pushq_limits_t *lim,
    uint64_t now_ms, pushq_publish_result_t *out, const char **why)
{
    if (out) std::memset(out, 0, sizeof(*out));
    return guarded(why, [&]() -> pushq_status_t {
        if (!usable(s)) {
            if (why) *why = "store: not initialised";
            return PUSHQ_EBADARG;
        }
        return store(store::header(s)).mirror(chan, chan_len, epoch, id,
            msg, len, flags, lim, now_ms, out, why);
    });
}

PUSHQ_API pushq_status_t pushq_sub_open_at(pushq_store_t *s,
    const pushq_sub_spec_t *spec, uint64_t after_id,
    const pushq_limits_t *lim, uint64_t now_ms, pushq_sub_t *sub,
    const char **why)
{
    return guarded(why, [&]() -> pushq_status_t {
        if (!usable(s)) {
            if (sub) std::memset(sub, 0, sizeof(*sub));
            if (why) *why = "store: not initialised";
            return PUSHQ_EBADARG;
        }
        return store(store::header(s)).open_sub(spec, lim, now_ms, sub, why,
                                                 &after_id);
    });
}

PUSHQ_API pushq_status_t pushq_sub_open(pushq_store_t *s,
    const pushq_sub_spec_t *spec, const pushq_limits_t *lim,
    uint64_t now_ms, pushq_sub_t *sub, const char **why)
{
    return guarded(why, [&]() -> pushq_status_t {
        if (!usable(s)) {
            if (sub) std::memset(sub, 0, sizeof(*sub));
            if (why) *why = "store: not initialised";
            return PUSHQ_EBADARG;
        }
        return store(store::header(s)).open_sub(spec, lim, now_ms, sub, why);
    });
}

PUSHQ_API pushq_status_t pushq_sub_fetch(pushq_store_t *s, pushq_sub_t *sub,
    size_t max_msgs, size_t max_bytes, uint64_t now_ms, pushq_msg_cb cb,
    void *ctx, pushq_fetch_info_t *info)
{
    if (info) std::memset(info, 0, sizeof(*info));
    return guarded(nullptr, [&]() -> pushq_status_t {
        if (!usable(s)) {
            return PUSHQ_EBADARG;
        }
        return store(store::header(s)).fetch(sub, max_msgs, max_bytes,
            now_ms, cb, ctx, info);
    });
}

PUSHQ_API int pushq_sub_ready(pushq_store_t *s, const pushq_sub_t *sub)
{
    if (!usable(s)) {
        return 0;
    }
    return store(store::header(s)).ready(sub);
}

PUSHQ_API pushq_status_t pushq_sub_wait(pushq_store_t *s, pushq_sub_t *sub,
    uint64_t timeout_ms)
{
    if (!usable(s)) {
        return PUSHQ_EBADARG;
    }
    store(store::header(s)).wait(sub, timeout_ms);
    return PUSHQ_OK;
}

PUSHQ_API void pushq_store_wake_all(pushq_store_t *s)
{
    if (usable(s)) {
        store(store::header(s)).wake_all();
    }
}

PUSHQ_API void pushq_sub_close(pushq_store_t *s, pushq_sub_t *sub,
    uint64_t now_ms)
{
    if (sub == nullptr) {
        return;
    }
    if (!usable(s)) {
        std::memset(sub, 0, sizeof(*sub));
        return;
    }
    store(store::header(s)).close(sub, now_ms);
}

PUSHQ_API uint64_t pushq_sub_channel_key(const pushq_sub_t *sub)
{
    if (sub == nullptr || sub->priv_[pushq::sw_rec] == 0) {
        return 0;
    }
    return sub->priv_[pushq::sw_channel];
}

PUSHQ_API uint64_t pushq_sub_life(const pushq_sub_t *sub)
{
    if (sub == nullptr || sub->priv_[pushq::sw_rec] == 0) {
        return 0;
    }
    return sub->priv_[pushq::sw_incarnation];
}

PUSHQ_API size_t pushq_store_sweep(pushq_store_t *s, uint64_t now_ms)
{
    if (!usable(s)) {
        return 0;
    }
    store st(store::header(s));
    pushq::store_guard g(st);
    return g.ok() ? st.sweep(now_ms) : 0;
}

PUSHQ_API void pushq_store_count_dropped_slow(pushq_store_t *s)
{
    if (usable(s)) {
        store::header(s)->dropped_slow_.fetch_add(1,
            std::memory_order_relaxed);
    }
}

PUSHQ_API void pushq_store_stats(pushq_store_t *s, uint64_t now_ms,
    pushq_stats_t *out)
{
    if (out == nullptr) {
        return;
    }
    std::memset(out, 0, sizeof(*out));
    if (!usable(s)) {
        return;
    }
    store st(store::header(s));
    pushq::store_guard g(st);
    if (g.ok()) {
        st.stats(now_ms, out);
    }
}

PUSHQ_API pushq_status_t pushq_store_channel_stats(pushq_store_t *s,
    const char *chan, size_t chan_len, uint64_t now_ms,
    pushq_channel_stats_t *out)
{
    if (out == nullptr) {
        return PUSHQ_EBADARG;
    }
    std::memset(out, 0, sizeof(*out));
    return guarded(nullptr, [&]() -> pushq_status_t {
        if (!usable(s)) {
            return PUSHQ_EBADARG;
        }
        return store(store::header(s)).channel_stats(chan, chan_len, now_ms,
                                                     out);
    });
}

} // extern "C"
