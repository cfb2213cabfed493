/*
 * args.cpp -- pushq_args_parse and pushq_name_decode.
 *
 * Rules (SPEC.md "Concepts", "Long-poll subscribe"):
 *  - channel: 1-64 bytes of [A-Za-z0-9_.:-] after percent-decoding;
 *    absent or empty means "default".
 *  - name: the same alphabet; absent or empty means no name.
 *  - last_id: a non-negative decimal integer that fits 64 bits.
 *  - timeout: non-negative seconds, decimals allowed ("1.5" = 1500 ms;
 *    digits past milliseconds are dropped; huge values saturate).
 *  - batch: an integer from 1 to 1000.
 *  - format: json or prometheus (any case).
 *  - An empty last_id, timeout, batch or format counts as absent, as an
 *    empty channel or name does (forms often send empty fields).
 *  - Unknown arguments are ignored; for a repeated one the first wins
 *    (as nginx's $arg_x).
 */

#include "args.hpp"

#include <cstdint>
#include <cstring>

#include "limits.hpp"
#include "pushq.h"
#include "status.hpp"
#include "urlencoded.hpp"

namespace pushq {

bool name_valid(const char *p, size_t n) noexcept
{
    if (n < 1 || n > PUSHQ_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
                  || (c >= '0' && c <= '9') || c == '_' || c == '.'
                  || c == ':' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

namespace {

/* Decoded values of numeric arguments are short; anything longer than
 * this is refused by the argument's own rule. */
constexpr size_t small_max = 64;

bool parse_all_digits(const char *s, size_t n, uint64_t *out) noexcept
{
    size_t i = 0;
    return parse_u64(s, n, &i, out) && i == n;
}

/* "12", "1.5", ".25", "3." -> milliseconds, saturating. */
bool parse_seconds(const char *s, size_t n, uint64_t *out_ms) noexcept
{
    size_t   i = 0;
    uint64_t sec = 0, ms = 0;
    bool     digits = false, overflow = false;

    while (i < n && s[i] >= '0' && s[i] <= '9') {
        if (!mul_u64(sec, 10, &sec) || !add_u64(sec, uint64_t(s[i] - '0'),
                                                &sec))
        {
            overflow = true;
        }
        digits = true;
        i++;
    }
    if (i < n && s[i] == '.') {
        unsigned scale = 100;
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            ms += uint64_t(s[i] - '0') * scale;
            scale /= 10;
            digits = true;
            i++;
        }
    }
    if (!digits || i != n) {
        return false;
    }
    if (overflow || !mul_u64(sec, 1000, &sec) || !add_u64(sec, ms, &sec)) {
        sec = UINT64_MAX;
    }
    *out_ms = sec;
    return true;
}

bool equals_nocase(const char *s, size_t n, const char *lit) noexcept
{
    size_t m = std::strlen(lit);
    if (n != m) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
        if (c != lit[i]) {
            return false;
        }
    }
    return true;
}

pushq_status_t decode_name(pushq_arg_t which, const char *raw, size_t len,
    char *out, size_t *out_len, const char **why) noexcept
{
    fail   f = which == PUSHQ_ARG_CHANNEL ? fail::channel_invalid
                                          : fail::name_invalid;
    size_t n = url_decode(out, PUSHQ_NAME_MAX, raw, len);

    if (n == static_cast<size_t>(-1)) {
        return report(f, why);              /* longer than 64 bytes */
    }
    if (n == 0) {
        if (which == PUSHQ_ARG_CHANNEL) {
            std::memcpy(out, "default", 7);
            *out_len = 7;
        } else {
            *out_len = 0;
        }
        return PUSHQ_OK;
    }
    if (!name_valid(out, n)) {
        return report(f, why);
    }
    *out_len = n;
    return PUSHQ_OK;
}

} // namespace

} // namespace pushq

using namespace pushq;

