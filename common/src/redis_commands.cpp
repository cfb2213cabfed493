/*
 * redis_commands.cpp -- the commands of pushq_redis.h as argv for hiredis:
 * SCRIPT LOAD, AUTH, SELECT, PSUBSCRIBE, and EVALSHA of the publish, take
 * and range scripts (redis_scripts.cpp) with their keys:
 *   pushq:{<ch>}:seq, pushq:{<ch>}:log, pushq:{<ch>}:n:<name>
 * ({<ch>} is a Redis Cluster hash tag: one channel's keys live together).
 * Strings the command needs are copied into cmd->buf; a payload is
 * referenced where the caller has it.
 */

#include <cstdio>
#include <cstring>
#include <string_view>

#include "pushq_redis.h"
#include "args.hpp"
#include "redis_scripts.hpp"

namespace {

/* Appends arguments to a pushq_redis_cmd_t; refuses (ok() false) when
 * argv or buf would overflow. */
class argv_builder {
public:
    explicit argv_builder(pushq_redis_cmd_t *cmd) noexcept : cmd_(cmd)
    {
        cmd_->argc = 0;
    }

    /* Referenced, not copied (static text or the caller's payload). */
    void ref(const void *p, size_t n) noexcept
    {
        if (cmd_->argc >= PUSHQ_REDIS_ARGV_MAX) {
            ok_ = false;
            return;
        }
        cmd_->argv[cmd_->argc] = n != 0 ? static_cast<const char *>(p) : "";
        cmd_->argvlen[cmd_->argc] = n;
        cmd_->argc++;
    }
    void ref(std::string_view s) noexcept { ref(s.data(), s.size()); }

    /* Copied into buf: pieces concatenated into one argument. */
    void begin() noexcept { start_ = used_; }
    void put(const void *p, size_t n) noexcept
    {
        if (n > sizeof(cmd_->buf) - used_) {
            ok_ = false;
            return;
        }
        if (n != 0) {
            std::memcpy(cmd_->buf + used_, p, n);
        }
        used_ += n;
    }
    void put(std::string_view s) noexcept { put(s.data(), s.size()); }
    void put_u64(uint64_t v) noexcept
    {
        char t[24];
        int n = std::snprintf(t, sizeof(t), "%llu",
                              static_cast<unsigned long long>(v));
        put(t, static_cast<size_t>(n));
    }
    void put_i64(int64_t v) noexcept
    {
        char t[24];
        int n = std::snprintf(t, sizeof(t), "%lld",
                              static_cast<long long>(v));
        put(t, static_cast<size_t>(n));
    }
    void end() noexcept
    {
        if (ok_) {
            ref(cmd_->buf + start_, used_ - start_);
        }
    }

    void copy(std::string_view s) noexcept { begin(); put(s); end(); }
    void u64(uint64_t v) noexcept { begin(); put_u64(v); end(); }
    void i64(int64_t v) noexcept { begin(); put_i64(v); end(); }

    void key(std::string_view chan, std::string_view suffix) noexcept
    {
        begin();
        put("pushq:{");
        put(chan);
        put("}:");
        put(suffix);
        end();
    }

    /* EVALSHA <sha of script i> */
    void evalsha(unsigned script) noexcept
    {
        ref("EVALSHA");
        char sha[40];
        if (!pushq::redis_script_sha(script, sha)) {
            ok_ = false;
            return;
        }
        begin();
        put(sha, sizeof(sha));
        end();
    }

