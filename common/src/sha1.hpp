/*
 * sha1.hpp -- SHA-1 (FIPS 180-4), only for Sec-WebSocket-Accept
 * (RFC 6455 4.2.2).  OpenSSL's libcrypto does the work (EVP interface; the
 * SHA1() shortcut is deprecated in OpenSSL 3).
 */

#ifndef PUSHQ_SHA1_HPP
#define PUSHQ_SHA1_HPP

#include <cstddef>

namespace pushq {

/* Writes the 20-byte digest of the n bytes at p to out; false if libcrypto
 * failed (out of memory). */
bool sha1(unsigned char out[20], const void *p, size_t n) noexcept;

} // namespace pushq

#endif
