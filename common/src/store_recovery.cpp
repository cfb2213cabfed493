/*
 * store_recovery.cpp -- taking the store's lock, and recovering when the
 * previous holder died with it (EOWNERDEAD from the robust mutex).
 *
 * Every mutation runs between begin_mutation() and end_mutation(), which
 * set and clear store_header::dirty_.  A holder that died with dirty_ == 0
 * (between mutations, e.g. inside a fetch callback, or while only reading)
 * left sound structures: they are kept as they are.  With dirty_ == 1 it
 * died half-way through: validate() walks everything; when every check
 * passes the contents are kept.  Otherwise salvage() rebuilds the store
 * from what still checks out, dropping only what does not (typically the
 * one channel log or record that was being changed), so a crash costs at
 * most the object it interrupted, not every channel.  Only when the
 * allocator's own tags are broken is there nothing to salvage: then the
 * contents are reset (owner registrations and counters survive, and the
 * generation moves so that handles from before are recognised as stale).
 * pushq_store_recoveries() counts recoveries, and as "resets" those that
 * lost data (some records dropped, or everything).
 */

#include "store.hpp"

#include "shared_lock.hpp"
#include "wait_word.hpp"

namespace pushq {

bool store::lock() noexcept
{
    switch (shared_lock::lock(&h_->mutex_)) {
    case lock_state::acquired:
        if (h_->dirty_ == 0) {
            return true;
        }
        /* dirty with a normally acquired lock: only possible if a previous
         * recovery itself died; treat as a dead owner. */
        [[fallthrough]];
    case lock_state::owner_died:
        h_->recovered_++;
        if (h_->dirty_ != 0) {
            /* the owner died in the middle of a mutation: keep the
             * contents if every structure checks out, else keep what
             * does, else start afresh */
            if (!validate()) {
                size_t dropped = 0;
                if (!salvage(&dropped) || !validate()) {
                    reset_contents();
                    dropped = 1;
                }
                if (dropped != 0) {
                    h_->resets_++;
                }
            }
            h_->dirty_ = 0;
        }
        shared_lock::mark_consistent(&h_->mutex_);
        return true;
    case lock_state::failed:
        break;
    }
    return false;
}

void store::unlock() noexcept
{
    shared_lock::unlock(&h_->mutex_);
}

namespace {

/* Is record `o` a live channel: inside the region, a plausible name, and
 * on its hash chain (walked at most `limit` steps, so a corrupted cycle
 * cannot hang the check)? */
bool live_channel(store &st, uint64_t o, uint64_t limit) noexcept
{
    if (!st.in_region(o, sizeof(channel_rec))) {
        return false;
    }
    channel_rec *c = st.at<channel_rec>(o);
    if (c->name_len_ == 0 || c->name_len_ > PUSHQ_NAME_MAX ||
        c->hash_ != store::hash_name(c->name_, c->name_len_))
    {
        return false;
    }
    store_header *h = st.h();
    uint64_t b = st.at<uint64_t>(h->chan_buckets_)[c->hash_ & h->chan_mask_];
    for (uint64_t n = 0; b != 0 && n <= limit; n++) {
        if (b == o) {
            return true;
        }
        if (!st.in_region(b, sizeof(channel_rec))) {
            return false;
        }
        b = st.at<channel_rec>(b)->hnext_;
    }
    return false;
}

} // namespace

/*
 * Proves the structures sound after a crash in the middle of a mutation:
 * the arena's tags and free lists agree; every channel, message, client and
 * subscriber record is inside the region and linked consistently; the
 * gauges add up; and the arena holds exactly the blocks the structures
 * reach (nothing leaked, nothing freed twice).  Every walk is bounded by
 * the number of allocated blocks, so a corrupted cycle cannot hang it.
 */
bool store::validate() noexcept
{
    if (!arena_.check()) {
        return false;
    }
    const uint64_t limit = arena_.allocations() + 1;
    uint64_t blocks = 0;

    if (h_->chan_mask_ >= h_->size_ / 8 || h_->client_mask_ >= h_->size_ / 8 ||
        !in_region(h_->chan_buckets_, (h_->chan_mask_ + 1) * 8) ||
        !in_region(h_->client_buckets_, (h_->client_mask_ + 1) * 8) ||
        (h_->chan_mask_ & (h_->chan_mask_ + 1)) != 0 ||
        (h_->client_mask_ & (h_->client_mask_ + 1)) != 0)
    {
        return false;
    }
    blocks += 2;

    /* channels and their logs */
    uint64_t nch = 0, msgs = 0, bytes = 0, chan_subs = 0, chan_clients = 0;
    uint64_t prev = 0;
    for (uint64_t o = h_->chan_list_; o != 0; o = at<channel_rec>(o)->next_) {
        if (++nch > limit || !in_region(o, sizeof(channel_rec))) {
            return false;
        }
        channel_rec *c = at<channel_rec>(o);
        if (c->prev_ != prev || !live_channel(*this, o, limit) ||
            c->count_ > c->last_id_.load() ||
            c->life_start_.load() > c->last_id_.load() ||
            c->ring_cap_ > h_->size_ / 8 ||
            c->count_ > c->ring_cap_ ||
            (c->ring_cap_ & (c->ring_cap_ - 1)) != 0)
        {
            return false;
        }
        blocks++;
        if (c->ring_cap_ != 0) {
            if (!in_region(c->ring_, c->ring_cap_ * 8) ||
                c->ring_head_ >= c->ring_cap_)
            {
                return false;
            }
            blocks++;
        }
        uint64_t b = 0;
        for (uint64_t id = first_id(c); id <= c->last_id_.load(); id++) {
            uint64_t mo = at<uint64_t>(c->ring_)[(c->ring_head_ + id -
                first_id(c)) & (c->ring_cap_ - 1)];
            if (!in_region(mo, sizeof(message_rec))) {
                return false;
            }
            message_rec *m = at<message_rec>(mo);
            if (m->id_ != id || m->len_ > h_->size_ ||
                !in_region(mo, sizeof(message_rec) + m->len_))
            {
                return false;
            }
            b += m->len_;
            blocks++;
        }
        if (b != c->bytes_) {
            return false;
        }
        uint64_t wakers = 0, wsubs = 0;
        for (unsigned i = 0; i < PUSHQ_MAX_WAKERS; i++) {
            if (c->waker_subs_[i] != 0) {
                wakers |= uint64_t(1) << i;
                wsubs += c->waker_subs_[i];
            }
        }
        if (wakers != c->wakers_ || wsubs != c->subs_) {
            return false;
        }
        msgs += c->count_;
        bytes += c->bytes_;
        chan_subs += c->subs_;
        chan_clients += c->clients_;
        prev = o;
    }
    uint64_t in_buckets = 0;
    uint64_t *chb = at<uint64_t>(h_->chan_buckets_);
    for (uint64_t i = 0; i <= h_->chan_mask_; i++) {
        for (uint64_t o = chb[i]; o != 0; o = at<channel_rec>(o)->hnext_) {
            if (++in_buckets > nch || !in_region(o, sizeof(channel_rec))) {
                return false;
            }
        }
    }
    if (in_buckets != nch || nch != h_->channels_ || msgs != h_->messages_ ||
        bytes != h_->message_bytes_)
    {
        return false;
    }

    /* named clients */
    uint64_t ncl = 0, idle = 0, client_subs = 0;
    uint64_t *cb = at<uint64_t>(h_->client_buckets_);
    for (uint64_t i = 0; i <= h_->client_mask_; i++) {
        for (uint64_t o = cb[i]; o != 0; o = at<client_rec>(o)->hnext_) {
            if (++ncl > limit || !in_region(o, sizeof(client_rec) +
                                            PUSHQ_NAME_MAX))
            {
                return false;
            }
            client_rec *cl = at<client_rec>(o);
            if (cl->name_len_ == 0 || cl->name_len_ > PUSHQ_NAME_MAX ||
                (cl->hash_ & h_->client_mask_) != i ||
                !live_channel(*this, cl->channel_, limit))
            {
                return false;
            }
            channel_rec *c = at<channel_rec>(cl->channel_);
            if (cl->hash_ != hash_client(cl->channel_, cl->name(),
                                         cl->name_len_) ||
                cl->cursor_.load() > c->last_id_.load() ||
                (cl->open_subs_ == 0) != (cl->idle_ != 0))
            {
                return false;
            }
            idle += cl->idle_;
            client_subs += cl->open_subs_;
            blocks++;
        }
    }
    if (ncl != h_->clients_ || ncl != chan_clients) {
        return false;
    }
    uint64_t n = 0;
    prev = 0;
    for (uint64_t o = h_->idle_head_; o != 0;
         o = at<client_rec>(o)->idle_next_)
    {
        if (++n > idle || !in_region(o, sizeof(client_rec)) ||
            at<client_rec>(o)->idle_ == 0 ||
            at<client_rec>(o)->idle_prev_ != prev)
        {
            return false;
        }
        prev = o;
    }
    if (n != idle || h_->idle_tail_ != prev) {
        return false;
    }

    /* subscribers */
    uint64_t nsub = 0, named = 0, lp = 0, ws = 0;
    for (uint32_t i = 0; i < PUSHQ_MAX_OWNERS; i++) {
        owner_slot &ow = h_->owners_[i];
        uint64_t k = 0;
        prev = 0;
        for (uint64_t o = ow.subs_head_; o != 0; o = at<sub_rec>(o)->next_) {
            if (++nsub > limit || !in_region(o, sizeof(sub_rec))) {
                return false;
            }
            sub_rec *r = at<sub_rec>(o);
            if (r->magic_ != sub_magic || r->owner_ != i ||
                r->prev_ != prev || !ow.in_use_ ||
                ow.waker_ >= PUSHQ_MAX_WAKERS ||
                r->kind_ > PUSHQ_SUB_WEBSOCKET ||
                !live_channel(*this, r->channel_, limit) ||
                (r->client_ != 0 && !in_region(r->client_,
                                               sizeof(client_rec))))
            {
                return false;
            }
            (r->kind_ == PUSHQ_SUB_WEBSOCKET ? ws : lp)++;
            named += r->client_ != 0;
            k++;
            blocks++;
            prev = o;
        }
        if (k != ow.subs_) {
            return false;
        }
    }
    if (nsub != chan_subs || named != client_subs ||
        lp != h_->subs_longpoll_ || ws != h_->subs_websocket_)
    {
        return false;
    }

    return blocks == arena_.allocations();
}

/*
 * Rebuilds the store from the records that check out, after a crash left
 * it inconsistent.  The hash tables (singly linked: one store links or
 * unlinks a record) are taken as the truth; everything derived (the
 * channel list, the idle list, every count, gauge and waker mask) is
 * recomputed; a chain or list is cut at the first record that fails its
 * checks; a channel whose log does not check out keeps its record and its
 * last id (ids go on, no "reset" for its clients) but loses its buffered
 * messages; every allocated block that nothing kept reaches is freed (the
 * leak a half-done allocation leaves).  Blocks are marked as they are
 * kept, so a cycle or a record reached twice is detected, not followed.
 * Subscriber handles whose records are kept stay valid; the others are
 * refused by their serial.  A crash inside the allocator itself is
 * repaired first (arena::rebuild).  Returns false when the allocator's
 * block chain or the tables are broken (then only a reset will do);
 * *dropped counts the records and messages given up.
 */
bool store::salvage(size_t *dropped) noexcept
{
    *dropped = 0;
    if ((!arena_.check() && !arena_.rebuild()) ||
        h_->chan_mask_ >= h_->size_ / 8 || h_->client_mask_ >= h_->size_ / 8 ||
        (h_->chan_mask_ & (h_->chan_mask_ + 1)) != 0 ||
        (h_->client_mask_ & (h_->client_mask_ + 1)) != 0 ||
        !arena_.is_block(h_->chan_buckets_, (h_->chan_mask_ + 1) * 8) ||
        !arena_.is_block(h_->client_buckets_, (h_->client_mask_ + 1) * 8) ||
        h_->chan_buckets_ == h_->client_buckets_)
    {
        return false;
    }
    arena_.mark(h_->chan_buckets_);
    arena_.mark(h_->client_buckets_);
    size_t lost = 0;

    /* 1. channels, from their hash chains */
    h_->chan_list_ = 0;
    h_->channels_ = 0;
    h_->messages_ = 0;
    h_->message_bytes_ = 0;
    uint64_t *cb = at<uint64_t>(h_->chan_buckets_);
    for (uint64_t i = 0; i <= h_->chan_mask_; i++) {
        uint64_t *link = &cb[i];
        while (*link != 0) {
            uint64_t o = *link;
            channel_rec *c = at<channel_rec>(o);
            if (arena_.is_block(o, sizeof(channel_rec)) && arena_.marked(o))
            {
                *link = 0;          /* a cycle back to a kept record */
                break;
            }
            if (!arena_.is_block(o, sizeof(channel_rec)) ||
                c->name_len_ == 0 || c->name_len_ > PUSHQ_NAME_MAX ||
                c->hash_ != hash_name(c->name_, c->name_len_) ||
                (c->hash_ & h_->chan_mask_) != i)
            {
                *link = 0;          /* cut here; the rest is unreachable */
                lost++;
                break;
            }
            arena_.mark(o);

            /* its log: all or nothing */
            uint64_t last = c->last_id_.load();
            bool ring_ok = c->ring_cap_ == 0
                ? c->ring_ == 0
                : ((c->ring_cap_ & (c->ring_cap_ - 1)) == 0 &&
                   c->ring_cap_ <= h_->size_ / 8 &&
                   arena_.is_block(c->ring_, c->ring_cap_ * 8) &&
                   !arena_.marked(c->ring_));
            bool log_ok = ring_ok && c->count_ <= c->ring_cap_ &&
                          c->count_ <= last &&
                          (c->ring_cap_ == 0 || c->ring_head_ < c->ring_cap_);
            uint64_t bytes = 0;
            auto msg_at = [&](uint64_t k) {
                return at<uint64_t>(c->ring_)[(c->ring_head_ + k) &
                                              (c->ring_cap_ - 1)];
            };
            for (uint64_t k = 0; log_ok && k < c->count_; k++) {
                uint64_t mo = msg_at(k);
                message_rec *m = at<message_rec>(mo);
                if (!arena_.is_block(mo, sizeof(message_rec)) ||
                    arena_.marked(mo) || m->len_ > h_->size_ ||
                    !arena_.is_block(mo, sizeof(message_rec) + m->len_) ||
                    m->id_ != last - c->count_ + 1 + k)
                {
                    log_ok = false;
                }
            }
            /* mark only a log that checked out; a message listed twice
             * shows up as already marked: undo and give the log up */
            for (uint64_t k = 0; log_ok && k < c->count_; k++) {
                uint64_t mo = msg_at(k);
                if (arena_.marked(mo)) {
                    for (uint64_t u = 0; u < k; u++) {
                        arena_.unmark(msg_at(u));
                    }
                    log_ok = false;
                    bytes = 0;
                    break;
                }
                arena_.mark(mo);
                bytes += at<message_rec>(mo)->len_;
            }
            if (!log_ok) {
                /* unmarked messages are freed below; the ids go on */
                lost += c->count_ != 0 ? c->count_ : 1;
                c->count_ = 0;
                bytes = 0;
                if (!ring_ok) {
                    c->ring_ = 0;
                    c->ring_cap_ = 0;
                }
                c->ring_head_ = 0;
            }
            if (c->ring_cap_ != 0) {
                arena_.mark(c->ring_);
            }
            if (c->life_start_.load() > last) {
                /* a crash inside begin_life: the life starts at last */
                c->life_start_.store(last);
            }
            c->bytes_ = bytes;
            c->subs_ = 0;
            c->clients_ = 0;
            c->wakers_ = 0;
            for (auto &w : c->waker_subs_) w = 0;
            c->prev_ = 0;
            c->next_ = h_->chan_list_;
            if (c->next_ != 0) {
                at<channel_rec>(c->next_)->prev_ = o;
            }
            h_->chan_list_ = o;
            h_->channels_++;
            h_->messages_ += c->count_;
            h_->message_bytes_ += bytes;
            link = &c->hnext_;
        }
    }

    /* a kept channel: marked, and found by its name in the rebuilt table */
    auto kept_channel = [&](uint64_t o) -> channel_rec * {
        if (!arena_.is_block(o, sizeof(channel_rec)) || !arena_.marked(o)) {
            return nullptr;
        }
        channel_rec *c = at<channel_rec>(o);
        if (c->name_len_ == 0 || c->name_len_ > PUSHQ_NAME_MAX ||
            find_channel(c->name_, c->name_len_, c->hash_) != c)
        {
            return nullptr;
        }
        return c;
    };

    /* 2. named clients, from their hash chains */
    h_->clients_ = 0;
    h_->idle_head_ = 0;
    h_->idle_tail_ = 0;
    /* Every walk below is bounded: a record that is readable but refers
     * to something dropped is skipped without being marked, so marks
     * alone would not stop a cycle through skipped records. */
    const uint64_t limit = arena_.allocations() + 1;
    uint64_t *clb = at<uint64_t>(h_->client_buckets_);
    for (uint64_t i = 0; i <= h_->client_mask_; i++) {
        uint64_t *link = &clb[i];
        for (uint64_t steps = 0; *link != 0; steps++) {
            uint64_t o = *link;
            client_rec *cl = at<client_rec>(o);
            if (arena_.is_block(o, sizeof(client_rec)) && arena_.marked(o))
            {
                *link = 0;          /* a cycle back to a kept record */
                break;
            }
            if (steps > limit || !arena_.is_block(o, sizeof(client_rec)) ||
                cl->name_len_ == 0 ||
                cl->name_len_ > PUSHQ_NAME_MAX ||
                !arena_.is_block(o, sizeof(client_rec) + cl->name_len_) ||
                (cl->hash_ & h_->client_mask_) != i)
            {
                *link = 0;          /* unreadable: cut here */
                lost++;
                break;
            }
            channel_rec *c = kept_channel(cl->channel_);
            if (c == nullptr ||
                cl->hash_ != hash_client(cl->channel_, cl->name(),
                                         cl->name_len_))
            {
                *link = cl->hnext_; /* readable, but orphaned: skip */
                lost++;
                continue;
            }
            arena_.mark(o);
            uint64_t last = c->last_id_.load();
            if (cl->cursor_.load() > last) {
                cl->cursor_.store(last);
            }
            cl->open_subs_ = 0;
            cl->idle_ = 0;
            cl->idle_prev_ = 0;
            cl->idle_next_ = 0;
            c->clients_++;
            h_->clients_++;
            link = &cl->hnext_;
        }
    }
    auto kept_client = [&](uint64_t o, uint64_t chan) -> client_rec * {
        if (!arena_.is_block(o, sizeof(client_rec)) || !arena_.marked(o)) {
            return nullptr;
        }
        client_rec *cl = at<client_rec>(o);
        if (cl->channel_ != chan || cl->name_len_ == 0 ||
            cl->name_len_ > PUSHQ_NAME_MAX ||
            find_client(chan, cl->name(), cl->name_len_, cl->hash_) != cl)
        {
            return nullptr;
        }
        return cl;
    };

    /* 3. subscribers, from their owners' lists */
    h_->subs_longpoll_ = 0;
    h_->subs_websocket_ = 0;
    for (uint32_t i = 0; i < PUSHQ_MAX_OWNERS; i++) {
        owner_slot &ow = h_->owners_[i];
        ow.subs_ = 0;
        if (!ow.in_use_ || ow.waker_ >= PUSHQ_MAX_WAKERS) {
            lost += ow.subs_head_ != 0;
            ow.subs_head_ = 0;
            ow.in_use_ = ow.in_use_ && ow.waker_ < PUSHQ_MAX_WAKERS;
            continue;
        }
        uint64_t prev = 0;
        uint64_t *link = &ow.subs_head_;
        for (uint64_t steps = 0; *link != 0; steps++) {
            uint64_t o = *link;
            sub_rec *r = at<sub_rec>(o);
            if (arena_.is_block(o, sizeof(sub_rec)) && arena_.marked(o)) {
                *link = 0;          /* a cycle back to a kept record */
                break;
            }
            if (steps > limit || !arena_.is_block(o, sizeof(sub_rec)) ||
                r->magic_ != sub_magic ||
                r->owner_ != i || r->kind_ > PUSHQ_SUB_WEBSOCKET)
            {
                *link = 0;          /* unreadable: cut here */
                lost++;
                break;
            }
            channel_rec *c = kept_channel(r->channel_);
            client_rec *cl = nullptr;
            if (c == nullptr ||
                (r->client_ != 0 &&
                 (cl = kept_client(r->client_, r->channel_)) == nullptr))
            {
                *link = r->next_;   /* readable, but orphaned: skip */
                lost++;
                continue;
            }
            arena_.mark(o);
            r->prev_ = prev;
            c->subs_++;
            if (c->waker_subs_[ow.waker_]++ == 0) {
                c->wakers_ |= uint64_t(1) << ow.waker_;
            }
            if (cl != nullptr) {
                cl->open_subs_++;
            }
            (r->kind_ == PUSHQ_SUB_WEBSOCKET ? h_->subs_websocket_
                                             : h_->subs_longpoll_)++;
            ow.subs_++;
            prev = o;
            link = &r->next_;
        }
    }

    /* 4. names without an open subscriber go idle; all with one expiry
     * (now + the longest client_ttl among them), so the list is sorted
     * and no name is forgotten sooner than its own ttl allows */
    uint64_t ttl = 0;
    for (uint64_t i = 0; i <= h_->client_mask_; i++) {
        for (uint64_t o = clb[i]; o != 0; o = at<client_rec>(o)->hnext_) {
            client_rec *cl = at<client_rec>(o);
            if (cl->open_subs_ == 0 && cl->ttl_ms_ > ttl) {
                ttl = cl->ttl_ms_;
            }
        }
    }
    uint64_t expires = add_ms(wait_word::monotonic_ms(), ttl);
    for (uint64_t i = 0; i <= h_->client_mask_; i++) {
        for (uint64_t o = clb[i]; o != 0; o = at<client_rec>(o)->hnext_) {
            client_rec *cl = at<client_rec>(o);
            if (cl->open_subs_ == 0) {
                cl->expires_ms_ = expires;
                idle_insert(cl);
            }
        }
    }

    /* 5. give back what nothing reaches any more */
    if (!arena_.free_unmarked()) {
        return false;
    }
    *dropped = lost;
    return true;
}

} // namespace pushq
