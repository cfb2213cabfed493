/*
 * redis_mirror.cpp -- a message heard on the subscription connection
 * (PSUBSCRIBE pushq:m:*) into the local store (pushq_redis_mirror,
 * pushq_redis.h).
 *
 * The reply is ["pmessage", "pushq:m:*", "pushq:m:<ch>", body] where body
 * is the publish script's header
 *   "<epoch> <id> <flags> <buffer> <buffer_bytes> <message_ttl_ms>\n"
 * followed by the payload bytes.  The header carries the publisher's
 * limits, so every server's mirror trims and expires as the publisher's
 * location says.
 *
 * pushq_redis_mirror_heard is the same, except that a message that is not
 * the channel's next id is not stored: it reports the gap, which the
 * adapter fills by reading the stream (redis_range.cpp).
 */

#include <cstring>
#include <string_view>

#include "pushq_redis.h"
#include "args.hpp"
#include "redis_replies.hpp"
#include "store.hpp"

namespace {

pushq_status_t not_ours(const char **why, const char *text) noexcept
{
    if (why) *why = text;
    return PUSHQ_EBADARG;
}

bool space(std::string_view *s) noexcept
{
    if (s->empty() || s->front() != ' ') {
        return false;
    }
    s->remove_prefix(1);
    return true;
}

/* A pmessage of ours, parsed. */
struct heard {
    std::string_view chan;
    std::string_view data;
    uint64_t epoch = 0, id = 0, flags = 0;
    pushq_limits_t lim;
};

/* PUSHQ_OK with *is_msg false for a subscription confirmation; PUSHQ_OK
 * with *is_msg true and *h filled for one of our messages; PUSHQ_EBADARG
 * for anything else. */
pushq_status_t parse_heard(const redisReply *reply, heard *h, bool *is_msg,
    const char **why) noexcept
{
    *is_msg = false;
    if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements < 3)
    {
        return not_ours(why, "redis mirror: not a pub/sub message");
    }
    std::string_view kind;
    if (!pushq::reply_str(reply->element[0], &kind)) {
        return not_ours(why, "redis mirror: not a pub/sub message");
    }
    if (kind == "psubscribe" || kind == "subscribe" ||
        kind == "punsubscribe" || kind == "unsubscribe")
    {
        return PUSHQ_OK;        /* confirmations */
    }
    if (kind != "pmessage" || reply->elements != 4) {
        return not_ours(why, "redis mirror: not a pmessage");
    }
    std::string_view chan, body;
    static constexpr std::string_view prefix = "pushq:m:";
    if (!pushq::reply_str(reply->element[2], &chan) ||
        chan.substr(0, prefix.size()) != prefix ||
        !pushq::reply_str(reply->element[3], &body))
    {
        return not_ours(why, "redis mirror: not a pushq:m:<channel> "
                             "message");
    }
    chan.remove_prefix(prefix.size());
    if (!pushq::name_valid(chan.data(), chan.size())) {
        return not_ours(why, "redis mirror: bad channel name");
    }

    uint64_t epoch = 0, id = 0, flags = 0, buffer = 0, bytes = 0, ttl = 0;
    if (!pushq::parse_u64(&body, &epoch) || !space(&body) ||
        !pushq::parse_u64(&body, &id) || !space(&body) ||
        !pushq::parse_u64(&body, &flags) || !space(&body) ||
        !pushq::parse_u64(&body, &buffer) || !space(&body) ||
        !pushq::parse_u64(&body, &bytes) || !space(&body) ||
        !pushq::parse_u64(&body, &ttl) || body.empty() ||
        body.front() != '\n' || id == 0 || buffer > UINT32_MAX)
    {
        return not_ours(why, "redis mirror: bad message header");
    }
    body.remove_prefix(1);

    h->chan = chan;
    h->data = body;
    h->epoch = epoch;
    h->id = id;
    h->flags = flags;
    pushq_limits_default(&h->lim);
    h->lim.buffer = static_cast<uint32_t>(buffer);
    h->lim.buffer_bytes = bytes;
    h->lim.message_ttl_ms = ttl;
    h->lim.max_message_size = UINT64_MAX;
    *is_msg = true;
    return PUSHQ_OK;
}

pushq_status_t mirror_one(pushq_store_t *s, const redisReply *reply,
    uint64_t now_ms, uint64_t *wakers, uint64_t *channel_key,
    pushq::mirror_opts *opt, const char **why) noexcept
{
    if (wakers != nullptr) *wakers = 0;
    if (channel_key != nullptr) *channel_key = 0;
    heard h;
    bool is_msg = false;
    pushq_status_t st = parse_heard(reply, &h, &is_msg, why);
    if (st != PUSHQ_OK || !is_msg) {
        return st;
    }
    pushq_publish_result_t r{};
    st = pushq::store_mirror_ex(s, h.chan.data(), h.chan.size(), h.epoch,
        h.id, h.data.data(), h.data.size(), static_cast<unsigned>(h.flags),
        &h.lim, now_ms, &r, opt, why);
    if (st == PUSHQ_OK && wakers != nullptr) {
        *wakers = r.wakers;
    }
    if (st == PUSHQ_OK && channel_key != nullptr && r.id != 0) {
        *channel_key = r.channel_key;
    }
    return st;
}

} // namespace

extern "C" {

PUSHQ_API pushq_status_t pushq_redis_mirror(pushq_store_t *s,
    const struct redisReply *reply, uint64_t now_ms, uint64_t *wakers,
    const char **why)
{
    return mirror_one(s, reply, now_ms, wakers, nullptr, nullptr, why);
}

PUSHQ_API pushq_status_t pushq_redis_mirror_heard(pushq_store_t *s,
    const struct redisReply *reply, uint64_t now_ms, uint64_t *wakers,
    pushq_redis_gap_t *gap, const char **why)
{
    return pushq_redis_mirror_heard_key(s, reply, now_ms, wakers, nullptr,
                                        gap, why);
}

PUSHQ_API pushq_status_t pushq_redis_mirror_heard_key(pushq_store_t *s,
    const struct redisReply *reply, uint64_t now_ms, uint64_t *wakers,
    uint64_t *channel_key, pushq_redis_gap_t *gap, const char **why)
{
    if (gap != nullptr) {
        gap->chan_len = 0;
        gap->chan[0] = '\0';
        gap->after_id = 0;
    }
    pushq::mirror_opts opt;
    opt.next_only = true;
    pushq_status_t st = mirror_one(s, reply, now_ms, wakers, channel_key,
                                   &opt, why);
    if (st == PUSHQ_OK && opt.gap && gap != nullptr) {
        /* the channel name was checked (1..PUSHQ_NAME_MAX bytes) */
        std::string_view chan;
        pushq::reply_str(reply->element[2], &chan);
        chan.remove_prefix(sizeof("pushq:m:") - 1);
        std::memcpy(gap->chan, chan.data(), chan.size());
        if (chan.size() < sizeof(gap->chan)) {
            gap->chan[chan.size()] = '\0';
        }
        gap->chan_len = chan.size();
        gap->after_id = opt.gap_after;
    }
    return st;
}

} // extern "C"
