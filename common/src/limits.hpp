/*
 * limits.hpp -- SPEC.md's default limits and the nginx value syntax for
 * sizes ("64k") and times ("30s", "1h 30m"), shared by both adapters.
 */

#ifndef PUSHQ_LIMITS_HPP
#define PUSHQ_LIMITS_HPP

#include <cstddef>
#include <cstdint>

namespace pushq {

/* Parses a decimal number of at most 19 digits starting at s[*i], moving
 * *i past it.  False when there is no digit or it overflows uint64_t. */
bool parse_u64(const char *s, size_t len, size_t *i, uint64_t *out) noexcept;

/* Multiplies without overflow; false when a * b > UINT64_MAX. */
inline bool mul_u64(uint64_t a, uint64_t b, uint64_t *out) noexcept
{
    return !__builtin_mul_overflow(a, b, out);
}

inline bool add_u64(uint64_t a, uint64_t b, uint64_t *out) noexcept
{
    return !__builtin_add_overflow(a, b, out);
}

} // namespace pushq

#endif
