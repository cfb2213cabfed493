/*
 * redis_replies.hpp -- reading hiredis replies (redisReply) for the
 * pushq_redis_reply_* entry points and the mirror.
 */

#ifndef PUSHQ_REDIS_REPLIES_HPP
#define PUSHQ_REDIS_REPLIES_HPP

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <hiredis/hiredis.h>

#include "pushq.h"

namespace pushq {

/* An unsigned number: an integer reply >= 0, or a string/status reply of
 * decimal digits. */
bool reply_u64(const redisReply *r, uint64_t *v) noexcept;

/* A string, status or error reply's bytes. */
bool reply_str(const redisReply *r, std::string_view *s) noexcept;

/* Decimal digits at the front of s into *v (at least one, no overflow);
 * advances s past them. */
bool parse_u64(std::string_view *s, uint64_t *v) noexcept;

/* The status for a reply that is NULL (connection lost) or an error:
 * OOM -> PUSHQ_ENOMEM, other errors PUSHQ_EINTERNAL with Redis's text
 * copied into errbuf; `lost` is the why for a NULL reply.  PUSHQ_OK for
 * any other reply. */
pushq_status_t reply_failure(const redisReply *r, const char *lost,
    char *errbuf, size_t errbuf_size, const char **why) noexcept;

} // namespace pushq

#endif
