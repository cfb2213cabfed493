/*
 * redis_range.cpp -- the mirror catching up (pushq_redis.h "Catching the
 * mirror up"): a range script reply mirrored into the local store
 * (pushq_redis_reply_range).
 *
 * The reply (redis_scripts.cpp, "range") is
 *   {newest, epoch, now ms, more, after_id,
 *    id, flags, data, time, expiry, buffer, buffer_bytes, ...}
 * Each entry goes through the store's mirror in id order, with the
 * publisher's limits it carries (an entry written before buffer and
 * buffer_bytes were gets the defaults) and its expiry in Redis's clock
 * turned into the local one (now_ms + what is left).  Ids missing between
 * entries were trimmed (or expired): the store's mirror makes them a gap,
 * which its readers count lost.
 *
 * A new epoch: the channel began again in Redis.  Its local mirror
 * restarts (newest id 0); when the read was made after an id of the old
 * life (after_id != 0), its entries are not the new life's beginning, so
 * none is stored and *more asks for a read after the new local newest id
 * (0).
 */

#include <cstring>
#include <string_view>

#include "pushq_redis.h"
#include "args.hpp"
#include "redis_replies.hpp"
#include "store.hpp"

namespace {

constexpr size_t head_n = 5;
constexpr size_t entry_n = 7;

pushq_status_t malformed(const char **why) noexcept
{
    if (why) *why = "redis: unexpected range reply (scripts not loaded by "
                    "pushq?)";
    return PUSHQ_EINTERNAL;
}

/* buffer / buffer_bytes: a number, or "" (an older entry: *has false). */
bool opt_u64(const redisReply *r, uint64_t *v, bool *has) noexcept
{
    std::string_view s;
    if (r != nullptr && r->type == REDIS_REPLY_STRING &&
        pushq::reply_str(r, &s) && s.empty())
    {
        *has = false;
        return true;
    }
    *has = true;
    return pushq::reply_u64(r, v);
}

struct entry {
    uint64_t id = 0, flags = 0, time = 0, expiry = 0;
    uint64_t buffer = 0, bytes = 0;
    bool has_buffer = false, has_bytes = false;
    std::string_view data;
};

bool read_entry(const redisReply *const *e, entry *out) noexcept
{
    return pushq::reply_u64(e[0], &out->id) && out->id != 0 &&
           out->id != UINT64_MAX &&
           pushq::reply_u64(e[1], &out->flags) &&
           e[2] != nullptr && e[2]->type == REDIS_REPLY_STRING &&
           pushq::reply_str(e[2], &out->data) &&
           pushq::reply_u64(e[3], &out->time) &&
           pushq::reply_u64(e[4], &out->expiry) &&
           opt_u64(e[5], &out->buffer, &out->has_buffer) &&
           opt_u64(e[6], &out->bytes, &out->has_bytes);
}

} // namespace

extern "C" PUSHQ_API pushq_status_t pushq_redis_reply_range(
    pushq_store_t *s, const char *chan, size_t chan_len,
    const struct redisReply *reply, uint64_t now_ms, uint64_t *wakers,
    int *more, const char **why)
{
    if (wakers != nullptr) *wakers = 0;
    if (more != nullptr) *more = 0;
    pushq_status_t st = pushq::reply_failure(reply,
        "redis: connection lost (retry)", nullptr, 0, why);
    if (st != PUSHQ_OK) {
        return st;
    }
    if (chan == nullptr || !pushq::name_valid(chan, chan_len)) {
        if (why) *why = "channel: must be 1-64 bytes of [A-Za-z0-9_.:-]";
        return PUSHQ_EBADARG;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < head_n ||
        (reply->elements - head_n) % entry_n != 0)
    {
        return malformed(why);
    }
    uint64_t head[head_n];
    for (size_t i = 0; i < head_n; i++) {
        if (!pushq::reply_u64(reply->element[i], &head[i])) {
            return malformed(why);
        }
    }
    const uint64_t epoch = head[1], rnow = head[2], after = head[4];
    const bool more_in_redis = head[3] != 0;
    /* check every entry before storing any */
    size_t n = (reply->elements - head_n) / entry_n;
    uint64_t prev = after;
    for (size_t k = 0; k < n; k++) {
        entry e;
        if (!read_entry(reply->element + head_n + entry_n * k, &e) ||
            e.id <= prev || e.buffer > UINT32_MAX)
        {
            return malformed(why);
        }
        prev = e.id;
    }

    uint64_t woken = 0;
    if (epoch != 0 && pushq::store_mirror_restart(s, chan, chan_len, epoch,
                                                  &woken))
    {
        if (after != 0) {
            /* read after an id of the old life: read the new one again
             * from its start */
            if (wakers != nullptr) *wakers = woken;
            if (more != nullptr) *more = 1;
            return PUSHQ_OK;
        }
    }

    for (size_t k = 0; k < n; k++) {
        entry e;
        read_entry(reply->element + head_n + entry_n * k, &e);
        pushq_limits_t lim;
        pushq_limits_default(&lim);
        if (e.has_buffer && e.buffer != 0) {
            lim.buffer = static_cast<uint32_t>(e.buffer);
        }
        if (e.has_bytes) {
            lim.buffer_bytes = e.bytes;
        }
        lim.max_message_size = UINT64_MAX;
        pushq::mirror_opts opt;
        opt.has_expiry = true;
        if (e.expiry == 0) {
            lim.message_ttl_ms = 0;
            opt.expires_ms = 0;
        } else {
            /* the publisher's message_ttl (the channel's), and what is
             * left of it now, in the local clock */
            lim.message_ttl_ms = e.expiry > e.time ? e.expiry - e.time : 1;
            uint64_t left = e.expiry > rnow ? e.expiry - rnow : 0;
            opt.expires_ms = pushq::add_ms(now_ms, left);
            if (opt.expires_ms == 0) {
                opt.expires_ms = 1;     /* 0 would be "never" */
            }
        }
        pushq_publish_result_t r;
        st = pushq::store_mirror_ex(s, chan, chan_len, epoch, e.id,
            e.data.data(), e.data.size(),
            static_cast<unsigned>(e.flags & PUSHQ_MSG_BINARY), &lim, now_ms,
            &r, &opt, why);
        if (st != PUSHQ_OK) {
            if (wakers != nullptr) *wakers = woken;
            return st;
        }
        woken |= r.wakers;
    }
    if (wakers != nullptr) *wakers = woken;
    if (more != nullptr) *more = more_in_redis ? 1 : 0;
    return PUSHQ_OK;
}
