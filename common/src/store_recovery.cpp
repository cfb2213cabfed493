/*
 * store_recovery.cpp -- taking the store's lock, and recovering when the
 * previous holder died with it (EOWNERDEAD from the robust mutex).
 *
 * Every mutation runs between begin_mutation() and end_mutation(), which
 * set and clear store_header::dirty_.  A holder that died with dirty_ == 0
 * (between mutations, e.g. inside a fetch callback, or while only reading)
 * left sound structures: they are kept as they are.  With dirty_ == 1 it
 * died half-way through: validate() walks everything; when every check
 * passes the contents are kept, else they are reset (owner registrations
 * and counters survive, the generation moves so stale handles are
 * recognised).  pushq_store_recoveries() counts both cases.
 */

#include "store.hpp"

#include "shared_lock.hpp"

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
             * contents only if every structure checks out */
            if (!validate()) {
                reset_contents();
                h_->resets_++;
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

} // namespace pushq
