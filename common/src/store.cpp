/*
 * store.cpp -- the store's region (format, reset), sweep and stats.
 * Locking and crash recovery are in store_recovery.cpp.
 */

#include "store.hpp"

#include <cstring>
#include <new>

#include "shared_lock.hpp"

namespace pushq {

namespace {

/* Header (~6 KiB with 128 owner slots) + the two bucket arrays at their
 * minimum sizes + room for a few channels and messages. */
constexpr size_t store_min_size = 64 * 1024;

uint64_t header_end() noexcept
{
    return (sizeof(store_header) + 15) & ~uint64_t(15);
}

uint64_t pow2_at_least(uint64_t v, uint64_t lo, uint64_t hi) noexcept
{
    uint64_t p = lo;
    while (p < v && p < hi) {
        p <<= 1;
    }
    return p;
}

} // namespace

size_t store::min_size() noexcept
{
    return store_min_size;
}

bool store::formatted(const void *mem, size_t size) noexcept
{
    auto h = static_cast<const store_header *>(mem);
    return h->magic_ == store_magic && h->version_ == layout_version &&
           h->header_size_ == sizeof(store_header) && h->size_ == size;
}

bool store::format(size_t size) noexcept
{
    std::memset(static_cast<void *>(h_), 0, sizeof(store_header));
    new (&h_->generation_) std::atomic<uint64_t>(0);
    new (&h_->wake_all_seq_) std::atomic<uint32_t>(0);
    new (&h_->dropped_slow_) std::atomic<uint64_t>(0);
    h_->size_ = size;
    if (!shared_lock::init(&h_->mutex_)) {
        return false;
    }
    reset_contents();
    h_->generation_.store(1);
    h_->version_ = layout_version;
    h_->header_size_ = sizeof(store_header);
    /* the magic last: a half-formatted region is never taken for a store */
    std::atomic_thread_fence(std::memory_order_release);
    h_->magic_ = store_magic;
    return true;
}

/*
 * Bucket counts scale with the region: a channel takes >= ~500 bytes and a
 * named client >= ~100, so size/4096 channel buckets and size/1024 client
 * buckets keep chains short at any fill level for about 1% of the region.
 */
bool store::allocate_tables() noexcept
{
    uint64_t nch = pow2_at_least(h_->size_ / 4096, 64, uint64_t(1) << 20);
    uint64_t ncl = pow2_at_least(h_->size_ / 1024, 256, uint64_t(1) << 22);
    uint64_t a = arena_.alloc(nch * 8);
    uint64_t b = arena_.alloc(ncl * 8);
    if (a == 0 || b == 0) {
        arena_.free(a);
        arena_.free(b);
        return false;
    }
    std::memset(base_ + a, 0, nch * 8);
    std::memset(base_ + b, 0, ncl * 8);
    h_->chan_buckets_ = a;
    h_->chan_mask_ = nch - 1;
    h_->client_buckets_ = b;
    h_->client_mask_ = ncl - 1;
    return true;
}

void store::reset_contents() noexcept
{
    arena_.format(header_end(), h_->size_);
    /* min_size guarantees room for the smallest tables */
    allocate_tables();
    h_->channels_ = 0;
    h_->messages_ = 0;
    h_->message_bytes_ = 0;
    h_->clients_ = 0;
    h_->subs_longpoll_ = 0;
    h_->subs_websocket_ = 0;
    h_->chan_list_ = 0;
    h_->idle_head_ = 0;
    h_->idle_tail_ = 0;
    for (auto &o : h_->owners_) {
        o.subs_head_ = 0;
        o.subs_ = 0;
    }
    h_->generation_.fetch_add(1);
    h_->dirty_ = 0;
}

size_t store::sweep(uint64_t now_ms) noexcept
{
    mutation m(*this);
    size_t n = expire_clients(now_ms);
    for (uint64_t o = h_->chan_list_; o != 0;) {
        channel_rec *c = at<channel_rec>(o);
        o = c->next_;
        n += expire_messages(c, now_ms);
        if (channel_forgettable(c, now_ms)) {
            forget_channel(c);
            n++;
        }
    }
    return n;
}

void store::stats(uint64_t now_ms, pushq_stats_t *out) noexcept
{
    sweep(now_ms);
    std::memset(out, 0, sizeof(*out));
    out->channels = h_->channels_;
    out->messages = h_->messages_;
    out->message_bytes = h_->message_bytes_;
    out->memory_used = header_end() + arena_.used();
    out->memory_total = h_->size_;
    out->subscribers_longpoll = h_->subs_longpoll_;
    out->subscribers_websocket = h_->subs_websocket_;
    out->clients = h_->clients_;
    out->published = h_->published_;
    out->delivered = h_->delivered_;
    out->lost = h_->lost_;
    out->dropped_slow = h_->dropped_slow_.load(std::memory_order_relaxed);
}

} // namespace pushq
