/*
 * store_mirror.cpp -- Redis mode: the local store as a mirror of the
 * channels Redis holds (pushq_store_mirror, pushq.h; pushq_redis.h).
 *
 * Redis gives the ids; the mirror stores each message under the id Redis
 * gave it.  The local log must stay one contiguous window of ids (the ring
 * is indexed by id - first_id), so:
 *  - a duplicate (id <= newest) is ignored;
 *  - the next id is appended as a local publish would;
 *  - a jump (ids missed while the subscription connection was down) drops
 *    the buffered messages and moves the window's base to id - 1, so that
 *    readers behind it count the missed ids as lost (fetch's usual rule);
 *  - a new epoch (the channel was forgotten in Redis and began again at
 *    id 1) begins a new local life: messages dropped, newest id 0, the
 *    channel's incarnation bumped; a sub handle from an older incarnation
 *    starts again at the new life's start (subscriber.cpp), named cursors
 *    are moved here.
 * The first message mirrored into a channel that never had one (a channel
 * a local subscriber created, at newest id 0) begins the local life at
 * id - 1 (life_start_) without a new incarnation: the ids up to it were
 * published before this server knew the channel, they are not "lost" to
 * anyone here (positions below life_start_ are raised to it), and a
 * position above it (pushq_sub_open_at after a take) still holds.
 *
 * Catching up (pushq_redis.h): with mirror_opts::next_only a message that
 * is not the next id (nor a duplicate, nor a channel's first) is not
 * stored but reported as a gap, for the adapter to read the stream
 * instead; a range read stores each entry with its own expiry; and
 * mirror_restart begins a new life before a range read of a new epoch is
 * mirrored.  redis_channels lists the channels to read on a reconnect.
 */

#include "store.hpp"

#include <atomic>

#include "wait_word.hpp"

