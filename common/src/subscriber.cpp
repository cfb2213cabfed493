/*
 * subscriber.cpp -- owners and subscribers: open, fetch, ready, wait, close.
 *
 * A subscriber is the caller's pushq_sub_t (position, flags, offsets) plus
 * a small sub_rec in the region, on its owner's list.  The record is what
 * counts it (channel subscribers, waker mask, a name's open connections),
 * so when an nginx worker dies, pushq_store_owner_reap/release can close
 * its subscribers from another process and nothing stays pinned.
 *
 * Positions: an anonymous subscriber keeps its position (last id handed
 * out) in its handle; a named one uses the client's cursor in the region,
 * shared by all connections of that name.  fetch moves it only past what
 * it hands to the callback.
 */

#include "store.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>

#include "wait_word.hpp"

namespace pushq {

namespace {
constexpr uint64_t wait_slice_ms = 1000;
} // namespace

pushq_status_t store::register_owner(int32_t pid, uint32_t waker,
    uint32_t *owner, const char **why) noexcept
{
    if (owner == nullptr || waker >= PUSHQ_MAX_WAKERS || pid < 0) {
        if (why) *why = "owner: waker must be 0-63 and pid >= 0";
        return PUSHQ_EBADARG;
    }
    store_guard g(*this);
    if (!g.ok()) {
        if (why) *why = why_store_locked;
        return PUSHQ_EINTERNAL;
    }
    for (uint32_t i = 0; i < PUSHQ_MAX_OWNERS; i++) {
        owner_slot &o = h_->owners_[i];
        if (!o.in_use_) {
            mutation mu(*this);
            o.pid_ = pid;
            o.waker_ = waker;
            o.subs_head_ = 0;
            o.subs_ = 0;
            o.in_use_ = 1;
            *owner = i;
            return PUSHQ_OK;
        }
    }
    if (why) *why = "owner: all 128 owner slots are in use";
    return PUSHQ_ENOMEM;
}

void store::release_owner(uint32_t owner, uint64_t now_ms) noexcept
{
    owner_slot &o = h_->owners_[owner];
    while (o.subs_head_ != 0) {
        close_sub(at<sub_rec>(o.subs_head_), now_ms);
    }
    o.in_use_ = 0;
    o.pid_ = 0;
}

uint32_t store::reap_owners(uint64_t now_ms) noexcept
{
    store_guard g(*this);
    if (!g.ok()) {
        return 0;
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < PUSHQ_MAX_OWNERS; i++) {
        owner_slot &o = h_->owners_[i];
        if (o.in_use_ && o.pid_ > 0 && kill(o.pid_, 0) == -1 &&
            errno == ESRCH)
        {
            mutation mu(*this);
            release_owner(i, now_ms);
            n++;
        }
    }
    return n;
}

void store::close_sub(sub_rec *r, uint64_t now_ms) noexcept
{
    owner_slot &ow = h_->owners_[r->owner_];
    channel_rec *c = at<channel_rec>(r->channel_);
    uint32_t w = ow.waker_;

    c->subs_--;
    if (--c->waker_subs_[w] == 0) {
        c->wakers_ &= ~(uint64_t(1) << w);
    }
    c->touched_ms_ = now_ms;
    if (r->kind_ == PUSHQ_SUB_WEBSOCKET) {
        h_->subs_websocket_--;
    } else {
        h_->subs_longpoll_--;
    }
    if (r->client_ != 0) {
        client_rec *cl = at<client_rec>(r->client_);
        if (--cl->open_subs_ == 0) {
            /* SPEC: client_ttl counts from the end of the name's last
             * request or connection */
            cl->expires_ms_ = add_ms(now_ms, cl->ttl_ms_);
            idle_insert(cl);
        }
    }

    if (r->prev_ != 0) {
        at<sub_rec>(r->prev_)->next_ = r->next_;
    } else {
        ow.subs_head_ = r->next_;
    }
    if (r->next_ != 0) {
        at<sub_rec>(r->next_)->prev_ = r->prev_;
    }
    ow.subs_--;
    r->magic_ = 0;
    r->serial_ = 0;
    arena_.free(off(r));
}

sub_rec *store::live_sub(const pushq_sub_t *sub) noexcept
{
    uint64_t o = sub->priv_[sw_rec];
    if (o == 0 ||
        sub->priv_[sw_generation] != h_->generation_.load() ||
        !in_region(o, sizeof(sub_rec)))
    {
        return nullptr;
    }
    sub_rec *r = at<sub_rec>(o);
    if (r->magic_ != sub_magic || r->serial_ != sub->priv_[sw_serial]) {
        return nullptr;
    }
    return r;
}

pushq_status_t store::open_sub(const pushq_sub_spec_t *spec,
    const pushq_limits_t *lim, uint64_t now_ms, pushq_sub_t *sub,
    const char **why, const uint64_t *after_id) noexcept
{
    if (sub == nullptr) {
        if (why) *why = "subscriber: no handle";
        return PUSHQ_EBADARG;
    }
    std::memset(sub, 0, sizeof(*sub));
    if (spec == nullptr || lim == nullptr) {
        if (why) *why = "subscriber: missing spec or limits";
        return PUSHQ_EBADARG;
    }
    if (spec->chan == nullptr || spec->chan_len == 0 ||
        spec->chan_len > PUSHQ_NAME_MAX)
    {
        if (why) *why = "channel: must be 1-64 bytes of [A-Za-z0-9_.:-]";
        return PUSHQ_EBADARG;
    }
    /* pushq_sub_open_at: anonymous, whatever the spec says */
    size_t name_len = spec->name != nullptr && after_id == nullptr
                      ? spec->name_len : 0;
    if (name_len > PUSHQ_NAME_MAX) {
        if (why) *why = "name: must be 1-64 bytes of [A-Za-z0-9_.:-]";
        return PUSHQ_EBADARG;
    }
    /* the kind comes from C: read its bits, never load an out-of-range
     * enum value in C++ (undefined behaviour, and UBSan says so) */
    uint32_t kind = 0;
    static_assert(sizeof(spec->kind) == sizeof(kind));
    std::memcpy(&kind, &spec->kind, sizeof(kind));
    if (kind != PUSHQ_SUB_LONGPOLL && kind != PUSHQ_SUB_WEBSOCKET) {
        if (why) *why = "subscriber: kind must be longpoll or websocket";
        return PUSHQ_EBADARG;
    }
    if (spec->owner >= PUSHQ_MAX_OWNERS) {
        if (why) *why = "subscriber: owner not registered";
        return PUSHQ_EBADARG;
    }

    store_guard g(*this);
    if (!g.ok()) {
        if (why) *why = why_store_locked;
        return PUSHQ_EINTERNAL;
    }
    owner_slot &ow = h_->owners_[spec->owner];
    if (!ow.in_use_) {
        if (why) *why = "subscriber: owner not registered";
        return PUSHQ_EBADARG;
    }
    uint64_t hash = hash_name(spec->chan, spec->chan_len);

    for (int attempt = 0; attempt < 2; attempt++) {
        if (attempt == 1) {
            sweep(now_ms);
        }
        mutation mu(*this);

        bool new_channel = false;
        channel_rec *c = find_channel(spec->chan, spec->chan_len, hash);
        if (c == nullptr) {
            c = create_channel(spec->chan, spec->chan_len, hash,
                               lim->message_ttl_ms, now_ms);
            if (c == nullptr) {
                continue;
            }
            new_channel = true;
        } else {
            expire_messages(c, now_ms);
        }
        uint64_t last = c->last_id_.load(std::memory_order_relaxed);

        client_rec *cl = nullptr;
        bool new_client = false;
        if (name_len != 0) {
            uint64_t ch = hash_client(off(c), spec->name, name_len);
            cl = find_client(off(c), spec->name, name_len, ch);
            if (cl != nullptr && cl->open_subs_ == 0 &&
                cl->expires_ms_ <= now_ms)
            {
                /* past client_ttl: forgotten; "if it returns, it is new" */
                forget_client(cl, now_ms);
                cl = nullptr;
            }
            if (cl == nullptr) {
                /* a new name starts at the newest id */
                cl = create_client(c, spec->name, name_len, ch, last);
                if (cl == nullptr) {
                    if (new_channel) {
                        forget_channel(c);
                    }
                    continue;
                }
                new_client = true;
            }
        }

        uint64_t ro = arena_.alloc(sizeof(sub_rec));
        if (ro == 0) {
            if (new_client) {
                forget_client(cl, now_ms);
            }
            if (new_channel) {
                forget_channel(c);
            }
            continue;
        }

        /* where this subscriber starts (SPEC "Concepts") */
        uint64_t pos;
        uint64_t flags = 0;
        if (after_id != nullptr) {
            /* Redis mode: after_id as given, even above the local newest
             * id (the mirror catches up), no reset, no lost */
            pos = *after_id;
            flags |= sub_flag_at;
        } else if (spec->has_last_id) {
            if (spec->last_id > last) {
                /* the channel was forgotten and restarted: from the
                 * oldest buffered message, with "reset" */
                pos = first_id(c) - 1;
                flags |= sub_flag_reset;
            } else {
                pos = spec->last_id;
            }
            if (cl != nullptr) {
                /* last_id wins for this request and moves the cursor */
                cl->cursor_.store(pos, std::memory_order_release);
            }
        } else if (cl != nullptr) {
            pos = cl->cursor_.load(std::memory_order_relaxed);
        } else {
            pos = last;
        }

        if (cl != nullptr) {
            if (cl->idle_) {
                idle_remove(cl);
            }
            cl->open_subs_++;
            cl->ttl_ms_ = lim->client_ttl_ms;
        }
        c->subs_++;
        if (c->waker_subs_[ow.waker_]++ == 0) {
            c->wakers_ |= uint64_t(1) << ow.waker_;
        }
        if (kind == PUSHQ_SUB_WEBSOCKET) {
            h_->subs_websocket_++;
        } else {
            h_->subs_longpoll_++;
        }

        sub_rec *r = at<sub_rec>(ro);
        r->magic_ = sub_magic;
        r->serial_ = ++h_->next_serial_;
        r->channel_ = off(c);
        r->client_ = cl != nullptr ? off(cl) : 0;
        r->owner_ = spec->owner;
        r->kind_ = kind;
        r->prev_ = 0;
        r->next_ = ow.subs_head_;
        if (r->next_ != 0) {
            at<sub_rec>(r->next_)->prev_ = ro;
        }
        /* linked only once initialised, also as seen by a crash salvage */
        std::atomic_signal_fence(std::memory_order_seq_cst);
        ow.subs_head_ = ro;
        ow.subs_++;

        sub->priv_[sw_rec] = ro;
        sub->priv_[sw_serial] = r->serial_;
        sub->priv_[sw_channel] = r->channel_;
        sub->priv_[sw_client] = r->client_;
        sub->priv_[sw_pos] = pos;
        sub->priv_[sw_flags] = flags;
        sub->priv_[sw_generation] = h_->generation_.load();
        sub->priv_[sw_incarnation] = c->incarnation_.load(
            std::memory_order_relaxed);
        return PUSHQ_OK;
    }

    if (why) *why = why_store_full;
    return PUSHQ_ENOMEM;
}

pushq_status_t store::fetch(pushq_sub_t *sub, size_t max_msgs,
    size_t max_bytes, uint64_t now_ms, pushq_msg_cb cb, void *ctx,
    pushq_fetch_info_t *info) noexcept
{
    pushq_fetch_info_t local;
    if (info == nullptr) {
        info = &local;
    }
    std::memset(info, 0, sizeof(*info));
    if (sub == nullptr || (cb == nullptr && max_msgs != 0)) {
        return PUSHQ_EBADARG;
    }

    store_guard g(*this);
    if (!g.ok()) {
        return PUSHQ_EINTERNAL;
    }
    sub_rec *r = live_sub(sub);
    if (r == nullptr) {
        /* closed, or closed for us by an owner release or a store reset */
        return sub->priv_[sw_rec] == 0 ? PUSHQ_EBADARG : PUSHQ_EINTERNAL;
    }
    channel_rec *c = at<channel_rec>(r->channel_);
    client_rec *cl = r->client_ != 0 ? at<client_rec>(r->client_) : nullptr;
    {
        mutation mu(*this);
        expire_messages(c, now_ms);
    }

    uint64_t pos = cl != nullptr ? cl->cursor_.load(std::memory_order_relaxed)
                                 : sub->priv_[sw_pos];
    uint64_t inc = c->incarnation_.load(std::memory_order_relaxed);
    if (cl == nullptr && sub->priv_[sw_incarnation] != inc) {
        /* the channel began again (Redis mirror): the position belonged
         * to the old life; start at the new one's beginning */
        pos = c->life_start_.load(std::memory_order_relaxed);
    }
    /* ids up to life_start_ were before this server mirrored the
     * channel: never lost here */
    uint64_t floor = c->life_start_.load(std::memory_order_relaxed);
    if (pos < floor) {
        pos = floor;
    }
    bool at = (sub->priv_[sw_flags] & sub_flag_at) != 0;
    uint64_t last = c->last_id_.load(std::memory_order_relaxed);
    uint64_t first = first_id(c);
    if (pos > last && !at) {
        pos = last;
    }
    if (pos + 1 < first) {
        /* gone by count, bytes or age: report once, skip them */
        if (!at) {
            info->lost = first - 1 - pos;
        }
        pos = first - 1;
    }
    info->reset = (sub->priv_[sw_flags] & sub_flag_reset) != 0;

    /* the life being read, before the callbacks: pushq_sub_life() called
     * from one must name the messages it is handed */
    sub->priv_[sw_incarnation] = inc;

    /* Hand out messages.  The lock is held but the store is consistent
     * (not dirty): a callback that dies leaves nothing to repair, and the
     * cursor has not moved past what it did not deliver. */
    size_t n = 0;
    uint64_t bytes = 0;
    while (pos + n < last && n < max_msgs) {
        message_rec *m = message(c, pos + n + 1);
        if (n > 0 && bytes + m->len_ > max_bytes) {
            break;
        }
        pushq_msg_t pm;
        pm.id = m->id_;
        pm.flags = m->flags_;
        pm.data = m->data();
        pm.len = m->len_;
        cb(ctx, &pm);
        bytes += m->len_;
        n++;
    }
    pos += n;

    {
        mutation mu(*this);
        if (cl != nullptr) {
            cl->cursor_.store(pos, std::memory_order_release);
        }
        sub->priv_[sw_pos] = pos;
        sub->priv_[sw_incarnation] = inc;
        sub->priv_[sw_flags] &= ~sub_flag_reset;
        h_->delivered_ += n;
        h_->lost_ += info->lost;
    }
    info->count = n;
    info->last_id = n != 0 ? pos : 0;
    return PUSHQ_OK;
}

int store::ready(const pushq_sub_t *sub) noexcept
{
    if (sub == nullptr || sub->priv_[sw_rec] == 0) {
        return 0;
    }
    if (sub->priv_[sw_generation] != h_->generation_.load() ||
        !in_region(sub->priv_[sw_channel], sizeof(channel_rec)))
    {
        return 1;       /* stale: let fetch say so */
    }
    if (sub->priv_[sw_flags] & sub_flag_reset) {
        return 1;
    }
    channel_rec *c = at<channel_rec>(sub->priv_[sw_channel]);
    if (sub->priv_[sw_client] == 0 &&
        c->incarnation_.load(std::memory_order_acquire) !=
        sub->priv_[sw_incarnation])
    {
        /* the channel began again: ready once the new life has a
         * message */
        return c->last_id_.load(std::memory_order_acquire) >
               c->life_start_.load(std::memory_order_acquire);
    }
    uint64_t last = c->last_id_.load(std::memory_order_acquire);
    uint64_t pos;
    if (sub->priv_[sw_client] != 0) {
        if (!in_region(sub->priv_[sw_client], sizeof(client_rec))) {
            return 1;
        }
        pos = at<client_rec>(sub->priv_[sw_client])->cursor_.load(
            std::memory_order_acquire);
    } else {
        pos = sub->priv_[sw_pos];
    }
    return pos < last;
}

void store::wait(pushq_sub_t *sub, uint64_t timeout_ms) noexcept
{
    if (sub == nullptr || sub->priv_[sw_rec] == 0 ||
        !in_region(sub->priv_[sw_channel], sizeof(channel_rec)))
    {
        return;
    }
    uint64_t now = wait_word::monotonic_ms();
    uint64_t deadline = timeout_ms > UINT64_MAX - now ? UINT64_MAX
                                                      : now + timeout_ms;
    uint32_t woken = h_->wake_all_seq_.load();
    channel_rec *c = at<channel_rec>(sub->priv_[sw_channel]);

    for (;;) {
        /* read the word before checking: a publish after this read
         * changes it, and the futex then refuses to sleep */
        uint32_t seq = c->seq_.load();
        if (ready(sub) || h_->wake_all_seq_.load() != woken ||
            sub->priv_[sw_generation] != h_->generation_.load())
        {
            return;
        }
        uint64_t now_ms = wait_word::monotonic_ms();
        if (now_ms >= deadline) {
            return;
        }
        /* Sleep in slices of at most a second: a store reset after a
         * crash re-formats the channel (nobody can find our word to wake
         * us), and the slice bounds how long we miss that. */
        uint64_t until = deadline - now_ms > wait_slice_ms
                         ? now_ms + wait_slice_ms : deadline;
        c->waiters_.fetch_add(1);
        wait_word::wait(&c->seq_, seq, until);
        c->waiters_.fetch_sub(1);
    }
}

void store::wake_all() noexcept
{
    h_->wake_all_seq_.fetch_add(1);
    store_guard g(*this);
    if (!g.ok()) {
        return;
    }
    for (uint64_t o = h_->chan_list_; o != 0; o = at<channel_rec>(o)->next_) {
        channel_rec *c = at<channel_rec>(o);
        c->seq_.fetch_add(1);
        wait_word::wake_all(&c->seq_);
    }
}

void store::close(pushq_sub_t *sub, uint64_t now_ms) noexcept
{
    if (sub == nullptr || sub->priv_[sw_rec] == 0) {
        return;
    }
    {
        store_guard g(*this);
        if (g.ok()) {
            sub_rec *r = live_sub(sub);
            if (r != nullptr) {
                mutation mu(*this);
                close_sub(r, now_ms);
            }
        }
    }
    std::memset(sub, 0, sizeof(*sub));
}

} // namespace pushq