extern "C" {

PUSHQ_API pushq_status_t pushq_name_decode(pushq_arg_t which,
    const char *raw, size_t len, char *out, size_t *out_len,
    const char **why)
{
    if (out == nullptr || out_len == nullptr || (raw == nullptr && len != 0)
        || (which != PUSHQ_ARG_CHANNEL && which != PUSHQ_ARG_NAME))
    {
        return report(fail::internal, why);
    }
    return decode_name(which, raw, len, out, out_len, why);
}

PUSHQ_API pushq_status_t pushq_args_parse(const char *query, size_t len,
    pushq_args_t *out, const char **why)
{
    enum { seen_channel = 1, seen_name = 2, seen_last_id = 4,
           seen_timeout = 8, seen_batch = 16, seen_format = 32 };
    unsigned  seen = 0;
    url_field f;
    char      buf[small_max];

    if (out == nullptr || (query == nullptr && len != 0)) {
        return report(fail::internal, why);
    }
    std::memset(out, 0, sizeof(*out));
    std::memcpy(out->channel, "default", 7);
    out->channel_len = 7;
    out->format = PUSHQ_FORMAT_DEFAULT;

    url_fields fields(query, len);

    while (fields.next(&f)) {
        pushq_status_t rc;
        size_t         n;

#define PUSHQ_IS(lit) url_decoded_equals(f.name, f.name_len, lit, \
                                         sizeof(lit) - 1)

        if (PUSHQ_IS("channel")) {
            if (seen & seen_channel) continue;
            seen |= seen_channel;
            rc = decode_name(PUSHQ_ARG_CHANNEL, f.value, f.value_len,
                             out->channel, &out->channel_len, why);
            if (rc != PUSHQ_OK) return rc;

        } else if (PUSHQ_IS("name")) {
            if (seen & seen_name) continue;
            seen |= seen_name;
            rc = decode_name(PUSHQ_ARG_NAME, f.value, f.value_len,
                             out->name, &out->name_len, why);
            if (rc != PUSHQ_OK) return rc;

        } else if (PUSHQ_IS("last_id")) {
            if (seen & seen_last_id) continue;
            seen |= seen_last_id;
            n = url_decode(buf, sizeof(buf), f.value, f.value_len);
            if (n == 0) continue;           /* empty: absent */
            if (n == static_cast<size_t>(-1)
                || !parse_all_digits(buf, n, &out->last_id))
            {
                return report(fail::last_id_invalid, why);
            }
            out->has_last_id = 1;

        } else if (PUSHQ_IS("timeout")) {
            if (seen & seen_timeout) continue;
            seen |= seen_timeout;
            n = url_decode(buf, sizeof(buf), f.value, f.value_len);
            if (n == 0) continue;
            if (n == static_cast<size_t>(-1)
                || !parse_seconds(buf, n, &out->timeout_ms))
            {
                return report(fail::timeout_invalid, why);
            }
            out->has_timeout = 1;

        } else if (PUSHQ_IS("batch")) {
            uint64_t v;
            if (seen & seen_batch) continue;
            seen |= seen_batch;
            n = url_decode(buf, sizeof(buf), f.value, f.value_len);
            if (n == 0) continue;
            if (n == static_cast<size_t>(-1) || !parse_all_digits(buf, n, &v)
                || v < 1 || v > PUSHQ_BATCH_MAX)
            {
                return report(fail::batch_invalid, why);
            }
            out->batch = static_cast<uint32_t>(v);

        } else if (PUSHQ_IS("format")) {
            if (seen & seen_format) continue;
            seen |= seen_format;
            n = url_decode(buf, sizeof(buf), f.value, f.value_len);
            if (n == 0) continue;
            if (n != static_cast<size_t>(-1) && equals_nocase(buf, n, "json"))
            {
                out->format = PUSHQ_FORMAT_JSON;
            } else if (n != static_cast<size_t>(-1)
                       && equals_nocase(buf, n, "prometheus"))
            {
                out->format = PUSHQ_FORMAT_PROMETHEUS;
            } else {
                return report(fail::format_invalid, why);
            }
        }
#undef PUSHQ_IS
    }
    return PUSHQ_OK;
}

} // extern "C"