namespace pushq {

void store::begin_life(channel_rec *c, uint64_t base, bool renew) noexcept
{
    while (c->count_ != 0) {
        drop_oldest(c);
    }
    c->ring_head_ = 0;
    /* order for the lock-free readers (ready): a reader that sees the new
     * incarnation sees the new life_start_ and last_id_ (release/acquire) */
    c->last_id_.store(base, std::memory_order_relaxed);
    c->life_start_.store(base, std::memory_order_release);
    if (renew) {
        c->incarnation_.fetch_add(1, std::memory_order_release);
    }
    if (c->clients_ != 0) {
        /* rare (named clients live in Redis in Redis mode): walk the
         * client table for this channel's names */
        uint64_t co = off(c);
        uint64_t *b = at<uint64_t>(h_->client_buckets_);
        for (uint64_t i = 0; i <= h_->client_mask_; i++) {
            for (uint64_t o = b[i]; o != 0; o = at<client_rec>(o)->hnext_) {
                client_rec *cl = at<client_rec>(o);
                if (cl->channel_ == co) {
                    cl->cursor_.store(base, std::memory_order_release);
                }
            }
        }
    }
}

void store::skip_to(channel_rec *c, uint64_t next) noexcept
{
    while (c->count_ != 0) {
        drop_oldest(c);
    }
    c->ring_head_ = 0;
    c->last_id_.store(next - 1, std::memory_order_release);
}

pushq_status_t store::mirror(const char *chan, size_t chan_len,
    uint64_t epoch, uint64_t id, const void *msg, size_t len,
    unsigned flags, const pushq_limits_t *lim, uint64_t now_ms,
    pushq_publish_result_t *out, const char **why, mirror_opts *opt) noexcept
{
    if (opt != nullptr) {
        opt->gap = false;
        opt->gap_after = 0;
    }
    pushq_status_t st = check_message(chan, chan_len, msg, len, lim,
                                      "mirror: missing limits or message",
                                      why);
    if (st != PUSHQ_OK) {
        return st;
    }
    if (id == 0 || id == UINT64_MAX) {
        if (why) *why = "mirror: message id must be 1 or more";
        return PUSHQ_EBADARG;
    }
    store_guard g(*this);
    if (!g.ok()) {
        if (why) *why = why_store_locked;
        return PUSHQ_EINTERNAL;
    }
    uint64_t hash = hash_name(chan, chan_len);

    /* Attempts as in publish (channel_log.cpp): with what is free; after a sweep; after
     * dropping what this very message pushes out anyway (all of the
     * buffered messages for a new life or a jump, else the pretrim). */
    for (int attempt = 0; attempt < 3; attempt++) {
        if (attempt == 1) {
            sweep(now_ms);
        } else if (attempt == 2) {
            channel_rec *c = find_channel(chan, chan_len, hash);
            if (c == nullptr) {
                break;
            }
            uint64_t last = c->last_id_.load(std::memory_order_relaxed);
            bool renew = epoch != 0 && c->epoch_ != 0 && c->epoch_ != epoch;
            if (renew || id > last + 1) {
                if (c->count_ == 0) {
                    break;
                }
                mutation mu(*this);
                while (c->count_ != 0) {
                    drop_oldest(c);
                }
            } else if (pretrim(c, len, lim) == 0) {
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

        uint64_t last = c->last_id_.load(std::memory_order_relaxed);
        bool renew = epoch != 0 && c->epoch_ != 0 && c->epoch_ != epoch;
        bool first_life = !renew && epoch != 0 && c->epoch_ == 0 &&
                          last == 0;
        if (!renew && id <= last) {
            /* a duplicate (heard twice, or mirrored after a take) */
            if (c->epoch_ == 0 && epoch != 0) {
                c->epoch_ = epoch;
            }
            if (out != nullptr) {
                out->id = 0;
                out->subscribers = static_cast<uint32_t>(c->subs_);
                out->wakers = 0;
                out->channel_key = 0;
            }
            return PUSHQ_OK;
        }
        if (opt != nullptr && opt->next_only && !first_life &&
            (renew ? id > 1 : id > last + 1))
        {
            /* heard past a gap: store nothing, say what to read */
            opt->gap = true;
            opt->gap_after = renew ? 0 : last;
            if (created) {
                forget_channel(c);
            }
            if (out != nullptr) {
                out->id = 0;
                out->subscribers = created ? 0
                                   : static_cast<uint32_t>(c->subs_);
                out->wakers = 0;
                out->channel_key = 0;
            }
            return PUSHQ_OK;
        }
        /* after the new life or the jump, the log is empty */
        bool emptied = renew || first_life || id > last + 1;
        uint64_t count_after = emptied ? 0 : c->count_;

        uint64_t mo, ring, cap;
        if (!alloc_message(c, len, count_after, &mo, &ring, &cap)) {
            if (created) {
                forget_channel(c);
            }
            continue;
        }

        if (renew) {
            c->epoch_ = epoch;
            begin_life(c, 0, true);
            last = 0;
        } else if (first_life) {
            c->epoch_ = epoch;
            if (id > 1) {
                begin_life(c, id - 1, false);
                last = id - 1;
            }
        } else if (c->epoch_ == 0 && epoch != 0) {
            c->epoch_ = epoch;
        }
        if (id > last + 1) {
            skip_to(c, id);
        }

        fill_message(mo, msg, len, flags,
                     (opt != nullptr && opt->has_expiry) ? opt->expires_ms
                     : message_expiry(lim, now_ms));
        uint64_t got = append(c, mo, ring, cap, lim, now_ms);
        if (out != nullptr) {
            out->id = got;
            out->subscribers = static_cast<uint32_t>(c->subs_);
            out->wakers = c->wakers_;
            out->channel_key = off(c);
        }
        return PUSHQ_OK;
    }

    if (why) *why = why_store_full;
    return PUSHQ_ENOMEM;
}

bool store::mirror_restart(const char *chan, size_t chan_len,
    uint64_t epoch, uint64_t *wakers) noexcept
{
    if (wakers != nullptr) *wakers = 0;
    if (chan == nullptr || chan_len == 0 || chan_len > PUSHQ_NAME_MAX ||
        epoch == 0)
    {
        return false;
    }
    store_guard g(*this);
    if (!g.ok()) {
        return false;
    }
    channel_rec *c = find_channel(chan, chan_len, hash_name(chan, chan_len));
    if (c == nullptr || c->epoch_ == 0 || c->epoch_ == epoch) {
        return false;
    }
    mutation mu(*this);
    c->epoch_ = epoch;
    begin_life(c, 0, true);
    /* wake the readers: their positions belong to the old life */
    c->seq_.fetch_add(1);
    if (c->waiters_.load() != 0) {
        wait_word::wake_all(&c->seq_);
    }
    if (wakers != nullptr) *wakers = c->wakers_;
    return true;
}

size_t store::redis_channels(pushq_redis_chan_cb cb, void *ctx) noexcept
{
    store_guard g(*this);
    if (!g.ok()) {
        return 0;
    }
    size_t n = 0;
    for (uint64_t o = h_->chan_list_; o != 0; o = at<channel_rec>(o)->next_) {
        channel_rec *c = at<channel_rec>(o);
        if (c->epoch_ == 0 || c->subs_ == 0) {
            continue;
        }
        if (cb != nullptr) {
            cb(ctx, c->name_, c->name_len_,
               c->last_id_.load(std::memory_order_relaxed));
        }
        n++;
    }
    return n;
}

} // namespace pushq
