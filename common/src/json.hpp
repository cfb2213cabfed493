/*
 * json.hpp -- the JSON answers of SPEC.md, byte for byte: key order and
 * spacing as in the SPEC ({"status": true, "msg": "hi", "id": 17,
 * "channel": "ch"}).
 */

#ifndef PUSHQ_JSON_HPP
#define PUSHQ_JSON_HPP

#include <cstddef>

#include "writer.hpp"

namespace pushq {

/* Writes p[0..n) as a JSON string with its quotes.  '"', '\\' and control
 * characters are escaped (\b \f \n \r \t, else \u00XX, and \u007f for DEL);
 * U+2028 and U+2029 become \u2028 and \u2029 (so the answer is also valid
 * JavaScript); each byte that is not part of a valid UTF-8 sequence becomes
 * \ufffd, so the output is always valid UTF-8 JSON.  Valid UTF-8 is copied
 * as it is. */
void json_string(writer &w, const void *p, size_t n) noexcept;

} // namespace pushq

#endif
