/*
 * store.hpp -- the store: channels, message logs, named clients and
 * subscribers inside one caller-provided region (pushq.h "The store").
 *
 * `store` is a process-local view (three words: header, base, arena) over
 * the region; it is made afresh by each entry point, so nothing
 * process-local is kept anywhere (no globals).  The methods are split by
 * concept:
 *   store.cpp         region format/attach, sweep, stats
 *   store_recovery.cpp  the lock, and repair or reset after a holder died
 *   channel_log.cpp   channels and their message logs
 *   client_table.cpp  named clients (cursor, ttl, idle list)
 *   subscriber.cpp    owners and subscribers: open, fetch, ready, wait,
 *                     close
 *   store_api.cpp     the extern "C" entry points (noexcept, catch at the
 *                     edge)
 * Every method below except the lock-free ones documented as such must be
 * called with the lock held.
 */

#ifndef PUSHQ_STORE_HPP
#define PUSHQ_STORE_HPP

#include <cstddef>
#include <cstdint>

#include "pushq.h"
#include "pushq_redis.h"
#include "arena.hpp"
#include "store_layout.hpp"

namespace pushq {

/* The *why of the two store failures a caller can act on. */
inline constexpr const char *why_store_full =
    "store: out of memory (raise pushq_shm_size / store_size)";
inline constexpr const char *why_store_locked =
    "store: lock unavailable (the store called from a fetch callback?)";

/* Redis catch-up (pushq_redis_mirror_heard, pushq_redis_reply_range):
 * what store::mirror does beyond pushq_store_mirror. */
struct mirror_opts {
    /* in: store only the channel's next id; a later id (id > newest + 1,
     * or id > 1 in a new epoch) stores nothing and is reported as a gap.
     * A channel's first mirrored message is stored as usual. */
    bool      next_only = false;
    /* in: the message's expiry in local ms (0 = never) instead of now +
     * lim->message_ttl_ms (a range read knows when it expires). */
    bool      has_expiry = false;
    uint64_t  expires_ms = 0;
    /* out (next_only): a gap; read the stream after gap_after */
    bool      gap = false;
    uint64_t  gap_after = 0;
};

class store {
public:
    explicit store(store_header *h) noexcept
        : h_(h), base_(reinterpret_cast<char *>(h)),
          arena_(reinterpret_cast<char *>(h), &h->arena_) {}

    static store_header *header(pushq_store_t *s) noexcept {
        return reinterpret_cast<store_header *>(s);
    }

    /* ---- region (store.cpp) ---- */
    static size_t min_size() noexcept;
    /* True when mem holds a store of this layout version and size. */
    static bool formatted(const void *mem, size_t size) noexcept;
    /* Formats the whole region, mutex included.  False if pthread fails. */
    bool format(size_t size) noexcept;
    /* Empties the contents (channels, clients, subscribers, arena); keeps
     * counters and owner registrations; bumps the generation. */
    void reset_contents() noexcept;

    /* ---- lock (store_recovery.cpp) ---- */
    /* Takes the lock; after a dead owner, repairs (or resets) first.
     * False when the lock cannot be taken at all. */
    bool lock() noexcept;
    void unlock() noexcept;
    void begin_mutation() noexcept { h_->dirty_ = 1; }
    void end_mutation() noexcept { h_->dirty_ = 0; }
    /* Full consistency check of every structure (store_recovery.cpp). */
    bool validate() noexcept;
    /* Rebuilds from what checks out after a crash; false if nothing can
     * be trusted (store_recovery.cpp). */
    bool salvage(size_t *dropped) noexcept;

    /* ---- maintenance (store.cpp) ---- */
    size_t sweep(uint64_t now_ms) noexcept;
    void stats(uint64_t now_ms, pushq_stats_t *out) noexcept;

