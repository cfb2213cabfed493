/*
 * base64.hpp -- RFC 4648 section 4 base64 (with padding): encoding for
 * binary messages in JSON answers and Sec-WebSocket-Accept, decoding for
 * checking a Sec-WebSocket-Key.
 */

#ifndef PUSHQ_BASE64_HPP
#define PUSHQ_BASE64_HPP

#include <cstddef>
#include <cstdint>

namespace pushq {

/* Encoded length of n bytes: 4 * ceil(n / 3); SIZE_MAX on overflow. */
size_t base64_encoded_len(size_t n) noexcept;

/* Writes base64_encoded_len(n) characters (no NUL) to out. */
void base64_encode(char *out, const unsigned char *in, size_t n) noexcept;

/* Decodes strict, padded base64 (length a multiple of 4, only the last one
 * or two characters '=', unused bits zero) into out (cap bytes).  Returns
 * the decoded length, or -1 when the input is not canonical base64 or does
 * not fit. */
long base64_decode(unsigned char *out, size_t cap, const char *in,
                   size_t n) noexcept;

} // namespace pushq

#endif
