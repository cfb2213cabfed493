/*
 * redis_scripts.hpp -- the Lua scripts Redis runs for pushq (pushq_redis.h):
 * "publish" gives the id and fans the message out, "take" reads after a
 * cursor and moves a named cursor, "range" reads the stream for the
 * mirror, each atomically.  Their text, and the
 * SHA-1 that EVALSHA names them by.
 */

#ifndef PUSHQ_REDIS_SCRIPTS_HPP
#define PUSHQ_REDIS_SCRIPTS_HPP

#include <cstddef>
#include <string_view>

namespace pushq {

enum redis_script : unsigned {
    redis_script_publish = 0,
    redis_script_take = 1,
    redis_script_range = 2,
    redis_script_count = 3
};

/* The script's Lua text (empty for i >= redis_script_count). */
std::string_view redis_script_text(unsigned i) noexcept;

/* Its SHA-1 as 40 lower-case hex digits (what SCRIPT LOAD answers);
 * false if libcrypto failed or i is out of range. */
bool redis_script_sha(unsigned i, char out[40]) noexcept;

} // namespace pushq

#endif
