/*
 * channel_log.cpp -- channels and their message logs.
 *
 * A channel's log holds the ids last_id - count + 1 .. last_id in a ring of
 * message offsets; each message is stored once, however many subscribers
 * and named clients the channel has.  Publishing touches only the channel:
 * named clients keep their own cursor (client_table.cpp), so a publish
 * costs the same with 1 or 100,000 of them.
 *
 * Trimming is from the oldest end only, so the buffered ids always form
 * one contiguous window and "lost" is simply "the id wanted next is below
 * the window".  Consequences, chosen on purpose:
 *  - age: a message leaves when it and every older one have expired (the
 *    ttl comes from the publisher's location, so a newer message may
 *    expire sooner than an older one; it then waits for the older one);
 *  - message_ttl 0 means "no age limit" (count and bytes still bound the
 *    log), as nchan's message_timeout 0;
 *  - count: buffer 0 is taken as 1, and bytes: the newest message is kept
 *    even when it alone exceeds buffer_bytes, so that a publish always
 *    leaves something for the subscribers that are waiting for it.
 */

#include "store.hpp"

#include <atomic>
#include <cstring>
#include <new>

#include "wait_word.hpp"

namespace pushq {

uint64_t store::hash_name(const char *p, size_t n) noexcept
{
    uint64_t h = 0xcbf29ce484222325ULL;         /* FNV-1a 64 */
    for (size_t i = 0; i < n; i++) {
        h ^= static_cast<unsigned char>(p[i]);
        h *= 0x100000001b3ULL;
    }
    return h ^ (h >> 29);
}

channel_rec *store::find_channel(const char *name, size_t len,
    uint64_t hash) noexcept
{
    uint64_t *b = at<uint64_t>(h_->chan_buckets_);
    for (uint64_t o = b[hash & h_->chan_mask_]; o != 0;) {
        channel_rec *c = at<channel_rec>(o);
        if (c->hash_ == hash && c->name_len_ == len &&
            std::memcmp(c->name_, name, len) == 0)
        {
            return c;
        }
        o = c->hnext_;
    }
    return nullptr;
}

channel_rec *store::create_channel(const char *name, size_t len,
    uint64_t hash, uint64_t ttl_ms, uint64_t now_ms) noexcept
{
    uint64_t o = arena_.alloc(sizeof(channel_rec));
    if (o == 0) {
        return nullptr;
    }
    void *p = base_ + o;
    std::memset(p, 0, sizeof(channel_rec));
    channel_rec *c = static_cast<channel_rec *>(p);
    new (&c->last_id_) std::atomic<uint64_t>(0);
    new (&c->seq_) std::atomic<uint32_t>(0);
    new (&c->waiters_) std::atomic<uint32_t>(0);
    new (&c->incarnation_) std::atomic<uint64_t>(0);
    new (&c->life_start_) std::atomic<uint64_t>(0);
    c->hash_ = hash;
    c->name_len_ = static_cast<uint32_t>(len);
    std::memcpy(c->name_, name, len);
    c->ttl_ms_ = ttl_ms;
    c->touched_ms_ = now_ms;

    uint64_t *b = at<uint64_t>(h_->chan_buckets_) + (hash & h_->chan_mask_);
    c->hnext_ = *b;
    /* linked only once initialised, also as seen by a crash salvage */
    std::atomic_signal_fence(std::memory_order_seq_cst);
    *b = o;
    c->next_ = h_->chan_list_;
    if (c->next_ != 0) {
        at<channel_rec>(c->next_)->prev_ = o;
    }
    h_->chan_list_ = o;
    h_->channels_++;
    return c;
}

void store::forget_channel(channel_rec *c) noexcept
{
    uint64_t o = off(c);
    while (c->count_ != 0) {
        drop_oldest(c);
    }
    arena_.free(c->ring_);

    uint64_t *link = at<uint64_t>(h_->chan_buckets_) + (c->hash_ &
                                                        h_->chan_mask_);
    while (*link != 0 && *link != o) {
        link = &at<channel_rec>(*link)->hnext_;
    }
    if (*link == o) {
        *link = c->hnext_;
    }
    if (c->prev_ != 0) {
        at<channel_rec>(c->prev_)->next_ = c->next_;
    } else {
        h_->chan_list_ = c->next_;
    }
    if (c->next_ != 0) {
        at<channel_rec>(c->next_)->prev_ = c->prev_;
    }
    h_->channels_--;
    c->name_len_ = 0;
    arena_.free(o);
}

/* SPEC: "A channel with no messages, subscribers or named clients left may
 * be forgotten after message_ttl" -- counted from its last publish or its
 * last subscriber's close. */
bool store::channel_forgettable(channel_rec *c, uint64_t now_ms) noexcept
{
    return c->count_ == 0 && c->subs_ == 0 && c->clients_ == 0 &&
           now_ms >= add_ms(c->touched_ms_, c->ttl_ms_);
}

void store::drop_oldest(channel_rec *c) noexcept
{
    /* count_ > 0 */
    uint64_t *ring = at<uint64_t>(c->ring_);
    uint64_t mo = ring[c->ring_head_];
    message_rec *m = at<message_rec>(mo);
    c->bytes_ -= m->len_;
    h_->messages_--;
    h_->message_bytes_ -= m->len_;
    ring[c->ring_head_] = 0;
    c->ring_head_ = (c->ring_head_ + 1) & (c->ring_cap_ - 1);
    c->count_--;
    arena_.free(mo);
}

size_t store::expire_messages(channel_rec *c, uint64_t now_ms) noexcept
{
    size_t n = 0;
    while (c->count_ != 0) {
        message_rec *m = at<message_rec>(at<uint64_t>(c->ring_)[c->ring_head_]);
        if (m->expires_ms_ == 0 || m->expires_ms_ > now_ms) {
            break;
        }
        drop_oldest(c);
        n++;
    }
    return n;
}

message_rec *store::message(const channel_rec *c, uint64_t id) noexcept
{
    uint64_t first = first_id(c);
    if (c->count_ == 0 || id < first ||
        id > c->last_id_.load(std::memory_order_relaxed))
    {
        return nullptr;
    }
    uint64_t i = (c->ring_head_ + (id - first)) & (c->ring_cap_ - 1);
    return at<message_rec>(at<uint64_t>(c->ring_)[i]);
}

size_t store::pretrim(channel_rec *c, uint64_t len,
    const pushq_limits_t *lim) noexcept
{
    /* Exactly what append's trim would drop once the new message is in:
     * while count + 1 > keep, or bytes + len > buffer_bytes with something
     * older than the new message left.  Dropped only when the arena proves
     * that their space will take the new message: a publish that fails
     * still changes nothing. */
    constexpr size_t max_batch = 256;
    uint64_t offs[max_batch];
    uint64_t keep = lim->buffer != 0 ? lim->buffer : 1;
    uint64_t count = c->count_, bytes = c->bytes_;
    size_t n = 0;
    while (count != 0 && (count + 1 > keep || bytes + len > lim->buffer_bytes))
    {
        if (n == max_batch) {
            return 0;           /* too many to prove cheaply: give up */
        }
        uint64_t mo = at<uint64_t>(c->ring_)[(c->ring_head_ + n) &
                                             (c->ring_cap_ - 1)];
        offs[n++] = mo;
        count--;
        bytes -= at<message_rec>(mo)->len_;
    }
    if (n == 0) {
        return 0;
    }
    /* insertion sort: usually n == 1 */
    for (size_t i = 1; i < n; i++) {
        uint64_t v = offs[i];
        size_t k = i;
        for (; k > 0 && offs[k - 1] > v; k--) offs[k] = offs[k - 1];
        offs[k] = v;
    }
    if (!arena_.fits_after_free(offs, n, sizeof(message_rec) + len)) {
        return 0;
    }
    mutation mu(*this);
    for (size_t i = 0; i < n; i++) {
        drop_oldest(c);
    }
    return n;
}

uint64_t store::append(channel_rec *c, uint64_t msg_off, uint64_t new_ring,
    uint64_t new_cap, const pushq_limits_t *lim, uint64_t now_ms) noexcept
{
    if (new_ring != 0) {
        uint64_t *from = at<uint64_t>(c->ring_);
        uint64_t *to = at<uint64_t>(new_ring);
        for (uint64_t i = 0; i < c->count_; i++) {
            to[i] = from[(c->ring_head_ + i) & (c->ring_cap_ - 1)];
        }
        arena_.free(c->ring_);
        c->ring_ = new_ring;
        c->ring_cap_ = new_cap;
        c->ring_head_ = 0;
    }

    message_rec *m = at<message_rec>(msg_off);
    uint64_t id = c->last_id_.load(std::memory_order_relaxed) + 1;
    m->id_ = id;
    at<uint64_t>(c->ring_)[(c->ring_head_ + c->count_) &
                           (c->ring_cap_ - 1)] = msg_off;
    c->count_++;
    c->bytes_ += m->len_;
    h_->messages_++;
    h_->message_bytes_ += m->len_;
    h_->published_++;
    c->ttl_ms_ = lim->message_ttl_ms;
    c->touched_ms_ = now_ms;
    /* release: a lock-free reader that sees the id sees the message */
    c->last_id_.store(id, std::memory_order_release);

    uint64_t keep = lim->buffer != 0 ? lim->buffer : 1;
    while (c->count_ > keep ||
           (c->bytes_ > lim->buffer_bytes && c->count_ > 1))
    {
        drop_oldest(c);
    }

    /* seq_ before waiters_ (both seq_cst), against a waiter that does
     * waiters_++ then sleeps only while seq_ is unchanged: one of the two
     * sees the other. */
    c->seq_.fetch_add(1);
    if (c->waiters_.load() != 0) {
        wait_word::wake_all(&c->seq_);
    }
    return id;
}

pushq_status_t store::check_message(const char *chan, size_t chan_len,
    const void *msg, size_t len, const pushq_limits_t *lim,
    const char *missing, const char **why) const noexcept
{
    if (chan == nullptr || chan_len == 0 || chan_len > PUSHQ_NAME_MAX) {
        if (why) *why = "channel: must be 1-64 bytes of [A-Za-z0-9_.:-]";
        return PUSHQ_EBADARG;
    }
    if (lim == nullptr || (msg == nullptr && len != 0)) {
        if (why) *why = missing;
        return PUSHQ_EBADARG;
    }
    if (len > h_->size_) {
        /* can never fit (and sizeof(message_rec) + len must not wrap) */
        if (why) *why = why_store_full;
        return PUSHQ_ENOMEM;
    }
    return PUSHQ_OK;
}

channel_rec *store::open_channel(const char *chan, size_t chan_len,
    uint64_t hash, const pushq_limits_t *lim, uint64_t now_ms,
    bool *created) noexcept
{
    channel_rec *c = find_channel(chan, chan_len, hash);
    *created = c == nullptr;
    if (c == nullptr) {
        return create_channel(chan, chan_len, hash, lim->message_ttl_ms,
                              now_ms);
    }
    expire_messages(c, now_ms);
    return c;
}

bool store::alloc_message(const channel_rec *c, size_t len,
    uint64_t count_after, uint64_t *msg_off, uint64_t *new_ring,
    uint64_t *new_cap) noexcept
{
    uint64_t mo = arena_.alloc(sizeof(message_rec) + len);
    uint64_t ring = 0, cap = 0;
    if (mo != 0 && count_after + 1 > c->ring_cap_) {
        cap = c->ring_cap_ != 0 ? c->ring_cap_ * 2 : 8;
        ring = arena_.alloc(cap * 8);
    }
    if (mo == 0 || (cap != 0 && ring == 0)) {
        arena_.free(mo);
        arena_.free(ring);
        return false;
    }
    *msg_off = mo;
    *new_ring = ring;
    *new_cap = cap;
    return true;
}

void store::fill_message(uint64_t msg_off, const void *msg, size_t len,
    unsigned flags, uint64_t expires_ms) noexcept
{
    message_rec *m = at<message_rec>(msg_off);
    m->len_ = len;
    m->flags_ = flags & PUSHQ_MSG_BINARY;
    m->pad_ = 0;
    m->expires_ms_ = expires_ms;
    if (len != 0) {
        std::memcpy(m->data(), msg, len);
    }
}

pushq_status_t store::publish(const char *chan, size_t chan_len,
    const void *msg, size_t len, unsigned flags, const pushq_limits_t *lim,
    uint64_t now_ms, pushq_publish_result_t *out, const char **why) noexcept
{
    pushq_status_t st = check_message(chan, chan_len, msg, len, lim,
                                      "publish: missing limits or message",
                                      why);
    if (st != PUSHQ_OK) {
        return st;
    }
    if (len > lim->max_message_size) {
        if (why) *why = "message: larger than max_message_size";
        return PUSHQ_ETOOBIG;
    }
    store_guard g(*this);
    if (!g.ok()) {
        if (why) *why = why_store_locked;
        return PUSHQ_EINTERNAL;
    }
    uint64_t hash = hash_name(chan, chan_len);

    /* Attempt 1 with what is free; attempt 2 after reclaiming everything
     * that has expired; attempt 3 after dropping the channel's oldest
     * messages that this very publish would trim anyway, when their space
     * is proven to fit the new message (so a channel at its buffer limit
     * in a full region keeps working: the new message takes the place of
     * the ones it pushes out).  A failed attempt undoes itself completely:
     * ENOMEM changes nothing.  store::mirror does the same. */
    for (int attempt = 0; attempt < 3; attempt++) {
        if (attempt == 1) {
            sweep(now_ms);
        } else if (attempt == 2) {
            channel_rec *c = find_channel(chan, chan_len, hash);
            if (c == nullptr || pretrim(c, len, lim) == 0) {
                break;
            }
        }
        mutation mu(*this);
        bool created;
        channel_rec *c = open_channel(chan, chan_len, hash, lim, now_ms,
                                      &created);
        if (c == nullptr) {
            continue;
        }
        uint64_t mo, ring, cap;
        if (!alloc_message(c, len, c->count_, &mo, &ring, &cap)) {
            if (created) {
                forget_channel(c);
            }
            continue;
        }
        fill_message(mo, msg, len, flags, message_expiry(lim, now_ms));
        uint64_t id = append(c, mo, ring, cap, lim, now_ms);
        if (out != nullptr) {
            out->id = id;
            out->subscribers = static_cast<uint32_t>(c->subs_);
            out->wakers = c->wakers_;
            out->channel_key = off(c);
        }
        return PUSHQ_OK;
    }

    if (why) *why = why_store_full;
    return PUSHQ_ENOMEM;
}

pushq_status_t store::channel_stats(const char *chan, size_t chan_len,
    uint64_t now_ms, pushq_channel_stats_t *out) noexcept
{
    std::memset(out, 0, sizeof(*out));
    if (chan == nullptr || chan_len == 0 || chan_len > PUSHQ_NAME_MAX) {
        return PUSHQ_EBADARG;
    }
    store_guard g(*this);
    if (!g.ok()) {
        return PUSHQ_EINTERNAL;
    }
    channel_rec *c = find_channel(chan, chan_len, hash_name(chan, chan_len));
    if (c == nullptr) {
        return PUSHQ_ENOTFOUND;
    }
    {
        mutation mu(*this);
        expire_messages(c, now_ms);
    }
    out->last_id = c->last_id_.load(std::memory_order_relaxed);
    out->first_id = c->count_ != 0 ? first_id(c) : 0;
    out->messages = c->count_;
    out->subscribers = c->subs_;
    out->clients = c->clients_;
    return PUSHQ_OK;
}

} // namespace pushq
