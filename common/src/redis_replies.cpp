/*
 * redis_replies.cpp -- the replies of the publish and take scripts
 * (pushq_redis_reply_publish, pushq_redis_reply_take; pushq_redis.h), and
 * the reply helpers the mirror shares.
 */

#include "redis_replies.hpp"

#include <cstring>

#include "pushq_redis.h"

namespace pushq {

bool reply_str(const redisReply *r, std::string_view *s) noexcept
{
    if (r == nullptr || (r->type != REDIS_REPLY_STRING &&
                         r->type != REDIS_REPLY_STATUS &&
                         r->type != REDIS_REPLY_ERROR) ||
        (r->str == nullptr && r->len != 0))
    {
        return false;
    }
    *s = std::string_view(r->str != nullptr ? r->str : "", r->len);
    return true;
}

bool parse_u64(std::string_view *s, uint64_t *v) noexcept
{
    uint64_t x = 0;
    size_t i = 0;
    for (; i < s->size() && (*s)[i] >= '0' && (*s)[i] <= '9'; i++) {
        uint64_t d = static_cast<uint64_t>((*s)[i] - '0');
        if (x > (UINT64_MAX - d) / 10) {
            return false;
        }
        x = x * 10 + d;
    }
    if (i == 0) {
        return false;
    }
    *v = x;
    s->remove_prefix(i);
    return true;
}

bool reply_u64(const redisReply *r, uint64_t *v) noexcept
{
    if (r == nullptr) {
        return false;
    }
    if (r->type == REDIS_REPLY_INTEGER) {
        if (r->integer < 0) {
            return false;
        }
        *v = static_cast<uint64_t>(r->integer);
        return true;
    }
    std::string_view s;
    if (r->type == REDIS_REPLY_ERROR || !reply_str(r, &s)) {
        return false;
    }
    return parse_u64(&s, v) && s.empty();
}

pushq_status_t reply_failure(const redisReply *r, const char *lost,
    char *errbuf, size_t errbuf_size, const char **why) noexcept
{
    if (r == nullptr) {
        if (why) *why = lost;
        return PUSHQ_ENOMEM;
    }
    if (r->type != REDIS_REPLY_ERROR) {
        return PUSHQ_OK;
    }
    std::string_view s;
    if (!reply_str(r, &s)) {
        s = {};
    }
    /* "OOM command not allowed ..." -- also inside a script error's text
     * ("ERR Error running script ...: OOM ...", Redis < 7) */
    bool oom = s.find("OOM") != std::string_view::npos;
    if (errbuf != nullptr && errbuf_size != 0) {
        static constexpr std::string_view prefix = "redis: ";
        size_t n = 0;
        for (size_t i = 0; i < prefix.size() && n + 1 < errbuf_size; i++) {
            errbuf[n++] = prefix[i];
        }
        for (size_t i = 0; i < s.size() && n + 1 < errbuf_size; i++) {
            /* one line, printable: it goes into logs and JSON */
            char c = s[i];
            errbuf[n++] = (c < 0x20 || c == 0x7f) ? ' ' : c;
        }
        errbuf[n] = '\0';
        if (why) *why = errbuf;
    } else if (why) {
        *why = oom ? "redis: out of memory (OOM)" : "redis: error reply";
    }
    return oom ? PUSHQ_ENOMEM : PUSHQ_EINTERNAL;
}

} // namespace pushq

namespace {

pushq_status_t malformed(const char **why) noexcept
{
    if (why) *why = "redis: unexpected reply (scripts not loaded by "
                    "pushq?)";
    return PUSHQ_EINTERNAL;
}

} // namespace

extern "C" {

PUSHQ_API pushq_status_t pushq_redis_reply_publish(
    const struct redisReply *reply, uint64_t *id, char *errbuf,
    size_t errbuf_size, const char **why)
{
    if (id != nullptr) *id = 0;
    pushq_status_t st = pushq::reply_failure(reply,
        "redis: connection lost (the publish may or may not have "
        "happened; retry)", errbuf, errbuf_size, why);
    if (st != PUSHQ_OK) {
        return st;
    }
    uint64_t v = 0;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
        !pushq::reply_u64(reply->element[0], &v) || v == 0)
    {
        return malformed(why);
    }
    if (id != nullptr) *id = v;
    return PUSHQ_OK;
}

PUSHQ_API pushq_status_t pushq_redis_reply_take(
    const struct redisReply *reply, pushq_msg_cb cb, void *ctx,
    pushq_redis_take_info_t *info, char *errbuf, size_t errbuf_size,
    const char **why)
{
    pushq_redis_take_info_t local;
    if (info == nullptr) {
        info = &local;
    }
    std::memset(info, 0, sizeof(*info));
    pushq_status_t st = pushq::reply_failure(reply,
        "redis: connection lost (retry)", errbuf, errbuf_size, why);
    if (st != PUSHQ_OK) {
        return st;
    }
    uint64_t head[5];
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 5 ||
        (reply->elements - 5) % 3 != 0)
    {
        return malformed(why);
    }
    for (size_t i = 0; i < 5; i++) {
        if (!pushq::reply_u64(reply->element[i], &head[i])) {
            return malformed(why);
        }
    }
    /* check every message before handing out any */
    uint64_t prev = head[4];
    size_t n = (reply->elements - 5) / 3;
    for (size_t k = 0; k < n; k++) {
        const redisReply *const *e = reply->element + 5 + 3 * k;
        uint64_t id = 0, flags = 0;
        std::string_view d;
        if (!pushq::reply_u64(e[0], &id) || !pushq::reply_u64(e[1], &flags) ||
            e[2] == nullptr || e[2]->type != REDIS_REPLY_STRING ||
            !pushq::reply_str(e[2], &d) || (k > 0 && id <= prev))
        {
            return malformed(why);
        }
        prev = id;
    }
    if (n != 0 && cb == nullptr) {
        if (why) *why = "take: no callback for the messages";
        return PUSHQ_EBADARG;
    }
    for (size_t k = 0; k < n; k++) {
        const redisReply *const *e = reply->element + 5 + 3 * k;
        uint64_t id = 0, flags = 0;
        std::string_view d;
        pushq::reply_u64(e[0], &id);
        pushq::reply_u64(e[1], &flags);
        pushq::reply_str(e[2], &d);
        pushq_msg_t m;
        m.id = id;
        m.flags = static_cast<unsigned>(flags & PUSHQ_MSG_BINARY);
        m.data = d.data();
        m.len = d.size();
        cb(ctx, &m);
    }
    info->newest_id = head[0];
    info->epoch = head[1];
    info->lost = head[2];
    info->reset = head[3] != 0;
    info->last_id = head[4];
    info->count = n;
    return PUSHQ_OK;
}

} // extern "C"
