/*
 * urlencoded.cpp -- query string and form field decoding.
 */

#include "urlencoded.hpp"

namespace pushq {

namespace {

int hex_value(char c) noexcept
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes the byte at s[*i], moving *i past its encoding. */
unsigned char decode_one(const char *s, size_t n, size_t *i) noexcept
{
    char c = s[*i];

    if (c == '+') {
        (*i)++;
        return ' ';
    }
    if (c == '%' && n - *i >= 3) {
        int hi = hex_value(s[*i + 1]);
        int lo = hex_value(s[*i + 2]);
        if (hi >= 0 && lo >= 0) {
            *i += 3;
            return static_cast<unsigned char>(hi << 4 | lo);
        }
    }
    (*i)++;
    return static_cast<unsigned char>(c);  /* incl. a malformed '%' */
}

} // namespace

bool url_fields::next(url_field *f) noexcept
{
    while (pos_ < n_) {
        size_t start = pos_;
        size_t end = start;

        while (end < n_ && s_[end] != '&') {
            end++;
        }
        pos_ = end < n_ ? end + 1 : end;
        if (end == start) {
            continue;                       /* empty field: "&&" */
        }

        size_t eq = start;
        while (eq < end && s_[eq] != '=') {
            eq++;
        }
        f->name = s_ + start;
        f->name_len = eq - start;
        if (eq < end) {
            f->value = s_ + eq + 1;
            f->value_len = end - eq - 1;
        } else {
            f->value = s_ + end;            /* "name" alone: empty value */
            f->value_len = 0;
        }
        return true;
    }
    return false;
}

size_t url_decode(char *out, size_t cap, const char *s, size_t n) noexcept
{
    size_t i = 0, o = 0;

    while (i < n) {
        unsigned char c = decode_one(s, n, &i);
        if (o == cap) {
            return static_cast<size_t>(-1);
        }
        out[o++] = static_cast<char>(c);
    }
    return o;
}

bool url_decoded_equals(const char *s, size_t n, const char *want,
                        size_t want_len) noexcept
{
    size_t i = 0, w = 0;

    while (i < n) {
        unsigned char c = decode_one(s, n, &i);
        if (w == want_len || static_cast<unsigned char>(want[w]) != c) {
            return false;
        }
        w++;
    }
    return w == want_len;
}

} // namespace pushq
