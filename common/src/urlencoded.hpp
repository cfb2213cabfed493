/*
 * urlencoded.hpp -- application/x-www-form-urlencoded and query strings
 * (WHATWG URL "application/x-www-form-urlencoded parsing"): fields split on
 * '&', name and value on the first '=', '+' is a space, %XX a byte.
 *
 * A '%' not followed by two hex digits is kept as a literal '%' (as
 * browsers and nginx's ngx_unescape_uri do); the argument checks that follow
 * refuse it where it is not allowed (names), and a message keeps it.
 * Decoding never makes a value longer.
 */

#ifndef PUSHQ_URLENCODED_HPP
#define PUSHQ_URLENCODED_HPP

#include <cstddef>

namespace pushq {

/* One raw (still encoded) field of a query string or form. */
struct url_field {
    const char *name;
    size_t      name_len;
    const char *value;
    size_t      value_len;
};

/* Walks the fields of s[0..n), skipping empty ones ("a=1&&b=2"). */
class url_fields {
public:
    url_fields(const char *s, size_t n) noexcept : s_(s), n_(n) {}

    /* Fills *f with the next field; false at the end. */
    bool next(url_field *f) noexcept;

private:
    const char *s_;
    size_t      n_;
    size_t      pos_ = 0;
};

/* Decodes s[0..n) into out.  Returns the decoded length, or (size_t) -1
 * when it would exceed cap (out then holds the first cap bytes). */
size_t url_decode(char *out, size_t cap, const char *s, size_t n) noexcept;

/* True when s[0..n), decoded, equals want[0..want_len). */
bool url_decoded_equals(const char *s, size_t n, const char *want,
                        size_t want_len) noexcept;

} // namespace pushq

#endif
