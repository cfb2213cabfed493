/*
 * limits.cpp -- defaults (SPEC.md "Configuration") and nginx-style size and
 * time values.
 *
 * Sizes follow ngx_parse_size(): digits with an optional k/K, m/M or g/G
 * suffix (powers of 1024).  Times follow ngx_parse_time() for the units
 * pushq needs: one or more "<digits><unit>", optionally separated by spaces
 * ("1h30m", "1h 30m"),
 * units ms, s, m, h, d, w; a number without a unit is seconds, as in nginx.
 */

#include "limits.hpp"

#include "status.hpp"

namespace pushq {

bool parse_u64(const char *s, size_t len, size_t *i, uint64_t *out) noexcept
{
    size_t   j = *i;
    uint64_t v = 0;

    if (j >= len || s[j] < '0' || s[j] > '9') {
        return false;
    }
    while (j < len && s[j] >= '0' && s[j] <= '9') {
        if (!mul_u64(v, 10, &v) || !add_u64(v, uint64_t(s[j] - '0'), &v)) {
            return false;
        }
        j++;
    }
    *i = j;
    *out = v;
    return true;
}

} // namespace pushq

using namespace pushq;

extern "C" {

PUSHQ_API void pushq_limits_default(pushq_limits_t *l)
{
    if (l == nullptr) {
        return;
    }
    l->buffer = 1000;
    l->buffer_bytes = 16u * 1024 * 1024;
    l->message_ttl_ms = 3600u * 1000;
    l->client_ttl_ms = 5u * 60 * 1000;
    l->max_message_size = 64u * 1024;
}

PUSHQ_API pushq_status_t pushq_parse_size(const char *s, size_t len,
    uint64_t *out, const char **why)
{
    size_t   i = 0;
    uint64_t v, mult = 1;

    if (s == nullptr || out == nullptr || !parse_u64(s, len, &i, &v)) {
        return report(fail::size_invalid, why);
    }
    if (i < len) {
        switch (s[i]) {
        case 'k': case 'K': mult = 1024; break;
        case 'm': case 'M': mult = 1024 * 1024; break;
        case 'g': case 'G': mult = 1024 * 1024 * 1024; break;
        default:
            return report(fail::size_invalid, why);
        }
        i++;
    }
    if (i != len || !mul_u64(v, mult, &v)) {
        return report(fail::size_invalid, why);
    }
    *out = v;
    return PUSHQ_OK;
}

PUSHQ_API pushq_status_t pushq_parse_time_ms(const char *s, size_t len,
    uint64_t *out_ms, const char **why)
{
    size_t   i = 0;
    uint64_t total = 0;
    int      parts = 0;

    if (s == nullptr || out_ms == nullptr) {
        return report(fail::time_invalid, why);
    }
    for (;;) {
        uint64_t v, mult;

        while (i < len && s[i] == ' ') {
            i++;
        }
        if (i == len) {
            break;
        }
        if (!parse_u64(s, len, &i, &v)) {
            return report(fail::time_invalid, why);
        }
        if (i == len || s[i] == ' ') {
            mult = 1000;                    /* plain number: seconds */
        } else if (s[i] == 'm' && i + 1 < len && s[i + 1] == 's') {
            mult = 1;
            i += 2;
        } else {
            switch (s[i]) {
            case 's': mult = 1000; break;
            case 'm': mult = 60u * 1000; break;
            case 'h': mult = 3600u * 1000; break;
            case 'd': mult = 86400u * 1000; break;
            case 'w': mult = 7u * 86400 * 1000; break;
            default:
                return report(fail::time_invalid, why);
            }
            i++;
        }
        if (!mul_u64(v, mult, &v) || !add_u64(total, v, &total)) {
            return report(fail::time_invalid, why);
        }
        parts++;
    }
    if (parts == 0) {
        return report(fail::time_invalid, why);
    }
    *out_ms = total;
    return PUSHQ_OK;
}

} // extern "C"