    bool ok() const noexcept { return ok_; }

private:
    pushq_redis_cmd_t *cmd_;
    size_t  used_ = 0;
    size_t  start_ = 0;
    bool    ok_ = true;
};

/* Longest expiry passed to Redis (~2000 years); longer means "none". */
constexpr uint64_t ttl_forever = uint64_t(1) << 46;

uint64_t add_sat(uint64_t a, uint64_t b) noexcept
{
    return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

bool chan_ok(const char *chan, size_t len, const char **why) noexcept
{
    if (chan == nullptr || !pushq::name_valid(chan, len)) {
        if (why) *why = "channel: must be 1-64 bytes of [A-Za-z0-9_.:-]";
        return false;
    }
    return true;
}

pushq_status_t too_long(pushq_redis_cmd_t *cmd, const char **why) noexcept
{
    cmd->argc = 0;
    if (why) *why = "redis: command does not fit (internal)";
    return PUSHQ_EINTERNAL;
}

} // namespace

extern "C" {

PUSHQ_API void pushq_redis_cmd_script_load(pushq_redis_cmd_t *cmd,
    unsigned i)
{
    argv_builder b(cmd);
    std::string_view t = pushq::redis_script_text(i);
    if (t.empty()) {
        return;                 /* argc 0: nothing to send */
    }
    b.ref("SCRIPT");
    b.ref("LOAD");
    b.ref(t);
}

PUSHQ_API int pushq_redis_cmd_auth(pushq_redis_cmd_t *cmd,
    const pushq_redis_url_t *url)
{
    argv_builder b(cmd);
    if (url == nullptr || url->password[0] == '\0') {
        return 0;
    }
    b.ref("AUTH");
    b.copy(std::string_view(url->password,
                            strnlen(url->password, sizeof(url->password))));
    return b.ok() ? 1 : 0;
}

PUSHQ_API int pushq_redis_cmd_select(pushq_redis_cmd_t *cmd,
    const pushq_redis_url_t *url)
{
    argv_builder b(cmd);
    if (url == nullptr || url->db == 0) {
        return 0;
    }
    b.ref("SELECT");
    b.u64(url->db);
    return b.ok() ? 1 : 0;
}

PUSHQ_API void pushq_redis_cmd_subscribe(pushq_redis_cmd_t *cmd)
{
    argv_builder b(cmd);
    b.ref("PSUBSCRIBE");
    b.ref("pushq:m:*");
}

PUSHQ_API pushq_status_t pushq_redis_cmd_publish(pushq_redis_cmd_t *cmd,
    const char *chan, size_t chan_len, const void *msg, size_t len,
    unsigned flags, const pushq_limits_t *lim, const char **why)
{
    if (cmd == nullptr) {
        if (why) *why = "redis: no command buffer";
        return PUSHQ_EBADARG;
    }
    cmd->argc = 0;
    if (!chan_ok(chan, chan_len, why)) {
        return PUSHQ_EBADARG;
    }
    if (lim == nullptr || (msg == nullptr && len != 0)) {
        if (why) *why = "publish: missing limits or message";
        return PUSHQ_EBADARG;
    }
    if (len > lim->max_message_size) {
        if (why) *why = "message: larger than max_message_size";
        return PUSHQ_ETOOBIG;
    }
    std::string_view ch(chan, chan_len);
    uint64_t keep = 0;          /* the keys' expiry; 0 = none */
    if (lim->message_ttl_ms != 0) {
        keep = add_sat(lim->message_ttl_ms, lim->client_ttl_ms);
        if (keep >= ttl_forever) {
            keep = 0;
        }
    }
    argv_builder b(cmd);
    b.evalsha(pushq::redis_script_publish);
    b.ref("2");
    b.key(ch, "seq");
    b.key(ch, "log");
    b.copy(ch);
    b.ref(msg, len);
    b.ref((flags & PUSHQ_MSG_BINARY) ? "1" : "0");
    b.u64(lim->buffer != 0 ? lim->buffer : 1);
    b.u64(lim->buffer_bytes);
    b.u64(lim->message_ttl_ms >= ttl_forever ? 0 : lim->message_ttl_ms);
    b.u64(keep);
    if (!b.ok()) {
        return too_long(cmd, why);
    }
    return PUSHQ_OK;
}

PUSHQ_API pushq_status_t pushq_redis_cmd_take(pushq_redis_cmd_t *cmd,
    const pushq_redis_take_t *t, const pushq_limits_t *lim,
    const char **why)
{
    if (cmd == nullptr) {
        if (why) *why = "redis: no command buffer";
        return PUSHQ_EBADARG;
    }
    cmd->argc = 0;
    if (t == nullptr || lim == nullptr) {
        if (why) *why = "take: missing request or limits";
        return PUSHQ_EBADARG;
    }
    if (!chan_ok(t->chan, t->chan_len, why)) {
        return PUSHQ_EBADARG;
    }
    bool named = t->name != nullptr && t->name_len != 0;
    if (named && !pushq::name_valid(t->name, t->name_len)) {
        if (why) *why = "name: must be 1-64 bytes of [A-Za-z0-9_.:-]";
        return PUSHQ_EBADARG;
    }
    std::string_view ch(t->chan, t->chan_len);
    int64_t name_ttl = lim->client_ttl_ms >= ttl_forever
                       ? -1 : static_cast<int64_t>(lim->client_ttl_ms);

    argv_builder b(cmd);
    b.evalsha(pushq::redis_script_take);
    b.ref(named ? "3" : "2");
    b.key(ch, "seq");
    b.key(ch, "log");
    if (named) {
        b.begin();
        b.put("pushq:{");
        b.put(ch);
        b.put("}:n:");
        b.put(t->name, t->name_len);
        b.end();
    }
    b.ref(t->has_last_id ? "1" : "0");
    b.u64(t->has_last_id ? t->last_id : 0);
    b.ref(t->has_cursor ? "1" : "0");
    b.u64(t->has_cursor ? t->cursor : 0);
    b.u64(t->max_msgs != 0 ? t->max_msgs : 1);
    b.u64(t->max_bytes);
    b.u64(lim->message_ttl_ms >= ttl_forever ? 0 : lim->message_ttl_ms);
    b.i64(name_ttl);
    if (!b.ok()) {
        return too_long(cmd, why);
    }
    return PUSHQ_OK;
}

PUSHQ_API void pushq_redis_cmd_range(pushq_redis_cmd_t *cmd,
    const char *chan, size_t chan_len, uint64_t after_id, size_t max_msgs)
{
    if (cmd == nullptr) {
        return;
    }
    cmd->argc = 0;
    if (!chan_ok(chan, chan_len, nullptr)) {
        return;                 /* argc 0: nothing to send */
    }
    std::string_view ch(chan, chan_len);
    argv_builder b(cmd);
    b.evalsha(pushq::redis_script_range);
    b.ref("2");
    b.key(ch, "seq");
    b.key(ch, "log");
    b.u64(after_id);
    b.u64(max_msgs != 0 ? max_msgs : 1);
    if (!b.ok()) {
        cmd->argc = 0;
    }
}

} // extern "C"
