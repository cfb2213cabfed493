/*
 * args.hpp -- the request arguments of SPEC.md (channel, name, last_id,
 * timeout, batch, format): decoding and validation.
 */

#ifndef PUSHQ_ARGS_HPP
#define PUSHQ_ARGS_HPP

#include <cstddef>

namespace pushq {

/* True when p[0..n) is 1-64 bytes of [A-Za-z0-9_.:-] (SPEC.md "Channel"). */
bool name_valid(const char *p, size_t n) noexcept;

} // namespace pushq

#endif
