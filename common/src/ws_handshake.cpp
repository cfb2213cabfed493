/*
 * ws_handshake.cpp -- pushq_ws_handshake_check and pushq_ws_is_upgrade.
 */

#include "ws_handshake.hpp"

#include <cstring>

#include "base64.hpp"
#include "pushq.h"
#include "sha1.hpp"
#include "status.hpp"

namespace pushq {

namespace {

bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

char lower(char c) noexcept
{
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

/* RFC 6455 1.3: the GUID appended to the key. */
constexpr char guid_[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

} // namespace

bool header_has_token(const char *v, size_t n, const char *token,
                      size_t token_len) noexcept
{
    size_t i = 0;

    if (v == nullptr) {
        return false;
    }
    while (i < n) {
        size_t start = i, end;

        while (i < n && v[i] != ',') {
            i++;
        }
        end = i;
        if (i < n) {
            i++;                            /* past the comma */
        }
        while (start < end && is_ows(v[start])) {
            start++;
        }
        while (end > start && is_ows(v[end - 1])) {
            end--;
        }
        if (end - start != token_len) {
            continue;
        }
        size_t k = 0;
        while (k < token_len && lower(v[start + k]) == lower(token[k])) {
            k++;
        }
        if (k == token_len) {
            return true;
        }
    }
    return false;
}

bool ws_accept(char out[28], const char *key, size_t key_len) noexcept
{
    unsigned char buf[64 + sizeof(guid_)];
    unsigned char md[20];

    if (key_len > 64) {
        return false;
    }
    std::memcpy(buf, key, key_len);
    std::memcpy(buf + key_len, guid_, sizeof(guid_) - 1);
    if (!sha1(md, buf, key_len + sizeof(guid_) - 1)) {
        return false;
    }
    base64_encode(out, md, sizeof(md));     /* 20 bytes -> 28 characters */
    return true;
}

} // namespace pushq

using namespace pushq;

extern "C" {

PUSHQ_API int pushq_ws_is_upgrade(const char *upgrade, size_t len)
{
    return header_has_token(upgrade, len, "websocket", 9);
}

PUSHQ_API pushq_status_t pushq_ws_handshake_check(
    const pushq_ws_handshake_t *h, char accept[28], const char **why)
{
    if (h == nullptr || accept == nullptr) {
        return report(fail::internal, why);
    }

    /* 4.2.1 item 1: "An HTTP/1.1 or higher GET request" */
    if (h->method == nullptr || h->method_len != 3
        || std::memcmp(h->method, "GET", 3) != 0)
    {
        return report(fail::hs_method, why);
    }
    if (h->http_major < 1 || (h->http_major == 1 && h->http_minor < 1)) {
        return report(fail::hs_http_version, why);
    }

    /* 4.2.1 item 3: Upgrade includes "websocket", case-insensitive */
    if (!header_has_token(h->upgrade, h->upgrade_len, "websocket", 9)) {
        return report(fail::hs_upgrade, why);
    }

    /* 4.2.1 item 4: Connection includes the token "Upgrade" */
    if (!header_has_token(h->connection, h->connection_len, "upgrade", 7)) {
        return report(fail::hs_connection, why);
    }

    /* 4.2.1 item 6: Sec-WebSocket-Version 13.  Checked before the key:
     * a client of another version may not send one.  4.4: answer with the
     * versions we speak (426 + Sec-WebSocket-Version: 13). */
    {
        const char *v = h->version;
        size_t      n = v == nullptr ? 0 : h->version_len;
        while (n > 0 && is_ows(v[0])) {
            v++;
            n--;
        }
        while (n > 0 && is_ows(v[n - 1])) {
            n--;
        }
        if (n != 2 || v[0] != '1' || v[1] != '3') {
            return report(fail::hs_version, why);
        }
    }

    /* 4.2.1 item 5: Sec-WebSocket-Key, base64 of 16 bytes (24 chars) */
    {
        const char   *k = h->key;
        size_t        n = k == nullptr ? 0 : h->key_len;
        unsigned char raw[16];

        while (n > 0 && is_ows(k[0])) {
            k++;
            n--;
        }
        while (n > 0 && is_ows(k[n - 1])) {
            n--;
        }
        if (n != 24 || base64_decode(raw, sizeof(raw), k, n) != 16) {
            return report(fail::hs_key, why);
        }

        /* 4.2.2 item 5.4: the accept value */
        if (!ws_accept(accept, k, n)) {
            return report(fail::internal, why);
        }
    }
    return PUSHQ_OK;
}

} // extern "C"