    /* ---- channels (channel_log.cpp) ---- */
    static uint64_t hash_name(const char *p, size_t n) noexcept;
    channel_rec *find_channel(const char *name, size_t len,
        uint64_t hash) noexcept;
    /* New empty channel, or nullptr when the region is full. */
    channel_rec *create_channel(const char *name, size_t len, uint64_t hash,
        uint64_t ttl_ms, uint64_t now_ms) noexcept;
    void forget_channel(channel_rec *c) noexcept;
    bool channel_forgettable(channel_rec *c, uint64_t now_ms) noexcept;
    /* Drops expired messages from the head of the log; returns how many. */
    size_t expire_messages(channel_rec *c, uint64_t now_ms) noexcept;
    void drop_oldest(channel_rec *c) noexcept;
    /* First buffered id; last_id + 1 when nothing is buffered. */
    static uint64_t first_id(const channel_rec *c) noexcept {
        return c->last_id_.load(std::memory_order_relaxed) - c->count_ + 1;
    }
    message_rec *message(const channel_rec *c, uint64_t id) noexcept;
    /* Drops the oldest messages that appending len bytes would trim;
     * returns how many. */
    size_t pretrim(channel_rec *c, uint64_t len,
        const pushq_limits_t *lim) noexcept;
    /* What publish and mirror (store_mirror.cpp) share.  A message's
     * arguments: the channel's name, the limits, and a size that can
     * ever fit; `missing` is *why when limits or message are missing. */
    pushq_status_t check_message(const char *chan, size_t chan_len,
        const void *msg, size_t len, const pushq_limits_t *lim,
        const char *missing, const char **why) const noexcept;
    /* The channel, found (its expired messages dropped) or created
     * (*created); nullptr when the region is full. */
    channel_rec *open_channel(const char *chan, size_t chan_len,
        uint64_t hash, const pushq_limits_t *lim, uint64_t now_ms,
        bool *created) noexcept;
    /* A message record of len bytes and, when the log will hold more
     * messages (count_after + 1) than its ring, a ring twice as large:
     * both or neither (false: nothing allocated). */
    bool alloc_message(const channel_rec *c, size_t len,
        uint64_t count_after, uint64_t *msg_off, uint64_t *new_ring,
        uint64_t *new_cap) noexcept;
    void fill_message(uint64_t msg_off, const void *msg, size_t len,
        unsigned flags, uint64_t expires_ms) noexcept;
    /* A message published now expires at (0: never). */
    static uint64_t message_expiry(const pushq_limits_t *lim,
                                   uint64_t now_ms) noexcept {
        return lim->message_ttl_ms != 0 ? add_ms(now_ms, lim->message_ttl_ms)
                                        : 0;
    }
    /* Appends (all memory got before: cannot fail), trims, wakes waiters
     * of this channel. */
    uint64_t append(channel_rec *c, uint64_t msg_off, uint64_t new_ring,
        uint64_t new_cap, const pushq_limits_t *lim, uint64_t now_ms)
        noexcept;

    /* Redis mirror (store_mirror.cpp): the local ids begin after `base`
     * (buffered messages dropped, named cursors moved to base); renew: a
     * new incarnation (positions of the old one are void). */
    void begin_life(channel_rec *c, uint64_t base, bool renew) noexcept;
    /* The mirror missed ids (store_mirror.cpp): drops the buffered
     * messages and moves the log so that the next id appended is `next`. */
    void skip_to(channel_rec *c, uint64_t next) noexcept;

    /* ---- named clients (client_table.cpp) ---- */
    static uint64_t hash_client(uint64_t chan_off, const char *name,
        size_t len) noexcept;
    client_rec *find_client(uint64_t chan_off, const char *name, size_t len,
        uint64_t hash) noexcept;
    client_rec *create_client(channel_rec *c, const char *name, size_t len,
        uint64_t hash, uint64_t cursor) noexcept;
    void forget_client(client_rec *cl, uint64_t now_ms) noexcept;
    void idle_insert(client_rec *cl) noexcept;
    void idle_remove(client_rec *cl) noexcept;
    size_t expire_clients(uint64_t now_ms) noexcept;

