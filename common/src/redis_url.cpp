/*
 * redis_url.cpp -- "redis://[[user]:password@]host[:port][/db]"
 * (pushq_redis_url_parse, pushq_redis.h).
 *
 * The password may be percent-encoded (a '@' or ':' in it); the host is a
 * name, an IPv4 address or a bracketed IPv6 address.  Each rejection's why
 * names the part that is wrong.
 */

#include <cstring>

#include "pushq_redis.h"

namespace {

int hexval(char c) noexcept
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes p[0..n) into out (cap bytes, NUL-terminated). */
bool decode(const char *p, size_t n, char *out, size_t cap) noexcept
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '%') {
            if (i + 2 >= n) {
                return false;
            }
            int a = hexval(p[i + 1]), b = hexval(p[i + 2]);
            if (a < 0 || b < 0) {
                return false;
            }
            c = static_cast<char>(a * 16 + b);
            i += 2;
        }
        if (c == '\0' || k + 1 >= cap) {
            return false;
        }
        out[k++] = c;
    }
    out[k] = '\0';
    return true;
}

bool host_char(char c) noexcept
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

/* Decimal digits p[0..n) into *v, at most max. */
bool number(const char *p, size_t n, uint64_t max, uint64_t *v) noexcept
{
    if (n == 0 || n > 20) {
        return false;
    }
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return false;
        }
        x = x * 10 + static_cast<uint64_t>(p[i] - '0');
        if (x > max) {
            return false;
        }
    }
    *v = x;
    return true;
}

pushq_status_t bad(const char **why, const char *text) noexcept
{
    if (why) *why = text;
    return PUSHQ_EBADARG;
}

} // namespace

extern "C" PUSHQ_API pushq_status_t pushq_redis_url_parse(const char *s,
    size_t len, pushq_redis_url_t *out, const char **why)
{
    if (out == nullptr || (s == nullptr && len != 0)) {
        return bad(why, "redis url: missing");
    }
    std::memset(out, 0, sizeof(*out));
    out->port = 6379;
    static constexpr char scheme[] = "redis://";
    static constexpr char tls[] = "rediss://";
    if (len >= sizeof(tls) - 1 && std::memcmp(s, tls, sizeof(tls) - 1) == 0)
    {
        return bad(why, "redis url: rediss:// (TLS) is not supported: "
                        "Debian 12's hiredis 0.14 has no TLS");
    }
    if (len < sizeof(scheme) - 1 ||
        std::memcmp(s, scheme, sizeof(scheme) - 1) != 0)
    {
        return bad(why, "redis url: must begin with redis://");
    }
    const char *p = s + sizeof(scheme) - 1;
    const char *end = s + len;

    /* authority ends at the first '/' (the db) */
    const char *slash = static_cast<const char *>(
        std::memchr(p, '/', static_cast<size_t>(end - p)));
    const char *auth_end = slash != nullptr ? slash : end;

    /* userinfo: up to the last '@' of the authority */
    const char *at = nullptr;
    for (const char *q = p; q < auth_end; q++) {
        if (*q == '@') at = q;
    }
    if (at != nullptr) {
        const char *colon = static_cast<const char *>(
            std::memchr(p, ':', static_cast<size_t>(at - p)));
        if (colon != nullptr) {
            /* user name before the colon: ignored (ACL users need
             * hiredis >= 1.0) */
            if (!decode(colon + 1, static_cast<size_t>(at - colon - 1),
                        out->password, sizeof(out->password)))
            {
                return bad(why, "redis url: password: bad percent-encoding "
                                "or longer than 255 bytes");
            }
        }
        p = at + 1;
    }

    /* host */
    const char *host_end;
    const char *h = p, *he;
    if (p < auth_end && *p == '[') {
        const char *rb = static_cast<const char *>(
            std::memchr(p, ']', static_cast<size_t>(auth_end - p)));
        if (rb == nullptr || rb == p + 1) {
            return bad(why, "redis url: host: unterminated [IPv6] address");
        }
        h = p + 1;
        he = rb;
        for (const char *q = h; q < he; q++) {
            if (!(hexval(*q) >= 0 || *q == ':' || *q == '.')) {
                return bad(why, "redis url: host: bad [IPv6] address");
            }
        }
        host_end = rb + 1;
        if (host_end < auth_end && *host_end != ':') {
            return bad(why, "redis url: host: junk after [IPv6] address");
        }
    } else {
        const char *q = p;
        while (q < auth_end && *q != ':') {
            if (!host_char(*q)) {
                return bad(why, "redis url: host: only letters, digits, "
                                "'-', '.', '_' or an [IPv6] address");
            }
            q++;
        }
        he = q;
        host_end = q;
    }
    size_t hl = static_cast<size_t>(he - h);
    if (hl == 0) {
        return bad(why, "redis url: host: missing");
    }
    if (hl >= sizeof(out->host)) {
        return bad(why, "redis url: host: longer than 255 bytes");
    }
    std::memcpy(out->host, h, hl);
    out->host[hl] = '\0';

    /* port */
    if (host_end < auth_end) {
        /* *host_end == ':' */
        uint64_t port = 0;
        if (!number(host_end + 1, static_cast<size_t>(auth_end - host_end - 1),
                    65535, &port) || port == 0)
        {
            return bad(why, "redis url: port: must be 1-65535");
        }
        out->port = static_cast<uint16_t>(port);
    }

    /* db */
    if (slash != nullptr && slash + 1 < end) {
        uint64_t db = 0;
        if (!number(slash + 1, static_cast<size_t>(end - slash - 1),
                    UINT32_MAX, &db))
        {
            return bad(why, "redis url: db: must be a number (redis://host"
                            "/<db>)");
        }
        out->db = static_cast<uint32_t>(db);
    }
    return PUSHQ_OK;
}
