/*
 * ws_handshake.hpp -- the server side of RFC 6455's opening handshake
 * (4.2.1 checks, 4.2.2 Sec-WebSocket-Accept).
 */

#ifndef PUSHQ_WS_HANDSHAKE_HPP
#define PUSHQ_WS_HANDSHAKE_HPP

#include <cstddef>

namespace pushq {

/* True when the comma-separated header value v[0..n) contains token
 * (ASCII case-insensitive, optional whitespace around items; RFC 7230 7). */
bool header_has_token(const char *v, size_t n, const char *token,
                      size_t token_len) noexcept;

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)); false if
 * libcrypto failed. */
bool ws_accept(char out[28], const char *key, size_t key_len) noexcept;

} // namespace pushq

#endif