    /* ---- operations behind the entry points; each takes the lock ---- */
    pushq_status_t publish(const char *chan, size_t chan_len,
        const void *msg, size_t len, unsigned flags,
        const pushq_limits_t *lim, uint64_t now_ms,
        pushq_publish_result_t *out, const char **why) noexcept;
    pushq_status_t mirror(const char *chan, size_t chan_len,
        uint64_t epoch, uint64_t id, const void *msg, size_t len,
        unsigned flags, const pushq_limits_t *lim, uint64_t now_ms,
        pushq_publish_result_t *out, const char **why,
        mirror_opts *opt = nullptr) noexcept;
    /* Redis catch-up (store_mirror.cpp): when the local channel mirrors
     * another epoch than `epoch` (both non-zero), begins its new life now
     * (newest id 0, buffered messages dropped) and returns true with the
     * channel's wakers in *wakers. */
    bool mirror_restart(const char *chan, size_t chan_len, uint64_t epoch,
        uint64_t *wakers) noexcept;
    /* pushq_store_redis_channels (store_mirror.cpp). */
    size_t redis_channels(pushq_redis_chan_cb cb, void *ctx) noexcept;
    pushq_status_t register_owner(int32_t pid, uint32_t waker,
        uint32_t *owner, const char **why) noexcept;
    uint32_t reap_owners(uint64_t now_ms) noexcept;
    /* after_id != nullptr: pushq_sub_open_at. */
    pushq_status_t open_sub(const pushq_sub_spec_t *spec,
        const pushq_limits_t *lim, uint64_t now_ms, pushq_sub_t *sub,
        const char **why, const uint64_t *after_id = nullptr) noexcept;
    pushq_status_t fetch(pushq_sub_t *sub, size_t max_msgs,
        size_t max_bytes, uint64_t now_ms, pushq_msg_cb cb, void *ctx,
        pushq_fetch_info_t *info) noexcept;
    /* lock-free */
    int ready(const pushq_sub_t *sub) noexcept;
    /* lock-free; blocks */
    void wait(pushq_sub_t *sub, uint64_t timeout_ms) noexcept;
    void wake_all() noexcept;
    void close(pushq_sub_t *sub, uint64_t now_ms) noexcept;
    pushq_status_t channel_stats(const char *chan, size_t chan_len,
        uint64_t now_ms, pushq_channel_stats_t *out) noexcept;

    /* ---- owners and subscribers (subscriber.cpp), lock held ---- */
    /* Removes a subscriber record and everything it counts. */
    void close_sub(sub_rec *r, uint64_t now_ms) noexcept;
    void release_owner(uint32_t owner, uint64_t now_ms) noexcept;
    /* The live sub_rec of a handle, or nullptr if the handle is closed or
     * stale (closed by an owner release or a store reset). */
    sub_rec *live_sub(const pushq_sub_t *sub) noexcept;

    template <typename T> T *at(uint64_t off) const noexcept {
        return arena_.at<T>(off);
    }
    uint64_t off(const void *p) const noexcept {
        return static_cast<uint64_t>(static_cast<const char *>(p) - base_);
    }
    /* Offset that can hold a T inside the region. */
    bool in_region(uint64_t off, size_t len) const noexcept {
        return off >= sizeof(store_header) && off < h_->size_ &&
               len <= h_->size_ - off && (off & 7) == 0;
    }

    store_header *h() const noexcept { return h_; }
    class arena &mem() noexcept { return arena_; }

private:
    bool allocate_tables() noexcept;

    store_header  *h_;
    char          *base_;
    class arena    arena_;
};

/* Entry points for the Redis code (redis_mirror.cpp, redis_range.cpp),
 * guarded like the extern "C" ones (store_api.cpp). */
pushq_status_t store_mirror_ex(pushq_store_t *s, const char *chan,
    size_t chan_len, uint64_t epoch, uint64_t id, const void *msg,
    size_t len, unsigned flags, const pushq_limits_t *lim, uint64_t now_ms,
    pushq_publish_result_t *out, mirror_opts *opt, const char **why)
    noexcept;
/* store::mirror_restart; false also when s is not a store. */
bool store_mirror_restart(pushq_store_t *s, const char *chan,
    size_t chan_len, uint64_t epoch, uint64_t *wakers) noexcept;

/* RAII lock for the entry points. */
class store_guard {
public:
    explicit store_guard(store &s) noexcept : s_(s), ok_(s.lock()) {}
    ~store_guard() { if (ok_) s_.unlock(); }
    store_guard(const store_guard &) = delete;
    store_guard &operator=(const store_guard &) = delete;
    bool ok() const noexcept { return ok_; }
private:
    store  &s_;
    bool    ok_;
};

/* Marks the store dirty for the lifetime of the object (see
 * store_header::dirty_). */
class mutation {
public:
    explicit mutation(store &s) noexcept : s_(s) { s_.begin_mutation(); }
    ~mutation() { s_.end_mutation(); }
    mutation(const mutation &) = delete;
    mutation &operator=(const mutation &) = delete;
private:
    store &s_;
};

} // namespace pushq

#endif
