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
 */

#include <cstring>
#include <string_view>

#include "pushq_redis.h"
#include "args.hpp"
#include "redis_replies.hpp"

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

} // namespace

extern "C" PUSHQ_API pushq_status_t pushq_redis_mirror(pushq_store_t *s,
    const struct redisReply *reply, uint64_t now_ms, uint64_t *wakers,
    const char **why)
{
    if (wakers != nullptr) *wakers = 0;
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

    pushq_limits_t lim;
    pushq_limits_default(&lim);
    lim.buffer = static_cast<uint32_t>(buffer);
    lim.buffer_bytes = bytes;
    lim.message_ttl_ms = ttl;
    lim.max_message_size = UINT64_MAX;

    pushq_publish_result_t r;
    pushq_status_t st = pushq_store_mirror(s, chan.data(), chan.size(), epoch,
        id, body.data(), body.size(), static_cast<unsigned>(flags), &lim,
        now_ms, &r, why);
    if (st == PUSHQ_OK && wakers != nullptr) {
        *wakers = r.wakers;
    }
    return st;
}
